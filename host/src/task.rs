//! The stage chain of a pipeline, and the per-partition task that runs it.
//!
//! A [`Chain`] is the compiled pipeline: one loaded module per stage, where
//! outputs go, and the error policies. A [`Task`] is the chain's work for one
//! input partition, with its own operator instances. A task knows nothing
//! about Kafka: batches come in as encoded events, records go out through a
//! [`Sink`]. The Kafka instance decides when a transaction begins and ends;
//! between two batches is a boundary where instances can be swapped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::codec::{self, BatchEncoder, EventRef, ResultBatch, ResultRef};
use crate::event::{EventResult, Failure};
use crate::metrics::{self, Metrics, StageCounters};
use crate::pipeline::{ErrorPolicy, Pipeline};
use crate::runtime::{GuestError, GuestFault, LoadError, LoadedModule, Operator, Runtime};

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
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
    /// Timestamp, ms.
    pub timestamp: i64,
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
pub struct Chain {
    application_id: String,
    runtime: Runtime,
    stages: Vec<ChainStage>,
    default_topic: Option<String>,
    routes: BTreeMap<String, String>,
    batch_size: usize,
    metrics: Arc<Metrics>,
}

struct ChainStage {
    name: String,
    module: Arc<LoadedModule>,
    config: BTreeMap<String, String>,
    on_error: ErrorPolicy,
}

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
            if module.kind() != crate::contract::OperatorKind::Processor {
                return Err(ChainError::WrongKind {
                    stage: s.name.clone(),
                    module: s.module.clone(),
                    kind: module.kind(),
                    expected: "process",
                });
            }
            stages.push(ChainStage {
                name: s.name.clone(),
                module,
                config: s.config.clone(),
                on_error: s.on_error.clone(),
            });
        }
        Ok(Arc::new(Chain {
            application_id: pipeline.application_id.clone(),
            runtime: runtime.clone(),
            metrics: Metrics::new(stages.iter().map(|s| s.name.as_str())),
            stages,
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

    /// Module labels (`name@digest`) per stage.
    pub fn module_labels(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.module.info().version_label()).collect()
    }

    /// A task with fresh operator instances (created on first use).
    pub fn task(self: &Arc<Self>) -> Task {
        Task {
            operators: self
                .stages
                .iter()
                .map(|s| self.runtime.operator(s.module.clone(), s.config.clone()))
                .collect(),
            chain: self.clone(),
        }
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
}

/// Why one event failed in a stage.
enum Why<'a> {
    Failure { code: &'a str, message: &'a str },
    Trap(&'a GuestError),
    NoRoute(&'a str),
    NoDefault,
}

impl Why<'_> {
    fn kind(&self) -> &str {
        match self {
            Why::Failure { .. } | Why::NoRoute(_) | Why::NoDefault => "failure",
            Why::Trap(e) => e.kind(),
        }
    }

    fn code(&self) -> &str {
        match self {
            Why::Failure { code, .. } => code,
            Why::Trap(e) => e.kind(),
            Why::NoRoute(_) => "unknown-route",
            Why::NoDefault => "no-default-output",
        }
    }

    fn text(&self) -> String {
        match self {
            Why::Failure { code, message } => format!("{code}: {message}"),
            Why::Trap(e) => e.to_string(),
            Why::NoRoute(r) => format!("unknown-route: the output names route {r:?}, which [outputs.routes] lacks"),
            Why::NoDefault => "no-default-output: an output has no route and [outputs] has no default topic".into(),
        }
    }
}

/// A stage's results: read in place from the guest, plus the traps of
/// events that had to be isolated.
struct StageResults {
    batch: ResultBatch,
    traps: BTreeMap<usize, GuestError>,
}

/// One partition's run of the chain, with its own operator instances.
pub struct Task {
    chain: Arc<Chain>,
    operators: Vec<Operator>,
}

impl Task {
    /// Runs a batch of input events (at most the chain's batch size) through
    /// the chain, sending outputs and dead letters to `sink`.
    pub fn process(&mut self, batch: &BatchEncoder, sink: &mut dyn Sink) -> Result<(), TaskError> {
        self.run_stage(0, batch, sink)
    }

    /// Creates every stage's instance now (start-up cost paid up front).
    pub fn warm_up(&mut self) -> Result<(), GuestError> {
        self.operators.iter_mut().try_for_each(Operator::warm_up)
    }

    fn run_stage(&mut self, i: usize, batch: &BatchEncoder, sink: &mut dyn Sink) -> Result<(), TaskError> {
        let chain = self.chain.clone();
        let stage = &chain.stages[i];
        let counters = &chain.metrics.stages[i];
        metrics::add(&counters.events, batch.len() as u64);
        // The host encoded this batch itself, so it reads back.
        let events = codec::read_events(batch.as_bytes()).unwrap_or_default();
        let results = self.call(i, batch, &events);
        let last = i + 1 == chain.stages.len();
        let mut next = BatchEncoder::new();
        let label = stage.module.info().version_label();
        let mut headers: Vec<(&str, Option<&[u8]>)> = Vec::new();
        for (idx, (result, ev)) in results.batch.iter().zip(&events).enumerate() {
            let outs = match result {
                ResultRef::Failed { code, message } => {
                    let why = match results.traps.get(&idx) {
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
                None if last && chain.default_topic.is_none() => Some(Why::NoDefault),
                _ => None,
            });
            if let Some(why) = bad {
                self.fail(i, ev, &why, sink)?;
                continue;
            }
            metrics::add(&counters.outputs, outs.len() as u64);
            for o in outs.iter() {
                let timestamp = o.timestamp().unwrap_or(ev.timestamp);
                let topic = match o.route() {
                    Some(r) => chain.routes.get(r).map(String::as_str),
                    None if last => chain.default_topic.as_deref(),
                    None => None,
                };
                match topic {
                    Some(topic) => {
                        headers.clear();
                        headers.extend(o.headers().filter(|(n, _)| *n != MODULE_HEADER));
                        headers.push((MODULE_HEADER, Some(label.as_bytes())));
                        sink.send(&OutRecord {
                            topic,
                            key: o.key(),
                            value: o.value(),
                            headers: &headers,
                            timestamp,
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
    fn call(&mut self, i: usize, batch: &BatchEncoder, events: &[EventRef<'_>]) -> StageResults {
        let op = &mut self.operators[i];
        let err = match op.process(batch) {
            Ok(batch) => {
                return StageResults {
                    batch,
                    traps: BTreeMap::new(),
                };
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
        StageResults {
            batch: ResultBatch::from_results(&results),
            traps,
        }
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
        let label = stage.module.info().version_label();
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
                sink.send(&OutRecord {
                    topic,
                    key: ev.key,
                    value: ev.value,
                    headers: &headers,
                    timestamp: ev.timestamp,
                })?;
                metrics::add(&counters.dead_lettered, 1);
                metrics::add(&chain.metrics.produced, 1);
                Ok(())
            }
        }
    }
}
