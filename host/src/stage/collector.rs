//! Where records go. A stage hands each event's outputs (or its failure) to
//! its [`Collector`], which owns every destination: routed outputs, the
//! stages of the same task that read this one (run at once, on one shared
//! batch), repartition topics, the stage's sink topic, dead letters under
//! the stage's error policy, and changelogs. Records leave the task through
//! a [`Sink`] (the Kafka producer, or memory).
//!
//! Between two stages of a task, outputs are encoded once into a batch (cut
//! at the batch size) that every reading stage gets as it is: a guest stage
//! passes it to the guest, an aggregate reads its events in place.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::{Input, Stage, StageError};
use crate::codec::{self, BatchEncoder, EventRef, OutputsRef, ResultBatch, ResultRef};
use crate::event::Window;
use crate::metrics::{self, Metrics, StageCounters};
use crate::pipeline::{ErrorPolicy, Pipeline};
use crate::runtime::GuestError;
use crate::topology::{Hops, Topology};

/// Header on every output naming the module version that produced it:
/// `name@sha256:` and the first [`HEADER_DIGEST_HEX`] hex digits of its
/// digest (see [`header_label`]).
pub const MODULE_HEADER: &str = "weir.module";

/// Hex digits of the digest that an output's [`MODULE_HEADER`] keeps.
pub const HEADER_DIGEST_HEX: usize = 12;

/// The version label an output's [`MODULE_HEADER`] carries: the full
/// label (`name@sha256:<64 hex>`) cut after [`HEADER_DIGEST_HEX`] hex digits of
/// the digest, as git abbreviates commits. The header is on every output,
/// and the full label is 90 bytes for a typical name: nearly a 100-byte
/// record's size again. `weir module activate|rollback` resolve the short
/// label like the full one (an ambiguous prefix is refused, naming it); dead
/// letters, logs, `/status` and the registry keep the full digest.
pub fn header_label(label: &str) -> &str {
    const MARK: &str = "@sha256:";
    match label.rfind(MARK) {
        Some(at) => label.get(..at + MARK.len() + HEADER_DIGEST_HEX).unwrap_or(label),
        None => label,
    }
}

/// Headers on a dead letter.
pub mod dead_letter {
    /// Application id of the pipeline.
    pub const PIPELINE: &str = "weir.pipeline";
    /// Stage name.
    pub const STAGE: &str = "weir.stage";
    /// Module `name@digest`.
    pub const MODULE: &str = "weir.module";
    /// `failure` for a typed failure, else the trap kind (`panic`, `deadline`, `memory`, …).
    pub const KIND: &str = "weir.error.kind";
    /// The failure code, or the trap kind.
    pub const CODE: &str = "weir.error.code";
    /// Human-readable error text.
    pub const ERROR: &str = "weir.error";
    /// Topic of the input record the event came from.
    pub const TOPIC: &str = "weir.source.topic";
    /// Its partition (decimal).
    pub const PARTITION: &str = "weir.source.partition";
    /// Its offset (decimal).
    pub const OFFSET: &str = "weir.source.offset";
}

/// A record leaving the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct OutRecord<'a> {
    /// Destination topic.
    pub topic: &'a str,
    /// Destination partition; `None` partitions by key.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
    /// Timestamp, ms.
    pub timestamp: i64,
    /// A state change (the sink tracks how far each changelog got, for
    /// store checkpoints).
    pub changelog: bool,
}

impl<'a> OutRecord<'a> {
    /// An input event as it came, with `headers`, to `topic` (dead letters,
    /// repartitioning the inputs themselves).
    pub fn of_event(
        topic: &'a str,
        partition: Option<i32>,
        ev: &EventRef<'a>,
        headers: &'a [(&'a str, Option<&'a [u8]>)],
    ) -> Self {
        OutRecord {
            topic,
            partition,
            key: ev.key,
            value: ev.value,
            headers,
            timestamp: ev.timestamp,
            changelog: false,
        }
    }
}

/// Where a task's records go: a Kafka producer, or memory.
pub trait Sink {
    /// Sends one record; may block while the destination is full.
    fn send(&mut self, record: &OutRecord<'_>) -> Result<(), SinkError>;
}

/// A record could not be sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot send a record to topic {topic}: {reason}")]
pub struct SinkError {
    /// Destination topic.
    pub topic: String,
    /// Why.
    pub reason: String,
    /// The record was refused because the unit of work it belongs to has
    /// failed (a Kafka transaction that needs an abort): aborting it and
    /// doing the work again may succeed, where anything else stops the task.
    pub abortable: bool,
}

/// An owned record, as [`MemorySink`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    /// Topic.
    pub topic: String,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Timestamp.
    pub timestamp: i64,
}

impl SentRecord {
    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// A sink that keeps records in memory (tests, benchmarks).
#[derive(Debug, Default)]
pub struct MemorySink {
    /// What was sent.
    pub records: Vec<SentRecord>,
}

impl Sink for MemorySink {
    fn send(&mut self, r: &OutRecord<'_>) -> Result<(), SinkError> {
        self.records.push(SentRecord {
            topic: r.topic.to_owned(),
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: r
                .headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.map(<[u8]>::to_vec)))
                .collect(),
            timestamp: r.timestamp,
        });
        Ok(())
    }
}

/// A sink that counts and drops (benchmarks of the engine alone).
#[derive(Debug, Default)]
pub struct CountingSink {
    /// Records sent.
    pub records: u64,
    /// Key and value bytes sent.
    pub bytes: u64,
}

impl Sink for CountingSink {
    fn send(&mut self, r: &OutRecord<'_>) -> Result<(), SinkError> {
        self.records += 1;
        self.bytes += (r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len)) as u64;
        Ok(())
    }
}

/// Why one event failed in a stage.
pub enum Why<'a> {
    /// The guest returned a typed failure.
    Failure {
        /// Its code.
        code: &'a str,
        /// Its message.
        message: &'a str,
    },
    /// The guest trapped on it.
    Trap(&'a GuestError),
    /// An output names a route that `[outputs.routes]` lacks.
    NoRoute(&'a str),
    /// An unrouted output has nowhere to go.
    NoDefault,
    /// Every window of the event had closed.
    Late {
        /// The (latest) window it would have gone to.
        window: Window,
        /// Stream time when it arrived.
        stream_time: i64,
    },
}

impl Why<'_> {
    fn kind(&self) -> &str {
        match self {
            Why::Failure { .. } | Why::NoRoute(_) | Why::NoDefault => "failure",
            Why::Trap(e) => e.kind(),
            Why::Late { .. } => "late",
        }
    }

    fn code(&self) -> &str {
        match self {
            Why::Failure { code, .. } => code,
            Why::Trap(e) => e.kind(),
            Why::NoRoute(_) => "unknown-route",
            Why::NoDefault => "no-default-output",
            Why::Late { .. } => "late",
        }
    }

    fn text(&self) -> String {
        match self {
            Why::Failure { code, message } => format!("{code}: {message}"),
            Why::Trap(e) => e.to_string(),
            Why::NoRoute(r) => format!("unknown-route: the output names route {r:?}, which [outputs.routes] lacks"),
            Why::NoDefault => "no-default-output: an output has no route, no stage reads the stage, \
                               and it has no `to` topic and [outputs] no default"
                .into(),
            Why::Late { window, stream_time } => format!(
                "late: the event's window [{}, {}) closed before it arrived (stream time {stream_time} ms; \
                 raise the window's grace to accept it)",
                window.start, window.end
            ),
        }
    }
}

/// What a collector needs to know of the pipeline: names, error policies,
/// routes and the topology's hops. Shared by all tasks of an instance.
#[derive(Debug)]
pub struct Routing {
    application_id: String,
    routes: BTreeMap<String, String>,
    topology: Topology,
    batch_size: usize,
    metrics: Arc<Metrics>,
}

impl Routing {
    /// The routing of a (checked) pipeline.
    pub fn of(pipeline: &Pipeline, topology: Topology) -> Routing {
        Routing {
            application_id: pipeline.application_id.clone(),
            routes: pipeline.outputs.routes.clone(),
            topology,
            batch_size: pipeline.batch_size,
            metrics: Metrics::new(pipeline.stages.iter().map(|s| s.name.as_str())),
        }
    }

    /// The topology records flow through.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The instance's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Most events per call into a guest.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The name of stage `i`.
    pub fn name(&self, i: usize) -> &str {
        self.topology
            .stages()
            .get(i)
            .map_or("(task input)", |s| s.name.as_str())
    }

    /// An invariant of stage `i` broke.
    pub fn invariant(&self, i: usize, what: &'static str, detail: String) -> StageError {
        StageError::Invariant {
            stage: self.name(i).to_owned(),
            what,
            detail,
        }
    }
}

/// What a task passes to every collector of one batch.
#[derive(Debug)]
pub struct Context<'a> {
    /// The pipeline's routing.
    pub routing: &'a Routing,
    /// The wall clock of the batch (`idle-close` counts quiet time from it).
    pub now: Instant,
    /// The topics the task reads.
    pub sources: &'a [String],
    /// How far the task has read each (see [`Context::position`]).
    pub next: &'a [i64],
    /// The source of the batch: topic, partition, and the offset of its
    /// last record (synthetic events, such as emitted results, carry them).
    pub source: (&'a str, i32, i64),
}

impl Context<'_> {
    /// The task's input position, which changelog records carry (see
    /// [`crate::state::changelog::INPUT_NEXT`]): the next offset of a task
    /// of one source; `topic=next` for each source read since the task
    /// opened or last dropped uncommitted work, comma-separated, for a task
    /// of several. A source not read since constrains nothing.
    pub fn position(&self) -> String {
        match self.next {
            [one] => one.to_string(),
            _ => self
                .sources
                .iter()
                .zip(self.next)
                .filter(|(_, n)| **n > 0)
                .map(|(t, n)| format!("{t}={n}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// Reads back a batch the host encoded itself: it always reads back, and if
/// it does not, the task stops (never an empty batch and a commit anyway).
pub fn read_back<'b>(routing: &Routing, i: usize, batch: &'b BatchEncoder) -> Result<Vec<EventRef<'b>>, StageError> {
    let events = codec::read_events(batch.as_bytes())
        .map_err(|e| routing.invariant(i, "a host-encoded batch does not decode", e.to_string()))?;
    if events.len() != batch.len() {
        return Err(routing.invariant(
            i,
            "a host-encoded batch reads back with another length",
            format!("{} events encoded, {} read", batch.len(), events.len()),
        ));
    }
    Ok(events)
}

/// A task's stages, by stage index (`None`: not in this task).
pub type Slots = [Option<Box<dyn Stage>>];

/// Runs `input` through each stage in `targets` (all after `offset - 1`,
/// found in `later`, which holds stages `offset..`).
pub fn run_stages(
    later: &mut Slots,
    offset: usize,
    targets: &[usize],
    input: &Input<'_>,
    ctx: &Context<'_>,
    sink: &mut dyn Sink,
) -> Result<(), StageError> {
    for &d in targets {
        let at = d.checked_sub(offset).filter(|&at| at < later.len()).ok_or_else(|| {
            ctx.routing
                .invariant(d, "a stage reads a stage after it", format!("from {offset}"))
        })?;
        let (slot, after) = later[at..]
            .split_first_mut()
            .ok_or_else(|| ctx.routing.invariant(d, "no slot for a stage", String::new()))?;
        let stage = slot.as_mut().ok_or_else(|| {
            ctx.routing
                .invariant(d, "a stage is read by a task that does not run it", String::new())
        })?;
        metrics::add(&ctx.routing.metrics.stages[d].events, input.events.len() as u64);
        let mut out = Collector {
            ctx,
            stage: d,
            label: stage.module_label().into(),
            sink: &mut *sink,
            later: after,
            offset: d + 1,
            outbox: BatchEncoder::new(),
            counted: (0, 0),
        };
        stage.process(input, &mut out)?;
        out.finish()?;
    }
    Ok(())
}

/// Runs the stages that read `stage` on what it has sent them so far (its
/// outbox), then empties the outbox.
fn flush(
    outbox: &mut BatchEncoder,
    ctx: &Context<'_>,
    stage: usize,
    later: &mut Slots,
    offset: usize,
    sink: &mut dyn Sink,
) -> Result<(), StageError> {
    if outbox.is_empty() {
        return Ok(());
    }
    {
        let events = read_back(ctx.routing, stage, outbox)?;
        let input = Input {
            batch: outbox,
            events: &events,
            from: Some(stage),
        };
        let targets = &ctx.routing.topology.stage_hops(stage).stages;
        run_stages(later, offset, targets, &input, ctx, sink)?;
    }
    outbox.clear();
    Ok(())
}

/// Where one stage's records go, for one batch (see the module docs).
pub struct Collector<'a> {
    ctx: &'a Context<'a>,
    stage: usize,
    label: Arc<str>,
    sink: &'a mut dyn Sink,
    later: &'a mut Slots,
    offset: usize,
    /// Unrouted outputs for the stages that read this one.
    outbox: BatchEncoder,
    /// Outputs made and records sent in this batch, added to the shared
    /// counters once at its end: a per-record atomic add on a counter that
    /// every processing thread writes would bounce its cache line between
    /// cores.
    counted: (u64, u64),
}

impl<'a> Collector<'a> {
    /// A collector for stage `stage` that runs the stages after it, found
    /// in `later` (stages `stage + 1..`).
    pub fn new(
        ctx: &'a Context<'a>,
        stage: usize,
        label: String,
        sink: &'a mut dyn Sink,
        later: &'a mut Slots,
    ) -> Collector<'a> {
        Collector {
            ctx,
            stage,
            label: label.into(),
            sink,
            later,
            offset: stage + 1,
            outbox: BatchEncoder::new(),
            counted: (0, 0),
        }
    }

    /// The batch's context.
    pub fn context(&self) -> &Context<'a> {
        self.ctx
    }

    /// The changelog and other records the stage writes itself go here.
    pub fn sink(&mut self) -> &mut dyn Sink {
        &mut *self.sink
    }

    /// Whether no stage reads this stage's outputs (only such a stage sends
    /// tombstones: a reading stage would take a null value for an event).
    pub fn is_leaf(&self) -> bool {
        let h = self.hops();
        h.stages.is_empty() && h.repartition.is_empty()
    }

    /// Whether this stage's unrouted outputs go nowhere: no stage reads
    /// them, and no topic gets them (a table that only joins look up: its
    /// changes need not be made at all).
    pub fn goes_nowhere(&self) -> bool {
        let h = self.hops();
        h.stages.is_empty() && h.repartition.is_empty() && h.sink.is_none()
    }

    /// Reads back a batch this stage encoded itself (see [`read_back`]).
    pub fn read_back<'b>(&self, batch: &'b BatchEncoder) -> Result<Vec<EventRef<'b>>, StageError> {
        read_back(self.ctx.routing, self.stage, batch)
    }

    /// An invariant of this stage broke.
    pub fn invariant(&self, what: &'static str, detail: String) -> StageError {
        self.ctx.routing.invariant(self.stage, what, detail)
    }

    fn hops(&self) -> &'a Hops {
        self.ctx.routing.topology.stage_hops(self.stage)
    }

    fn counters(&self) -> &'a StageCounters {
        &self.ctx.routing.metrics.stages[self.stage]
    }

    /// Sends a stage's results on, one per event: outputs to
    /// `Collector::outputs`, failures (or the traps isolated for them) to
    /// the error policy.
    pub fn results(
        &mut self,
        results: &ResultBatch,
        traps: &BTreeMap<usize, GuestError>,
        events: &[EventRef<'_>],
    ) -> Result<(), StageError> {
        if results.len() != events.len() {
            return Err(self.invariant(
                "results do not match their events",
                format!("{} events, {} results", events.len(), results.len()),
            ));
        }
        // One label and one header buffer for the batch's outputs.
        let full = self.label.clone();
        let label = header_label(&full);
        let mut headers: Vec<(&str, Option<&[u8]>)> = Vec::new();
        for (idx, (result, ev)) in results.iter().zip(events).enumerate() {
            match result {
                ResultRef::Failed { code, message } => {
                    let why = match traps.get(&idx) {
                        Some(trap) => Why::Trap(trap),
                        None => Why::Failure { code, message },
                    };
                    self.fail(ev, &why)?;
                }
                ResultRef::Outputs(outs) => self.outputs(ev, outs, label, &mut headers)?,
            }
        }
        Ok(())
    }

    /// Sends one event's outputs: routed ones to their topics, the rest to
    /// every hop of the stage. An event's outputs all go, or none: an
    /// unknown route or an output with nowhere to go fails the event.
    fn outputs<'h>(
        &mut self,
        ev: &EventRef<'_>,
        outs: OutputsRef<'h>,
        label: &'h str,
        headers: &mut Vec<(&'h str, Option<&'h [u8]>)>,
    ) -> Result<(), StageError> {
        let routing = self.ctx.routing;
        let hops = self.hops();
        let nowhere = hops.stages.is_empty() && hops.repartition.is_empty() && hops.sink.is_none();
        let bad = outs.iter().find_map(|o| match o.route() {
            Some(r) if !routing.routes.contains_key(r) => Some(Why::NoRoute(r)),
            None if nowhere => Some(Why::NoDefault),
            _ => None,
        });
        if let Some(why) = bad {
            return self.fail(ev, &why);
        }
        self.counted.0 += outs.len() as u64;
        let mut produced = 0;
        for o in outs.iter() {
            let timestamp = o.timestamp().unwrap_or(ev.timestamp);
            let mut send = |topic: &str, partition: Option<i32>, sink: &mut dyn Sink| {
                headers.clear();
                headers.extend(o.headers().iter().filter(|(n, _)| *n != MODULE_HEADER));
                headers.push((MODULE_HEADER, Some(label.as_bytes())));
                sink.send(&OutRecord {
                    topic,
                    partition,
                    key: o.key(),
                    value: o.value(),
                    headers,
                    timestamp,
                    changelog: false,
                })?;
                produced += 1;
                Ok::<(), StageError>(())
            };
            if let Some(r) = o.route() {
                if let Some(topic) = routing.routes.get(r) {
                    send(topic, None, &mut *self.sink)?;
                }
                continue;
            }
            for topic in &hops.repartition {
                // Records without a key all meet in partition 0.
                send(topic, o.key().is_none().then_some(0), &mut *self.sink)?;
            }
            if let Some(topic) = &hops.sink {
                send(topic, None, &mut *self.sink)?;
            }
            if !hops.stages.is_empty() {
                self.outbox.push(
                    timestamp,
                    ev.topic,
                    ev.partition,
                    ev.offset,
                    o.key(),
                    o.value(),
                    o.headers(),
                );
                if self.outbox.len() >= routing.batch_size {
                    flush(
                        &mut self.outbox,
                        self.ctx,
                        self.stage,
                        &mut *self.later,
                        self.offset,
                        &mut *self.sink,
                    )?;
                }
            }
        }
        self.counted.1 += produced;
        Ok(())
    }

    /// Ends the batch: what is left for the reading stages runs now.
    pub fn finish(self) -> Result<(), StageError> {
        let (outputs, produced) = self.counted;
        metrics::add(&self.counters().outputs, outputs);
        metrics::add(&self.ctx.routing.metrics.produced, produced);
        let Collector {
            ctx,
            stage,
            sink,
            later,
            offset,
            mut outbox,
            ..
        } = self;
        flush(&mut outbox, ctx, stage, later, offset, sink)
    }

    /// A late event: counted, then dropped — or dead-lettered under that
    /// policy. A late record never stops the pipeline (the design).
    pub fn late(&mut self, ev: &EventRef<'_>, window: Window, stream_time: i64) -> Result<(), StageError> {
        metrics::add(&self.counters().late, 1);
        if self.ctx.routing.topology.stages()[self.stage].on_error == ErrorPolicy::Fail {
            tracing::debug!(stage = %self.ctx.routing.name(self.stage), topic = ev.topic, partition = ev.partition,
                offset = ev.offset, window.start = window.start, window.end = window.end,
                stream_time, "dropped a late event");
            return Ok(());
        }
        self.fail(ev, &Why::Late { window, stream_time })
    }

    /// A record the stage cannot use (a table record without a key, a
    /// stream record that cannot join): counted and dropped, as Kafka
    /// Streams drops them.
    pub fn dropped(&self, ev: &EventRef<'_>, why: &str) {
        metrics::add(&self.counters().dropped, 1);
        tracing::debug!(stage = %self.ctx.routing.name(self.stage), topic = ev.topic, partition = ev.partition,
            offset = ev.offset, "dropped a record: {why}");
    }

    /// Accumulators a new version could not migrate count as failures of
    /// the stage (an automatic rollback watches them) and are logged.
    pub fn unmigrated(&self, failed: &[(Option<Vec<u8>>, String)]) {
        if failed.is_empty() {
            return;
        }
        metrics::add(&self.counters().failed, failed.len() as u64);
        for (key, why) in failed.iter().take(10) {
            tracing::warn!(stage = %self.ctx.routing.name(self.stage), key = %String::from_utf8_lossy(key.as_deref().unwrap_or_default()),
                "migrate failed; the accumulator is kept as it was: {why}");
        }
    }

    /// Applies the stage's error policy to one event.
    pub fn fail(&mut self, ev: &EventRef<'_>, why: &Why<'_>) -> Result<(), StageError> {
        let routing = self.ctx.routing;
        let name = routing.name(self.stage);
        let counters = self.counters();
        metrics::add(&counters.failed, 1);
        if matches!(why, Why::Trap(_)) {
            metrics::add(&counters.trapped, 1);
        }
        match &routing.topology.stages()[self.stage].on_error {
            ErrorPolicy::Fail => Err(StageError::Failed {
                stage: name.to_owned(),
                module: self.label.to_string(),
                topic: ev.topic.to_owned(),
                partition: ev.partition,
                offset: ev.offset,
                error: why.text(),
            }),
            ErrorPolicy::Skip => {
                metrics::add(&counters.skipped, 1);
                tracing::debug!(stage = %name, topic = ev.topic, partition = ev.partition,
                    offset = ev.offset, error = %why.text(), "skipped an event");
                Ok(())
            }
            ErrorPolicy::DeadLetter(topic) => {
                let (text, partition, offset) = (why.text(), ev.partition.to_string(), ev.offset.to_string());
                let mut headers: Vec<(&str, Option<&[u8]>)> = ev.headers.iter().collect();
                headers.extend([
                    (dead_letter::PIPELINE, Some(routing.application_id.as_bytes())),
                    (dead_letter::STAGE, Some(name.as_bytes())),
                    (dead_letter::MODULE, Some(self.label.as_bytes())),
                    (dead_letter::KIND, Some(why.kind().as_bytes())),
                    (dead_letter::CODE, Some(why.code().as_bytes())),
                    (dead_letter::ERROR, Some(text.as_bytes())),
                    (dead_letter::TOPIC, Some(ev.topic.as_bytes())),
                    (dead_letter::PARTITION, Some(partition.as_bytes())),
                    (dead_letter::OFFSET, Some(offset.as_bytes())),
                ]);
                self.sink.send(&OutRecord::of_event(topic, None, ev, &headers))?;
                metrics::add(&counters.dead_lettered, 1);
                metrics::add(&routing.metrics.produced, 1);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_header_label_keeps_twelve_hex_digits_of_the_digest() {
        let full = format!("rust-uppercase@sha256:{}", "0123456789abcdef".repeat(4));
        assert_eq!(super::header_label(&full), "rust-uppercase@sha256:0123456789ab");
        assert_eq!(super::header_label("odd@sha256:abc"), "odd@sha256:abc");
        assert_eq!(super::header_label("no-digest"), "no-digest");
    }
}
