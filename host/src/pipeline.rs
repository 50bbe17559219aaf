//! The pipeline file: a TOML description of what to consume, which stages to
//! run, where outputs go, and how hard to try.
//!
//! ```toml
//! application-id = "orders"            # consumer group and transactional.id prefix
//! inputs = ["orders"]
//! guarantee = "exactly-once"           # or "at-least-once"
//! commit-interval = "100ms"
//! static-membership = true             # group.instance.id = <application-id>-<instance-id>
//! repartition-purge-interval = "30s"   # how often consumed repartition records are deleted
//! threads = 4                          # processing threads (default: one per core)
//!
//! [[stage]]
//! module = "../dist/rust-route-by-type.wasm"   # relative to this file
//! kind = "process"
//! on-error = "dead-letter"
//! dead-letter-topic = "orders-dlq"
//! [stage.config]
//! field = "type"
//!
//! [outputs]
//! default = "orders-out"
//! routes = { payment = "orders-payment" }
//!
//! [kafka]
//! "bootstrap.servers" = "127.0.0.1:9092"
//! ```
//!
//! A `[[stage]]` list is a chain: each stage reads the one before it, the
//! first reads `inputs`. A stage may name what it reads instead, which
//! makes a graph (fan-out, merge), and send its outputs to a topic of its
//! own:
//!
//! ```toml
//! [[stage]]
//! name = "audit"
//! inputs = ["parse"]                   # input topics or earlier stages
//! to = "audit-log"                     # else [outputs] default, if no stage reads it
//! ```
//!
//! Parsing is strict: an unknown key is an error naming the key, and every
//! error names the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::units;
use crate::window::{WindowKind, Windowing};

/// How hard a pipeline tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guarantee {
    /// Outputs, dead letters and input offsets commit in one Kafka
    /// transaction per commit interval; inputs are read `read_committed`.
    ExactlyOnce,
    /// Outputs are flushed before input offsets are committed; a crash may
    /// repeat records, never lose them.
    AtLeastOnce,
}

impl Guarantee {
    /// The default commit interval (Kafka Streams' defaults for exactly-once,
    /// shortened for at-least-once so that a developer sees progress).
    pub fn default_commit_interval(self) -> Duration {
        match self {
            Guarantee::ExactlyOnce => Duration::from_millis(100),
            Guarantee::AtLeastOnce => Duration::from_secs(1),
        }
    }
}

/// What happens to a record whose timestamp is missing or negative, as
/// Kafka Streams' timestamp extractors decide (`timestamp-policy`). The
/// same policy holds for inputs, tables' topics and global tables' topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimestampPolicy {
    /// Stop with an error naming the topic, partition and offset (Kafka
    /// Streams' default, `FailOnInvalidTimestamp`).
    #[default]
    Fail,
    /// Log the record and skip it; its offset is committed with the others
    /// (`LogAndSkipOnInvalidTimestamp`).
    LogAndSkip,
    /// Give it the wall clock's time, in ms (`WallclockTimestampExtractor`,
    /// for invalid timestamps only).
    WallClock,
}

/// What a [`TimestampPolicy`] makes of a record's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Use this timestamp.
    Use(i64),
    /// Skip the record (after logging it).
    Skip,
    /// Stop: the timestamp is invalid and the policy is `fail`.
    Fail,
}

impl TimestampPolicy {
    /// The timestamp to use for a record whose broker timestamp is `raw`
    /// (`None`: the record has none); `now` gives the wall clock in ms.
    pub fn stamp(self, raw: Option<i64>, now: impl FnOnce() -> i64) -> Stamp {
        match raw {
            Some(t) if t >= 0 => Stamp::Use(t),
            _ => match self {
                TimestampPolicy::Fail => Stamp::Fail,
                TimestampPolicy::LogAndSkip => Stamp::Skip,
                TimestampPolicy::WallClock => Stamp::Use(now()),
            },
        }
    }
}

impl std::fmt::Display for TimestampPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimestampPolicy::Fail => "fail",
            TimestampPolicy::LogAndSkip => "log-and-skip",
            TimestampPolicy::WallClock => "wall-clock",
        })
    }
}

impl std::fmt::Display for Guarantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Guarantee::ExactlyOnce => "exactly-once",
            Guarantee::AtLeastOnce => "at-least-once",
        })
    }
}

/// What happens to an event that a stage fails on (a typed failure or a trap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Stop the pipeline; nothing after the last commit is kept, so the event
    /// is processed again after a restart.
    Fail,
    /// Drop the event and count it.
    Skip,
    /// Write the event to this topic, with headers saying why, in the same
    /// transaction as the outputs.
    DeadLetter(String),
}

impl ErrorPolicy {
    /// Short name, for logs and counters.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorPolicy::Fail => "fail",
            ErrorPolicy::Skip => "skip",
            ErrorPolicy::DeadLetter(_) => "dead-letter",
        }
    }
}

/// What a stage does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageKind {
    /// A stateless processor: map, filter, flat-map, re-key, route.
    Process,
    /// A keyed aggregation with its state store.
    Aggregate(Aggregation),
    /// A table: the latest value per key of its one input (a null value
    /// deletes). Of a topic, it is restored from that topic itself; of a
    /// stage's results, it reads them through a repartition topic keyed by
    /// their key and keeps a changelog of its own. Its outputs are its
    /// changes (the table as a stream) — or, grouped (`group-by`), each
    /// change re-keyed for a table aggregation.
    Table(Table),
    /// A join of its two inputs (left, right), combined by a joiner module.
    Join(Join),
    /// A global table: every partition of one topic of `globals`, held
    /// whole by every instance, restored at start and kept current while
    /// the pipeline runs. Runs no module; a stream joins it by a key it
    /// chooses per record.
    GlobalTable,
}

/// A `table` stage's own settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// `group-by`: a processor that re-keys each row (Kafka Streams'
    /// `KTable.groupBy`). The table's outputs are then its changes as a
    /// table aggregation needs them: each row's new value under the key
    /// the processor gives it, and its old value (header
    /// [`OLD_VALUE`](crate::stage::table::OLD_VALUE)) under the key it had.
    /// Only `aggregate` stages may read a grouped table.
    pub group_by: Option<PathBuf>,
}

/// How a `join` stage joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// Which unmatched records still produce a result.
    pub kind: JoinKind,
    /// What the two inputs are.
    pub shape: JoinShape,
    /// Read the stream side through an internal repartition topic keyed by
    /// the record key. Default: whenever the stream side is another stage
    /// (which may have re-keyed it).
    pub repartition: bool,
    /// Partitions of the repartition topic (default: the inputs' count).
    pub partitions: Option<i32>,
    /// Emit the unmatched records of a stream-stream join on wall-clock
    /// time after the task has been quiet this long (as `idle-close`).
    pub idle_close: Option<Duration>,
}

/// Which records of a join produce results without a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Only pairs.
    Inner,
    /// Every left record, with or without a right one.
    Left,
    /// Every record of either side.
    Outer,
}

impl std::fmt::Display for JoinKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JoinKind::Inner => "inner",
            JoinKind::Left => "left",
            JoinKind::Outer => "outer",
        })
    }
}

/// The two sides of a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinShape {
    /// A stream (left) looks up a table (right, a `table` stage) by key.
    StreamTable {
        /// The table stage.
        table: usize,
    },
    /// Two streams: records join when their timestamps are close enough.
    StreamStream {
        /// How close.
        window: JoinWindow,
    },
    /// A stream (left) looks up a global table (right) by a key chosen per
    /// record.
    StreamGlobal {
        /// The global-table stage.
        table: usize,
        /// How each stream record finds its row.
        key: LookupKey,
    },
    /// Two tables: an update on either side joins it with the other side's
    /// current row; the result is a table of its own.
    TableTable {
        /// The left table stage.
        left: usize,
        /// The right table stage.
        right: usize,
    },
}

/// The key a stream record looks a global table up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupKey {
    /// The record's key.
    RecordKey,
    /// This JSON field of the record's value (`key-field`).
    Field(String),
    /// The key of the first output a `process` module makes of the record
    /// (`key-module`); no output: no lookup key.
    Module(PathBuf),
}

/// A stream-stream join's window, in ms: a left record at `t` joins right
/// records at `t - before ..= t + after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindow {
    /// How much earlier a right record may be.
    pub before: i64,
    /// How much later a right record may be.
    pub after: i64,
    /// How long after a record's window ends it is still accepted.
    pub grace: i64,
}

impl JoinWindow {
    /// How long (ms) both sides' records are kept after their timestamp.
    pub fn retention(&self) -> i64 {
        self.before.saturating_add(self.after).saturating_add(self.grace)
    }
}

impl StageKind {
    /// Whether the stage's results are a table (a `table` stage, or a
    /// table-table join), which a join can read as its table side.
    pub fn is_table(&self) -> bool {
        matches!(
            self,
            StageKind::Table(Table { group_by: None })
                | StageKind::GlobalTable
                | StageKind::Join(Join {
                    shape: JoinShape::TableTable { .. },
                    ..
                })
        )
    }
}

/// When an aggregate stage publishes its accumulators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// After every batch, each key (and window) that changed, once.
    Update,
    /// Once per window, when stream time passes its end plus grace.
    Final,
}

/// How an `aggregate` stage folds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    /// Time windows; `None` folds each key forever.
    pub window: Option<Windowing>,
    /// When results are published.
    pub emit: Emit,
    /// Close windows on wall-clock time after a partition has been quiet
    /// this long (`final` mode only).
    pub idle_close: Option<Duration>,
    /// Read through an internal repartition topic keyed by the record key.
    /// Default: whenever it reads another stage (which may have re-keyed).
    pub repartition: bool,
    /// Partitions of the repartition topic (default: the inputs' count).
    pub partitions: Option<i32>,
    /// It reads a grouped table (`group-by`): a table aggregation, whose
    /// rows' old values are subtracted (the module's `subtract`) before
    /// their new values are added.
    pub table: bool,
}

/// One stage of the pipeline's graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Name used in logs, counters and dead-letter headers.
    pub name: String,
    /// What the stage reads: input topics of the pipeline and earlier
    /// stages, by name. Default: the stage before it, or the pipeline's
    /// `inputs` for the first stage — so a `[[stage]]` list is a chain.
    pub inputs: Vec<StageInput>,
    /// A topic that also gets the stage's unrouted outputs (`to = "…"`). A
    /// stage that no stage reads sends them to `[outputs] default` unless
    /// it names its own.
    pub to: Option<String>,
    /// The module file (`None` for a `table` stage, which runs none).
    pub module: Option<PathBuf>,
    /// What kind of operator the module must be.
    pub kind: StageKind,
    /// Deploy-time configuration handed to the guest.
    pub config: BTreeMap<String, String>,
    /// What happens to events the stage fails on.
    pub on_error: ErrorPolicy,
}

impl Stage {
    /// The repartition topic the stage reads instead of its inputs (an
    /// aggregate) or instead of its stream side (a join).
    pub fn repartition_topic(&self, application_id: &str) -> Option<String> {
        let repartition = match &self.kind {
            StageKind::Aggregate(a) => a.repartition,
            StageKind::Join(j) => j.repartition,
            // A table of a stage's results: keyed as the results are.
            StageKind::Table(_) => matches!(self.inputs.as_slice(), [StageInput::Stage(_)]),
            StageKind::Process | StageKind::GlobalTable => false,
        };
        repartition.then(|| format!("{application_id}-{}-repartition", self.name))
    }

    /// Whether input `input` reaches the stage through its repartition
    /// topic (when it has one): every input of an aggregate, the stream
    /// side (left) of a join.
    pub fn repartitions(&self, input: usize) -> bool {
        match &self.kind {
            StageKind::Join(_) => input == 0,
            _ => true,
        }
    }

    /// Whether it keeps state over its task's records (which then must be
    /// co-partitioned): an aggregate, a table, or a join (through its table).
    pub fn keyed(&self) -> bool {
        !matches!(self.kind, StageKind::Process)
    }

    /// Whether it looks the rows of stage `table` up rather than reading
    /// its changes (a stream-table join's table).
    pub fn looks_up(&self, table: usize) -> bool {
        matches!(&self.kind, StageKind::Join(j) if j.shape == JoinShape::StreamTable { table })
    }

    /// Its partitions setting for a repartition topic.
    pub fn repartition_partitions(&self) -> Option<i32> {
        match &self.kind {
            StageKind::Aggregate(a) if a.repartition => a.partitions,
            StageKind::Join(j) if j.repartition => j.partitions,
            _ => None,
        }
    }

    /// Its module's path as written for people (empty for a stage that
    /// runs none).
    pub fn module_display(&self) -> String {
        self.module
            .as_ref()
            .map(|m| m.display().to_string())
            .unwrap_or_default()
    }

    /// Its aggregation, if it is an aggregate.
    pub fn aggregation(&self) -> Option<&Aggregation> {
        match &self.kind {
            StageKind::Aggregate(a) => Some(a),
            _ => None,
        }
    }

    /// The topic its failed events go to, under `on-error = "dead-letter"`.
    pub fn dead_letter_topic(&self) -> Option<&str> {
        match &self.on_error {
            ErrorPolicy::DeadLetter(t) => Some(t),
            _ => None,
        }
    }
}

/// One input of a stage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StageInput {
    /// An input topic of the pipeline.
    Topic(String),
    /// The unrouted outputs of an earlier stage (its index).
    Stage(usize),
}

/// Where outputs go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outputs {
    /// Topic for outputs of the last stage without a route.
    pub default: Option<String>,
    /// Route name → topic.
    pub routes: BTreeMap<String, String>,
}

/// A parsed and checked pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// The file it came from.
    pub file: PathBuf,
    /// Consumer group id and transactional.id prefix.
    pub application_id: String,
    /// Topics to consume.
    pub inputs: Vec<String>,
    /// Topics every instance reads whole into a global table.
    pub globals: Vec<String>,
    /// Stages, in order.
    pub stages: Vec<Stage>,
    /// Output topics.
    pub outputs: Outputs,
    /// Processing guarantee.
    pub guarantee: Guarantee,
    /// What happens to records without a valid timestamp.
    pub timestamp_policy: TimestampPolicy,
    /// How often a transaction (or offset commit) closes.
    pub commit_interval: Duration,
    /// Most events per call into a guest.
    pub batch_size: usize,
    /// Processing threads per instance (`threads`; `weir run --threads`
    /// overrides it); `None`: one per core.
    pub threads: Option<usize>,
    /// librdkafka properties, verbatim.
    pub kafka: BTreeMap<String, String>,
    /// Settings for `weir dev`.
    pub dev: DevSettings,
    /// Where state stores live (`weir run --state-dir` overrides it).
    pub state_dir: PathBuf,
    /// Each instance joins the group as a static member
    /// (`group.instance.id`), so that a restart within the session timeout
    /// takes its partitions back without a rebalance.
    pub static_membership: bool,
    /// How often an instance deletes the repartition records its group has
    /// committed (Kafka Streams' `repartition.purge.interval.ms`).
    pub repartition_purge_interval: Duration,
}

/// The `[dev]` table: what `weir dev` feeds the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevSettings {
    /// Sample generator name (`trades`, `logs`, `operations`, `sentences`,
    /// `clicks`, `orders`, `customers`) for every input.
    pub sample: Option<String>,
    /// A generator per input topic (`[dev] samples = { topic = "name" }`),
    /// before `sample`.
    pub samples: BTreeMap<String, String>,
    /// Partitions per created topic.
    pub partitions: Option<i32>,
}

impl Pipeline {
    /// Every topic the pipeline writes to: default output, routes, dead letters.
    pub fn output_topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = self.outputs.default.iter().map(String::as_str).collect();
        topics.extend(self.outputs.routes.values().map(String::as_str));
        topics.extend(self.stages.iter().filter_map(|s| s.to.as_deref()));
        for s in &self.stages {
            if let ErrorPolicy::DeadLetter(t) = &s.on_error {
                topics.push(t);
            }
        }
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    /// Reads and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|e| PipelineError::new(path, ErrorKind::Read(e)))?;
        Pipeline::parse(path, &text)
    }

    /// Parses pipeline text; `path` names it in errors and anchors relative
    /// module paths.
    pub fn parse(path: &Path, text: &str) -> Result<Pipeline, PipelineError> {
        let raw: RawPipeline =
            toml::from_str(text).map_err(|e| PipelineError::new(path, ErrorKind::Syntax(e.to_string())))?;
        raw.check(path).map_err(|kind| PipelineError::new(path, kind))
    }
}

/// A pipeline file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("pipeline {}: {kind}", file.display())]
pub struct PipelineError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl PipelineError {
    fn new(file: &Path, kind: ErrorKind) -> Self {
        PipelineError {
            file: file.to_owned(),
            kind,
        }
    }
}

/// What is wrong with a pipeline file.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The file cannot be read.
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// Not valid TOML, an unknown key, or a value of the wrong type (the
    /// message names the key and the line).
    #[error("{}", .0.trim_end())]
    Syntax(String),
    /// A key has a value that is not allowed.
    #[error("`{key}`: expected {expected}, found {found}")]
    Invalid {
        /// Dotted path of the key, e.g. `stage[1].on-error`.
        key: String,
        /// What is allowed.
        expected: String,
        /// What the file says.
        found: String,
    },
    /// A required key is missing.
    #[error("`{key}` is missing: {why}")]
    Missing {
        /// Dotted path of the key.
        key: String,
        /// Why it is needed.
        why: &'static str,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawPipeline {
    application_id: Option<String>,
    inputs: Option<Vec<String>>,
    globals: Option<Vec<String>>,
    guarantee: Option<Guarantee>,
    timestamp_policy: Option<TimestampPolicy>,
    commit_interval: Option<String>,
    batch_size: Option<usize>,
    threads: Option<usize>,
    #[serde(default)]
    stage: Vec<RawStage>,
    #[serde(default)]
    outputs: RawOutputs,
    #[serde(default)]
    kafka: BTreeMap<String, toml::Value>,
    #[serde(default)]
    dev: RawDev,
    state_dir: Option<PathBuf>,
    static_membership: Option<bool>,
    repartition_purge_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawStage {
    name: Option<String>,
    module: Option<PathBuf>,
    kind: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    on_error: Option<String>,
    dead_letter_topic: Option<String>,
    inputs: Option<Vec<String>>,
    to: Option<String>,
    window: Option<RawWindow>,
    emit: Option<String>,
    idle_close: Option<String>,
    repartition: Option<bool>,
    partitions: Option<i32>,
    join: Option<String>,
    key_field: Option<String>,
    key_module: Option<PathBuf>,
    group_by: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawWindow {
    kind: Option<String>,
    size: Option<String>,
    advance: Option<String>,
    gap: Option<String>,
    grace: Option<String>,
    before: Option<String>,
    after: Option<String>,
    within: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawOutputs {
    default: Option<String>,
    #[serde(default)]
    routes: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawDev {
    sample: Option<String>,
    #[serde(default)]
    samples: BTreeMap<String, String>,
    partitions: Option<i32>,
}

/// Keys of `[kafka]` that Weir sets itself, because the guarantee depends on them.
const RESERVED_KAFKA_KEYS: &[&str] = &[
    "group.id",
    "transactional.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "group.instance.id",
];

impl RawPipeline {
    fn check(self, path: &Path) -> Result<Pipeline, ErrorKind> {
        let application_id = self.application_id.ok_or(ErrorKind::Missing {
            key: "application-id".into(),
            why: "it names the consumer group and the transactional ids",
        })?;
        if application_id.is_empty()
            || !application_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(invalid(
                "application-id",
                "a non-empty name of letters, digits, '.', '_' or '-'",
                &format!("{application_id:?}"),
            ));
        }
        let inputs = self.inputs.unwrap_or_default();
        if inputs.is_empty() {
            return Err(ErrorKind::Missing {
                key: "inputs".into(),
                why: "a pipeline consumes at least one topic",
            });
        }
        for (i, t) in inputs.iter().enumerate() {
            check_topic(&format!("inputs[{i}]"), t)?;
        }
        let globals = self.globals.unwrap_or_default();
        for (i, t) in globals.iter().enumerate() {
            check_topic(&format!("globals[{i}]"), t)?;
            if inputs.contains(t) {
                return Err(invalid(
                    &format!("globals[{i}]"),
                    "topics that are not also `inputs` (a global table's topic is read whole by every instance)",
                    &format!("{t:?}"),
                ));
            }
        }
        let guarantee = self.guarantee.unwrap_or(Guarantee::ExactlyOnce);
        let commit_interval = match self.commit_interval {
            Some(text) => units::parse_duration(&text)
                .map_err(|e| invalid("commit-interval", "a duration like \"100ms\" or \"2s\"", &e.to_string()))?,
            None => guarantee.default_commit_interval(),
        };
        if commit_interval.is_zero() {
            return Err(invalid("commit-interval", "a duration above zero", "\"0s\""));
        }
        let batch_size = self.batch_size.unwrap_or(500);
        if batch_size == 0 {
            return Err(invalid("batch-size", "at least 1", "0"));
        }
        if self.threads == Some(0) {
            return Err(invalid("threads", "at least 1 (leave it out for one per core)", "0"));
        }
        if self.stage.is_empty() {
            return Err(ErrorKind::Missing {
                key: "stage".into(),
                why: "a pipeline needs at least one [[stage]]",
            });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut stages: Vec<Stage> = Vec::with_capacity(self.stage.len());
        for (i, s) in self.stage.into_iter().enumerate() {
            let stage = s.check(i, base, (&inputs, &globals), &stages)?;
            stages.push(stage);
        }
        let mut names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(
                "stage[].name",
                "a different name for each stage",
                &format!("{:?} twice", w[0]),
            ));
        }
        if let Some(t) = globals.iter().find(|t| {
            !stages
                .iter()
                .any(|s| s.kind == StageKind::GlobalTable && s.inputs.contains(&StageInput::Topic((*t).clone())))
        }) {
            return Err(invalid(
                "globals",
                "topics that a `global-table` stage reads",
                &format!("{t:?}, which no global-table stage reads"),
            ));
        }
        // A grouped table's outputs are changes for a table aggregation
        // (old values in a header): nothing else may take them.
        for (g, grouped) in stages.iter().enumerate() {
            if !matches!(&grouped.kind, StageKind::Table(t) if t.group_by.is_some()) {
                continue;
            }
            let readers: Vec<&Stage> = stages
                .iter()
                .filter(|s| s.inputs.contains(&StageInput::Stage(g)))
                .collect();
            let bad = readers
                .iter()
                .find(|s| !matches!(&s.kind, StageKind::Aggregate(a) if a.table));
            if readers.is_empty() || bad.is_some() || grouped.to.is_some() {
                let found = match (bad, &grouped.to) {
                    (Some(s), _) => format!("stage {:?} reads it", s.name),
                    (None, Some(t)) => format!("to = {t:?}"),
                    (None, None) => "no stage reads it".to_owned(),
                };
                return Err(invalid(
                    &format!("stage[{g}].group-by"),
                    "a grouped table read by `aggregate` stages only (a table aggregation), with no `to`",
                    &found,
                ));
            }
        }
        // An input nobody reads would be consumed and thrown away.
        if let Some(t) = inputs.iter().find(|t| {
            !stages
                .iter()
                .any(|s| s.inputs.contains(&StageInput::Topic((*t).clone())))
        }) {
            return Err(invalid(
                "inputs",
                "topics that some stage reads (a stage's `inputs` names them)",
                &format!("{t:?}, which no stage reads"),
            ));
        }
        if let Some(t) = &self.outputs.default {
            check_topic("outputs.default", t)?;
        }
        for (name, t) in &self.outputs.routes {
            check_topic(&format!("outputs.routes.{name}"), t)?;
        }
        if self.outputs.default.is_none() && self.outputs.routes.is_empty() && stages.iter().all(|s| s.to.is_none()) {
            return Err(ErrorKind::Missing {
                key: "outputs.default".into(),
                why: "outputs need a default topic or at least one route",
            });
        }
        let mut kafka = BTreeMap::new();
        for (k, v) in self.kafka {
            if RESERVED_KAFKA_KEYS.contains(&k.as_str()) {
                let expected = if k == "group.instance.id" {
                    "a property Weir does not set itself (it derives group.instance.id from \
                     application-id and --instance-id; `static-membership = false` turns it off)"
                } else {
                    "a property Weir does not set itself (the guarantee depends on this one)"
                };
                return Err(invalid(&format!("kafka.\"{k}\""), expected, &format!("{v:?}")));
            }
            kafka.insert(k.clone(), scalar(&format!("kafka.\"{k}\""), v)?);
        }
        let repartition_purge_interval = match self.repartition_purge_interval {
            Some(text) => units::parse_duration(&text)
                .map_err(|e| invalid("repartition-purge-interval", "a duration like \"30s\"", &e.to_string()))?,
            // Kafka Streams' repartition.purge.interval.ms.
            None => Duration::from_secs(30),
        };
        if let Some(p) = self.dev.partitions
            && p < 1
        {
            return Err(invalid("dev.partitions", "at least 1", &p.to_string()));
        }
        if let Some(t) = self
            .dev
            .samples
            .keys()
            .find(|t| !inputs.contains(t) && !globals.contains(t))
        {
            return Err(invalid(
                "dev.samples",
                "input topics of the pipeline, each with a sample generator",
                &format!("{t:?}, which is not an input"),
            ));
        }
        Ok(Pipeline {
            file: path.to_owned(),
            application_id,
            inputs,
            globals,
            stages,
            outputs: Outputs {
                default: self.outputs.default,
                routes: self.outputs.routes,
            },
            guarantee,
            timestamp_policy: self.timestamp_policy.unwrap_or_default(),
            commit_interval,
            batch_size,
            threads: self.threads,
            kafka,
            dev: DevSettings {
                sample: self.dev.sample,
                samples: self.dev.samples,
                partitions: self.dev.partitions,
            },
            // Kafka Streams' default is /tmp/kafka-streams; ours is alike.
            state_dir: self
                .state_dir
                .unwrap_or_else(|| std::env::temp_dir().join("weir-state")),
            static_membership: self.static_membership.unwrap_or(true),
            repartition_purge_interval,
        })
    }
}

impl RawStage {
    /// Checks stage `i`, given the pipeline's input topics and the stages
    /// before it (which alone it may read, so the graph has no cycles).
    fn check(
        self,
        i: usize,
        base: &Path,
        (topics, globals): (&[String], &[String]),
        earlier: &[Stage],
    ) -> Result<Stage, ErrorKind> {
        let key = |k: &str| format!("stage[{i}].{k}");
        let global_kind = self.kind.as_deref() == Some("global-table");
        let inputs = match &self.inputs {
            None if i == 0 => topics.iter().cloned().map(StageInput::Topic).collect(),
            None => vec![StageInput::Stage(i - 1)],
            Some(names) => {
                if names.is_empty() {
                    return Err(invalid(&key("inputs"), "at least one input topic or stage", "[]"));
                }
                let mut resolved = Vec::with_capacity(names.len());
                for n in names {
                    let stage = earlier.iter().position(|s| s.name == *n);
                    if globals.contains(n) && !global_kind {
                        return Err(invalid(
                            &key("inputs"),
                            "topics of `inputs` or earlier stages (a global topic is read by a global-table stage)",
                            &format!("{n:?}, a global topic"),
                        ));
                    }
                    let topic = topics.contains(n) || globals.contains(n);
                    let input = match (stage, topic) {
                        (Some(_), true) => {
                            return Err(invalid(
                                &key("inputs"),
                                "names that are either a stage or an input topic",
                                &format!("{n:?}, which is both (rename the stage)"),
                            ));
                        }
                        (Some(s), false) => StageInput::Stage(s),
                        (None, true) => StageInput::Topic(n.clone()),
                        (None, false) => {
                            return Err(invalid(
                                &key("inputs"),
                                "topics of the pipeline's `inputs` or names of earlier stages",
                                &format!("{n:?}"),
                            ));
                        }
                    };
                    if resolved.contains(&input) {
                        return Err(invalid(&key("inputs"), "each input once", &format!("{n:?} twice")));
                    }
                    resolved.push(input);
                }
                resolved
            }
        };
        if let Some(t) = &self.to {
            check_topic(&key("to"), t)?;
        }
        let is_table = matches!(self.kind.as_deref(), Some("table" | "global-table"));
        let module = match (self.module.clone(), is_table) {
            (Some(_), true) => {
                return Err(invalid(
                    &key("module"),
                    "no module in a \"table\" stage (it keeps the latest value per key of its input)",
                    "a module",
                ));
            }
            (None, true) => None,
            (Some(m), false) if m.is_absolute() => Some(m),
            (Some(m), false) => Some(base.join(m)),
            (None, false) => {
                return Err(ErrorKind::Missing {
                    key: key("module"),
                    why: "the path of the stage's .wasm component",
                });
            }
        };
        let set_keys = [
            ("window", self.window.is_some()),
            ("emit", self.emit.is_some()),
            ("idle-close", self.idle_close.is_some()),
            ("repartition", self.repartition.is_some()),
            ("partitions", self.partitions.is_some()),
            ("join", self.join.is_some()),
            ("key-field", self.key_field.is_some()),
            ("key-module", self.key_module.is_some()),
            ("group-by", self.group_by.is_some()),
        ];
        let refuse_keys =
            |kind: &str, allowed: &[&str]| match set_keys.iter().find(|(k, set)| *set && !allowed.contains(k)) {
                Some((k, _)) => Err(invalid(&key(k), &format!("no such key in a {kind:?} stage"), "a value")),
                None => Ok(()),
            };
        let kind = match self.kind.as_deref() {
            None | Some("process") => {
                refuse_keys("process", &[])?;
                StageKind::Process
            }
            Some("aggregate") => {
                refuse_keys(
                    "aggregate",
                    &["window", "emit", "idle-close", "repartition", "partitions"],
                )?;
                // Another stage may have re-keyed its records.
                let reads_a_stage = inputs.iter().any(|s| matches!(s, StageInput::Stage(_)));
                let grouped = |s: &StageInput| match s {
                    StageInput::Stage(s) => {
                        matches!(earlier.get(*s), Some(Stage { kind: StageKind::Table(t), .. }) if t.group_by.is_some())
                    }
                    StageInput::Topic(_) => false,
                };
                let table = match inputs.as_slice() {
                    [one] if grouped(one) => true,
                    more if more.iter().any(grouped) => {
                        return Err(invalid(
                            &key("inputs"),
                            "a grouped table alone: a table aggregation reads one grouped table",
                            &format!("{} inputs", more.len()),
                        ));
                    }
                    _ => false,
                };
                let aggregation = self.aggregation(i, reads_a_stage, table)?;
                StageKind::Aggregate(aggregation)
            }
            Some("table") => {
                refuse_keys("table", &["group-by"])?;
                match inputs.as_slice() {
                    [StageInput::Topic(_)] => {}
                    // A stage's results (an aggregate's, a process stage's
                    // on a table's changes…): repartitioned by their key.
                    [StageInput::Stage(s)] if !earlier.get(*s).is_some_and(|s| s.kind == StageKind::GlobalTable) => {}
                    _ => {
                        return Err(invalid(
                            &key("inputs"),
                            "one input topic or stage: a table is the latest value per key of one input",
                            &format!("{} inputs", inputs.len()),
                        ));
                    }
                }
                StageKind::Table(Table {
                    group_by: self
                        .group_by
                        .clone()
                        .map(|m| if m.is_absolute() { m } else { base.join(m) }),
                })
            }
            Some("global-table") => {
                refuse_keys("global-table", &[])?;
                match inputs.as_slice() {
                    [StageInput::Topic(t)] if globals.contains(t) => {}
                    _ => {
                        return Err(invalid(
                            &key("inputs"),
                            "one topic of `globals`: a global table is every partition of one topic",
                            &format!("{:?}", self.inputs.clone().unwrap_or_default()),
                        ));
                    }
                }
                StageKind::GlobalTable
            }
            Some("join") => {
                refuse_keys(
                    "join",
                    &[
                        "join",
                        "repartition",
                        "partitions",
                        "window",
                        "idle-close",
                        "key-field",
                        "key-module",
                    ],
                )?;
                StageKind::Join(self.join_spec(i, &inputs, earlier, base)?)
            }
            Some(other) => {
                return Err(invalid(
                    &key("kind"),
                    "one of \"process\", \"aggregate\", \"join\", \"table\", \"global-table\"",
                    &format!("{other:?}"),
                ));
            }
        };
        let on_error = match (self.on_error.as_deref(), self.dead_letter_topic) {
            (None | Some("fail"), None) => ErrorPolicy::Fail,
            (Some("skip"), None) => ErrorPolicy::Skip,
            (Some("dead-letter"), Some(topic)) => {
                check_topic(&key("dead-letter-topic"), &topic)?;
                ErrorPolicy::DeadLetter(topic)
            }
            (Some("dead-letter"), None) => {
                return Err(ErrorKind::Missing {
                    key: key("dead-letter-topic"),
                    why: "on-error = \"dead-letter\" needs the topic to write to",
                });
            }
            (None | Some("fail" | "skip"), Some(_)) => {
                return Err(invalid(
                    &key("dead-letter-topic"),
                    "no dead-letter topic unless on-error = \"dead-letter\"",
                    "a topic",
                ));
            }
            (Some(other), _) => {
                return Err(invalid(
                    &key("on-error"),
                    "one of \"fail\", \"skip\", \"dead-letter\"",
                    &format!("{other:?}"),
                ));
            }
        };
        let name = match self.name {
            Some(n) if !n.is_empty() => n,
            Some(_) => return Err(invalid(&key("name"), "a non-empty name", "\"\"")),
            None => module
                .as_deref()
                .and_then(Path::file_stem)
                .map_or_else(|| format!("stage-{i}"), |s| s.to_string_lossy().into_owned()),
        };
        let config = self
            .config
            .into_iter()
            .map(|(k, v)| Ok((k.clone(), scalar(&format!("{}.{k}", key("config")), v)?)))
            .collect::<Result<_, ErrorKind>>()?;
        Ok(Stage {
            name,
            inputs,
            to: self.to,
            module,
            kind,
            config,
            on_error,
        })
    }
}

impl RawStage {
    /// A join's spec, from its two inputs (left, right) and `join`.
    fn join_spec(&self, i: usize, inputs: &[StageInput], earlier: &[Stage], base: &Path) -> Result<Join, ErrorKind> {
        let key = |k: &str| format!("stage[{i}].{k}");
        if self.inputs.is_none() {
            return Err(ErrorKind::Missing {
                key: key("inputs"),
                why: "a join names its two inputs, left then right",
            });
        }
        let [left, right] = inputs else {
            return Err(invalid(
                &key("inputs"),
                "two inputs, left then right",
                &format!("{} inputs", inputs.len()),
            ));
        };
        let is_table = |input: &StageInput| match input {
            StageInput::Stage(s) => earlier.get(*s).is_some_and(|s| s.kind.is_table()),
            StageInput::Topic(_) => false,
        };
        let kind = match self.join.as_deref() {
            None | Some("inner") => JoinKind::Inner,
            Some("left") => JoinKind::Left,
            Some("outer") => JoinKind::Outer,
            Some(other) => {
                return Err(invalid(
                    &key("join"),
                    "\"inner\", \"left\" or \"outer\"",
                    &format!("{other:?}"),
                ));
            }
        };
        let is_global = |input: &StageInput| match input {
            StageInput::Stage(s) => earlier.get(*s).is_some_and(|s| s.kind == StageKind::GlobalTable),
            StageInput::Topic(_) => false,
        };
        if is_global(left) {
            return Err(invalid(
                &key("inputs"),
                "a stream on the left of a join with a global table",
                "a global table on the left",
            ));
        }
        if let StageInput::Stage(table) = right
            && is_global(right)
        {
            if is_table(left) {
                return Err(invalid(
                    &key("inputs"),
                    "a stream on the left of a join with a global table",
                    "a table",
                ));
            }
            if kind == JoinKind::Outer {
                return Err(invalid(
                    &key("join"),
                    "\"inner\" or \"left\" for a join with a global table",
                    "\"outer\"",
                ));
            }
            for (k, set) in [
                ("window", self.window.is_some()),
                ("idle-close", self.idle_close.is_some()),
                ("repartition", self.repartition.is_some()),
                ("partitions", self.partitions.is_some()),
            ] {
                if set {
                    return Err(invalid(&key(k), "no such key in a join with a global table", "a value"));
                }
            }
            let key = match (&self.key_field, &self.key_module) {
                (Some(_), Some(_)) => {
                    return Err(invalid(&key("key-module"), "either key-field or key-module", "both"));
                }
                (Some(f), None) => LookupKey::Field(f.clone()),
                (None, Some(m)) if m.is_absolute() => LookupKey::Module(m.clone()),
                (None, Some(m)) => LookupKey::Module(base.join(m)),
                (None, None) => LookupKey::RecordKey,
            };
            return Ok(Join {
                kind,
                shape: JoinShape::StreamGlobal { table: *table, key },
                repartition: false,
                partitions: None,
                idle_close: None,
            });
        }
        if self.key_field.is_some() {
            return Err(invalid(
                &key("key-field"),
                "key-field only in a join with a global table",
                "a value",
            ));
        }
        let shape = match (left, right) {
            (StageInput::Stage(l), StageInput::Stage(r)) if is_table(left) && is_table(right) => {
                JoinShape::TableTable { left: *l, right: *r }
            }
            (_, StageInput::Stage(t)) if !is_table(left) && is_table(right) => JoinShape::StreamTable { table: *t },
            _ if is_table(left) => {
                return Err(invalid(
                    &key("inputs"),
                    "a stream or a table on the left and a table on the right",
                    "a table on the left and a stream on the right (swap them)",
                ));
            }
            (StageInput::Topic(_), StageInput::Topic(_)) => {
                let window = self.window.as_ref().ok_or_else(|| ErrorKind::Missing {
                    key: key("window"),
                    why: "a join of two streams joins records within a window (within, or before and after)",
                })?;
                JoinShape::StreamStream {
                    window: window.join_window(i)?,
                }
            }
            _ => {
                return Err(invalid(
                    &key("inputs"),
                    "input topics on both sides of a stream-stream join (joining a stage's results, \
                     which would need repartitioning, is not available in this version)",
                    "a stage",
                ));
            }
        };
        let idle_close = self
            .idle_close
            .as_deref()
            .map(|t| duration(&key("idle-close"), t))
            .transpose()?;
        if !matches!(shape, JoinShape::StreamStream { .. }) {
            for (k, set) in [("window", self.window.is_some()), ("idle-close", idle_close.is_some())] {
                if set {
                    return Err(invalid(&key(k), "no such key but in a stream-stream join", "a value"));
                }
            }
        }
        if matches!(shape, JoinShape::StreamStream { .. }) {
            if let Some((k, _)) = [
                ("repartition", self.repartition.is_some()),
                ("partitions", self.partitions.is_some()),
            ]
            .iter()
            .find(|(_, set)| *set)
            {
                return Err(invalid(
                    &key(k),
                    "no such key in a stream-stream join of two topics",
                    "a value",
                ));
            }
            return Ok(Join {
                kind,
                shape,
                repartition: false,
                partitions: None,
                idle_close,
            });
        }
        if let JoinShape::TableTable { .. } = shape {
            // Two tables of one task: nothing to repartition.
            if let Some((k, _)) = [
                ("repartition", self.repartition.is_some()),
                ("partitions", self.partitions.is_some()),
            ]
            .iter()
            .find(|(_, set)| *set)
            {
                return Err(invalid(&key(k), "no such key in a table-table join", "a value"));
            }
            return Ok(Join {
                kind,
                shape,
                repartition: false,
                partitions: None,
                idle_close: None,
            });
        }
        if kind == JoinKind::Outer {
            return Err(invalid(
                &key("join"),
                "\"inner\" or \"left\" for a stream-table join (a table alone never emits)",
                "\"outer\"",
            ));
        }
        if let Some(p) = self.partitions
            && p < 1
        {
            return Err(invalid(&key("partitions"), "at least 1", &p.to_string()));
        }
        let repartition = self.repartition.unwrap_or(matches!(left, StageInput::Stage(_)));
        if self.partitions.is_some() && !repartition {
            return Err(invalid(
                &key("partitions"),
                "partitions only for a stage that repartitions",
                "repartition = false",
            ));
        }
        Ok(Join {
            kind,
            shape,
            repartition,
            partitions: self.partitions,
            idle_close: None,
        })
    }

    fn aggregation(&self, i: usize, reads_a_stage: bool, table: bool) -> Result<Aggregation, ErrorKind> {
        let key = |k: &str| format!("stage[{i}].{k}");
        let window = self.window.as_ref().map(|w| w.check(i)).transpose()?;
        if table && window.is_some() {
            return Err(invalid(
                &key("window"),
                "no window in a table aggregation (it reads a grouped table: rows, not events)",
                "a window",
            ));
        }
        let emit = match self.emit.as_deref() {
            None | Some("update") => Emit::Update,
            Some("final") => Emit::Final,
            Some(other) => return Err(invalid(&key("emit"), "\"update\" or \"final\"", &format!("{other:?}"))),
        };
        let idle_close = match &self.idle_close {
            None => None,
            Some(text) => Some(duration(&key("idle-close"), text)?),
        };
        if idle_close.is_some() && (emit != Emit::Final || window.is_none()) {
            return Err(invalid(
                &key("idle-close"),
                "idle-close only with a window and emit = \"final\"",
                "idle-close without them",
            ));
        }
        if emit == Emit::Final && window.is_none() {
            return Err(invalid(
                &key("emit"),
                "\"update\" without a window (a window is what closes)",
                "\"final\"",
            ));
        }
        if let Some(p) = self.partitions
            && p < 1
        {
            return Err(invalid(&key("partitions"), "at least 1", &p.to_string()));
        }
        let repartition = self.repartition.unwrap_or(reads_a_stage);
        if self.partitions.is_some() && !repartition {
            return Err(invalid(
                &key("partitions"),
                "partitions only for a stage that repartitions",
                "repartition = false",
            ));
        }
        Ok(Aggregation {
            window,
            emit,
            idle_close,
            repartition,
            partitions: self.partitions,
            table,
        })
    }
}

impl RawWindow {
    fn check(&self, i: usize) -> Result<Windowing, ErrorKind> {
        let key = |k: &str| format!("stage[{i}].window.{k}");
        let ms = |k: &str, v: &Option<String>| -> Result<Option<i64>, ErrorKind> {
            v.as_ref()
                .map(|text| duration(&key(k), text).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
                .transpose()
        };
        let need = |k: &str, v: Option<i64>| {
            v.ok_or_else(|| ErrorKind::Missing {
                key: key(k),
                why: "this kind of window needs it",
            })
        };
        let (size, advance, gap) = (
            ms("size", &self.size)?,
            ms("advance", &self.advance)?,
            ms("gap", &self.gap)?,
        );
        let unused = |k: &str, v: Option<i64>| match v {
            Some(_) => Err(invalid(&key(k), "no such key for this kind of window", "a value")),
            None => Ok(()),
        };
        for (k, v) in [
            ("before", &self.before),
            ("after", &self.after),
            ("within", &self.within),
        ] {
            if v.is_some() {
                return Err(invalid(
                    &key(k),
                    "no such key in an aggregate's window (a join's window has it)",
                    "a value",
                ));
            }
        }
        let kind = match self.kind.as_deref() {
            Some("tumbling") => {
                unused("advance", advance)?;
                unused("gap", gap)?;
                WindowKind::Tumbling {
                    size: need("size", size)?,
                }
            }
            Some("hopping") => {
                unused("gap", gap)?;
                WindowKind::Hopping {
                    size: need("size", size)?,
                    advance: need("advance", advance)?,
                }
            }
            Some("session") => {
                unused("size", size)?;
                unused("advance", advance)?;
                WindowKind::Session { gap: need("gap", gap)? }
            }
            Some("sliding") => {
                unused("advance", advance)?;
                unused("gap", gap)?;
                WindowKind::Sliding {
                    size: need("size", size)?,
                }
            }
            Some(other) => {
                return Err(invalid(
                    &key("kind"),
                    "one of \"tumbling\", \"hopping\", \"session\", \"sliding\"",
                    &format!("{other:?}"),
                ));
            }
            None => {
                return Err(ErrorKind::Missing {
                    key: key("kind"),
                    why: "tumbling, hopping, session or sliding",
                });
            }
        };
        let grace = ms("grace", &self.grace)?.unwrap_or(0);
        Windowing::new(kind, grace).map_err(|e| invalid(&key("kind"), "a window that works", &e.to_string()))
    }
}

impl RawWindow {
    /// A stream-stream join's window: `before`/`after` (or `within` for
    /// both) and `grace` (default 0).
    fn join_window(&self, i: usize) -> Result<JoinWindow, ErrorKind> {
        let key = |k: &str| format!("stage[{i}].window.{k}");
        let ms = |k: &str, v: &Option<String>| -> Result<Option<i64>, ErrorKind> {
            v.as_ref()
                .map(|text| duration(&key(k), text).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
                .transpose()
        };
        for (k, set) in [
            ("kind", self.kind.is_some()),
            ("size", self.size.is_some()),
            ("advance", self.advance.is_some()),
            ("gap", self.gap.is_some()),
        ] {
            if set {
                return Err(invalid(
                    &key(k),
                    "no such key in a join's window (it has before, after or within, and grace)",
                    "a value",
                ));
            }
        }
        let within = ms("within", &self.within)?;
        let (before, after) = match (within, ms("before", &self.before)?, ms("after", &self.after)?) {
            (Some(w), None, None) => (w, w),
            (None, Some(b), Some(a)) => (b, a),
            (None, Some(b), None) => (b, 0),
            (None, None, Some(a)) => (0, a),
            (Some(_), _, _) => {
                return Err(invalid(&key("within"), "either within, or before and after", "both"));
            }
            (None, None, None) => {
                return Err(ErrorKind::Missing {
                    key: key("within"),
                    why: "a join's window says how far apart records may be (within, or before and after)",
                });
            }
        };
        Ok(JoinWindow {
            before,
            after,
            grace: ms("grace", &self.grace)?.unwrap_or(0),
        })
    }
}

fn duration(key: &str, text: &str) -> Result<Duration, ErrorKind> {
    units::parse_duration(text).map_err(|e| invalid(key, "a duration like \"100ms\" or \"2s\"", &e.to_string()))
}

fn invalid(key: &str, expected: &str, found: &str) -> ErrorKind {
    ErrorKind::Invalid {
        key: key.to_owned(),
        expected: expected.to_owned(),
        found: found.to_owned(),
    }
}

/// A string, number or boolean as the text librdkafka and guests expect.
fn scalar(key: &str, v: toml::Value) -> Result<String, ErrorKind> {
    match v {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(invalid(key, "a string, number or boolean", other.type_str())),
    }
}

/// Kafka's topic name rule: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn check_topic(key: &str, t: &str) -> Result<(), ErrorKind> {
    let ok = !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            "a Kafka topic name (1–249 of a-z A-Z 0-9 . _ -)",
            &format!("{t:?}"),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pipeline, PipelineError> {
        Pipeline::parse(Path::new("/p/pipe.toml"), text)
    }

    const MINIMAL: &str = r#"
application-id = "app"
inputs = ["in"]
[[stage]]
module = "m/upper.wasm"
[outputs]
default = "out"
"#;

    #[test]
    fn minimal_file_gets_defaults() {
        let p = parse(MINIMAL).unwrap();
        assert_eq!(p.guarantee, Guarantee::ExactlyOnce);
        assert_eq!(p.commit_interval, Duration::from_millis(100));
        assert_eq!(p.stages[0].name, "upper");
        assert_eq!(p.stages[0].module, Some(PathBuf::from("/p/m/upper.wasm")));
        assert_eq!(p.stages[0].on_error, ErrorPolicy::Fail);
        assert_eq!(p.batch_size, 500);
        assert!(p.static_membership);
        assert_eq!(p.repartition_purge_interval, Duration::from_secs(30));
    }

    #[test]
    fn invalid_timestamps_fail_unless_the_pipeline_says_otherwise() {
        let with = |policy: &str| {
            MINIMAL.replace(
                "inputs = [\"in\"]",
                &format!("inputs = [\"in\"]\ntimestamp-policy = {policy}"),
            )
        };
        assert_eq!(parse(MINIMAL).unwrap().timestamp_policy, TimestampPolicy::Fail);
        assert_eq!(
            parse(&with("\"log-and-skip\"")).unwrap().timestamp_policy,
            TimestampPolicy::LogAndSkip
        );
        assert_eq!(
            parse(&with("\"wall-clock\"")).unwrap().timestamp_policy,
            TimestampPolicy::WallClock
        );
        let e = error(&with("\"zero\""));
        assert!(e.contains("timestamp-policy") || e.contains("zero"), "{e}");
        let now = || 1_700;
        for policy in [
            TimestampPolicy::Fail,
            TimestampPolicy::LogAndSkip,
            TimestampPolicy::WallClock,
        ] {
            assert_eq!(policy.stamp(Some(0), now), Stamp::Use(0), "{policy}: 0 is a valid time");
            assert_eq!(policy.stamp(Some(42), now), Stamp::Use(42));
        }
        for raw in [None, Some(-1), Some(i64::MIN)] {
            assert_eq!(TimestampPolicy::Fail.stamp(raw, now), Stamp::Fail, "{raw:?}");
            assert_eq!(TimestampPolicy::LogAndSkip.stamp(raw, now), Stamp::Skip, "{raw:?}");
            assert_eq!(TimestampPolicy::WallClock.stamp(raw, now), Stamp::Use(1_700), "{raw:?}");
        }
    }

    #[test]
    fn processing_threads() {
        assert_eq!(
            parse(MINIMAL).unwrap().threads,
            None,
            "default: one per core, decided at run time"
        );
        let with = |n: &str| MINIMAL.replace("inputs = [\"in\"]", &format!("inputs = [\"in\"]\nthreads = {n}"));
        assert_eq!(parse(&with("3")).unwrap().threads, Some(3));
        let e = error(&with("0"));
        assert!(e.contains("threads") && e.contains("at least 1"), "{e}");
        assert!(error(&with("\"many\"")).contains("threads"));
    }

    #[test]
    fn membership_and_purge_settings() {
        let p = parse(&MINIMAL.replace(
            "inputs = [\"in\"]",
            "inputs = [\"in\"]\nstatic-membership = false\nrepartition-purge-interval = \"2s\"",
        ))
        .unwrap();
        assert!(!p.static_membership);
        assert_eq!(p.repartition_purge_interval, Duration::from_secs(2));
        let e = error(&format!("{MINIMAL}[kafka]\n\"group.instance.id\" = \"x\"\n"));
        assert!(
            e.contains("group.instance.id") && e.contains("static-membership = false"),
            "{e}"
        );
        let e = error(&MINIMAL.replace(
            "inputs = [\"in\"]",
            "inputs = [\"in\"]\nrepartition-purge-interval = \"soon\"",
        ));
        assert!(e.contains("repartition-purge-interval"), "{e}");
    }

    #[test]
    fn full_file() {
        let p = parse(
            r#"
application-id = "app"
inputs = ["a", "b"]
guarantee = "at-least-once"
commit-interval = "2s"
batch-size = 10
[[stage]]
name = "route"
module = "/abs/r.wasm"
kind = "process"
on-error = "dead-letter"
dead-letter-topic = "dlq"
config = { field = "type", n = 3, on = true }
[outputs]
routes = { x = "tx" }
[kafka]
"bootstrap.servers" = "h:1"
"linger.ms" = 5
[dev]
sample = "trades"
"#,
        )
        .unwrap();
        assert_eq!(p.guarantee, Guarantee::AtLeastOnce);
        assert_eq!(p.commit_interval, Duration::from_secs(2));
        assert_eq!(p.stages[0].on_error, ErrorPolicy::DeadLetter("dlq".into()));
        assert_eq!(p.stages[0].config["n"], "3");
        assert_eq!(p.stages[0].config["on"], "true");
        assert_eq!(p.kafka["linger.ms"], "5");
        assert_eq!(p.output_topics(), vec!["dlq", "tx"]);
        assert_eq!(p.dev.sample.as_deref(), Some("trades"));
    }

    #[track_caller]
    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = error(&format!("{MINIMAL}\n[dev]\nsampel = 1"));
        assert!(e.contains("/p/pipe.toml") && e.contains("sampel"), "{e}");
        let e = error(&MINIMAL.replace("kind", "x").replace("module =", "modul ="));
        assert!(e.contains("modul"), "{e}");
    }

    /// A table of customers and an order stream left-joined to it (also
    /// the topology's tests).
    pub(crate) const ENRICH: &str = r#"
application-id = "shop"
inputs = ["orders", "customers"]
[[stage]]
name = "customer-table"
kind = "table"
inputs = ["customers"]
[[stage]]
name = "enrich"
kind = "join"
join = "left"
inputs = ["orders", "customer-table"]
module = "pair.wasm"
[outputs]
default = "out"
"#;

    #[test]
    fn a_table_and_a_stream_table_join_parse() {
        let p = Pipeline::parse(Path::new("/p/pipe.toml"), ENRICH).unwrap();
        assert_eq!(p.stages[0].kind, StageKind::Table(Table::default()));
        assert_eq!(p.stages[0].module, None);
        assert_eq!(
            p.stages[1].kind,
            StageKind::Join(Join {
                kind: JoinKind::Left,
                shape: JoinShape::StreamTable { table: 0 },
                repartition: false,
                partitions: None,
                idle_close: None,
            })
        );
        // A stream side that is a stage may have been re-keyed: repartitioned.
        let rekeyed = ENRICH
            .replace("inputs = [\"orders\", \"customer-table\"]", "inputs = [\"by-customer\", \"customer-table\"]")
            .replace(
                "[[stage]]\nname = \"enrich\"",
                "[[stage]]\nname = \"by-customer\"\ninputs = [\"orders\"]\nmodule = \"k.wasm\"\n[[stage]]\nname = \"enrich\"",
            );
        let p = Pipeline::parse(Path::new("/p/pipe.toml"), &rekeyed).unwrap();
        assert!(matches!(&p.stages[2].kind, StageKind::Join(j) if j.repartition));
    }

    #[test]
    fn a_table_table_join_parses_with_every_kind() {
        let two = r#"
application-id = "bank"
inputs = ["accounts", "limits"]
[[stage]]
name = "account-table"
kind = "table"
inputs = ["accounts"]
[[stage]]
name = "limit-table"
kind = "table"
inputs = ["limits"]
[[stage]]
name = "with-limits"
kind = "join"
join = "outer"
inputs = ["account-table", "limit-table"]
module = "pair.wasm"
[outputs]
default = "out"
"#;
        let p = Pipeline::parse(Path::new("/p/pipe.toml"), two).unwrap();
        let StageKind::Join(j) = &p.stages[2].kind else {
            panic!("a join")
        };
        assert_eq!(j.shape, JoinShape::TableTable { left: 0, right: 1 });
        assert_eq!(j.kind, JoinKind::Outer);
        assert!(p.stages[2].kind.is_table(), "its result is a table");
        let e = error(&two.replace("join = \"outer\"", "join = \"outer\"\nrepartition = true"));
        assert!(e.contains("stage[2].repartition"), "{e}");
    }

    const GLOBAL: &str = r#"
application-id = "desk"
inputs = ["trades"]
globals = ["instruments"]
[[stage]]
name = "instrument-table"
kind = "global-table"
inputs = ["instruments"]
[[stage]]
name = "enrich"
kind = "join"
join = "left"
inputs = ["trades", "instrument-table"]
key-field = "isin"
module = "pair.wasm"
[outputs]
default = "out"
"#;

    #[test]
    fn a_global_table_join_parses_and_refuses_what_it_cannot_do() {
        let p = Pipeline::parse(Path::new("/p/pipe.toml"), GLOBAL).unwrap();
        assert_eq!(p.globals, vec!["instruments".to_owned()]);
        assert_eq!(p.stages[0].kind, StageKind::GlobalTable);
        let StageKind::Join(j) = &p.stages[1].kind else {
            panic!("a join")
        };
        assert_eq!(
            j.shape,
            JoinShape::StreamGlobal {
                table: 0,
                key: LookupKey::Field("isin".into())
            }
        );
        let cases = [
            (GLOBAL.replace("globals = [\"instruments\"]", "globals = [\"trades\"]"), "globals[0]"),
            (GLOBAL.replace("kind = \"global-table\"", "kind = \"table\""), "stage[0].inputs"),
            (GLOBAL.replace("join = \"left\"", "join = \"outer\""), "stage[1].join"),
            (
                GLOBAL.replace("[\"trades\", \"instrument-table\"]", "[\"instrument-table\", \"trades\"]"),
                "a global table on the left",
            ),
            (GLOBAL.replace("key-field = \"isin\"", "key-field = \"isin\"\nwindow = { within = \"1s\" }"), "stage[1].window"),
            (
                GLOBAL.replace("[[stage]]\nname = \"enrich\"", "[[stage]]\nname = \"x\"\ninputs = [\"instruments\"]\nmodule = \"m.wasm\"\n[[stage]]\nname = \"enrich\""),
                "a global topic",
            ),
        ];
        for (text, expected) in &cases {
            let e = error(text);
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
        }
        let by_module = Pipeline::parse(
            Path::new("/p/pipe.toml"),
            &GLOBAL.replace("key-field = \"isin\"", "key-module = \"k.wasm\""),
        )
        .unwrap();
        assert!(matches!(
            &by_module.stages[1].kind,
            StageKind::Join(Join { shape: JoinShape::StreamGlobal { key: LookupKey::Module(m), .. }, .. })
                if m == Path::new("/p/k.wasm")
        ));
        let e = error(&GLOBAL.replace("key-field = \"isin\"", "key-field = \"isin\"\nkey-module = \"k.wasm\""));
        assert!(e.contains("either key-field or key-module"), "{e}");
        let unread = "application-id = \"a\"\ninputs = [\"t\"]\nglobals = [\"g\"]\n\
                      [[stage]]\nmodule = \"m.wasm\"\n[outputs]\ndefault = \"o\"\n";
        let e = error(unread);
        assert!(
            e.contains("globals") && e.contains("no global-table stage reads"),
            "{e}"
        );
    }

    #[test]
    fn joins_and_tables_refuse_what_they_cannot_do() {
        let cases = [
            (ENRICH.replace("join = \"left\"", "join = \"outer\""), "stage[1].join"),
            (ENRICH.replace("join = \"left\"", "join = \"full\""), "stage[1].join"),
            (
                ENRICH.replace("[\"orders\", \"customer-table\"]", "[\"customer-table\", \"orders\"]"),
                "swap them",
            ),
            (
                ENRICH.replace("[\"orders\", \"customer-table\"]", "[\"orders\", \"customers\"]"),
                "stage[1].window` is missing",
            ),
            (
                ENRICH.replace("[\"orders\", \"customer-table\"]", "[\"orders\"]"),
                "two inputs",
            ),
            (
                ENRICH.replace(
                    "inputs = [\"customers\"]",
                    "inputs = [\"customers\"]\nmodule = \"x.wasm\"",
                ),
                "stage[0].module",
            ),
            (
                ENRICH.replace("inputs = [\"customers\"]", "inputs = [\"customers\", \"orders\"]"),
                "one input topic",
            ),
            (
                ENRICH.replace(
                    "join = \"left\"",
                    "join = \"left\"\nwindow = { kind = \"tumbling\", size = \"1s\" }",
                ),
                "stage[1].window",
            ),
            (
                ENRICH.replace("join = \"left\"", "join = \"left\"\npartitions = 3"),
                "stage[1].partitions",
            ),
        ];
        for (text, expected) in cases {
            let e = error(&text);
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
        }
    }

    #[test]
    fn bad_values_name_key_and_expectation() {
        let e = error(&MINIMAL.replace("[outputs]", "on-error = \"retry\"\n[outputs]"));
        assert!(e.contains("stage[0].on-error") && e.contains("\"retry\""), "{e}");
        let e = error(&MINIMAL.replace("[outputs]", "on-error = \"dead-letter\"\n[outputs]"));
        assert!(e.contains("stage[0].dead-letter-topic` is missing"), "{e}");
        let e = error(&format!("commit-interval = \"soon\"\n{MINIMAL}"));
        assert!(e.contains("commit-interval"), "{e}");
        let e = error(&MINIMAL.replace("\"out\"", "\"bad topic\""));
        assert!(e.contains("outputs.default"), "{e}");
        let e = error(&format!("{MINIMAL}\n[kafka]\n\"transactional.id\" = \"x\""));
        assert!(e.contains("transactional.id"), "{e}");
        let e = error(&MINIMAL.replace("[outputs]", "kind = \"join\"\n[outputs]"));
        assert!(e.contains("stage[0].inputs` is missing"), "{e}");
        let e = error(&MINIMAL.replace("[outputs]", "kind = \"window\"\n[outputs]"));
        assert!(e.contains("stage[0].kind") && e.contains("\"table\""), "{e}");
        let e = error(&MINIMAL.replace("[outputs]", "kind = \"aggregate\"\nemit = \"final\"\n[outputs]"));
        assert!(e.contains("stage[0].emit"), "{e}");
        let e = error(&MINIMAL.replace(
            "[outputs]",
            "kind = \"aggregate\"\nwindow = { kind = \"tumbling\" }\n[outputs]",
        ));
        assert!(e.contains("stage[0].window.size` is missing"), "{e}");
        let e = error(&MINIMAL.replace(
            "[outputs]",
            "window = { kind = \"tumbling\", size = \"1s\" }\n[outputs]",
        ));
        assert!(e.contains("stage[0].window"), "{e}");
        let e = error(&MINIMAL.replace(
            "[outputs]",
            "kind = \"aggregate\"\nwindow = { kind = \"hopping\", size = \"1s\", advance = \"2s\" }\n[outputs]",
        ));
        assert!(e.contains("advance"), "{e}");
        let e = error(&MINIMAL.replace("application-id = \"app\"", ""));
        assert!(e.contains("application-id` is missing"), "{e}");
        let e = error("application-id = 3");
        assert!(e.contains("application-id"), "{e}");
    }

    const GRAPH: &str = r#"
application-id = "app"
inputs = ["a", "b"]
[[stage]]
name = "p"
module = "p.wasm"
inputs = ["a"]
[[stage]]
name = "q"
module = "q.wasm"
inputs = ["p", "b"]
to = "q-out"
[[stage]]
name = "agg"
kind = "aggregate"
module = "c.wasm"
inputs = ["b"]
[outputs]
default = "out"
"#;

    #[test]
    fn stages_name_their_inputs_and_a_list_without_them_is_a_chain() {
        let p = parse(GRAPH).unwrap();
        assert_eq!(p.stages[0].inputs, [StageInput::Topic("a".into())]);
        assert_eq!(
            p.stages[1].inputs,
            [StageInput::Stage(0), StageInput::Topic("b".into())]
        );
        assert_eq!(p.stages[1].to.as_deref(), Some("q-out"));
        assert_eq!(p.output_topics(), ["out", "q-out"]);
        // An aggregate that reads only topics does not repartition unless told.
        let StageKind::Aggregate(a) = &p.stages[2].kind else {
            panic!("not an aggregate")
        };
        assert!(!a.repartition);
        // The chain: the first stage reads every input, the others the one before.
        let chain = parse(&MINIMAL.replace("[outputs]", "[[stage]]\nmodule = \"n.wasm\"\n[outputs]")).unwrap();
        assert_eq!(chain.stages[0].inputs, [StageInput::Topic("in".into())]);
        assert_eq!(chain.stages[1].inputs, [StageInput::Stage(0)]);
    }

    #[test]
    fn stage_inputs_must_name_what_exists_before_them() {
        let q = "inputs = [\"p\", \"b\"]";
        for (edits, want) in [
            (vec![(q, "inputs = [\"agg\"]")], "\"agg\""),
            (vec![(q, "inputs = [\"nope\"]")], "\"nope\""),
            (vec![(q, "inputs = [\"b\", \"b\"]")], "\"b\" twice"),
            (vec![(q, "inputs = []")], "at least one"),
            (
                vec![("name = \"p\"", "name = \"b\""), (q, "inputs = [\"b\"]")],
                "which is both",
            ),
            (
                vec![(q, "inputs = [\"p\"]"), ("inputs = [\"b\"]", "inputs = [\"q\"]")],
                "\"b\", which no stage reads",
            ),
            (vec![("to = \"q-out\"", "to = \"no way\"")], "stage[1].to"),
        ] {
            let text = edits
                .iter()
                .fold(GRAPH.to_owned(), |t, (from, to)| t.replacen(from, to, 1));
            let e = error(&text);
            assert!(e.contains(want), "{edits:?}: {e}");
        }
    }

    #[test]
    fn aggregate_stages() {
        let p = parse(
            r#"
application-id = "app"
inputs = ["in"]
state-dir = "/var/weir"
[[stage]]
module = "k.wasm"
[[stage]]
name = "latest"
kind = "aggregate"
module = "l.wasm"
emit = "final"
idle-close = "5s"
window = { kind = "tumbling", size = "2s", grace = "500ms" }
[[stage]]
name = "count"
kind = "aggregate"
module = "c.wasm"
repartition = true
partitions = 1
[outputs]
default = "out"
"#,
        )
        .unwrap();
        assert_eq!(p.state_dir, PathBuf::from("/var/weir"));
        let StageKind::Aggregate(a) = &p.stages[1].kind else {
            panic!("not an aggregate")
        };
        assert_eq!(a.emit, Emit::Final);
        assert_eq!(a.idle_close, Some(Duration::from_secs(5)));
        assert!(a.repartition, "a stage precedes it");
        assert_eq!(
            a.window,
            Some(Windowing {
                kind: WindowKind::Tumbling { size: 2000 },
                grace: 500
            })
        );
        let StageKind::Aggregate(c) = &p.stages[2].kind else {
            panic!("not an aggregate")
        };
        assert_eq!((c.emit, c.window, c.partitions), (Emit::Update, None, Some(1)));
        let sliding = parse(&MINIMAL.replace(
            "[outputs]",
            "kind = \"aggregate\"\nwindow = { kind = \"sliding\", size = \"5s\", grace = \"1s\" }\n[outputs]",
        ))
        .unwrap();
        assert!(matches!(
            &sliding.stages[0].kind,
            StageKind::Aggregate(Aggregation {
                window: Some(Windowing {
                    kind: WindowKind::Sliding { size: 5000 },
                    grace: 1000
                }),
                ..
            })
        ));
        let first = parse(&MINIMAL.replace("[outputs]", "kind = \"aggregate\"\n[outputs]")).unwrap();
        assert!(matches!(&first.stages[0].kind, StageKind::Aggregate(a) if !a.repartition));
    }

    #[test]
    fn unreadable_file_names_it() {
        let e = Pipeline::load(Path::new("/nonexistent/p.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/p.toml") && e.contains("cannot read"), "{e}");
    }
}
