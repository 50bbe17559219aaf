//! Aggregator: the number of events per key, emitted as decimal text.
//! The accumulator is the count as a little-endian u64. It also exports
//! `subtract` (one less per event), so it can count a table's rows per group.

use weir_sdk::{Aggregate, Event, Failure, Output, Subtract, Window};

/// Counts events.
pub struct Count;

#[weir_sdk::aggregator(subtract)]
impl Aggregate for Count {
    type Acc = u64;

    fn init(_key: Option<&[u8]>) -> u64 {
        0
    }

    fn add(acc: &mut u64, _event: &Event<'_>) -> Result<(), Failure> {
        *acc += 1;
        Ok(())
    }

    fn merge(_key: Option<&[u8]>, a: u64, b: u64) -> Result<u64, Failure> {
        Ok(a + b)
    }

    fn emit(_key: Option<&[u8]>, acc: &u64, _window: Option<Window>) -> Vec<Output<'static>> {
        vec![Output::new().text(acc.to_string())]
    }
}

impl Subtract for Count {
    fn subtract(acc: &mut u64, _event: &Event<'_>) -> Result<(), Failure> {
        *acc = acc
            .checked_sub(1)
            .ok_or_else(|| Failure::new("negative-count", "the count is 0: there is no event to subtract"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let mut acc = Count::init(None);
        for _ in 0..3 {
            Count::add(&mut acc, &Event::new(b"x")).unwrap();
        }
        assert_eq!(Count::emit(None, &acc, None)[0].value_str(), Some("3"));
        assert_eq!(Count::merge(None, 2, 5), Ok(7));
    }

    #[test]
    fn subtracts_down_to_zero_and_no_further() {
        let mut acc = 2;
        for _ in 0..2 {
            Count::subtract(&mut acc, &Event::new(b"x")).unwrap();
        }
        assert_eq!(acc, 0);
        let failure = Count::subtract(&mut acc, &Event::new(b"x")).unwrap_err();
        assert_eq!((failure.code.as_str(), acc), ("negative-count", 0));
    }
}
