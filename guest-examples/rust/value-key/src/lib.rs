//! Re-key: the event keyed by its own value, e.g. a user's region as the
//! key that groups users by region (`users-per-region.toml`). As a
//! `group-by` selector it is Kafka Streams'
//! `MockMapper.selectValueKeyValueMapper()`.

use weir_sdk::Event;

/// The event's value as its key (an event without a value keeps none).
#[weir_sdk::rekey]
pub fn value_key(event: &Event) -> Option<Vec<u8>> {
    event.value().map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_by_the_value() {
        assert_eq!(value_key(&Event::new(b"eu").with_key(b"u1")), Some(b"eu".to_vec()));
    }
}
