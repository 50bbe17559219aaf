//! A table row as stored: the timestamp of the record that wrote it
//! (i64 little-endian), then its value. Tables, global tables, their
//! restores and interactive queries all read and write rows this way.

/// A row as stored: the timestamp (i64 little-endian), then the value.
pub fn encode_value(timestamp: i64, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&timestamp.to_le_bytes());
    v.extend_from_slice(value);
    v
}

/// A stored row's timestamp and value (`None`: too short to be one).
pub fn decode_value(stored: &[u8]) -> Option<(i64, &[u8])> {
    let (ts, value) = stored.split_first_chunk::<8>()?;
    Some((i64::from_le_bytes(*ts), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_short_ones_are_refused() {
        let v = encode_value(-5, b"abc");
        assert_eq!(decode_value(&v), Some((-5, &b"abc"[..])));
        assert_eq!(decode_value(&v[..7]), None);
        assert_eq!(decode_value(&encode_value(7, b"")), Some((7, &b""[..])));
    }
}
