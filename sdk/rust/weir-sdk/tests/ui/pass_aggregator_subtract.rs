use weir_sdk::{Aggregate, Event, Failure, Output, Subtract, Window};

struct Count;

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
    fn emit(_key: Option<&[u8]>, acc: &u64, _window: Option<Window>) -> Vec<Output<'static>> {
        vec![Output::new().text(acc.to_string())]
    }
}

impl Subtract for Count {
    fn subtract(acc: &mut u64, _event: &Event<'_>) -> Result<(), Failure> {
        *acc = acc.checked_sub(1).ok_or_else(|| Failure::new("negative-count", "below zero"))?;
        Ok(())
    }
}

fn main() {
    let mut acc = Count::init(None);
    Count::add(&mut acc, &Event::new(b"x")).unwrap();
    Count::subtract(&mut acc, &Event::new(b"x")).unwrap();
    assert_eq!(Count::subtract(&mut acc, &Event::new(b"x")).unwrap_err().code, "negative-count");
    assert_eq!(acc, 0);
}
