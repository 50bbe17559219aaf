//! Global tables on Kafka: each instance reads every partition of a global
//! table's topic into its store — to the end before any task opens (the
//! restore), then on in a thread of its own while the pipeline runs, as
//! Kafka Streams' global stream thread does. Records are applied as read,
//! outside the pipeline's transactions; the store keeps the next offset of
//! each partition, so a restart reads on from there.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::clients::ReaderCtx;
use crate::shutdown::Shutdown;
use crate::stage::table::TableView;
use crate::state::global::{GlobalStore, Record};
use crate::state::{StateError, Store};
use crate::status::query::StoreQueries;
use crate::task::Chain;

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
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The instance's global tables, kept current until dropped.
pub struct GlobalTables {
    /// A child of the instance's shutdown, requested when this drops.
    stop: Shutdown,
    threads: Vec<JoinHandle<()>>,
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
    ) -> Result<GlobalTables, GlobalError> {
        let stop = shutdown.child();
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
            let restored = bootstrap(&consumer, &table, ends, timeout).map_err(|e| match e {
                Failed::Kafka(reason) => kafka(reason),
                Failed::State(e) => GlobalError::State(e),
            })?;
            tracing::info!(stage = %name, topic = %topic, partitions, restored,
                seconds = started.elapsed().as_secs_f64(), "restored global table");
            chain.set_global(stage, TableView::from_view(table.view()));
            if let Some(q) = queries {
                q.add(stage, -1, table.store().committed());
            }
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || follow(&consumer, &table, &stop, &name)));
        }
        Ok(GlobalTables { stop, threads })
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
}

/// Reads until every partition in `ends` has reached its end offset;
/// returns the records read.
fn bootstrap(
    consumer: &BaseConsumer<ReaderCtx>,
    table: &GlobalStore,
    mut ends: BTreeMap<i32, i64>,
    timeout: Duration,
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
                    apply(table, &held).map_err(Failed::State)?;
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
    apply(table, &held).map_err(Failed::State)?;
    Ok(read)
}

/// Keeps reading until `stop`; an error is logged and retried, as the
/// table then only lags.
fn follow(consumer: &BaseConsumer<ReaderCtx>, table: &GlobalStore, stop: &Shutdown, name: &str) {
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
        if let Err(e) = apply(table, &held) {
            tracing::error!(stage = %name, "global table store: {e}; it stops being updated");
            return;
        }
    }
}

fn apply(table: &GlobalStore, held: &[BorrowedMessage<'_>]) -> Result<(), StateError> {
    if held.is_empty() {
        return Ok(());
    }
    let batch: Vec<Record<'_>> = held
        .iter()
        .map(|m| Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            value: m.payload(),
            timestamp: m.timestamp().to_millis().unwrap_or(0),
        })
        .collect();
    table.apply(&batch)
}
