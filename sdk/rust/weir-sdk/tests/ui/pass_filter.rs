use weir_sdk::{Event, Failure};

#[weir_sdk::filter]
fn keep_errors(event: &Event) -> Result<bool, Failure> {
    Ok(event.value_str().is_some_and(|v| v.contains("ERROR")))
}

fn main() {
    assert_eq!(keep_errors(&Event::new(b"ERROR: disk")), Ok(true));
}
