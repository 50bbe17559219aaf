//! Global tables on Kafka: each instance reads every partition of a global
//! table's topic into its store — to the end before any task opens (the
//! restore), then on in a thread of its own while the pipeline runs, as
//! Kafka Streams' global stream thread does. Records are applied as read,
//! outside the pipeline's transactions; the store keeps the next offset of
//! each partition, so a restart reads on from there.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::clients::ReaderCtx;
use crate::pipeline::{Stamp, TimestampPolicy};
use crate::shutdown::Shutdown;
use crate::state::global::{GlobalStore, Record};
use crate::state::row::TableView;
use crate::state::{StateError, Store};
use crate::status::query::StoreQueries;
use crate::task::Chain;
use crate::units::now_ms;

/// Records applied per store write.
const CHUNK: usize = 10_000;

/// A global table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GlobalError {
    /// Kafka did not answer, or the topic is missing.
    #[error("global table {stage} (topic {topic}): {reason}")]
    Kafka {
        /// The global-table stage.
        stage: String,
        /// Its topic.
        topic: String,
        /// What went wrong.
        reason: String,
    },
    /// A record has no valid timestamp and the pipeline's
    /// `timestamp-policy` is `fail`.
    #[error(
        "global table {stage}: {topic}[{partition}] offset {offset}: the record's timestamp is {}, not \
         a valid time; set timestamp-policy = \"log-and-skip\" or \"wall-clock\" in the pipeline file to go on",
        .timestamp.map_or("absent".to_owned(), |t| t.to_string())
    )]
    InvalidTimestamp {
        /// The global-table stage.
        stage: String,
        /// Its topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// Its timestamp, if it has one.
        timestamp: Option<i64>,
    },
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The instance's global tables, kept current until dropped.
pub struct GlobalTables {
    /// A child of the instance's shutdown, requested when this drops.
    stop: Shutdown,
    threads: Vec<JoinHandle<()>>,
    /// The first error of a follower thread, which then stops: the
    /// instance stops with it ([`GlobalTables::check`]) rather than join
    /// against a table that no longer changes.
    failed: Arc<Mutex<Option<GlobalError>>>,
}

impl GlobalTables {
    /// Opens every global table of `chain` under `state_root/global/`, reads
    /// each topic to its end, makes the rows readable by joins (and
    /// queries), then keeps reading in a thread per table.
    pub fn start(
        chain: &Chain,
        base: &ClientConfig,
        state_root: &Path,
        timeout: Duration,
        queries: Option<&StoreQueries>,
        shutdown: &Shutdown,
        policy: TimestampPolicy,
    ) -> Result<GlobalTables, GlobalError> {
        let stop = shutdown.child();
        let failed = Arc::new(Mutex::new(None));
        let mut threads = Vec::new();
        for (stage, name, topic) in chain.global_tables() {
            let kafka = |reason: String| GlobalError::Kafka {
                stage: name.clone(),
                topic: topic.clone(),
                reason,
            };
            let store = Store::open(
                &state_root.join("global").join(&name),
                crate::state::Changelog {
                    topic: topic.clone(),
                    partition: -1,
                },
            )?;
            let table = GlobalStore::new(store);
            let mut config = base.clone();
            let id = format!("weir-global-{name}-{}", std::process::id());
            config
                .set("client.id", &id)
                .set("group.id", &id)
                .set("enable.auto.commit", "false")
                .set("enable.partition.eof", "false")
                .set("isolation.level", "read_committed")
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "100");
            config.remove("partition.assignment.strategy");
            let consumer: BaseConsumer<ReaderCtx> = config
                .create_with_context(ReaderCtx("global table consumer"))
                .map_err(|e| kafka(e.to_string()))?;
            let meta = consumer
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| kafka(e.to_string()))?;
            let partitions = meta
                .topics()
                .first()
                .filter(|t| t.error().is_none())
                .map_or(0, |t| t.partitions().len() as i32);
            if partitions == 0 {
                return Err(kafka("the topic does not exist; weir does not create it".into()));
            }
            let mut tpl = TopicPartitionList::new();
            let mut ends = BTreeMap::new();
            for p in 0..partitions {
                let from = table.position(p)?;
                tpl.add_partition_offset(&topic, p, from.map_or(Offset::Beginning, Offset::Offset))
                    .map_err(|e| kafka(e.to_string()))?;
                let (_, high) = consumer
                    .fetch_watermarks(&topic, p, timeout)
                    .map_err(|e| kafka(e.to_string()))?;
                if from.unwrap_or(0) < high {
                    ends.insert(p, high);
                }
            }
            consumer.assign(&tpl).map_err(|e| kafka(e.to_string()))?;
            let started = Instant::now();
            let restored = bootstrap(&consumer, &table, ends, timeout, policy).map_err(|e| e.of(&name, &topic))?;
            tracing::info!(stage = %name, topic = %topic, partitions, restored,
                seconds = started.elapsed().as_secs_f64(), "restored global table");
            chain.set_global(stage, TableView::from_view(table.view()));
            if let Some(q) = queries {
                q.add(stage, -1, table.store().committed());
            }
            let (stop, failed) = (stop.clone(), failed.clone());
            threads.push(std::thread::spawn(move || {
                if let Err(e) = follow(&consumer, &table, &stop, &name, policy) {
                    let e = e.of(&name, &topic);
                    tracing::error!(stage = %name, "global table: {e}; the instance stops");
                    if let Ok(mut f) = failed.lock() {
                        f.get_or_insert(e);
                    }
                }
            }));
        }
        Ok(GlobalTables { stop, threads, failed })
    }

    /// The error that stopped a follower thread, if any.
    pub fn check(&self) -> Result<(), GlobalError> {
        match self.failed.lock().map(|mut f| f.take()) {
            Ok(Some(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for GlobalTables {
    fn drop(&mut self) {
        self.stop.request();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

enum Failed {
    Kafka(String),
    State(StateError),
    Timestamp {
        partition: i32,
        offset: i64,
        timestamp: Option<i64>,
    },
}

impl Failed {
    fn of(self, stage: &str, topic: &str) -> GlobalError {
        match self {
            Failed::Kafka(reason) => GlobalError::Kafka {
                stage: stage.to_owned(),
                topic: topic.to_owned(),
                reason,
            },
            Failed::State(e) => GlobalError::State(e),
            Failed::Timestamp {
                partition,
                offset,
                timestamp,
            } => GlobalError::InvalidTimestamp {
                stage: stage.to_owned(),
                topic: topic.to_owned(),
                partition,
                offset,
                timestamp,
            },
        }
    }
}

/// Reads until every partition in `ends` has reached its end offset;
/// returns the records read.
fn bootstrap(
    consumer: &BaseConsumer<ReaderCtx>,
    table: &GlobalStore,
    mut ends: BTreeMap<i32, i64>,
    timeout: Duration,
    policy: TimestampPolicy,
) -> Result<u64, Failed> {
    let (mut read, mut last) = (0u64, Instant::now());
    let mut held: Vec<BorrowedMessage<'_>> = Vec::new();
    while !ends.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last = Instant::now();
                read += 1;
                if ends.get(&m.partition()).is_some_and(|end| m.offset() + 1 >= *end) {
                    ends.remove(&m.partition());
                }
                held.push(m);
                if held.len() >= CHUNK {
                    apply(table, &held, policy)?;
                    held.clear();
                }
            }
            Some(Err(e)) => return Err(Failed::Kafka(e.to_string())),
            None if last.elapsed() > timeout => {
                return Err(Failed::Kafka(format!(
                    "no records for {timeout:?} before the end of the topic"
                )));
            }
            None => {}
        }
    }
    apply(table, &held, policy)?;
    Ok(read)
}

/// Keeps reading until `stop`. A Kafka error is logged and retried, as the
/// table then only lags; a store error or an invalid timestamp under
/// `fail` ends it.
fn follow(
    consumer: &BaseConsumer<ReaderCtx>,
    table: &GlobalStore,
    stop: &Shutdown,
    name: &str,
    policy: TimestampPolicy,
) -> Result<(), Failed> {
    while !stop.requested() {
        let mut held: Vec<BorrowedMessage<'_>> = Vec::new();
        let mut wait = Duration::from_millis(100);
        while held.len() < CHUNK {
            match consumer.poll(wait) {
                Some(Ok(m)) => held.push(m),
                Some(Err(KafkaError::PartitionEOF(_))) | None => break,
                Some(Err(e)) => {
                    tracing::warn!(stage = %name, "global table consumer: {e}");
                    break;
                }
            }
            wait = Duration::ZERO;
        }
        apply(table, &held, policy)?;
    }
    Ok(())
}

/// Applies `held` to the table, each record's timestamp under `policy`.
fn apply(table: &GlobalStore, held: &[BorrowedMessage<'_>], policy: TimestampPolicy) -> Result<(), Failed> {
    if held.is_empty() {
        return Ok(());
    }
    let batch: Vec<Record<'_>> = held
        .iter()
        .map(|m| {
            let raw = m.timestamp().to_millis();
            let timestamp = match policy.stamp(raw, now_ms) {
                Stamp::Use(t) => Some(t),
                Stamp::Skip => {
                    tracing::warn!(topic = m.topic(), partition = m.partition(), offset = m.offset(),
                        timestamp = ?raw, "skipped a global table record without a valid timestamp \
                        (timestamp-policy = \"log-and-skip\")");
                    None
                }
                Stamp::Fail => {
                    return Err(Failed::Timestamp {
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp: raw,
                    });
                }
            };
            Ok(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key(),
                value: m.payload(),
                timestamp,
            })
        })
        .collect::<Result<_, Failed>>()?;
    table.apply(&batch).map_err(Failed::State)
}
