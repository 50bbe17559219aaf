//! The `join` stage. A stream-table join, as Kafka Streams'
//! `KStream#join/leftJoin(KTable)`: each stream record (left) looks up the
//! table's current row for its key, in the same task (the two are
//! co-partitioned), and the joiner combines the two values.
//!
//! - `inner`: a record whose key has no row produces nothing; `left`: it is
//!   joined with an absent right side.
//! - A stream record without a key or without a value is dropped (counted),
//!   as Kafka Streams drops them.
//! - Table updates never produce results: the table's changes reach the
//!   join only as its new rows (the table stage keeps them).
//! - A result's timestamp is the stream record's; an output without a key
//!   gets the record's key.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::{EventRef, PairEncoder, ResultBatch};
use crate::collector::Collector;
use crate::event::{EventResult, Failure, Pair};
use crate::pipeline::JoinKind;
use crate::runtime::{GuestError, GuestFault, LoadedModule, Operator, Runtime};
use crate::stage::table::TableView;
use crate::stage::{Input, Stage, StageError};

/// A stream-table join in one task.
pub struct JoinStage {
    runtime: Runtime,
    config: BTreeMap<String, String>,
    op: Operator,
    kind: JoinKind,
    /// The table stage (its changes arrive as batches from it).
    table_stage: usize,
    table: TableView,
    pairs: PairEncoder,
}

impl JoinStage {
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
            op: runtime.operator(module, config.clone()),
            runtime: runtime.clone(),
            config,
            kind,
            table_stage,
            table,
            pairs: PairEncoder::new(),
        }
    }

    /// The joiner's results for the pairs encoded in `self.pairs`, and the
    /// traps of pairs that had to be isolated (their results are failures).
    fn call(&mut self, out: &Collector<'_>) -> Result<(ResultBatch, BTreeMap<usize, GuestError>), StageError> {
        let err = match self.op.join(&self.pairs) {
            Ok(batch) => return Ok((batch, BTreeMap::new())),
            Err(e) => e,
        };
        let pairs = decode_pairs(&self.pairs, out)?;
        let outcomes: Vec<Result<EventResult, GuestError>> = if matches!(err.fault, GuestFault::Instantiate(_)) {
            pairs.iter().map(|_| Err(err.clone())).collect()
        } else {
            self.op.join_pairs(&pairs)
        };
        let mut traps = BTreeMap::new();
        let results: Vec<EventResult> = outcomes
            .into_iter()
            .enumerate()
            .map(|(idx, r)| {
                r.unwrap_or_else(|e| {
                    let placeholder = EventResult::Failed(Failure::new(e.kind(), e.to_string()));
                    traps.insert(idx, e);
                    placeholder
                })
            })
            .collect();
        let batch = ResultBatch::from_results(&results)
            .map_err(|e| out.invariant("isolated join results do not encode", e.to_string()))?;
        Ok((batch, traps))
    }
}

/// The pairs of an encoded batch, owned (to retry them one by one).
fn decode_pairs(enc: &PairEncoder, out: &Collector<'_>) -> Result<Vec<Pair>, StageError> {
    crate::codec::read_pairs(enc.as_bytes())
        .map_err(|e| out.invariant("a host-encoded join batch does not decode", e.to_string()))
}

impl Stage for JoinStage {
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        if input.from == Some(self.table_stage) {
            // A table update: the table stage has stored it; it joins
            // with nothing (stream-table joins are driven by the stream).
            return Ok(());
        }
        self.pairs.clear();
        let mut joined: Vec<EventRef<'_>> = Vec::with_capacity(input.events.len());
        for ev in input.events {
            let (Some(key), Some(value)) = (ev.key, ev.value) else {
                out.dropped(ev, "a stream record without a key or value cannot join");
                continue;
            };
            let row = self.table.get(key)?;
            if row.is_none() && self.kind == JoinKind::Inner {
                continue;
            }
            self.pairs.push(
                ev.timestamp,
                Some(key),
                Some(value),
                row.as_ref().map(|r| r.value.as_slice()),
                ev.headers(),
            );
            joined.push(*ev);
        }
        if joined.is_empty() {
            return Ok(());
        }
        let (results, traps) = self.call(out)?;
        let results = with_keys(results, &joined, out)?;
        out.results(&results, &traps, &joined)
    }

    fn swap(&mut self, module: Arc<LoadedModule>) {
        self.op = super::swapped(&self.runtime, module, &self.config);
    }

    fn module_label(&self) -> String {
        self.op.module().info().version_label()
    }

    fn warm_up(&mut self) -> Result<(), GuestError> {
        self.op.warm_up()
    }
}

/// The contract: an output without a key gets the pair's key. Results are
/// rebuilt only when some output lacks one (the SDKs set it).
fn with_keys(results: ResultBatch, events: &[EventRef<'_>], out: &Collector<'_>) -> Result<ResultBatch, StageError> {
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
