//! Purging repartition topics, as Kafka Streams does: they keep every
//! record whatever its timestamp (`retention.ms = -1`, see
//! [`topics::topic_config`](super::topics::topic_config)), so that old data
//! is never lost between two sub-topologies, and an instance deletes the
//! records its group has committed past (DeleteRecords), at most once per
//! `repartition-purge-interval`.
//!
//! Deleting is off the processing thread: the loop hands the committed
//! offsets over and goes on; a background thread talks to the brokers. A
//! failed purge is logged and tried again with later offsets: it costs
//! disk, never correctness.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::topics::block_on;

type TopicPartition = (String, i32);

/// Deletes committed records of the repartition topics an instance reads.
pub struct Purger {
    topics: BTreeSet<String>,
    interval: Duration,
    last: Instant,
    /// What was last handed over per partition (nothing is deleted twice).
    purged: BTreeMap<TopicPartition, i64>,
    tx: Option<Sender<TopicPartitionList>>,
    worker: Option<JoinHandle<()>>,
}

impl Purger {
    /// A purger for `topics`, or `None` when there are none.
    pub fn start(
        config: &ClientConfig,
        topics: Vec<String>,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Option<Purger>, KafkaError> {
        if topics.is_empty() {
            return Ok(None);
        }
        let admin: AdminClient<DefaultClientContext> = config.create()?;
        let (tx, rx) = mpsc::channel::<TopicPartitionList>();
        let worker = std::thread::Builder::new()
            .name("weir-purge".into())
            .spawn(move || {
                let options = AdminOptions::new().operation_timeout(Some(timeout));
                // Once the broker says it cannot delete records, the rest
                // are received and dropped.
                let mut purging = true;
                for offsets in rx {
                    if purging {
                        purging = report(&offsets, block_on(admin.delete_records(&offsets, &options)));
                    }
                }
            })
            .map_err(|e| KafkaError::AdminOpCreation(format!("cannot start the purge thread: {e}")))?;
        Ok(Some(Purger {
            topics: topics.into_iter().collect(),
            interval,
            // The first purge waits an interval too: a fresh start has little to delete.
            last: Instant::now(),
            purged: BTreeMap::new(),
            tx: Some(tx),
            worker: Some(worker),
        }))
    }

    /// After a commit: `committed` holds the group's committed position of
    /// every partition this instance owns. When the interval has passed,
    /// the records of repartition partitions before those positions are
    /// deleted.
    pub fn committed(&mut self, committed: &BTreeMap<TopicPartition, i64>) {
        if self.last.elapsed() < self.interval {
            return;
        }
        self.last = Instant::now();
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), &next) in committed {
            if !self.topics.contains(topic) || self.purged.get(&(topic.clone(), *partition)) >= Some(&next) {
                continue;
            }
            // Only fails for an invalid offset value, which a committed position is not.
            if offsets
                .add_partition_offset(topic, *partition, Offset::Offset(next))
                .is_ok()
            {
                self.purged.insert((topic.clone(), *partition), next);
            }
        }
        if offsets.count() == 0 {
            return;
        }
        if let Some(tx) = &self.tx
            && tx.send(offsets).is_err()
        {
            tracing::warn!("the purge thread has stopped; repartition topics are no longer purged");
            self.tx = None;
        }
    }
}

impl Drop for Purger {
    fn drop(&mut self) {
        // Closing the channel ends the thread once its last purge is done.
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Logs how a purge went; `false` when the broker cannot delete records at
/// all (librdkafka's mock cluster under `weir dev`), which is said once.
fn report(asked: &TopicPartitionList, result: Result<TopicPartitionList, KafkaError>) -> bool {
    let unsupported = |e: &KafkaError| e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnsupportedFeature);
    match result {
        Ok(done) => {
            for e in done.elements() {
                match e.error() {
                    Err(err) if unsupported(&err) => {
                        tracing::info!("the broker cannot delete records: repartition topics are not purged");
                        return false;
                    }
                    Ok(()) => tracing::debug!(
                        topic = e.topic(),
                        partition = e.partition(),
                        before = ?e.offset(),
                        "purged committed repartition records"
                    ),
                    Err(err) => tracing::warn!(
                        topic = e.topic(),
                        partition = e.partition(),
                        "cannot purge committed repartition records: {err}; trying again later"
                    ),
                }
            }
        }
        Err(e) if unsupported(&e) => {
            tracing::info!("the broker cannot delete records: repartition topics are not purged");
            return false;
        }
        Err(e) => tracing::warn!(
            partitions = asked.count(),
            "cannot purge committed repartition records: {e}; trying again later"
        ),
    }
    true
}
