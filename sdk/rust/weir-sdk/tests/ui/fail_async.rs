use weir_sdk::{Event, Output};

#[weir_sdk::map]
async fn shout<'a>(event: &Event<'a>) -> Output<'a> {
    Output::forward(event)
}

fn main() {}
