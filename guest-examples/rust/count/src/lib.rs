//! Aggregator: the number of events per key, emitted as decimal text.
//! The accumulator is the count as a little-endian u64.

use weir_sdk::{Aggregate, Event, Failure, Output, Window};

/// Counts events.
pub struct Count;

#[weir_sdk::aggregator]
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
}
