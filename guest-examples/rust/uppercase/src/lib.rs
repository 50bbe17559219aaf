//! Map: the value upper-cased (ASCII), key and headers kept.

use weir_sdk::{Event, Output};

/// Upper-cases the event's value.
#[weir_sdk::map]
pub fn uppercase<'a>(event: &Event<'a>) -> Output<'a> {
    let mut out = Output::forward(event);
    out.value = event.value().map(|v| v.to_ascii_uppercase().into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_the_value_and_keeps_the_key() {
        let out = uppercase(&Event::new(b"hello, World").with_key(b"k"));
        assert_eq!(out.value_str(), Some("HELLO, WORLD"));
        assert_eq!(out.key_str(), Some("k"));
    }

    #[test]
    fn a_tombstone_stays_a_tombstone() {
        assert_eq!(uppercase(&Event::new(b"").without_value()).value, None);
    }
}
