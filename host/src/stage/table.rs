//! The `table` stage: the latest value per key of one topic, as Kafka
//! Streams' `builder.table(topic)`. A record with a value upserts its key; a
//! null value deletes it; a record without a key is dropped (counted), as a
//! table has no row for it.
//!
//! The store of a table of a topic is the topic's own image: it writes no
//! changelog, and a restore reads the source topic up to the group's
//! committed offset (Kafka Streams' source-topic optimisation). A table of a
//! stage's results reads them through its repartition topic (which is
//! purged) and writes every change to a changelog of its own. Its checkpoint is the next offset of that
//! topic that committed state covers. Values are stored with the timestamp
//! of the record that wrote them ([`encode_value`]).
//!
//! Its outputs are its changes, in order (the table as a stream, Kafka
//! Streams' `toStream()`): a stage that reads it, or its `to` topic, gets
//! every update and every delete (a null value).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::ResultBatch;
use crate::collector::Collector;
use crate::event::{EventResult, Header, Output};
use crate::runtime::{GuestError, LoadedModule};
use crate::stage::{Input, Stage, StageError};
use crate::state::keys;
use crate::state::{Changelog, StateError, Store, View};

/// How the stage names itself where a module label goes (logs, status, the
/// `weir.module` header of its outputs).
pub const LABEL: &str = "(table)";

/// A table in one task.
pub struct TableStage {
    store: Store,
    /// The next offset of the source topic after the staged writes.
    next: Option<i64>,
    /// It keeps a changelog of its own (a table of a stage's results, which
    /// reads a repartition topic that is purged).
    logged: bool,
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
                None => Err(StateError::Corrupt {
                    key: k,
                    what: "a table row shorter than its timestamp",
                }),
            },
        }
    }
}

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

impl TableStage {
    /// A table over `store` (restored from its source topic before the
    /// first record).
    pub fn new(store: Store) -> TableStage {
        TableStage {
            store,
            next: None,
            logged: false,
        }
    }

    /// A table that writes every change to its own changelog (a table of a
    /// stage's results).
    pub fn logged(store: Store) -> TableStage {
        TableStage {
            logged: true,
            ..TableStage::new(store)
        }
    }

    /// Reads of its rows for a join of the same task.
    pub fn view(&self) -> TableView {
        TableView::of(&self.store)
    }
}

impl Stage for TableStage {
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        let mut results = Vec::with_capacity(input.events.len());
        let position = if self.logged {
            out.context().position()
        } else {
            String::new()
        };
        for ev in input.events {
            self.next = Some(ev.offset + 1);
            let Some(key) = ev.key else {
                out.dropped(ev, "a table record without a key");
                results.push(EventResult::Outputs(Vec::new()));
                continue;
            };
            let row = ev.value.map(|v| encode_value(ev.timestamp, v));
            if self.logged {
                crate::stage::join::write_logged(&mut self.store, keys::plain(Some(key)), row, &position, out)?;
            } else {
                self.store.stage(keys::plain(Some(key)), row);
            }
            results.push(EventResult::Outputs(vec![Output {
                key: Some(key.to_vec()),
                value: ev.value.map(<[u8]>::to_vec),
                headers: ev
                    .headers()
                    .map(|(name, value)| Header {
                        name: name.to_owned(),
                        value: value.map(<[u8]>::to_vec),
                    })
                    .collect(),
                timestamp: None,
                route: None,
            }]));
        }
        let results = ResultBatch::from_results(&results)
            .map_err(|e| out.invariant("table changes do not encode", e.to_string()))?;
        out.results(&results, &BTreeMap::new(), input.events)
    }

    fn commit(&mut self, checkpoint: &dyn Fn(&Changelog) -> Option<i64>) -> Result<(), StateError> {
        let next = self.next.take();
        if self.logged {
            let c = checkpoint(self.store.changelog());
            return self.store.commit(c);
        }
        // The source topic is the changelog: committed input is the checkpoint.
        self.store.commit(next)
    }

    fn abort(&mut self) -> Result<(), StateError> {
        self.next = None;
        self.store.discard();
        Ok(())
    }

    fn swap(&mut self, _module: Arc<LoadedModule>) {}

    fn module_label(&self) -> String {
        LABEL.to_owned()
    }

    fn warm_up(&mut self) -> Result<(), GuestError> {
        Ok(())
    }

    fn store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_timestamp() {
        let v = encode_value(-5, b"abc");
        assert_eq!(decode_value(&v), Some((-5, &b"abc"[..])));
        assert_eq!(decode_value(&v[..7]), None);
        assert_eq!(decode_value(&encode_value(7, b"")), Some((7, &b""[..])));
    }
}
