//! A global table's store: every partition of one topic, held whole by each
//! instance (Kafka Streams' `GlobalKTable`). Its records are applied as they
//! are read — outside the tasks' transactions, as Kafka Streams' global
//! stores are — with the next offset of each partition kept next to the
//! rows, so that a restart reads on from there.
//!
//! Rows are keyed and valued as a table's (`keys::plain`, then the
//! timestamp and value: [`super::row::encode_value`]); a null value
//! deletes; a record without a key is skipped.

use std::collections::BTreeMap;

use super::keys;
use super::row;
use super::{StateError, Store, View, Write};

/// One record of a global table's topic.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key (`None`: skipped).
    pub key: Option<&'a [u8]>,
    /// Its value (`None`: a delete).
    pub value: Option<&'a [u8]>,
    /// Its timestamp (`None`: skipped, as it has no valid one under the
    /// pipeline's `timestamp-policy = "log-and-skip"`).
    pub timestamp: Option<i64>,
}

/// A global table's store.
pub struct GlobalStore {
    store: Store,
}

/// The meta entry holding the next offset of `partition`.
fn position_key(partition: i32) -> Vec<u8> {
    keys::meta(&format!("global-next-{partition}"))
}

impl GlobalStore {
    /// A global table over `store`.
    pub fn new(store: Store) -> GlobalStore {
        GlobalStore { store }
    }

    /// The next offset to read of `partition` (`None`: from the start).
    pub fn position(&self, partition: i32) -> Result<Option<i64>, StateError> {
        let k = position_key(partition);
        match self.store.get(&k)? {
            None => Ok(None),
            Some(b) => b
                .as_slice()
                .try_into()
                .map(|b| Some(i64::from_le_bytes(b)))
                .map_err(|_| self.store.corrupt(&k, "a global table position that is not 8 bytes")),
        }
    }

    /// Applies `records` (in their partitions' order) and the positions
    /// after them, in one atomic write.
    pub fn apply(&self, records: &[Record<'_>]) -> Result<(), StateError> {
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let mut writes: Vec<Write> = Vec::with_capacity(records.len() + 1);
        for r in records {
            next.insert(r.partition, r.offset + 1);
            if let (Some(k), Some(timestamp)) = (r.key, r.timestamp) {
                writes.push((keys::plain(Some(k)), r.value.map(|v| row::encode_value(timestamp, v))));
            }
        }
        writes.extend(
            next.into_iter()
                .map(|(p, n)| (position_key(p), Some(n.to_le_bytes().to_vec()))),
        );
        self.store.apply(writes, None)
    }

    /// Reads of its rows for joins.
    pub fn view(&self) -> View {
        self.store.read_view()
    }

    /// The store (restores, queries).
    pub fn store(&self) -> &Store {
        &self.store
    }
}
