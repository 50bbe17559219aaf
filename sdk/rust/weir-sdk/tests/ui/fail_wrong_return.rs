use weir_sdk::Event;

#[weir_sdk::filter]
fn keep(event: &Event) -> String {
    format!("{:?}", event.value())
}

fn main() {}
