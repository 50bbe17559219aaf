use weir_sdk::{Aggregate, Event, Failure, Migrate, Output, Subtract, Window};

struct Sum;

// Either order; the world is aggregate-with-migrate-and-subtract.
#[weir_sdk::aggregator(subtract, migrate)]
impl Aggregate for Sum {
    type Acc = i64;
    fn init(_key: Option<&[u8]>) -> i64 {
        0
    }
    fn add(acc: &mut i64, event: &Event<'_>) -> Result<(), Failure> {
        *acc += number(event)?;
        Ok(())
    }
    fn emit(_key: Option<&[u8]>, acc: &i64, _window: Option<Window>) -> Vec<Output<'static>> {
        vec![Output::new().text(acc.to_string())]
    }
}

impl Migrate for Sum {
    fn migrate(_previous: &str, _key: Option<&[u8]>, acc: &[u8]) -> Result<i64, Failure> {
        std::str::from_utf8(acc).ok().and_then(|s| s.parse().ok()).ok_or_else(|| Failure::new("bad-state", "old state"))
    }
}

impl Subtract for Sum {
    fn subtract(acc: &mut i64, event: &Event<'_>) -> Result<(), Failure> {
        *acc -= number(event)?;
        Ok(())
    }
}

fn number(event: &Event<'_>) -> Result<i64, Failure> {
    event.value_str().and_then(|v| v.parse().ok()).ok_or_else(|| Failure::new("nan", "not a number"))
}

fn main() {
    let mut acc = Sum::migrate("sum@sha256:0", None, b"50").unwrap();
    Sum::add(&mut acc, &Event::new(b"2")).unwrap();
    Sum::subtract(&mut acc, &Event::new(b"10")).unwrap();
    assert_eq!(acc, 42);
}
