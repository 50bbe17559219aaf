//! A table row as stored: the timestamp of the record that wrote it
//! (i64 little-endian), then its value. Tables, global tables, their
//! restores and interactive queries all read and write rows this way;
//! joins read a table's rows through a [`TableView`].

use super::{StateError, Store, View, keys};

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

/// One row of a table as a join reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The timestamp of the record that wrote it.
    pub timestamp: i64,
    /// As stored: the timestamp, then the value.
    stored: Vec<u8>,
}

impl Row {
    /// Its value.
    pub fn value(&self) -> &[u8] {
        &self.stored[8..]
    }
}

/// Reads a table's current rows (staged writes included) from another stage
/// of the same task.
#[derive(Clone)]
pub struct TableView(View);

impl TableView {
    /// Reads of rows through `view` (a global table's).
    pub fn from_view(view: View) -> TableView {
        TableView(view)
    }

    /// Reads of the rows of `store` (a table's, or a table-table join's).
    pub fn of(store: &Store) -> TableView {
        TableView(store.view())
    }

    /// The row of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Row>, StateError> {
        let k = keys::plain(Some(key));
        match self.0.get(&k)? {
            None => Ok(None),
            Some(stored) => match decode_value(&stored) {
                Some((timestamp, _)) => Ok(Some(Row { timestamp, stored })),
                None => Err(self.0.corrupt(&k, "a table row shorter than its timestamp")),
            },
        }
    }
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
