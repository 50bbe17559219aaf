//! The stage chain of a pipeline, and the per-partition task that runs it.
//!
//! A [`Chain`] is the compiled pipeline: one loaded module per stage, where
//! outputs go, and the error policies. A [`Task`] is the chain's work for one
//! input partition, with its own operator instances. A task knows nothing
//! about Kafka: batches come in as encoded events, records go out through a
//! [`Sink`]. The Kafka instance decides when a transaction begins and ends;
//! between two batches is a boundary where instances can be swapped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use crate::aggregate::{self, AggregateError, Aggregator, Due, Rejection};
use crate::codec::{self, BatchEncoder, EventRef, ResultBatch, ResultRef};
use crate::contract::OperatorKind;
use crate::event::{EventResult, Failure, Header, Output, Window};
use crate::metrics::{self, Metrics, StageCounters};
use crate::pipeline::{Aggregation, ErrorPolicy, Pipeline, StageKind};
use crate::runtime::{EmitRequest, GuestError, GuestFault, LoadError, LoadedModule, Operator, Runtime};
use crate::state::{Changelog, StateError, Store};
use crate::topology::Topology;

/// Header on every output naming the module version (`name@sha256:…`) that
/// produced it.
pub const MODULE_HEADER: &str = "weir.module";

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
    fn of_event(
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

/// The compiled pipeline, shared by all tasks of an instance.
///
/// Its stages fall into *segments*: an aggregate stage that repartitions
/// starts a new segment, which reads the internal repartition topic that the
/// previous segment writes (keyed by the record key, so every record of a key
/// meets one task). A task runs one segment for one partition of its source.
pub struct Chain {
    application_id: String,
    runtime: Runtime,
    stages: Vec<ChainStage>,
    topology: Topology,
    default_topic: Option<String>,
    routes: BTreeMap<String, String>,
    batch_size: usize,
    metrics: Arc<Metrics>,
}

struct ChainStage {
    name: String,
    /// The version new tasks start with; a hot swap replaces it.
    module: RwLock<Arc<LoadedModule>>,
    config: BTreeMap<String, String>,
    on_error: ErrorPolicy,
    aggregate: Option<Aggregation>,
}

use crate::topology::InternalTopic;
pub use crate::topology::SubTopology as Segment;

/// A stage's module cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The module failed validation.
    #[error("stage {stage}: {source}")]
    Load {
        /// Stage name.
        stage: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// The module is of another kind than the stage.
    #[error("stage {stage}: {} is a {kind}, but the stage's kind is {expected}", module.display())]
    WrongKind {
        /// Stage name.
        stage: String,
        /// Module path.
        module: PathBuf,
        /// What it is.
        kind: crate::contract::OperatorKind,
        /// What the stage needs.
        expected: &'static str,
    },
    /// A stateful stage reads several input topics directly: their
    /// partitions would share one store.
    #[error(
        "stage {stage}: an aggregate that reads more than one input topic needs `repartition = true`, \
         so that each key's records meet in one task"
    )]
    UnpartitionedState {
        /// Stage name.
        stage: String,
    },
}

impl Chain {
    /// Loads and validates every stage's module.
    pub fn load(pipeline: &Pipeline, runtime: &Runtime) -> Result<Arc<Chain>, ChainError> {
        let mut stages = Vec::with_capacity(pipeline.stages.len());
        for s in &pipeline.stages {
            let module = runtime.load_file(&s.module).map_err(|source| ChainError::Load {
                stage: s.name.clone(),
                source,
            })?;
            let (expected, aggregate) = match &s.kind {
                StageKind::Process => (OperatorKind::Processor, None),
                StageKind::Aggregate(a) => (OperatorKind::Aggregator, Some(a.clone())),
            };
            if module.kind() != expected {
                return Err(ChainError::WrongKind {
                    stage: s.name.clone(),
                    module: s.module.clone(),
                    kind: module.kind(),
                    expected: match expected {
                        OperatorKind::Processor => "process",
                        OperatorKind::Aggregator => "aggregate",
                    },
                });
            }
            stages.push(ChainStage {
                name: s.name.clone(),
                module: RwLock::new(module),
                config: s.config.clone(),
                on_error: s.on_error.clone(),
                aggregate,
            });
        }
        let topology = Topology::from_pipeline(pipeline);
        if pipeline.inputs.len() > 1
            && let Some(s) = stages[..topology.sub_topologies()[0].end]
                .iter()
                .find(|s| s.aggregate.is_some())
        {
            return Err(ChainError::UnpartitionedState { stage: s.name.clone() });
        }
        Ok(Arc::new(Chain {
            application_id: pipeline.application_id.clone(),
            runtime: runtime.clone(),
            metrics: Metrics::new(stages.iter().map(|s| s.name.as_str())),
            stages,
            topology,
            default_topic: pipeline.outputs.default.clone(),
            routes: pipeline.outputs.routes.clone(),
            batch_size: pipeline.batch_size,
        }))
    }

    /// The instance's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Most events per call into a guest.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Module labels (`name@digest`) per stage: what new tasks start with.
    pub fn module_labels(&self) -> Vec<String> {
        (0..self.stages.len())
            .map(|i| self.module(i).info().version_label())
            .collect()
    }

    /// The module stage `i` runs in new tasks.
    pub fn module(&self, i: usize) -> Arc<LoadedModule> {
        self.stages[i]
            .module
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes new tasks run `module` in stage `i` (a hot swap; running
    /// tasks swap with [`Task::swap`]).
    pub fn set_module(&self, i: usize, module: Arc<LoadedModule>) {
        *self.stages[i].module.write().unwrap_or_else(PoisonError::into_inner) = module;
    }

    /// The operator kind stage `i` needs.
    pub fn stage_kind(&self, i: usize) -> OperatorKind {
        if self.stages[i].aggregate.is_some() {
            OperatorKind::Aggregator
        } else {
            OperatorKind::Processor
        }
    }

    /// The stage segments (see [`Chain`]).
    pub fn segments(&self) -> &[Segment] {
        self.topology.sub_topologies()
    }

    /// Stage names, in order.
    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }

    /// The repartition topics the instance must also consume.
    pub fn repartition_topics(&self) -> Vec<&str> {
        self.topology.repartition_topics()
    }

    /// The changelog topic of a stateful stage.
    pub fn changelog_topic(&self, stage: usize) -> String {
        self.topology.changelog_topic(stage)
    }

    /// Topics Weir creates for this pipeline (see [`Topology::internal_topics`]).
    pub fn internal_topics(&self) -> Vec<InternalTopic> {
        self.topology.internal_topics()
    }

    /// The pipeline's topology.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether any stage keeps state.
    pub fn is_stateful(&self) -> bool {
        self.stages.iter().any(|s| s.aggregate.is_some())
    }

    /// The segment that reads `topic`.
    pub fn segment_of(&self, topic: &str) -> usize {
        self.segments()
            .iter()
            .position(|s| s.source.as_deref() == Some(topic))
            .unwrap_or(0)
    }

    /// A task for the first segment with fresh operator instances (created on
    /// first use) and no state stores: for stateless chains (tests, benchmarks).
    pub fn task(self: &Arc<Self>) -> Task {
        self.new_task(0, (String::new(), 0))
    }

    /// A task for one partition of `topic`: the segment that reads it, with
    /// its stores opened under `state_root/<stage>/<partition>` (restore them
    /// from their changelogs, then [`Task::reload`], before processing).
    pub fn open_task(self: &Arc<Self>, topic: &str, partition: i32, state_root: &Path) -> Result<Task, StateError> {
        self.open_task_with(topic, partition, &|stage, changelog| {
            Store::open(&state_root.join(stage).join(partition.to_string()), changelog)
        })
    }

    /// [`Chain::open_task`] with its stores in memory (the broker-free driver).
    pub fn open_task_in_memory(self: &Arc<Self>, topic: &str, partition: i32) -> Result<Task, StateError> {
        self.open_task_with(topic, partition, &|_, changelog| Ok(Store::in_memory(changelog)))
    }

    /// A task whose stateful stages get their stores from `open(stage name,
    /// changelog)`.
    fn open_task_with(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        open: &dyn Fn(&str, Changelog) -> Result<Store, StateError>,
    ) -> Result<Task, StateError> {
        let seg = self.segment_of(topic);
        let mut task = self.new_task(seg, (topic.to_owned(), partition));
        let segment = &self.segments()[seg];
        for i in segment.first..segment.end {
            if let Some(spec) = &self.stages[i].aggregate {
                let changelog = Changelog {
                    topic: self.changelog_topic(i),
                    partition,
                };
                let store = open(&self.stages[i].name, changelog)?;
                task.aggregators[i] = Some(Aggregator::open(spec.clone(), store)?);
            }
        }
        Ok(task)
    }

    fn new_task(self: &Arc<Self>, segment: usize, source: (String, i32)) -> Task {
        Task {
            operators: self
                .stages
                .iter()
                .enumerate()
                .map(|(i, s)| self.runtime.operator(self.module(i), s.config.clone()))
                .collect(),
            aggregators: self.stages.iter().map(|_| None).collect(),
            segment,
            source,
            input_next: 0,
            now: Instant::now(),
            chain: self.clone(),
        }
    }

    /// The runtime the chain's modules run in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// A stage's module and config (for a query's own operator instance).
    pub fn stage_module(&self, stage: usize) -> (Arc<LoadedModule>, BTreeMap<String, String>) {
        (self.module(stage), self.stages[stage].config.clone())
    }

    /// The index of the stage called `name`.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// Whether stage `i` keeps state.
    pub fn stage_is_stateful(&self, i: usize) -> bool {
        self.stages.get(i).is_some_and(|s| s.aggregate.is_some())
    }

    /// Whether stage `i` is windowed.
    pub fn is_windowed(&self, i: usize) -> bool {
        self.stages[i].aggregate.as_ref().is_some_and(|a| a.window.is_some())
    }
}

/// A task stopped: an event failed under the `fail` policy, or a record could
/// not be sent.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A stage with `on-error = "fail"` failed on an event.
    #[error(
        "stage {stage} ({module}) failed on {topic}[{partition}]@{offset}: {error}; \
         the stage's on-error is \"fail\", so the pipeline stops (use \"skip\" or \"dead-letter\" to keep going)"
    )]
    Failed {
        /// Stage name.
        stage: String,
        /// Module label.
        module: String,
        /// Source topic.
        topic: String,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// The failure or trap.
        error: String,
    },
    /// The sink refused a record.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// An aggregate stage runs in a task without stores.
    #[error("stage {stage} keeps state, but this task has no state store for it")]
    NoState {
        /// Stage name.
        stage: String,
    },
    /// Something that cannot happen did: a batch the host encoded does not
    /// read back, or results do not match their events. The task stops
    /// rather than drop records and commit their offsets anyway.
    #[error("stage {stage}: {what} ({detail}); this is a bug in Weir, and the open transaction is aborted")]
    Invariant {
        /// Stage name.
        stage: String,
        /// What broke.
        what: &'static str,
        /// The values that show it.
        detail: String,
    },
}

impl From<AggregateError> for TaskError {
    fn from(e: AggregateError) -> Self {
        match e {
            AggregateError::State(e) => TaskError::State(e),
            AggregateError::Sink(e) => TaskError::Sink(e),
        }
    }
}

/// Why one event failed in a stage.
enum Why<'a> {
    Failure { code: &'a str, message: &'a str },
    Trap(&'a GuestError),
    NoRoute(&'a str),
    NoDefault,
    Late { window: Window, stream_time: i64 },
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
            Why::NoDefault => "no-default-output: an output has no route and [outputs] has no default topic".into(),
            Why::Late { window, stream_time } => format!(
                "late: the event's window [{}, {}) closed before it arrived (stream time {stream_time} ms; \
                 raise the window's grace to accept it)",
                window.start, window.end
            ),
        }
    }
}

/// A stage's results: read in place from the guest, plus the traps of
/// events that had to be isolated.
struct StageResults {
    batch: ResultBatch,
    traps: BTreeMap<usize, GuestError>,
}

/// One partition's run of a segment of the chain, with its own operator
/// instances and state stores.
pub struct Task {
    chain: Arc<Chain>,
    operators: Vec<Operator>,
    aggregators: Vec<Option<Aggregator>>,
    segment: usize,
    source: (String, i32),
    /// The source offset after the last batch (changelog records carry it).
    input_next: i64,
    /// The wall clock of the batch being processed (`idle-close` counts
    /// quiet time from it; the broker-free driver moves it itself).
    now: Instant,
}

impl Task {
    /// Runs a batch of input events (at most the chain's batch size) through
    /// the task's segment, sending outputs, dead letters, repartitioned
    /// records and state changes to `sink`.
    pub fn process(&mut self, batch: &BatchEncoder, sink: &mut dyn Sink) -> Result<(), TaskError> {
        self.process_at(batch, sink, Instant::now())
    }

    /// [`Task::process`] at wall-clock time `now`.
    pub fn process_at(&mut self, batch: &BatchEncoder, sink: &mut dyn Sink, now: Instant) -> Result<(), TaskError> {
        self.now = now;
        let seg = &self.chain.segments()[self.segment];
        let (first, end) = (seg.first, seg.end);
        let events = self.read_back(first, batch)?;
        if let Some(last) = events.last() {
            self.input_next = last.offset + 1;
        }
        if first == end {
            return self.forward(&events, sink);
        }
        self.run_events(first, batch, &events, sink)
    }

    /// Runs `module` in stage `i` from the next batch on (a hot swap, at a
    /// transaction boundary). The stage's state stays; an aggregator adopts
    /// it at its next step (see [`Aggregator`]). The new instance is created
    /// now, so the first batch does not pay for it.
    pub fn swap(&mut self, i: usize, module: Arc<LoadedModule>) {
        let config = self.chain.stages[i].config.clone();
        self.operators[i] = self.chain.runtime.operator(module, config);
        if self.stages().contains(&i)
            && let Err(e) = self.operators[i].warm_up()
        {
            // The first call retries and applies the stage's error policy.
            tracing::warn!(stage = %self.chain.stages[i].name, "the new version did not start: {e}");
        }
    }

    /// Migrates stage `i`'s state to the version it now runs (after
    /// [`Task::swap`]), sending the changes to the changelog: `true` if the
    /// stage keeps state in this task (a transaction must be open).
    pub fn adopt(&mut self, i: usize, sink: &mut dyn Sink) -> Result<bool, TaskError> {
        let Some(agg) = self.aggregators[i].as_mut() else {
            return Ok(false);
        };
        let step = agg.adopt_now(&mut self.operators[i], self.input_next, sink)?;
        self.unmigrated(i, &step.unmigrated);
        Ok(true)
    }

    /// Whether stage `i` keeps state in this task.
    pub fn has_state(&self, i: usize) -> bool {
        self.aggregators.get(i).is_some_and(Option::is_some)
    }

    /// The version (`name@digest`) each stage of the task's segment runs.
    pub fn module_labels(&self) -> Vec<String> {
        self.stages()
            .map(|i| self.operators[i].module().info().version_label())
            .collect()
    }

    /// Creates every stage's instance now (start-up cost paid up front).
    pub fn warm_up(&mut self) -> Result<(), GuestError> {
        self.operators.iter_mut().try_for_each(Operator::warm_up)
    }

    /// The names of the chain's stages (index = stage).
    pub fn stage_names(&self) -> Vec<&str> {
        self.chain.stage_names()
    }

    /// The indices of the stages this task runs (its segment).
    pub fn stages(&self) -> std::ops::Range<usize> {
        let seg = &self.chain.segments()[self.segment];
        seg.first..seg.end
    }

    /// The task's stateful stages: (stage index, aggregator).
    pub fn aggregators(&self) -> impl Iterator<Item = (usize, &Aggregator)> {
        self.aggregators
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (i, a)))
    }

    /// Re-reads every store (after a restore, or an abort).
    pub fn reload(&mut self) -> Result<(), StateError> {
        self.aggregators.iter_mut().flatten().try_for_each(Aggregator::reload)
    }

    /// The unit of work committed: apply staged state, with each store's
    /// changelog checkpoint from `checkpoint`.
    pub fn commit_state(&mut self, checkpoint: impl Fn(&Changelog) -> Option<i64>) -> Result<(), StateError> {
        for a in self.aggregators.iter_mut().flatten() {
            let c = checkpoint(a.store().changelog());
            a.commit(c)?;
        }
        Ok(())
    }

    /// Whether an idle-close stage has windows to close now.
    pub fn idle_due(&self, now: Instant) -> bool {
        self.aggregators.iter().flatten().any(|a| a.idle_due(now).is_some())
    }

    /// Closes windows of quiet partitions on wall-clock time (`idle-close`),
    /// sending what they emit down the chain.
    pub fn idle_close(&mut self, now: Instant, sink: &mut dyn Sink) -> Result<(), TaskError> {
        // What the closed windows emit may reach a later aggregate of this
        // task: it runs at this wall-clock time too.
        self.now = now;
        for i in 0..self.aggregators.len() {
            let Some(agg) = self.aggregators[i].as_mut() else {
                continue;
            };
            let Some(st) = agg.idle_due(now) else {
                continue;
            };
            let step = agg.idle_close(&mut self.operators[i], now, st, self.input_next, sink)?;
            self.unmigrated(i, &step.unmigrated);
            self.emit(i, step.due, sink)?;
        }
        Ok(())
    }

    /// A segment without stages (an aggregate that repartitions the inputs
    /// themselves): records go to the next segment's topic unchanged.
    fn forward(&mut self, events: &[EventRef<'_>], sink: &mut dyn Sink) -> Result<(), TaskError> {
        let Some(topic) = self
            .chain
            .segments()
            .get(self.segment + 1)
            .and_then(|s| s.source.clone())
        else {
            return Ok(());
        };
        let mut headers: Vec<(&str, Option<&[u8]>)> = Vec::new();
        for ev in events {
            headers.clear();
            headers.extend(ev.headers());
            sink.send(&OutRecord::of_event(
                &topic,
                ev.key.is_none().then_some(0),
                ev,
                &headers,
            ))?;
        }
        Ok(())
    }

    fn run_stage(&mut self, i: usize, batch: &BatchEncoder, sink: &mut dyn Sink) -> Result<(), TaskError> {
        let events = self.read_back(i, batch)?;
        self.run_events(i, batch, &events, sink)
    }

    /// The events of a batch the host encoded itself for stage `i`: they
    /// always read back, and if they do not, the task stops.
    fn read_back<'b>(&self, i: usize, batch: &'b BatchEncoder) -> Result<Vec<EventRef<'b>>, TaskError> {
        let events = codec::read_events(batch.as_bytes())
            .map_err(|e| self.invariant(i, "a host-encoded batch does not decode", e.to_string()))?;
        if events.len() != batch.len() {
            return Err(self.invariant(
                i,
                "a host-encoded batch reads back with another length",
                format!("{} events encoded, {} read", batch.len(), events.len()),
            ));
        }
        Ok(events)
    }

    fn invariant(&self, i: usize, what: &'static str, detail: String) -> TaskError {
        TaskError::Invariant {
            stage: self
                .chain
                .stages
                .get(i)
                .map_or_else(|| format!("#{i}"), |s| s.name.clone()),
            what,
            detail,
        }
    }

    /// Runs stage `i` on `batch`, whose events are already read.
    fn run_events(
        &mut self,
        i: usize,
        batch: &BatchEncoder,
        events: &[EventRef<'_>],
        sink: &mut dyn Sink,
    ) -> Result<(), TaskError> {
        let chain = self.chain.clone();
        metrics::add(&chain.metrics.stages[i].events, batch.len() as u64);
        if chain.stages[i].aggregate.is_none() {
            let results = self.call(i, batch, events)?;
            return self.deliver(i, &results.batch, &results.traps, events, sink);
        }
        let Some(agg) = self.aggregators[i].as_mut() else {
            return Err(TaskError::NoState {
                stage: chain.stages[i].name.clone(),
            });
        };
        let step = agg.step(&mut self.operators[i], events, self.input_next, self.now, sink)?;
        self.unmigrated(i, &step.unmigrated);
        for (idx, why) in &step.rejected {
            let why = match why {
                Rejection::Late { window, stream_time } => {
                    metrics::add(&chain.metrics.stages[i].late, 1);
                    // The design: a late record is dropped and counted, or
                    // dead-lettered — it never stops the pipeline.
                    if chain.stages[i].on_error == ErrorPolicy::Fail {
                        let ev = &events[*idx];
                        tracing::debug!(stage = %chain.stages[i].name, topic = ev.topic, partition = ev.partition,
                            offset = ev.offset, window.start = window.start, window.end = window.end,
                            stream_time, "dropped a late event");
                        continue;
                    }
                    Why::Late {
                        window: *window,
                        stream_time: *stream_time,
                    }
                }
                Rejection::Failed(f) => Why::Failure {
                    code: &f.code,
                    message: &f.message,
                },
                Rejection::Trapped(e) => Why::Trap(e),
            };
            self.fail(i, &events[*idx], &why, sink)?;
        }
        self.emit(i, step.due, sink)
    }

    /// Accumulators a new version could not migrate count as failures of
    /// the stage (an automatic rollback watches them) and are logged.
    fn unmigrated(&self, i: usize, failed: &[(Option<Vec<u8>>, String)]) {
        if failed.is_empty() {
            return;
        }
        metrics::add(&self.chain.metrics.stages[i].failed, failed.len() as u64);
        for (key, why) in failed.iter().take(10) {
            tracing::warn!(stage = %self.chain.stages[i].name, key = %String::from_utf8_lossy(key.as_deref().unwrap_or_default()),
                "migrate failed; the accumulator is kept as it was: {why}");
        }
    }

    /// Turns due accumulators into outputs (the guest's `emit`) and sends
    /// them on. Each becomes a synthetic event for routing and error
    /// policies: its key, the window in headers, the source partition.
    fn emit(&mut self, i: usize, due: Vec<Due>, sink: &mut dyn Sink) -> Result<(), TaskError> {
        if due.is_empty() {
            return Ok(());
        }
        // Tombstones (sessions a merge deleted) are the host's: a null value
        // with the record key, to the default output. Only the pipeline's
        // last stage sends them: a later stage would take a null value for
        // an event.
        let mut due = due;
        if i + 1 < self.chain.stages.len() {
            due.retain(|d| d.acc.is_some());
            if due.is_empty() {
                return Ok(());
            }
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
            self.emit_all(i, requests)?
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
            .ok_or_else(|| self.invariant(i, "emit returned fewer results than requests", String::new()))?;
        let mut synthetic = BatchEncoder::new();
        let mut results = Vec::with_capacity(due.len());
        let mut traps = BTreeMap::new();
        let (topic, partition) = (self.source.0.clone(), self.source.1);
        for (idx, (d, outcome)) in due.iter().zip(outcomes).enumerate() {
            let window_headers: Vec<Header> = d
                .window
                .map(|w| {
                    vec![
                        Header::new(aggregate::WINDOW_START, w.start.to_string()),
                        Header::new(aggregate::WINDOW_END, w.end.to_string()),
                    ]
                })
                .unwrap_or_default();
            synthetic.push(
                d.timestamp,
                &topic,
                partition,
                self.input_next - 1,
                d.key.as_deref(),
                None,
                window_headers.iter().map(|h| (h.name.as_str(), h.value.as_deref())),
            );
            results.push(match outcome {
                Ok(EventResult::Outputs(mut outputs)) => {
                    for o in &mut outputs {
                        o.headers
                            .retain(|h| h.name != aggregate::WINDOW_START && h.name != aggregate::WINDOW_END);
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
        let events = self.read_back(i, &synthetic)?;
        let results = ResultBatch::from_results(&results)
            .map_err(|e| self.invariant(i, "emitted results do not encode", e.to_string()))?;
        self.deliver(i, &results, &traps, &events, sink)
    }

    /// Stage `i`'s `emit` over `requests`, one result each: one call, or
    /// one call per request when the batch traps (to find the culprits).
    fn emit_all(
        &mut self,
        i: usize,
        requests: Vec<EmitRequest>,
    ) -> Result<Vec<Result<EventResult, GuestError>>, TaskError> {
        let op = &mut self.operators[i];
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
                .map_err(|()| self.invariant(i, "emit returned no result for a request", String::new()))?,
        })
    }

    /// Sends stage `i`'s results on: routed outputs to their topics, the
    /// rest to the next stage, the next segment's repartition topic, or the
    /// default topic; failures to the error policy.
    fn deliver(
        &mut self,
        i: usize,
        results: &ResultBatch,
        traps: &BTreeMap<usize, GuestError>,
        events: &[EventRef<'_>],
        sink: &mut dyn Sink,
    ) -> Result<(), TaskError> {
        if results.len() != events.len() {
            return Err(self.invariant(
                i,
                "results do not match their events",
                format!("{} events, {} results", events.len(), results.len()),
            ));
        }
        let chain = self.chain.clone();
        let counters = &chain.metrics.stages[i];
        let last = i + 1 == chain.segments()[self.segment].end;
        let repartition = if last {
            chain.segments().get(self.segment + 1).and_then(|s| s.source.as_deref())
        } else {
            None
        };
        let mut next = BatchEncoder::new();
        let label = self.operators[i].module().info().version_label();
        let mut headers: Vec<(&str, Option<&[u8]>)> = Vec::new();
        for (idx, (result, ev)) in results.iter().zip(events).enumerate() {
            let outs = match result {
                ResultRef::Failed { code, message } => {
                    let why = match traps.get(&idx) {
                        Some(trap) => Why::Trap(trap),
                        None => Why::Failure { code, message },
                    };
                    self.fail(i, ev, &why, sink)?;
                    continue;
                }
                ResultRef::Outputs(outs) => outs,
            };
            // An event's outputs all go, or none: check destinations first.
            let bad = outs.iter().find_map(|o| match o.route() {
                Some(r) if !chain.routes.contains_key(r) => Some(Why::NoRoute(r)),
                None if last && repartition.is_none() && chain.default_topic.is_none() => Some(Why::NoDefault),
                _ => None,
            });
            if let Some(why) = bad {
                self.fail(i, ev, &why, sink)?;
                continue;
            }
            metrics::add(&counters.outputs, outs.len() as u64);
            for o in outs.iter() {
                let timestamp = o.timestamp().unwrap_or(ev.timestamp);
                let (topic, partition) = match o.route() {
                    Some(r) => (chain.routes.get(r).map(String::as_str), None),
                    // Records without a key all meet in partition 0.
                    None if repartition.is_some() => (repartition, o.key().is_none().then_some(0)),
                    None if last => (chain.default_topic.as_deref(), None),
                    None => (None, None),
                };
                match topic {
                    Some(topic) => {
                        headers.clear();
                        headers.extend(o.headers().filter(|(n, _)| *n != MODULE_HEADER));
                        headers.push((MODULE_HEADER, Some(label.as_bytes())));
                        sink.send(&OutRecord {
                            topic,
                            partition,
                            key: o.key(),
                            value: o.value(),
                            headers: &headers,
                            timestamp,
                            changelog: false,
                        })?;
                        metrics::add(&chain.metrics.produced, 1);
                    }
                    None => {
                        next.push(
                            timestamp,
                            ev.topic,
                            ev.partition,
                            ev.offset,
                            o.key(),
                            o.value(),
                            o.headers(),
                        );
                        if next.len() >= chain.batch_size {
                            self.run_stage(i + 1, &next, sink)?;
                            next.clear();
                        }
                    }
                }
            }
        }
        if !next.is_empty() {
            self.run_stage(i + 1, &next, sink)?;
        }
        Ok(())
    }

    /// Calls stage `i` on a batch. A trap is narrowed down to the events that
    /// cause it, whose results become placeholders with the trap on the side.
    fn call(&mut self, i: usize, batch: &BatchEncoder, events: &[EventRef<'_>]) -> Result<StageResults, TaskError> {
        let op = &mut self.operators[i];
        let err = match op.process(batch) {
            Ok(batch) => {
                return Ok(StageResults {
                    batch,
                    traps: BTreeMap::new(),
                });
            }
            Err(e) => e,
        };
        let outcomes: Vec<Result<EventResult, GuestError>> = if matches!(err.fault, GuestFault::Instantiate(_)) {
            events.iter().map(|_| Err(err.clone())).collect()
        } else {
            let owned: Vec<_> = events.iter().map(EventRef::to_event).collect();
            op.process_events(&owned)
        };
        let mut traps = BTreeMap::new();
        let results: Vec<EventResult> = outcomes
            .into_iter()
            .enumerate()
            .map(|(idx, r)| match r {
                Ok(r) => r,
                Err(e) => {
                    let placeholder = EventResult::Failed(Failure {
                        code: e.kind().to_owned(),
                        message: e.to_string(),
                    });
                    traps.insert(idx, e);
                    placeholder
                }
            })
            .collect();
        let batch = ResultBatch::from_results(&results)
            .map_err(|e| self.invariant(i, "isolated results do not encode", e.to_string()))?;
        Ok(StageResults { batch, traps })
    }

    /// Applies stage `i`'s error policy to one event.
    fn fail(&mut self, i: usize, ev: &EventRef<'_>, why: &Why<'_>, sink: &mut dyn Sink) -> Result<(), TaskError> {
        let chain = &self.chain;
        let stage = &chain.stages[i];
        let counters: &StageCounters = &chain.metrics.stages[i];
        metrics::add(&counters.failed, 1);
        if matches!(why, Why::Trap(_)) {
            metrics::add(&counters.trapped, 1);
        }
        let label = self.operators[i].module().info().version_label();
        match &stage.on_error {
            ErrorPolicy::Fail => Err(TaskError::Failed {
                stage: stage.name.clone(),
                module: label,
                topic: ev.topic.to_owned(),
                partition: ev.partition,
                offset: ev.offset,
                error: why.text(),
            }),
            ErrorPolicy::Skip => {
                metrics::add(&counters.skipped, 1);
                tracing::debug!(stage = %stage.name, topic = ev.topic, partition = ev.partition,
                    offset = ev.offset, error = %why.text(), "skipped an event");
                Ok(())
            }
            ErrorPolicy::DeadLetter(topic) => {
                let (text, partition, offset) = (why.text(), ev.partition.to_string(), ev.offset.to_string());
                let mut headers: Vec<(&str, Option<&[u8]>)> = ev.headers().collect();
                headers.extend([
                    (dead_letter::PIPELINE, Some(chain.application_id.as_bytes())),
                    (dead_letter::STAGE, Some(stage.name.as_bytes())),
                    (dead_letter::MODULE, Some(label.as_bytes())),
                    (dead_letter::KIND, Some(why.kind().as_bytes())),
                    (dead_letter::CODE, Some(why.code().as_bytes())),
                    (dead_letter::ERROR, Some(text.as_bytes())),
                    (dead_letter::TOPIC, Some(ev.topic.as_bytes())),
                    (dead_letter::PARTITION, Some(partition.as_bytes())),
                    (dead_letter::OFFSET, Some(offset.as_bytes())),
                ]);
                sink.send(&OutRecord::of_event(topic, None, ev, &headers))?;
                metrics::add(&counters.dead_lettered, 1);
                metrics::add(&chain.metrics.produced, 1);
                Ok(())
            }
        }
    }
}
