//! Map: the value upper-cased (ASCII), key and headers kept.

use weir_sdk::{Event, ValueOut};

/// Upper-cases the event's value, writing it straight into the results
/// (`map_value`: no allocation per record). A tombstone stays one.
#[weir_sdk::map_value]
pub fn uppercase(event: &Event, out: &mut ValueOut) {
    // A copy, then a change in place: each a loop the compiler vectorises.
    out.extend_from_slice(event.value().unwrap_or_default());
    out.as_mut_slice().make_ascii_uppercase();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(event: &Event) -> Vec<u8> {
        let mut value = Vec::new();
        uppercase(event, &mut ValueOut::new(&mut value));
        value
    }

    #[test]
    fn upper_cases_the_value() {
        assert_eq!(upper(&Event::new(b"hello, World").with_key(b"k")), b"HELLO, WORLD");
    }

    #[test]
    fn leaves_what_is_not_ascii_as_it_is() {
        assert_eq!(upper(&Event::new("größe".as_bytes())), "GRößE".as_bytes());
    }
}
