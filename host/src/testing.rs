//! The broker-free pipeline driver, like Kafka Streams' `TopologyTestDriver`:
//! `weir test PIPELINE.toml`, and [`Driver`] for users' own Rust tests.
//!
//! The pipeline runs on the same [`Chain`] and [`Task`]s as `weir run`, one
//! task per sub-topology, with every topic in memory and one partition each:
//! the inputs, the repartition topics between sub-topologies, the outputs,
//! dead letters and changelogs. Stores are in memory
//! ([`Store::in_memory`](crate::state::Store::in_memory)). A record piped in
//! goes through the whole pipeline — repartition topics included — before
//! the next one, and every step commits, so `update` stages emit per batch
//! exactly as `weir run` does with batches of that size. The wall clock
//! moves only when told ([`Driver::advance_wall_clock`]), for `idle-close`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::codec::BatchEncoder;
use crate::event::{Event, Header, Window};
use crate::jsonl::bytes_json;
use crate::pipeline::{Pipeline, Stamp, TimestampPolicy};
use crate::runtime::{EmitRequest, Runtime};
use crate::state::StateError;
use crate::state::global::{GlobalStore, Record};
use crate::state::keys::{self, Entry};
use crate::state::row;
use crate::state::row::TableView;
use crate::state::{Changelog, Store};
use crate::task::{Chain, ChainError, MemorySink, OpenError, SentRecord, Task, TaskError};
use crate::units::now_ms;

/// The driver could not run the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The pipeline's modules could not be loaded.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A task could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A task stopped (its error policy is `fail`, or an invariant broke).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A record was piped into a topic the pipeline does not read.
    #[error("{topic} is not an input of the pipeline (its inputs: {inputs})")]
    NotAnInput {
        /// The topic.
        topic: String,
        /// The pipeline's inputs.
        inputs: String,
    },
    /// A record went to a repartition topic that no sub-topology reads (a
    /// bug in Weir).
    #[error("a record went to repartition topic {topic}, which no sub-topology reads")]
    NoReader {
        /// The topic.
        topic: String,
    },
    /// A record's timestamp is negative and the pipeline's
    /// `timestamp-policy` is `fail`.
    #[error(
        "a record piped into {topic} has timestamp {timestamp}, not a valid time; set \
         timestamp-policy = \"log-and-skip\" or \"wall-clock\" in the pipeline file to go on"
    )]
    InvalidTimestamp {
        /// The topic.
        topic: String,
        /// The timestamp.
        timestamp: i64,
    },
    /// A stage's `emit` failed while showing its store.
    #[error("stage {stage}: emit failed while showing its store: {reason}")]
    Emit {
        /// The stage.
        stage: String,
        /// Why.
        reason: String,
    },
}

/// One step of a run in pipe order ([`Driver::pipe_in_order`]).
#[derive(Debug, Clone)]
pub enum Piped {
    /// A record piped into `topic` (an input or a global table's topic).
    Record {
        /// The topic.
        topic: String,
        /// The record (its topic, partition and offset are set by the driver).
        event: Event,
    },
    /// The wall clock moves on (for `idle-close`).
    AdvanceWallClock(Duration),
}

/// A store entry as [`Driver::state`] reads it: key, window, accumulator and
/// the accumulator's timestamp.
type StoreEntry = (Option<Vec<u8>>, Option<Window>, Vec<u8>, Option<i64>);

/// A pipeline running in memory.
pub struct Driver {
    chain: Arc<Chain>,
    /// One task per sub-topology (index = sub-topology), reading partition 0.
    tasks: Vec<Task>,
    inputs: BTreeSet<String>,
    /// Global tables by topic, in memory: piping into their topic updates
    /// them at once.
    globals: BTreeMap<String, (String, GlobalStore)>,
    repartition: BTreeSet<String>,
    changelogs: BTreeSet<String>,
    /// The next offset of each topic piped into (inputs, repartition topics).
    offsets: HashMap<String, i64>,
    /// Records written to topics other than repartition topics and
    /// changelogs, in the order they were written.
    outputs: Vec<SentRecord>,
    batch_size: usize,
    timestamp_policy: TimestampPolicy,
    started: Instant,
    advanced: Duration,
}

impl Driver {
    /// Loads `pipeline`'s modules into `runtime` and opens a task for each
    /// sub-topology; records are processed `batch_size` at a time (1 is
    /// Kafka Streams' driver, record by record).
    pub fn new(pipeline: &Pipeline, runtime: &Runtime, batch_size: usize) -> Result<Driver, DriverError> {
        let chain = Chain::load(pipeline, runtime)?;
        let mut globals = BTreeMap::new();
        for (stage, name, topic) in chain.global_tables() {
            let table = GlobalStore::new(Store::in_memory(Changelog {
                topic: topic.clone(),
                partition: -1,
            }));
            chain.set_global(stage, TableView::from_view(table.view()));
            globals.insert(topic, (name, table));
        }
        let tasks = chain
            .topology()
            .sub_topologies()
            .iter()
            .map(|s| chain.open_task_in_memory(s.sources.first().map_or("", String::as_str), 0))
            .collect::<Result<Vec<_>, _>>()?;
        let repartition = chain.repartition_topics().into_iter().collect();
        let changelogs = (0..pipeline.stages.len())
            .filter(|&i| chain.stage_is_stateful(i))
            .map(|i| chain.changelog_topic(i))
            .collect();
        Ok(Driver {
            tasks,
            inputs: pipeline.inputs.iter().cloned().collect(),
            globals,
            repartition,
            changelogs,
            offsets: HashMap::new(),
            outputs: Vec::new(),
            batch_size: batch_size.max(1),
            timestamp_policy: pipeline.timestamp_policy,
            started: Instant::now(),
            advanced: Duration::ZERO,
            chain,
        })
    }

    /// Pipes `events` into input `topic` (topic, partition and offset are
    /// set here), processes them — and everything they send through
    /// repartition topics — and commits.
    pub fn pipe(&mut self, topic: &str, events: Vec<Event>) -> Result<(), DriverError> {
        let events = self.stamp(topic, events)?;
        if self.globals.contains_key(topic) {
            return self.pipe_global(topic, &events);
        }
        if !self.inputs.contains(topic) {
            return Err(DriverError::NotAnInput {
                topic: topic.to_owned(),
                inputs: self
                    .inputs
                    .iter()
                    .chain(self.globals.keys())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let now = self.now();
        let sub = self.sub_of(topic)?;
        self.run(VecDeque::from([(sub, topic.to_owned(), events)]), now)?;
        self.commit()
    }

    /// Events with their timestamps under the pipeline's `timestamp-policy`
    /// (a negative one is invalid), as an instance takes them from Kafka.
    fn stamp(&self, topic: &str, events: Vec<Event>) -> Result<Vec<Event>, DriverError> {
        let mut kept = Vec::with_capacity(events.len());
        for mut e in events {
            match self.timestamp_policy.stamp(Some(e.timestamp), now_ms) {
                Stamp::Use(t) => {
                    e.timestamp = t;
                    kept.push(e);
                }
                Stamp::Skip => tracing::warn!(
                    topic,
                    timestamp = e.timestamp,
                    "skipped a record without a valid timestamp (timestamp-policy = \"log-and-skip\")"
                ),
                Stamp::Fail => {
                    return Err(DriverError::InvalidTimestamp {
                        topic: topic.to_owned(),
                        timestamp: e.timestamp,
                    });
                }
            }
        }
        Ok(kept)
    }

    /// Applies records of a global table's topic to the table at once (as
    /// an instance's global thread would, outside any transaction).
    fn pipe_global(&mut self, topic: &str, events: &[Event]) -> Result<(), DriverError> {
        let mut records = Vec::with_capacity(events.len());
        for e in events {
            let offset = self.next_offset(topic);
            records.push(Record {
                partition: 0,
                offset,
                key: e.key.as_deref(),
                value: e.value.as_deref(),
                timestamp: Some(e.timestamp),
            });
        }
        if let Some((_, table)) = self.globals.get(topic) {
            table.apply(&records)?;
        }
        Ok(())
    }

    /// Moves the wall clock on by `by` and lets `idle-close` stages close
    /// what has been quiet long enough.
    pub fn advance_wall_clock(&mut self, by: Duration) -> Result<(), DriverError> {
        self.advanced += by;
        let now = self.now();
        for segment in 0..self.tasks.len() {
            let mut sink = MemorySink::default();
            self.tasks[segment].idle_close(now, &mut sink)?;
            let mut queue = VecDeque::new();
            self.route(sink, &mut queue)?;
            // What they sent on runs through the later sub-topologies.
            self.run(queue, now)?;
        }
        self.commit()
    }

    /// Processes queued records (sub-topology, topic, events), and what
    /// they send through repartition topics, until nothing is left.
    fn run(&mut self, mut queue: VecDeque<(usize, String, Vec<Event>)>, now: Instant) -> Result<(), DriverError> {
        while let Some((segment, topic, events)) = queue.pop_front() {
            for chunk in events.chunks(self.batch_size) {
                let mut encoder = BatchEncoder::new();
                for e in chunk {
                    let offset = self.next_offset(&topic);
                    let headers = e.headers.iter().map(|h| (h.name.as_str(), h.value.as_deref()));
                    encoder.push(
                        e.timestamp,
                        &topic,
                        0,
                        offset,
                        e.key.as_deref(),
                        e.value.as_deref(),
                        headers,
                    );
                }
                let mut sink = MemorySink::default();
                self.tasks[segment].process_at(&encoder, &mut sink, now)?;
                self.route(sink, &mut queue)?;
            }
        }
        Ok(())
    }

    /// Pipes `steps` in their order, as Kafka Streams'
    /// `TopologyTestDriver.pipeInput` calls would be: each record goes
    /// through the whole pipeline before the next (consecutive records of
    /// one topic go together, up to the batch size), whatever the topics
    /// and timestamps; wall-clock advances happen where they stand.
    pub fn pipe_in_order(&mut self, steps: impl IntoIterator<Item = Piped>) -> Result<(), DriverError> {
        let mut pending: Vec<Event> = Vec::new();
        let mut pending_topic = String::new();
        for step in steps {
            let flush = match &step {
                Piped::Record { topic, .. } => *topic != pending_topic || pending.len() >= self.batch_size,
                Piped::AdvanceWallClock(_) => true,
            };
            if flush && !pending.is_empty() {
                self.pipe(&pending_topic, std::mem::take(&mut pending))?;
            }
            match step {
                Piped::Record { topic, event } => {
                    pending_topic = topic;
                    pending.push(event);
                }
                Piped::AdvanceWallClock(by) => self.advance_wall_clock(by)?,
            }
        }
        if !pending.is_empty() {
            self.pipe(&pending_topic, pending)?;
        }
        Ok(())
    }

    /// What went to each output, route and dead-letter topic, in order.
    pub fn outputs(&self) -> BTreeMap<&str, Vec<&SentRecord>> {
        let mut by_topic: BTreeMap<&str, Vec<&SentRecord>> = BTreeMap::new();
        for r in &self.outputs {
            by_topic.entry(r.topic.as_str()).or_default().push(r);
        }
        by_topic
    }

    /// Takes what went to `topic` so far.
    pub fn take_output(&mut self, topic: &str) -> Vec<SentRecord> {
        self.outputs.extract_if(.., |r| r.topic == topic).collect()
    }

    /// Takes everything written so far, in the order it was written.
    pub fn take_outputs(&mut self) -> Vec<SentRecord> {
        std::mem::take(&mut self.outputs)
    }

    /// The chain the driver runs (counters: `chain().metrics()`).
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// The content of every store, one JSON object per entry: stage, key,
    /// window, what the stage's `emit` makes of the accumulator, and the
    /// accumulator's timestamp; for a table, the row's value and timestamp.
    pub fn state(&self) -> Result<Vec<Value>, DriverError> {
        let mut out = Vec::new();
        for (name, table) in self.globals.values() {
            for (k, stored) in table.store().scan(&[1u8])? {
                let Entry::Plain(key) = table.store().entry(&k)? else {
                    return Err(table.store().corrupt(&k, "a key that is not a row's").into());
                };
                let (ts, value) = row::decode_value(&stored)
                    .ok_or_else(|| table.store().corrupt(&k, "a table row shorter than its timestamp"))?;
                out.push(json!({"store": name, "key": bytes_json(key.as_deref()),
                    "timestamp": ts, "value": bytes_json(Some(value))}));
            }
        }
        for task in &self.tasks {
            for (i, _, store) in task.stores() {
                let stage = self.chain.stage_names()[i].to_owned();
                let mut entries: Vec<StoreEntry> = Vec::new();
                for prefix in [[1u8], [2u8]] {
                    for (k, acc) in store.scan(&prefix)? {
                        let stamp = match store.get(&keys::stamp(&k))? {
                            None => None,
                            Some(b) => Some(i64::from_le_bytes(
                                <[u8; 8]>::try_from(b.as_slice())
                                    .map_err(|_| store.corrupt(&k, "a timestamp that is not 8 bytes"))?,
                            )),
                        };
                        match store.entry(&k)? {
                            Entry::Plain(key) => entries.push((key, None, acc, stamp)),
                            Entry::Windowed(key, w) => entries.push((key, Some(w), acc, stamp)),
                            _ => return Err(store.corrupt(&k, "a key that is not an accumulator's").into()),
                        }
                    }
                }
                if entries.is_empty() {
                    continue;
                }
                let module = self.chain.stage_module(i);
                let (Some((module, config)), false) = (module, self.chain.is_table(i)) else {
                    // A table: its rows as they are.
                    for (key, _, stored, _) in entries {
                        let (ts, value) = row::decode_value(&stored).ok_or_else(|| DriverError::Emit {
                            stage: stage.clone(),
                            reason: "a table row shorter than its timestamp".into(),
                        })?;
                        out.push(json!({"store": stage, "key": bytes_json(key.as_deref()),
                            "timestamp": ts, "value": bytes_json(Some(value))}));
                    }
                    continue;
                };
                let mut op = self.chain.runtime().operator(module, config);
                let requests = entries
                    .iter()
                    .map(|(key, window, acc, _)| EmitRequest {
                        key: key.clone(),
                        window: *window,
                        acc: acc.clone(),
                    })
                    .collect();
                let shown = op.emit(requests).map_err(|e| DriverError::Emit {
                    stage: stage.clone(),
                    reason: e.to_string(),
                })?;
                for ((key, window, _, stamp), result) in entries.into_iter().zip(shown) {
                    let mut v = Map::new();
                    v.insert("store".into(), json!(stage));
                    v.insert("key".into(), bytes_json(key.as_deref()));
                    if let Some(w) = window {
                        v.insert("window".into(), json!({"start": w.start, "end": w.end}));
                    }
                    v.insert("timestamp".into(), json!(stamp));
                    match result {
                        crate::event::EventResult::Outputs(outs) => {
                            let values: Vec<Value> = outs.iter().map(|o| bytes_json(o.value.as_deref())).collect();
                            v.insert("value".into(), Value::Array(values));
                        }
                        crate::event::EventResult::Failed(f) => {
                            v.insert("emit_failed".into(), json!(f.to_string()));
                        }
                    }
                    out.push(Value::Object(v));
                }
            }
        }
        Ok(out)
    }

    /// The sub-topology that reads `topic` (an input: checked by the caller).
    fn sub_of(&self, topic: &str) -> Result<usize, DriverError> {
        self.chain.sub_of(topic).ok_or_else(|| DriverError::NotAnInput {
            topic: topic.to_owned(),
            inputs: self.inputs.iter().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    fn now(&self) -> Instant {
        self.started + self.advanced
    }

    fn next_offset(&mut self, topic: &str) -> i64 {
        let next = self.offsets.entry(topic.to_owned()).or_insert(0);
        *next += 1;
        *next - 1
    }

    /// Sends what a task wrote where it goes: repartition topics to the
    /// queue of the sub-topology that reads them, changelogs nowhere (the
    /// stores hold the same), everything else to the outputs.
    fn route(
        &mut self,
        sink: MemorySink,
        queue: &mut VecDeque<(usize, String, Vec<Event>)>,
    ) -> Result<(), DriverError> {
        for r in sink.records {
            if self.changelogs.contains(&r.topic) {
                continue;
            }
            if self.repartition.contains(&r.topic) {
                let Some(segment) = self.chain.sub_of(&r.topic) else {
                    return Err(DriverError::NoReader { topic: r.topic });
                };
                let event = Event {
                    key: r.key,
                    value: r.value,
                    headers: r
                        .headers
                        .into_iter()
                        .map(|(name, value)| Header { name, value })
                        .collect(),
                    timestamp: r.timestamp,
                    topic: r.topic.clone(),
                    partition: 0,
                    offset: 0,
                };
                match queue.back_mut() {
                    Some((s, t, events)) if *s == segment && *t == r.topic => events.push(event),
                    _ => queue.push_back((segment, r.topic, vec![event])),
                }
                continue;
            }
            self.outputs.push(r);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), DriverError> {
        for task in &mut self.tasks {
            task.commit_state(|_| None)?;
        }
        Ok(())
    }
}

/// One output record as a JSON line: topic, key, value, headers, timestamp,
/// and the window when the record carries its bounds.
pub fn record_json(r: &SentRecord) -> Value {
    let mut m = Map::new();
    m.insert("topic".into(), json!(r.topic));
    m.insert("key".into(), bytes_json(r.key.as_deref()));
    m.insert("value".into(), bytes_json(r.value.as_deref()));
    m.insert("timestamp".into(), json!(r.timestamp));
    let bound = |name: &str| {
        r.header(name)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse::<i64>().ok())
    };
    if let (Some(start), Some(end)) = (
        bound(crate::stage::aggregate::WINDOW_START),
        bound(crate::stage::aggregate::WINDOW_END),
    ) {
        m.insert("window".into(), json!({"start": start, "end": end}));
    }
    let headers: Vec<Value> = r
        .headers
        .iter()
        .filter(|(n, _)| n != crate::stage::aggregate::WINDOW_START && n != crate::stage::aggregate::WINDOW_END)
        .map(|(n, v)| json!([n, bytes_json(v.as_deref())]))
        .collect();
    if !headers.is_empty() {
        m.insert("headers".into(), Value::Array(headers));
    }
    Value::Object(m)
}
