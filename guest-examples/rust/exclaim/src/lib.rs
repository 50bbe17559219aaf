//! Map: the value with `!` appended, key and headers kept. With `uppercase`,
//! it shows a hot swap: every output says which version made it.

use weir_sdk::{Event, Output};

/// Appends `!` to the event's value.
#[weir_sdk::map]
pub fn exclaim<'a>(event: &Event<'a>) -> Output<'a> {
    let mut out = Output::forward(event);
    out.value = event.value().map(|v| {
        let mut v = v.to_vec();
        v.push(b'!');
        v.into()
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_an_exclamation_mark() {
        let out = exclaim(&Event::new(b"hello").with_key(b"k"));
        assert_eq!(out.value_str(), Some("hello!"));
        assert_eq!(out.key_str(), Some("k"));
    }
}
