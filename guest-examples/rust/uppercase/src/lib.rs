//! Map: the value upper-cased (ASCII), key and headers kept.

use weir_sdk::{Event, ValueOut};

/// Upper-cases the event's value, writing it straight into the results
/// (`map_value`: no allocation per record). A tombstone stays one.
#[weir_sdk::map_value]
pub fn uppercase(event: &Event, out: &mut ValueOut) {
    // One pass over the value, which the compiler vectorises: `ValueOut`
    // takes a byte iterator of known length without a check per byte, and
    // this saves the separate copy (a call out of the sandbox for
    // `memory.copy`) that `extend_from_slice` + `make_ascii_uppercase` cost.
    out.extend(event.value().unwrap_or_default().iter().map(u8::to_ascii_uppercase));
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
