//! The `join` stage: two inputs combined by a guest joiner, with Kafka
//! Streams' semantics.
//!
//! **Stream-table** ([`JoinStage`], `KStream#join/leftJoin(KTable)`): each
//! stream record (left) looks up the table's current row for its key, in
//! the same task (the two are co-partitioned).
//! - `inner`: a record whose key has no row produces nothing; `left`: it is
//!   joined with an absent right side.
//! - A stream record without a key or without a value is dropped (counted).
//! - Table updates never produce results.
//! - A result's timestamp is the stream record's.
//!
//! **Table-table** ([`TableJoinStage`], `KTable#join/leftJoin/outerJoin`):
//! an update on either side joins the updated row with the other side's
//! current row, and the result is a table of its own (a store with a
//! changelog, queryable).
//! - A key has a result when both sides have a row (`inner`), when the left
//!   one has (`left`), or when either has (`outer`); the joiner makes it.
//! - When a key that had a result stops having one (a delete on one side),
//!   a tombstone goes out and the result row is deleted; an update that
//!   leaves nothing to join, where nothing was joined before, emits nothing.
//! - A result's timestamp is the larger of the two rows' when both exist,
//!   else the updating record's.
//! - The joiner's outputs for a pair: none is no result (as a delete); one
//!   gives the value; more than one is a failure of that update (a table
//!   holds one value per key). The key is always the pair's.
//!
//! In both, an output without a key gets the pair's key.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::{EventRef, PairEncoder, ResultBatch};
use crate::event::{EventResult, Failure, Output};
use crate::pipeline::JoinKind;
use crate::pipeline::{Join, JoinShape, LookupKey, StageKind};
use crate::runtime::{Called, GuestError, LoadedModule, Operator, Runtime};
use crate::stage::changelog::write_logged;
use crate::stage::collector::{Collector, Why};
use crate::stage::open::{OpenError, Opening};
use crate::stage::{GuestStage, Input, Stage, StageError};
use crate::state::row::TableView;
use crate::state::{Changelog, StateError, Store, keys, row};

/// The guest side of a join: the joiner, and the pairs of one call.
pub(crate) struct Joiner {
    runtime: Runtime,
    config: BTreeMap<String, String>,
    op: Operator,
    pairs: PairEncoder,
}

impl Joiner {
    pub(crate) fn new(runtime: &Runtime, module: Arc<LoadedModule>, config: BTreeMap<String, String>) -> Joiner {
        Joiner {
            op: runtime.operator(module, config.clone()),
            runtime: runtime.clone(),
            config,
            pairs: PairEncoder::new(),
        }
    }

    /// The joiner's results for the pairs pushed since the last clear, and
    /// the traps of pairs that had to be isolated (their results are
    /// failures).
    pub(crate) fn call(
        &mut self,
        out: &Collector<'_>,
    ) -> Result<(ResultBatch<'static>, BTreeMap<usize, GuestError>), StageError> {
        self.op
            .join_isolating(&self.pairs)
            .and_then(Called::with_traps)
            .map_err(|e| out.invariant("a join batch or its isolated results do not encode", e.to_string()))
    }

    pub(crate) fn swap(&mut self, module: Arc<LoadedModule>) {
        self.op = super::swapped(&self.runtime, module, &self.config);
    }

    pub(crate) fn label(&self) -> String {
        self.op.module().info().version_label()
    }

    pub(crate) fn warm_up(&mut self) -> Result<(), GuestError> {
        self.op.warm_up()
    }

    /// The pairs of the next call.
    pub(crate) fn pairs(&mut self) -> &mut PairEncoder {
        &mut self.pairs
    }
}

/// A stream-table join in one task (or a stream-global-table join).
pub struct JoinStage {
    joiner: Joiner,
    kind: JoinKind,
    /// The table stage (its changes arrive as batches from it).
    table_stage: usize,
    table: TableView,
    /// How a stream record finds its row.
    key_by: KeyBy,
}

/// How a stream record finds its row in the table.
pub enum KeyBy {
    /// By its key.
    Record,
    /// By this JSON field of its value (a global-table join's `key-field`).
    Field(String),
    /// By the key of the first output this processor makes of it (a
    /// global-table join's `key-module`).
    Guest(Operator),
}

impl JoinStage {
    /// The stream-table or stream-global-table join [`Opening`] describes:
    /// it keeps no state, and looks its table's rows up.
    pub fn open(o: Opening<'_>) -> Result<Box<dyn Stage>, OpenError> {
        o.no_store()?;
        let StageKind::Join(j) = &o.def().kind else {
            return Err(OpenError::Store {
                stage: o.def().name.clone(),
                detail: "a join stage of another kind".into(),
            });
        };
        let (table, rows, by) = match &j.shape {
            JoinShape::StreamTable { table } => (*table, o.table(*table)?, KeyBy::Record),
            JoinShape::StreamGlobal { table, key } => {
                let by = match key {
                    LookupKey::RecordKey => KeyBy::Record,
                    LookupKey::Field(f) => KeyBy::Field(f.clone()),
                    LookupKey::Module(_) => KeyBy::Guest(o.runtime.operator(o.key_module()?, o.config())),
                };
                (*table, o.global(*table)?, by)
            }
            shape => {
                return Err(OpenError::Store {
                    stage: o.def().name.clone(),
                    detail: format!("a stateless join of shape {shape:?}"),
                });
            }
        };
        let join = JoinStage::stream_table(o.runtime, o.module()?, o.config(), j.kind, table, rows);
        Ok(Box::new(join.keyed_by(by)))
    }

    /// A `kind` join of a stream with the table of stage `table_stage`,
    /// combined by `module`.
    pub fn stream_table(
        runtime: &Runtime,
        module: Arc<LoadedModule>,
        config: BTreeMap<String, String>,
        kind: JoinKind,
        table_stage: usize,
        table: TableView,
    ) -> JoinStage {
        JoinStage {
            joiner: Joiner::new(runtime, module, config),
            kind,
            table_stage,
            table,
            key_by: KeyBy::Record,
        }
    }

    /// The same join looking its table up as `key_by` says (a global
    /// table's join).
    pub fn keyed_by(mut self, key_by: KeyBy) -> JoinStage {
        self.key_by = key_by;
        self
    }

    /// The lookup key of each event by the key module: the first output's
    /// key, or the failure (or trap) of the event.
    fn guest_keys(op: &mut Operator, input: &Input<'_>) -> Vec<Result<Option<Vec<u8>>, KeyFailure>> {
        op.process_isolating(input.batch, input.events)
            .outcomes()
            .into_iter()
            .map(|r| match r {
                Ok(EventResult::Outputs(outputs)) => Ok(outputs.into_iter().next().and_then(|o| o.key)),
                Ok(EventResult::Failed(f)) => Err(KeyFailure::Failed(f)),
                Err(e) => Err(KeyFailure::Trapped(e)),
            })
            .collect()
    }
}

/// Why the key module gave an event no lookup key.
enum KeyFailure {
    Failed(Failure),
    Trapped(GuestError),
}

/// Where a stream record looks its table up.
enum Lookup {
    /// At this key.
    At(Vec<u8>),
    /// Nowhere: the record has no lookup key (a missing or null field).
    Nowhere,
}

/// The lookup key in `field` of a JSON `value`: a string's text, or another
/// scalar's JSON text; `Nowhere` for a missing or null field.
fn field_key(value: &[u8], field: &str) -> Result<Lookup, String> {
    let doc: serde_json::Value = serde_json::from_slice(value).map_err(|e| format!("the value is not JSON: {e}"))?;
    Ok(match doc.get(field) {
        None | Some(serde_json::Value::Null) => Lookup::Nowhere,
        Some(serde_json::Value::String(s)) => Lookup::At(s.clone().into_bytes()),
        Some(other) => Lookup::At(other.to_string().into_bytes()),
    })
}

impl Stage for JoinStage {
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        if input.from == Some(self.table_stage) {
            // The join looks the table's rows up; the topology sends it
            // none of the table's changes.
            return Err(out.invariant(
                "a stream-table join got its table's changes",
                format!("{} records", input.events.len()),
            ));
        }
        self.joiner.pairs.clear();
        let mut guest_keys = match &mut self.key_by {
            KeyBy::Guest(op) => Some(Self::guest_keys(op, input).into_iter()),
            _ => None,
        };
        let mut joined: Vec<EventRef<'_>> = Vec::with_capacity(input.events.len());
        for ev in input.events {
            let guest_key = guest_keys.as_mut().and_then(Iterator::next);
            let Some(value) = ev.value else {
                out.dropped(ev, "a stream record without a value cannot join");
                continue;
            };
            let lookup = match (&self.key_by, ev.key) {
                (KeyBy::Record, Some(key)) => Lookup::At(key.to_vec()),
                // KIP-962: a left join keeps a record without a key, with
                // an absent right side.
                (KeyBy::Record, None) if self.kind == JoinKind::Left => Lookup::Nowhere,
                (KeyBy::Record, None) => {
                    out.dropped(ev, "a stream record without a key cannot join");
                    continue;
                }
                (KeyBy::Guest(_), _) => match guest_key {
                    Some(Ok(Some(k))) => Lookup::At(k),
                    Some(Ok(None)) => Lookup::Nowhere,
                    Some(Err(KeyFailure::Failed(f))) => {
                        out.fail(
                            ev,
                            &Why::Failure {
                                code: &f.code,
                                message: &f.message,
                            },
                        )?;
                        continue;
                    }
                    Some(Err(KeyFailure::Trapped(e))) => {
                        out.fail(ev, &Why::Trap(&e))?;
                        continue;
                    }
                    None => {
                        return Err(out.invariant("the key module gave fewer results than events", String::new()));
                    }
                },
                (KeyBy::Field(field), _) => match field_key(value, field) {
                    Ok(lookup) => lookup,
                    Err(message) => {
                        out.fail(
                            ev,
                            &Why::Failure {
                                code: "invalid-json",
                                message: &message,
                            },
                        )?;
                        continue;
                    }
                },
            };
            let row = match &lookup {
                Lookup::At(k) => self.table.get(k)?,
                // As Kafka Streams: no lookup key drops the record, but in a
                // left join one without a key of its own (KIP-962).
                Lookup::Nowhere if self.kind == JoinKind::Inner || ev.key.is_some() => {
                    out.dropped(ev, "no lookup key for the record");
                    continue;
                }
                Lookup::Nowhere => None,
            };
            if row.is_none() && self.kind == JoinKind::Inner {
                continue;
            }
            self.joiner.pairs.push(
                ev.timestamp,
                ev.key,
                Some(value),
                row.as_ref().map(|r| r.value()),
                ev.headers.iter(),
            );
            joined.push(*ev);
        }
        if joined.is_empty() {
            return Ok(());
        }
        let (results, traps) = self.joiner.call(out)?;
        let results = with_keys(results, &joined, out)?;
        out.results(&results, &traps, &joined)
    }

    fn module_label(&self) -> String {
        self.joiner.label()
    }

    fn guest(&mut self) -> Option<&mut dyn GuestStage> {
        Some(self)
    }
}

impl GuestStage for JoinStage {
    fn swap(&mut self, module: Arc<LoadedModule>) {
        self.joiner.swap(module);
    }
    fn warm_up(&mut self) -> Result<(), GuestError> {
        self.joiner.warm_up()
    }
}

/// The contract: an output without a key gets the pair's key. Results are
/// rebuilt only when some output lacks one.
pub(crate) fn with_keys(
    results: ResultBatch<'static>,
    events: &[EventRef<'_>],
    out: &Collector<'_>,
) -> Result<ResultBatch<'static>, StageError> {
    use crate::codec::ResultRef;
    let keyless = results
        .iter()
        .any(|r| matches!(r, ResultRef::Outputs(o) if o.iter().any(|o| o.key().is_none())));
    if !keyless {
        return Ok(results);
    }
    let mut owned = results.into_owned();
    for (r, ev) in owned.iter_mut().zip(events) {
        if let EventResult::Outputs(outputs) = r {
            for o in outputs.iter_mut().filter(|o| o.key.is_none()) {
                o.key = ev.key.map(<[u8]>::to_vec);
            }
        }
    }
    ResultBatch::from_results(&owned).map_err(|e| out.invariant("join results do not encode", e.to_string()))
}

/// One side of a table-table join.
pub struct Side {
    /// The table stage.
    pub stage: usize,
    /// Its rows.
    pub table: TableView,
}

/// What one update of a table-table join does.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// The key has a result: the pair's index in the call, and its timestamp.
    Join(usize, i64),
    /// The key has no result: a tombstone at this timestamp — sent even if
    /// the key had no result when `always` (the other side has a row: Kafka
    /// Streams then forwards every change, deletes included).
    Delete { timestamp: i64, always: bool },
}

/// What a change of one side does in a `kind` table-table join, as Kafka
/// Streams' `KTableKTable*Join` processors decide it: which of the two rows
/// exist once it is applied (`has`: left, right), the change's timestamp,
/// and the other side's row's timestamp if it has one. A join (its pair's
/// index is filled in by the caller) or a delete; the result's timestamp is
/// the larger of the change's and the other row's whenever the other side
/// has a row, deletes included, and while it has one every change is sent.
fn table_change(kind: JoinKind, has: (bool, bool), timestamp: i64, other: Option<i64>) -> Step {
    let joins = match kind {
        JoinKind::Inner => has.0 && has.1,
        JoinKind::Left => has.0,
        JoinKind::Outer => has.0 || has.1,
    };
    let timestamp = other.map_or(timestamp, |o| o.max(timestamp));
    if joins {
        Step::Join(0, timestamp)
    } else {
        Step::Delete {
            timestamp,
            always: other.is_some(),
        }
    }
}

/// A table-table join in one task: its result table is its store.
pub struct TableJoinStage {
    joiner: Joiner,
    kind: JoinKind,
    left: Side,
    right: Side,
    store: Store,
}

impl TableJoinStage {
    /// The table-table join [`Opening`] describes, its result table in the
    /// store it declared; the result becomes a table of its task.
    pub fn open(mut o: Opening<'_>) -> Result<Box<dyn Stage>, OpenError> {
        let (kind, left, right) = match &o.def().kind {
            StageKind::Join(Join {
                kind,
                shape: JoinShape::TableTable { left, right },
                ..
            }) => (*kind, *left, *right),
            _ => {
                return Err(OpenError::Store {
                    stage: o.def().name.clone(),
                    detail: "a table-table join of another shape".into(),
                });
            }
        };
        let sides = (
            Side {
                stage: left,
                table: o.table(left)?,
            },
            Side {
                stage: right,
                table: o.table(right)?,
            },
        );
        let store = o.take_store()?;
        let join = TableJoinStage::new(o.runtime, o.module()?, o.config(), kind, sides, store);
        o.tables.insert(o.index, join.view());
        Ok(Box::new(join))
    }

    /// A `kind` join of two tables, combined by `module`, its results kept
    /// in `store`.
    pub fn new(
        runtime: &Runtime,
        module: Arc<LoadedModule>,
        config: BTreeMap<String, String>,
        kind: JoinKind,
        (left, right): (Side, Side),
        store: Store,
    ) -> TableJoinStage {
        TableJoinStage {
            joiner: Joiner::new(runtime, module, config),
            kind,
            left,
            right,
            store,
        }
    }

    /// Reads of its result rows, for a join that reads it as a table.
    pub fn view(&self) -> TableView {
        TableView::of(&self.store)
    }

    /// Writes a result row (or deletes it) to the store and the changelog.
    fn write(
        &mut self,
        key: &[u8],
        row: Option<(i64, &[u8])>,
        position: &str,
        out: &mut Collector<'_>,
    ) -> Result<(), StageError> {
        let stored = row.map(|(ts, v)| row::encode_value(ts, v));
        write_logged(&mut self.store, keys::plain(Some(key)), stored, position, out)
    }
}

impl Stage for TableJoinStage {
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        let from_left = match input.from {
            Some(s) if s == self.left.stage => true,
            Some(s) if s == self.right.stage => false,
            other => {
                return Err(out.invariant(
                    "a table-table join got a batch that is neither of its tables' changes",
                    format!("from {other:?}"),
                ));
            }
        };
        self.joiner.pairs.clear();
        let mut steps: Vec<(usize, Step)> = Vec::new();
        for (idx, ev) in input.events.iter().enumerate() {
            // Table stages forward only keyed changes.
            let Some(key) = ev.key else {
                return Err(out.invariant("a table change without a key", format!("offset {}", ev.offset)));
            };
            // The updated side as the change says (its table may already
            // hold later changes of this batch); the other as it is now.
            let other = if from_left { &self.right } else { &self.left }.table.get(key)?;
            let (left, right) = if from_left {
                (ev.value, other.as_ref().map(|r| r.value()))
            } else {
                (other.as_ref().map(|r| r.value()), ev.value)
            };
            match table_change(
                self.kind,
                (left.is_some(), right.is_some()),
                ev.timestamp,
                other.as_ref().map(|r| r.timestamp),
            ) {
                Step::Join(_, timestamp) => {
                    self.joiner
                        .pairs
                        .push(timestamp, Some(key), left, right, ev.headers.iter());
                    steps.push((idx, Step::Join(self.joiner.pairs.len() - 1, timestamp)));
                }
                delete => steps.push((idx, delete)),
            }
        }
        let (results, traps) = if self.joiner.pairs.is_empty() {
            (
                ResultBatch::from_results(&[]).map_err(|e| out.invariant("no results do not encode", e.to_string()))?,
                BTreeMap::new(),
            )
        } else {
            self.joiner.call(out)?
        };
        let results: Vec<EventResult> = results.into_owned();
        let position = out.context().position();
        for (idx, step) in steps {
            let ev = &input.events[idx];
            let Some(key) = ev.key else { continue };
            let (value, timestamp, always) = match step {
                Step::Delete { timestamp, always } => (None, timestamp, always),
                Step::Join(p, ts) => match results.get(p) {
                    Some(EventResult::Outputs(outputs)) => match outputs.as_slice() {
                        [] => (None, ts, true),
                        [one] => (one.value.clone(), ts, true),
                        more => {
                            let message = format!(
                                "the joiner returned {} outputs; a table-table join keeps one value per key",
                                more.len()
                            );
                            out.fail(
                                ev,
                                &Why::Failure {
                                    code: "too-many-outputs",
                                    message: &message,
                                },
                            )?;
                            continue;
                        }
                    },
                    Some(EventResult::Failed(f)) => {
                        match traps.get(&p) {
                            Some(trap) => out.fail(ev, &Why::Trap(trap))?,
                            None => out.fail(
                                ev,
                                &Why::Failure {
                                    code: &f.code,
                                    message: &f.message,
                                },
                            )?,
                        }
                        continue;
                    }
                    None => {
                        return Err(out.invariant("join results do not match the pairs", format!("pair {p}")));
                    }
                },
            };
            if value.is_none() && !always && self.store.get(&keys::plain(Some(key)))?.is_none() {
                // Nothing joined before, nothing now, and no other row: no
                // change.
                continue;
            }
            self.write(key, value.as_deref().map(|v| (timestamp, v)), &position, out)?;
            let change = EventResult::Outputs(vec![Output {
                key: Some(key.to_vec()),
                value,
                headers: Vec::new(),
                timestamp: Some(timestamp),
                route: None,
            }]);
            let batch = ResultBatch::from_results(std::slice::from_ref(&change))
                .map_err(|e| out.invariant("a join result does not encode", e.to_string()))?;
            out.results(&batch, &BTreeMap::new(), std::slice::from_ref(ev))?;
        }
        Ok(())
    }

    fn commit(&mut self, checkpoint: &dyn Fn(&Changelog) -> Option<i64>) -> Result<(), StateError> {
        let c = checkpoint(self.store.changelog());
        self.store.commit(c)
    }

    fn abort(&mut self) -> Result<(), StateError> {
        self.store.discard();
        Ok(())
    }

    fn module_label(&self) -> String {
        self.joiner.label()
    }

    fn store(&self) -> Option<&Store> {
        Some(&self.store)
    }

    fn guest(&mut self) -> Option<&mut dyn GuestStage> {
        Some(self)
    }
}

impl GuestStage for TableJoinStage {
    fn swap(&mut self, module: Arc<LoadedModule>) {
        self.joiner.swap(module);
    }
    fn warm_up(&mut self) -> Result<(), GuestError> {
        self.joiner.warm_up()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka Streams' `KTableKTableInnerJoinTest#testJoin`, where a delete
    /// of one side takes the other row's later timestamp: the tombstone of
    /// key 0 at 6 (left delete at 5, right row at 6).
    #[test]
    fn a_delete_takes_the_other_rows_later_timestamp() {
        assert_eq!(
            table_change(JoinKind::Inner, (false, true), 5, Some(6)),
            Step::Delete {
                timestamp: 6,
                always: true
            }
        );
        // An outer join keeps the other side: a result at 14, not 10.
        assert_eq!(
            table_change(JoinKind::Outer, (false, true), 10, Some(14)),
            Step::Join(0, 14)
        );
        // No other row: the change's own.
        assert_eq!(
            table_change(JoinKind::Left, (false, false), 5, None),
            Step::Delete {
                timestamp: 5,
                always: false
            }
        );
    }

    /// KTableKTableInnerJoin forwards every change while the other side
    /// has a row (a delete of a key this side never had included); the
    /// left join's left side likewise; with no other row only a key that
    /// had a result gets a tombstone (the caller checks).
    #[test]
    fn every_change_is_sent_while_the_other_side_has_a_row() {
        for kind in [JoinKind::Inner, JoinKind::Left, JoinKind::Outer] {
            assert!(matches!(
                table_change(kind, (false, true), 1, Some(0)),
                Step::Delete { always: true, .. } | Step::Join(..)
            ));
        }
        assert_eq!(table_change(JoinKind::Left, (true, false), 3, None), Step::Join(0, 3));
        assert_eq!(
            table_change(JoinKind::Inner, (true, false), 3, None),
            Step::Delete {
                timestamp: 3,
                always: false
            }
        );
    }
}
