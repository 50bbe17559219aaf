use weir_sdk::{Aggregate, Event, Failure, Migrate, Output, Window};

struct Sum;

#[weir_sdk::aggregator(migrate)]
impl Aggregate for Sum {
    type Acc = i64;
    fn init(_key: Option<&[u8]>) -> i64 {
        0
    }
    fn add(acc: &mut i64, event: &Event<'_>) -> Result<(), Failure> {
        let n: i64 = event.value_str().and_then(|v| v.parse().ok()).ok_or_else(|| Failure::new("nan", "not a number"))?;
        *acc += n;
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

fn main() {
    let mut acc = Sum::init(None);
    Sum::add(&mut acc, &Event::new(b"41")).unwrap();
    assert_eq!(acc, 41);
}
