//! The `aggregate` stage: a guest's (or a native) fold over a declared
//! store, with windows, lateness and emission (see [`fold`] for the
//! semantics), as a [`Stage`]. What it emits goes through the guest's
//! `emit` and on like any stage's outputs, with the window in headers.

mod count;
mod emit;
mod fixed;
pub mod fold;
mod groups;
#[cfg(test)]
mod harness;
mod migrate;
mod session;
mod sliding;
mod store;
mod table;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

pub use crate::stage::changelog::INPUT_NEXT;
pub use count::Count;
pub use fold::{AggregateError, Aggregator, Due, Fold, Rejection, Step, WINDOW_END, WINDOW_START};

use crate::codec::{BatchEncoder, ResultBatch};
use crate::event::{EventResult, Failure, Header, Output};
use crate::pipeline::StageKind;
use crate::runtime::{EmitRequest, GuestError, GuestFault, LoadedModule, Operator, Runtime};
use crate::stage::collector::{self, Collector};
use crate::stage::open::{OpenError, Opening};
use crate::stage::{GuestStage, Input, Stage, StageError};
use crate::state::{Changelog, StateError, Store};

impl From<AggregateError> for StageError {
    fn from(e: AggregateError) -> Self {
        match e {
            AggregateError::State(e) => StageError::State(e),
            AggregateError::Sink(e) => StageError::Sink(e),
        }
    }
}

/// An aggregate stage in one task: its guest and its store.
pub struct AggregateStage {
    runtime: Runtime,
    config: BTreeMap<String, String>,
    op: Operator,
    agg: Aggregator,
}

impl AggregateStage {
    /// The stage [`Opening`] describes, folding into the store it declared.
    pub fn open(mut o: Opening<'_>) -> Result<Box<dyn Stage>, OpenError> {
        let StageKind::Aggregate(spec) = &o.def().kind else {
            return Err(OpenError::Store {
                stage: o.def().name.clone(),
                detail: "an aggregate stage of another kind".into(),
            });
        };
        let spec = spec.clone();
        let agg = Aggregator::open(spec, o.take_store()?)?;
        Ok(Box::new(AggregateStage::new(o.runtime, o.module()?, o.config(), agg)))
    }

    /// A stage folding with `module` into `agg` (its store opened).
    pub fn new(
        runtime: &Runtime,
        module: Arc<LoadedModule>,
        config: BTreeMap<String, String>,
        agg: Aggregator,
    ) -> AggregateStage {
        AggregateStage {
            op: runtime.operator(module, config.clone()),
            runtime: runtime.clone(),
            config,
            agg,
        }
    }

    /// Its aggregator (admin views, the driver's `--state`).
    pub fn aggregator(&self) -> &Aggregator {
        &self.agg
    }

    /// Sends a step's rejections to the error policy and its due
    /// accumulators on.
    fn settle(&mut self, step: Step, input: Option<&Input<'_>>, out: &mut Collector<'_>) -> Result<(), StageError> {
        out.unmigrated(&step.unmigrated);
        if let Some(input) = input {
            for (idx, why) in &step.rejected {
                let ev = input
                    .events
                    .get(*idx)
                    .ok_or_else(|| out.invariant("a rejected event is not in the batch", format!("index {idx}")))?;
                match why {
                    Rejection::Late { window, stream_time } => out.late(ev, *window, *stream_time)?,
                    Rejection::Failed(f) => out.fail(
                        ev,
                        &collector::Why::Failure {
                            code: &f.code,
                            message: &f.message,
                        },
                    )?,
                    Rejection::Trapped(e) => out.fail(ev, &collector::Why::Trap(e))?,
                }
            }
        }
        self.emit(step.due, out)
    }

    /// Turns due accumulators into outputs (the guest's `emit`) and sends
    /// them on. Each becomes a synthetic event for routing and error
    /// policies: its key, the window in headers, the task's source.
    fn emit(&mut self, mut due: Vec<Due>, out: &mut Collector<'_>) -> Result<(), StageError> {
        // Tombstones (sessions a merge deleted) are the host's: a null value
        // with the record key. Only a stage that no stage reads sends them.
        if !out.is_leaf() {
            due.retain(|d| d.acc.is_some());
        }
        if due.is_empty() {
            return Ok(());
        }
        let requests: Vec<EmitRequest> = due
            .iter()
            .filter_map(|d| {
                Some(EmitRequest {
                    key: d.key.clone(),
                    window: d.window,
                    acc: d.acc.clone()?,
                })
            })
            .collect();
        let outcomes: Vec<Result<EventResult, GuestError>> = if requests.is_empty() {
            Vec::new()
        } else {
            self.emit_all(requests, out)?
        };
        let mut outcomes = outcomes.into_iter();
        let outcomes: Vec<Result<EventResult, GuestError>> = due
            .iter()
            .map(|d| match d.acc {
                Some(_) => outcomes.next(),
                None => Some(Ok(EventResult::Outputs(vec![Output {
                    key: d.key.clone(),
                    value: None,
                    headers: Vec::new(),
                    timestamp: Some(d.timestamp),
                    route: None,
                }]))),
            })
            .collect::<Option<_>>()
            .ok_or_else(|| out.invariant("emit returned fewer results than requests", String::new()))?;
        let mut synthetic = BatchEncoder::new();
        let mut results = Vec::with_capacity(due.len());
        let mut traps = BTreeMap::new();
        let (topic, partition, offset) = out.context().source;
        for (idx, (d, outcome)) in due.iter().zip(outcomes).enumerate() {
            let window_headers: Vec<Header> = d
                .window
                .map(|w| {
                    vec![
                        Header::new(WINDOW_START, w.start.to_string()),
                        Header::new(WINDOW_END, w.end.to_string()),
                    ]
                })
                .unwrap_or_default();
            synthetic.push(
                d.timestamp,
                topic,
                partition,
                offset,
                d.key.as_deref(),
                None,
                window_headers.iter().map(|h| (h.name.as_str(), h.value.as_deref())),
            );
            results.push(match outcome {
                Ok(EventResult::Outputs(mut outputs)) => {
                    for o in &mut outputs {
                        o.headers.retain(|h| h.name != WINDOW_START && h.name != WINDOW_END);
                        o.headers.extend(window_headers.iter().cloned());
                    }
                    EventResult::Outputs(outputs)
                }
                Ok(failed) => failed,
                Err(e) => {
                    let placeholder = EventResult::Failed(Failure::new(e.kind(), e.to_string()));
                    traps.insert(idx, e);
                    placeholder
                }
            });
        }
        let events = out.read_back(&synthetic)?;
        let results = ResultBatch::from_results(&results)
            .map_err(|e| out.invariant("emitted results do not encode", e.to_string()))?;
        out.results(&results, &traps, &events)
    }

    /// The guest's `emit` over `requests`, one result each: one call, or
    /// one call per request when the batch traps (to find the culprits).
    fn emit_all(
        &mut self,
        requests: Vec<EmitRequest>,
        out: &Collector<'_>,
    ) -> Result<Vec<Result<EventResult, GuestError>>, StageError> {
        let op = &mut self.op;
        Ok(match op.emit(requests.clone()) {
            Ok(results) => results.into_iter().map(Ok).collect(),
            Err(e) if matches!(e.fault, GuestFault::Instantiate(_)) => {
                requests.iter().map(|_| Err(e.clone())).collect()
            }
            Err(_) => requests
                .into_iter()
                .map(|r| {
                    // `emit` checks that there is one result per request.
                    op.emit(vec![r]).map(|mut v| v.pop())
                })
                .map(|r| match r {
                    Ok(Some(result)) => Ok(Ok(result)),
                    Ok(None) => Err(()),
                    Err(e) => Ok(Err(e)),
                })
                .collect::<Result<_, ()>>()
                .map_err(|()| out.invariant("emit returned no result for a request", String::new()))?,
        })
    }
}

impl Stage for AggregateStage {
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        let ctx = out.context();
        let (now, position) = (ctx.now, ctx.position());
        let step = self.agg.step(&mut self.op, input.events, &position, now, out.sink())?;
        self.settle(step, Some(input), out)
    }

    fn wall_clock_due(&self, now: Instant) -> bool {
        self.agg.idle_due(now).is_some()
    }

    fn on_wall_clock(&mut self, now: Instant, out: &mut Collector<'_>) -> Result<(), StageError> {
        let Some(st) = self.agg.idle_due(now) else {
            return Ok(());
        };
        let position = out.context().position();
        let step = self.agg.idle_close(&mut self.op, now, st, &position, out.sink())?;
        self.settle(step, None, out)
    }

    fn commit(&mut self, checkpoint: &dyn Fn(&Changelog) -> Option<i64>) -> Result<(), StateError> {
        let c = checkpoint(self.agg.store().changelog());
        self.agg.commit(c)
    }

    fn abort(&mut self) -> Result<(), StateError> {
        self.agg.reload()
    }

    fn module_label(&self) -> String {
        self.op.module().info().version_label()
    }

    fn store(&self) -> Option<&Store> {
        Some(self.agg.store())
    }

    fn stream_time(&self) -> Option<i64> {
        self.agg.stream_time()
    }

    fn open_windows(&self) -> usize {
        self.agg.open_windows()
    }

    fn guest(&mut self) -> Option<&mut dyn GuestStage> {
        Some(self)
    }
}

impl GuestStage for AggregateStage {
    fn swap(&mut self, module: Arc<LoadedModule>) {
        self.op = crate::stage::swapped(&self.runtime, module, &self.config);
    }
    fn adopt(&mut self, out: &mut Collector<'_>) -> Result<bool, StageError> {
        let position = out.context().position();
        let step = self.agg.adopt_now(&mut self.op, &position, out.sink())?;
        out.unmigrated(&step.unmigrated);
        Ok(true)
    }
    fn warm_up(&mut self) -> Result<(), GuestError> {
        self.op.warm_up()
    }
}
