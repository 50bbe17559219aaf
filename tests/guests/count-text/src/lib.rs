//! Version 2 of `count`, with a different state format (decimal text instead
//! of a little-endian u64) and a `migrate` that reads version 1's state.

use weir_sdk::{Aggregate, Event, Failure, Migrate, Output, Window};

/// Counts events, keeping the count as text.
pub struct CountText;

fn parse(acc: &str) -> Result<u64, Failure> {
    acc.parse()
        .map_err(|_| Failure::new("bad-state", format!("not a decimal count: {acc:?}")))
}

#[weir_sdk::aggregator(migrate)]
impl Aggregate for CountText {
    type Acc = String;

    fn init(_key: Option<&[u8]>) -> String {
        "0".to_owned()
    }

    fn add(acc: &mut String, _event: &Event<'_>) -> Result<(), Failure> {
        *acc = (parse(acc)? + 1).to_string();
        Ok(())
    }

    fn merge(_key: Option<&[u8]>, a: String, b: String) -> Result<String, Failure> {
        Ok((parse(&a)? + parse(&b)?).to_string())
    }

    fn emit(_key: Option<&[u8]>, acc: &String, window: Option<Window>) -> Vec<Output<'static>> {
        let mut out = Output::new().text(acc.clone());
        if let Some(w) = window {
            out = out.header("window", format!("{}-{}", w.start, w.end).into_bytes());
        }
        vec![out]
    }
}

impl Migrate for CountText {
    fn migrate(previous: &str, _key: Option<&[u8]>, acc: &[u8]) -> Result<String, Failure> {
        if !previous.starts_with("count@") {
            return Err(Failure::new(
                "unknown-version",
                format!("cannot read state of {previous}"),
            ));
        }
        let bytes: [u8; 8] = acc
            .try_into()
            .map_err(|_| Failure::new("bad-state", "count state is 8 bytes"))?;
        Ok(u64::from_le_bytes(bytes).to_string())
    }
}
