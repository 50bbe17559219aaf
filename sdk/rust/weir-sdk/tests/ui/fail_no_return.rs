use weir_sdk::Event;

#[weir_sdk::map]
fn shout(event: &Event) {
    let _ = event;
}

fn main() {}
