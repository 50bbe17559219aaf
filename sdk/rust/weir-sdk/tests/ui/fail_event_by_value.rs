use weir_sdk::Event;

#[weir_sdk::filter]
fn keep(event: Event) -> bool {
    event.value().is_some()
}

fn main() {}
