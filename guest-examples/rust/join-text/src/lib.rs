//! Joiner: the two sides' values as text, `left+right`, an absent side
//! printed `null` (`"A0+null"`). It is Kafka Streams'
//! `MockValueJoiner.TOSTRING_JOINER`, so that `tests/kstreams` can compare
//! Weir's joins with Kafka Streams' own tests result for result.

use weir_sdk::{Output, Pair};

/// `left+right`, with `null` for an absent side.
#[weir_sdk::joiner]
pub fn join_text(pair: &Pair) -> Output<'static> {
    Output::new().text(format!("{}+{}", side(pair.left()), side(pair.right())))
}

/// A side's value as text, `null` when absent (as Java prints a null).
fn side(value: Option<&[u8]>) -> std::borrow::Cow<'_, str> {
    value.map_or("null".into(), String::from_utf8_lossy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_both_sides_and_prints_an_absent_one_as_null() {
        assert_eq!(
            join_text(&Pair::new(Some(b"A0"), Some(b"a0"))).value_str(),
            Some("A0+a0")
        );
        assert_eq!(join_text(&Pair::new(Some(b"A0"), None)).value_str(), Some("A0+null"));
        assert_eq!(join_text(&Pair::new(None, Some(b"a0"))).value_str(), Some("null+a0"));
    }
}
