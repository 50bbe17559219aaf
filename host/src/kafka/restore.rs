//! Restoring a store from its changelog: everything after the store's
//! checkpoint (all of it for a store with no local state), read
//! `read_committed` up to the end of the partition.
//!
//! Records carry the input offset after the batch that wrote them
//! ([`crate::aggregate::INPUT_NEXT`]). A record past the source partition's
//! committed offset belongs to a transaction that never committed. A broker
//! with an aborted-transaction index already hides those; for one without
//! (the test broker), they are skipped here. A record written by an aborted
//! attempt *below* the committed offset is harmless: the committed attempt
//! that redid the same input wrote the same keys later in the log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clients::ReaderCtx;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::admin::{RestoreState, Restores};
use crate::aggregate::INPUT_NEXT;
use crate::state::{StateError, Store, Write};

/// Records applied per RocksDB write batch (and checkpoint).
const CHUNK: usize = 20_000;

/// A restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Kafka did not answer.
    #[error("restoring {topic}[{partition}]: {reason}")]
    Kafka {
        /// Changelog topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// librdkafka's message.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Restores stores with one assign-only consumer.
pub struct Restorer {
    consumer: BaseConsumer<ReaderCtx>,
    timeout: Duration,
    progress: Arc<Mutex<Restores>>,
}

impl Restorer {
    /// A restorer with the pipeline's client settings (`base`).
    pub fn new(
        mut base: ClientConfig,
        timeout: Duration,
        progress: Arc<Mutex<Restores>>,
    ) -> Result<Restorer, KafkaError> {
        base.set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            // The end of a partition shows up one empty fetch later: keep it short.
            .set("fetch.wait.max.ms", "50")
            // Big fetches: a restore reads one partition as fast as it can.
            .set("max.partition.fetch.bytes", "16777216");
        base.remove("partition.assignment.strategy");
        Ok(Restorer {
            consumer: base.create_with_context(ReaderCtx("restore consumer"))?,
            timeout,
            progress,
        })
    }

    /// Brings `store` up to the end of its changelog. `committed_input` is
    /// the source partition's committed offset. Returns the records applied.
    pub fn restore(&self, stage: &str, store: &Store, committed_input: Option<i64>) -> Result<u64, RestoreError> {
        let cl = store.changelog().clone();
        let kafka = |e: KafkaError| RestoreError::Kafka {
            topic: cl.topic.clone(),
            partition: cl.partition,
            reason: e.to_string(),
        };
        let mut checkpoint = store.checkpoint()?;
        let (low, high) = self
            .consumer
            .fetch_watermarks(&cl.topic, cl.partition, self.timeout)
            .map_err(kafka)?;
        if let Some(c) = checkpoint
            && c < low
        {
            // A windowed changelog is deleted by time too: it no longer
            // holds every change since the checkpoint (tombstones of closed
            // windows among them), so local state cannot catch up from it.
            tracing::info!(
                stage,
                partition = cl.partition,
                checkpoint = c,
                log_start = low,
                "local state is older than what {} keeps; restoring it whole",
                cl.topic
            );
            store.wipe()?;
            checkpoint = None;
        }
        let start = checkpoint.unwrap_or(0).max(low);
        let key = (stage.to_owned(), cl.partition);
        let total = (high - start).max(0) as u64;
        if total == 0 {
            tracing::info!(
                stage,
                partition = cl.partition,
                local = checkpoint.is_some(),
                "state is up to date with {}",
                cl.topic
            );
            self.report(&key, RestoreState::done(0, 0, Duration::ZERO, checkpoint.is_some()));
            return Ok(0);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&cl.topic, cl.partition, Offset::Offset(start))
            .map_err(kafka)?;
        self.consumer.assign(&tpl).map_err(kafka)?;
        let started = Instant::now();
        tracing::info!(
            stage,
            partition = cl.partition,
            from = start,
            records = total,
            local = checkpoint.is_some(),
            "restoring state from {}",
            cl.topic
        );
        let (mut applied, mut seen, mut skipped) = (0u64, 0u64, 0u64);
        let mut chunk: Vec<Write> = Vec::with_capacity(CHUNK);
        let mut last_offset = start - 1;
        let mut last_log = Instant::now();
        let mut last_record = Instant::now();
        loop {
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    last_record = Instant::now();
                    seen += 1;
                    last_offset = m.offset();
                    if committed(&m, committed_input) {
                        let Some(k) = m.key() else { continue };
                        chunk.push((k.to_vec(), m.payload().map(<[u8]>::to_vec)));
                    } else {
                        skipped += 1;
                    }
                    if chunk.len() >= CHUNK {
                        applied += chunk.len() as u64;
                        store.apply_unlogged(chunk.drain(..), Some(last_offset + 1))?;
                    }
                    if last_log.elapsed() >= Duration::from_secs(1) {
                        last_log = Instant::now();
                        tracing::info!(stage, partition = cl.partition, "restoring: {seen}/{total} records");
                        self.report(&key, RestoreState::restoring(seen, total, started.elapsed()));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => {
                    tracing::warn!("restore of {}[{}]: {e}", cl.topic, cl.partition);
                    if last_record.elapsed() > self.timeout {
                        return Err(kafka(e));
                    }
                }
                None if last_record.elapsed() > self.timeout => {
                    return Err(RestoreError::Kafka {
                        topic: cl.topic.clone(),
                        partition: cl.partition,
                        reason: format!("no records and no end of partition for {:?}", self.timeout),
                    });
                }
                None => {}
            }
        }
        applied += chunk.len() as u64;
        let end = (last_offset + 1).max(start);
        store.apply_unlogged(chunk, Some(end))?;
        // Unlogged writes become durable here, before any logged ones follow.
        store.persist()?;
        let _ = self.consumer.unassign();
        let took = started.elapsed();
        tracing::info!(
            stage,
            partition = cl.partition,
            applied,
            skipped_uncommitted = skipped,
            seconds = took.as_secs_f64(),
            "restored state from {}",
            cl.topic
        );
        self.report(&key, RestoreState::done(seen, total, took, checkpoint.is_some()));
        Ok(applied)
    }

    fn report(&self, key: &(String, i32), state: RestoreState) {
        if let Ok(mut p) = self.progress.lock() {
            p.insert(key.clone(), state);
        }
    }
}

/// Whether a changelog record belongs to committed work (see the module docs).
fn committed(m: &rdkafka::message::BorrowedMessage<'_>, committed_input: Option<i64>) -> bool {
    let next = m.headers().and_then(|hs| {
        hs.iter()
            .find(|h| h.key == INPUT_NEXT)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<i64>().ok())
    });
    match (next, committed_input) {
        (None, _) => true,
        (Some(next), Some(c)) => next <= c,
        (Some(_), None) => false,
    }
}
