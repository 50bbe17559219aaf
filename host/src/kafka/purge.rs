//! Purging repartition topics, as Kafka Streams does: they keep every
//! record whatever its timestamp (`retention.ms = -1`, see
//! [`topics::topic_config`](crate::clients::topics::topic_config)), so that old data
//! is never lost between two sub-topologies, and an instance deletes the
//! records its group has committed past (DeleteRecords), at most once per
//! `repartition-purge-interval`.
//!
//! Deleting is off the processing thread: the loop hands the committed
//! offsets over and goes on; a background thread talks to the brokers. At
//! most one purge waits while another runs (an unreachable broker does not
//! pile them up). A failed purge is logged and tried again at the next
//! interval: it costs disk, never correctness.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::topics::block_on;

type TopicPartition = (String, i32);

/// Deletes committed records of the repartition topics an instance reads.
pub struct Purger {
    topics: BTreeSet<String>,
    interval: Duration,
    last: Instant,
    /// Where each partition's records are deleted up to, as the brokers
    /// confirmed (nothing is deleted twice; a failure is retried).
    purged: Arc<Mutex<BTreeMap<TopicPartition, i64>>>,
    /// To the purge thread, which ends when this is dropped.
    tx: Option<SyncSender<TopicPartitionList>>,
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
        let (tx, rx) = mpsc::sync_channel::<TopicPartitionList>(1);
        let purged: Arc<Mutex<BTreeMap<TopicPartition, i64>>> = Arc::default();
        let done = purged.clone();
        // Detached: it ends when the channel closes, after the purge it may
        // be running (bounded by the Kafka timeout); a stop does not wait.
        std::thread::Builder::new()
            .name("weir-purge".into())
            .spawn(move || {
                let options = AdminOptions::new().operation_timeout(Some(timeout));
                // Once the broker says it cannot delete records, the rest
                // are received and dropped.
                let mut purging = true;
                for offsets in rx {
                    if purging {
                        purging = report(&offsets, block_on(admin.delete_records(&offsets, &options)), &done);
                    }
                }
            })
            .map_err(|e| KafkaError::AdminOpCreation(format!("cannot start the purge thread: {e}")))?;
        Ok(Some(Purger {
            topics: topics.into_iter().collect(),
            interval,
            // The first purge waits an interval too: a fresh start has little to delete.
            last: Instant::now(),
            purged,
            tx: Some(tx),
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
        {
            let purged = self.purged.lock().unwrap_or_else(PoisonError::into_inner);
            for ((topic, partition), &next) in committed {
                if !self.topics.contains(topic) || purged.get(&(topic.clone(), *partition)) >= Some(&next) {
                    continue;
                }
                // Only fails for an invalid offset value, which a committed position is not.
                let _ = offsets.add_partition_offset(topic, *partition, Offset::Offset(next));
            }
        }
        if offsets.count() == 0 {
            return;
        }
        match self.tx.as_ref().map(|tx| tx.try_send(offsets)) {
            // A purge is already waiting: the next interval brings later offsets.
            Some(Ok(())) | Some(Err(TrySendError::Full(_))) | None => {}
            Some(Err(TrySendError::Disconnected(_))) => {
                tracing::warn!("the purge thread has stopped; repartition topics are no longer purged");
                self.tx = None;
            }
        }
    }
}

/// Notes and logs how a purge went; `false` when the broker cannot delete
/// records at all (librdkafka's mock cluster under `weir dev`), which is
/// said once.
fn report(
    asked: &TopicPartitionList,
    result: Result<TopicPartitionList, KafkaError>,
    purged: &Mutex<BTreeMap<TopicPartition, i64>>,
) -> bool {
    let unsupported = |e: &KafkaError| e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnsupportedFeature);
    match result {
        Ok(done) => {
            for e in done.elements() {
                match e.error() {
                    Err(err) if unsupported(&err) => {
                        tracing::info!("the broker cannot delete records: repartition topics are not purged");
                        return false;
                    }
                    Ok(()) => {
                        tracing::debug!(
                            topic = e.topic(),
                            partition = e.partition(),
                            before = ?e.offset(),
                            "purged committed repartition records"
                        );
                        // The offset asked for, not the answer's (librdkafka
                        // reports the new low watermark there).
                        if let Some(Offset::Offset(to)) =
                            asked.find_partition(e.topic(), e.partition()).map(|a| a.offset())
                        {
                            let mut purged = purged.lock().unwrap_or_else(PoisonError::into_inner);
                            let at = purged.entry((e.topic().to_owned(), e.partition())).or_insert(to);
                            *at = (*at).max(to);
                        }
                    }
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
