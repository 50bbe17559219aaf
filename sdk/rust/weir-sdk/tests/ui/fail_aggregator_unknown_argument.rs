use weir_sdk::{Aggregate, Event, Failure, Output, Window};

struct Count;

#[weir_sdk::aggregator(migrate, substract)]
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

fn main() {}
