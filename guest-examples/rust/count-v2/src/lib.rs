//! Aggregator: the number of events per key, emitted as `n=<count>`. Its
//! accumulator is the count as decimal text, where `count` (v1) keeps a
//! little-endian u64: it exports `migrate`, so it can replace `count` in a
//! running pipeline and carry on from v1's counts.

use weir_sdk::{Aggregate, Event, Failure, Migrate, Output, Window};

/// Counts events, v2.
pub struct CountV2;

fn parse(acc: &str) -> Result<u64, Failure> {
    acc.parse()
        .map_err(|_| Failure::new("bad-state", format!("not a decimal count: {acc:?}")))
}

#[weir_sdk::aggregator(migrate)]
impl Aggregate for CountV2 {
    type Acc = String;

    fn init(_key: Option<&[u8]>) -> String {
        "0".into()
    }

    fn add(acc: &mut String, _event: &Event<'_>) -> Result<(), Failure> {
        *acc = (parse(acc)? + 1).to_string();
        Ok(())
    }

    fn merge(_key: Option<&[u8]>, a: String, b: String) -> Result<String, Failure> {
        Ok((parse(&a)? + parse(&b)?).to_string())
    }

    fn emit(_key: Option<&[u8]>, acc: &String, _window: Option<Window>) -> Vec<Output<'static>> {
        vec![Output::new().text(format!("n={acc}"))]
    }
}

impl Migrate for CountV2 {
    /// `count`'s accumulator is 8 bytes, a little-endian u64.
    fn migrate(previous: &str, _key: Option<&[u8]>, acc: &[u8]) -> Result<String, Failure> {
        let bytes: [u8; 8] = acc.try_into().map_err(|_| {
            Failure::new(
                "unknown-state",
                format!("{previous} wrote {} bytes; expected count's 8-byte u64", acc.len()),
            )
        })?;
        Ok(u64::from_le_bytes(bytes).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_on_from_count_v1() {
        let mut acc = CountV2::migrate("count@sha256:00", None, &5u64.to_le_bytes()).unwrap();
        CountV2::add(&mut acc, &Event::new(b"x")).unwrap();
        assert_eq!(CountV2::emit(None, &acc, None)[0].value_str(), Some("n=6"));
        assert!(CountV2::migrate("x", None, b"12").is_err());
    }
}
