//! Re-key: the event as it is, key and value. As a `group-by` selector it
//! groups a table by its own key (Kafka Streams'
//! `MockMapper.noOpKeyValueMapper()`), so that a table aggregation sees
//! each row's old and new values.

use weir_sdk::Event;

/// The event's own key.
#[weir_sdk::rekey]
pub fn same_key(event: &Event) -> Option<Vec<u8>> {
    event.key().map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_key() {
        assert_eq!(same_key(&Event::new(b"v").with_key(b"k")), Some(b"k".to_vec()));
    }
}
