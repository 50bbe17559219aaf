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
//! of the record that wrote them ([`crate::state::row`]).
//!
//! Its outputs are its changes, in order (the table as a stream, Kafka
//! Streams' `toStream()`): a stage that reads it, or its `to` topic, gets
//! every update and every delete (a null value).

use std::collections::BTreeMap;

use crate::codec::{EventRef, ResultBatch};
use crate::event::{Event, EventResult, Failure, Header, Output};
use crate::pipeline::StageKind;
use crate::runtime::{GuestError, Operator};
use crate::stage::changelog::write_logged;
use crate::stage::collector::Collector;
use crate::stage::open::{OpenError, Opening};
use crate::stage::{Input, Stage, StageError};
use crate::state::keys;
use crate::state::row::TableView;
use crate::state::row::{decode_value, encode_value};
use crate::state::{Changelog, StateError, Store};

/// How the stage names itself where a module label goes (logs, status, the
/// `weir.module` header of its outputs).
pub const LABEL: &str = "(table)";

/// The header of a grouped table's change that carries the row's old value
/// (re-keyed and mapped by the `group-by`), for the table aggregation to
/// take out of its group: Kafka Streams' `Change.oldValue`.
pub const OLD_VALUE: &str = "weir.old-value";

/// A table in one task.
pub struct TableStage {
    store: Store,
    /// The next offset of the source topic after the staged writes.
    next: Option<i64>,
    /// It keeps a changelog of its own (a table of a stage's results, which
    /// reads a repartition topic that is purged).
    logged: bool,
    /// `group-by`: the processor that re-keys each row (Kafka Streams'
    /// `KTable.groupBy`); its outputs are then the grouped changes.
    group_by: Option<Operator>,
}

impl TableStage {
    /// The stage [`Opening`] describes: a table over the store it declared
    /// (restored from its topic, or logged to a changelog of its own),
    /// grouped by its `group-by` module if it has one; its rows become a
    /// table of its task.
    pub fn open(mut o: Opening<'_>) -> Result<Box<dyn Stage>, OpenError> {
        let store = o.take_store()?;
        let mut table = if store.is_source_topic() {
            TableStage::new(store)
        } else {
            TableStage::logged(store)
        };
        if matches!(&o.def().kind, StageKind::Table(t) if t.group_by.is_some()) {
            table = table.grouped_by(o.runtime.operator(o.key_module()?, o.config()));
        }
        o.tables.insert(o.index, table.view());
        Ok(Box::new(table))
    }

    /// A table over `store` (restored from its source topic before the
    /// first record).
    pub fn new(store: Store) -> TableStage {
        TableStage {
            store,
            next: None,
            logged: false,
            group_by: None,
        }
    }

    /// The table grouped by `selector` (`group-by`): each change goes out
    /// as Kafka Streams' `KTableRepartitionMap` sends it — the old row
    /// mapped by the selector (its first output's key and value) and the
    /// new row mapped, as one record (new value, old one in [`OLD_VALUE`])
    /// when both map to the same key, else the old one first (no value) and
    /// the new one after. A row that maps to no key is not grouped.
    pub fn grouped_by(mut self, selector: Operator) -> TableStage {
        self.group_by = Some(selector);
        self
    }

    /// A table that writes every change to its own changelog (a table of a
    /// stage's results).
    pub fn logged(store: Store) -> TableStage {
        TableStage {
            logged: true,
            ..TableStage::new(store)
        }
    }

    /// Stages the row `ev` makes of `key` (a delete without a value), and
    /// sends it to the table's own changelog if it keeps one.
    fn write_row(
        &mut self,
        key: &[u8],
        ev: &EventRef<'_>,
        position: &str,
        out: &mut Collector<'_>,
    ) -> Result<(), StageError> {
        let row = ev.value.map(|v| encode_value(ev.timestamp, v));
        if self.logged {
            write_logged(&mut self.store, keys::plain(Some(key)), row, position, out)
        } else {
            self.store.stage(keys::plain(Some(key)), row);
            Ok(())
        }
    }

    /// Reads of its rows for a join of the same task.
    pub fn view(&self) -> TableView {
        TableView::of(&self.store)
    }
}

/// A record's headers, owned.
fn owned_headers(ev: &EventRef<'_>) -> Vec<Header> {
    ev.headers
        .iter()
        .map(|(name, value)| Header {
            name: name.to_owned(),
            value: value.map(<[u8]>::to_vec),
        })
        .collect()
}

/// The key and value a `group-by` gives a row: its first output's (none
/// when it has no output, or one without a key or value: not grouped).
fn selection(result: &EventResult) -> Option<(Vec<u8>, Vec<u8>, Vec<Header>)> {
    match result {
        EventResult::Outputs(outputs) => {
            let o = outputs.first()?;
            Some((o.key.clone()?, o.value.clone()?, o.headers.clone()))
        }
        EventResult::Failed(_) => None,
    }
}

impl TableStage {
    /// A grouped table's batch: each row changes as in any table, and the
    /// change goes out re-keyed by the `group-by`, old value first. A row
    /// whose old or new value the `group-by` fails on goes to the error
    /// policy and the table keeps its old row (so the aggregation never
    /// sees half a change).
    fn process_grouped(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        let position = if self.logged {
            out.context().position()
        } else {
            String::new()
        };
        // The old and new row of each keyed record, as the selector's events.
        let mut events: Vec<Event> = Vec::new();
        // Per input: the index of its old and new events in `events`.
        let mut slots: Vec<(Option<usize>, Option<usize>)> = Vec::with_capacity(input.events.len());
        // Rows as this batch leaves them (a key may change twice).
        let mut rows: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for ev in input.events {
            let Some(key) = ev.key else {
                slots.push((None, None));
                continue;
            };
            let old = match rows.get(key) {
                Some(row) => row.clone(),
                None => match self.store.get(&keys::plain(Some(key)))? {
                    Some(stored) => Some(
                        decode_value(&stored)
                            .ok_or_else(|| {
                                out.invariant("a table row shorter than its timestamp", format!("{key:02x?}"))
                            })?
                            .1
                            .to_vec(),
                    ),
                    None => None,
                },
            };
            rows.insert(key.to_vec(), ev.value.map(<[u8]>::to_vec));
            let event = |value: Vec<u8>| Event {
                key: Some(key.to_vec()),
                value: Some(value),
                headers: owned_headers(ev),
                timestamp: ev.timestamp,
                topic: ev.topic.to_owned(),
                partition: ev.partition,
                offset: ev.offset,
            };
            let o = old.map(|v| {
                events.push(event(v));
                events.len() - 1
            });
            let n = ev.value.map(|v| {
                events.push(event(v.to_vec()));
                events.len() - 1
            });
            slots.push((o, n));
        }
        let selected: Vec<Result<EventResult, GuestError>> = match self.group_by.as_mut() {
            Some(op) if !events.is_empty() => op.process_events(&events),
            _ => Vec::new(),
        };
        if input.events.len() > 1 && selected.iter().any(|r| !matches!(r, Ok(EventResult::Outputs(_)))) {
            // A row that fails keeps its old row, which later changes of
            // its key in this batch then have as their old value: record
            // by record.
            for i in 0..input.events.len() {
                let one = Input {
                    batch: input.batch,
                    events: &input.events[i..=i],
                    from: input.from,
                };
                self.process_grouped(&one, out)?;
            }
            return Ok(());
        }
        let mut results = Vec::with_capacity(input.events.len());
        let mut traps = BTreeMap::new();
        for (idx, (ev, (o, n))) in input.events.iter().zip(slots).enumerate() {
            self.next = Some(ev.offset + 1);
            let Some(key) = ev.key else {
                out.dropped(ev, "a table record without a key");
                results.push(EventResult::Outputs(Vec::new()));
                continue;
            };
            let mut mapped = [None, None];
            let mut failed = None;
            for (slot, at) in [o, n].into_iter().enumerate() {
                let Some(at) = at else { continue };
                match selected.get(at) {
                    Some(Ok(EventResult::Failed(f))) => failed = Some((f.clone(), None)),
                    Some(Ok(r)) => mapped[slot] = selection(r),
                    Some(Err(e)) => {
                        failed = Some((Failure::new(e.kind(), e.to_string()), Some(e.clone())));
                    }
                    None => {
                        return Err(out.invariant("the group-by gave fewer results than rows", format!("{at}")));
                    }
                }
            }
            if let Some((failure, trap)) = failed {
                if let Some(trap) = trap {
                    traps.insert(idx, trap);
                }
                results.push(EventResult::Failed(failure));
                continue;
            }
            self.write_row(key, ev, &position, out)?;
            let change = |key: Vec<u8>, value: Option<Vec<u8>>, old: Option<Vec<u8>>, mut headers: Vec<Header>| {
                headers.retain(|h| h.name != OLD_VALUE);
                if let Some(old) = old {
                    headers.push(Header {
                        name: OLD_VALUE.to_owned(),
                        value: Some(old),
                    });
                }
                Output {
                    key: Some(key),
                    value,
                    headers,
                    timestamp: None,
                    route: None,
                }
            };
            let outputs = match mapped {
                [Some((ko, vo, _)), Some((kn, vn, hn))] if ko == kn => vec![change(kn, Some(vn), Some(vo), hn)],
                [old, new] => old
                    .map(|(k, v, h)| change(k, None, Some(v), h))
                    .into_iter()
                    .chain(new.map(|(k, v, h)| change(k, Some(v), None, h)))
                    .collect(),
            };
            results.push(EventResult::Outputs(outputs));
        }
        let results = ResultBatch::from_results(&results)
            .map_err(|e| out.invariant("grouped table changes do not encode", e.to_string()))?;
        out.results(&results, &traps, input.events)
    }
}

impl Stage for TableStage {
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        if self.group_by.is_some() {
            return self.process_grouped(input, out);
        }
        let mut results = Vec::with_capacity(input.events.len());
        let position = if self.logged {
            out.context().position()
        } else {
            String::new()
        };
        // Only joins look the rows up: no change is made into an output.
        let silent = out.goes_nowhere();
        for ev in input.events {
            self.next = Some(ev.offset + 1);
            let Some(key) = ev.key else {
                out.dropped(ev, "a table record without a key");
                results.push(EventResult::Outputs(Vec::new()));
                continue;
            };
            self.write_row(key, ev, &position, out)?;
            if silent {
                continue;
            }
            results.push(EventResult::Outputs(vec![Output {
                key: Some(key.to_vec()),
                value: ev.value.map(<[u8]>::to_vec),
                headers: owned_headers(ev),
                timestamp: None,
                route: None,
            }]));
        }
        if silent {
            return Ok(());
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

    fn module_label(&self) -> String {
        LABEL.to_owned()
    }

    fn store(&self) -> Option<&Store> {
        Some(&self.store)
    }
}
