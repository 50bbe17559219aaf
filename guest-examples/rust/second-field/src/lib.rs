//! Lookup key: the event keyed by the second comma-separated field of its
//! value, the key mapper of Kafka Streams' `KStreamGlobalKTableJoinTest`
//! (`value.split(",")[1]`); no output when there is none.

use weir_sdk::{Event, Output};

/// The event with its value's second field as key.
#[weir_sdk::map]
pub fn second_field<'a>(event: &Event<'a>) -> Option<Output<'a>> {
    let key = second(event.value()?)?;
    Some(Output::forward(event).key(key))
}

/// The second field of `value` as Java's `split(",")` gives it, which drops
/// trailing empty fields: `"a,,b"` has `""`, `"a,"` has none.
fn second(value: &[u8]) -> Option<&[u8]> {
    let mut fields = value.split(|&b| b == b',');
    fields.next();
    let second = fields.next()?;
    if second.is_empty() && fields.all(<[u8]>::is_empty) {
        return None;
    }
    Some(second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &[u8]) -> Option<String> {
        second_field(&Event::new(value).with_key(b"0")).map(|o| o.key_str().unwrap().to_owned())
    }

    #[test]
    fn keys_by_the_second_field() {
        let out = second_field(&Event::new(b"X0,FKey0").with_key(b"0")).unwrap();
        assert_eq!(out.key_str(), Some("FKey0"));
        assert_eq!(out.value_str(), Some("X0,FKey0"));
        assert_eq!(key(b"X0,FKey0,more").as_deref(), Some("FKey0"));
        assert_eq!(key(b",FKey0").as_deref(), Some("FKey0"));
        assert_eq!(key(b"X0,,FKey0").as_deref(), Some(""));
    }

    #[test]
    fn no_second_field_no_output() {
        assert_eq!(key(b"XXX0"), None);
        assert_eq!(key(b"X0,"), None);
        assert_eq!(key(b"X0,,"), None);
        assert_eq!(key(b""), None);
        assert!(second_field(&Event::new(b"").with_key(b"0").without_value()).is_none());
    }
}
