//! Restoring a store from its changelog: everything after the store's
//! checkpoint (all of it for a store with no local state), read
//! `read_committed` up to the end of the partition.
//!
//! A table's store is restored from its source topic instead, up to the
//! group's committed offset of it (what comes after is input still to be
//! processed), each record becoming the row of its key.
//!
//! Records carry the task's input position after the batch that wrote them
//! ([`crate::state::changelog::INPUT_NEXT`]). A record past a source
//! partition's committed offset belongs to a transaction that never
//! committed. A broker
//! with an aborted-transaction index already hides those; for one without
//! (the test broker), they are skipped here. A record written by an aborted
//! attempt *below* the committed offset is harmless: the committed attempt
//! that redid the same input wrote the same keys later in the log.

use crate::shutdown::Shutdown;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clients::ReaderCtx;
use crate::clients::retry::{self, GaveUp};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::pipeline::{Stamp, TimestampPolicy};
use crate::state::changelog::INPUT_NEXT;
use crate::state::row;
use crate::state::{Changelog, StateError, Store, Write, keys};
use crate::status::{RestoreState, Restores};
use crate::units::now_ms;

/// What a second signal abandons during a restore.
const RESTORING: &str = "a store restore: it starts again at the next start, from what the store \
     has on disk";

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
    /// A table's source record has no valid timestamp and the pipeline's
    /// `timestamp-policy` is `fail`.
    #[error(
        "restoring {topic}[{partition}]: the record at offset {offset} has timestamp {}, not a valid \
         time; set timestamp-policy = \"log-and-skip\" or \"wall-clock\" in the pipeline file to go on",
        .timestamp.map_or("absent".to_owned(), |t| t.to_string())
    )]
    InvalidTimestamp {
        /// The table's topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// Its timestamp, if it has one.
        timestamp: Option<i64>,
    },
    /// A changelog record is not one Weir writes: the store's changelog is
    /// corrupt (or another writer shares the topic).
    #[error("restoring {topic}[{partition}]: corrupt changelog: the record at offset {offset} is {what}")]
    Corrupt {
        /// Changelog topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// What is wrong with it.
        what: &'static str,
    },
    /// The instance is stopping.
    #[error("restoring {topic}[{partition}]: stopped (the instance is shutting down)")]
    Stopped {
        /// Changelog topic.
        topic: String,
        /// Partition.
        partition: i32,
    },
}

/// The committed offset of each topic a task reads, at its partition
/// (`None`: nothing committed yet).
pub type Committed = BTreeMap<String, Option<i64>>;

/// Restores stores with one assign-only consumer.
pub struct Restorer {
    consumer: BaseConsumer<ReaderCtx>,
    timeout: Duration,
    /// The instance's transactional id, named when a restore waits for
    /// the brokers.
    transactional_id: String,
    progress: Arc<Mutex<Restores>>,
    shutdown: Shutdown,
    policy: TimestampPolicy,
}

impl Restorer {
    /// A restorer with the pipeline's client settings (`base`); a restore
    /// ends early once `shutdown` is requested. A table's source records
    /// get their timestamps under `policy`. Waits for unreachable brokers
    /// are logged naming `transactional_id`.
    pub fn new(
        mut base: ClientConfig,
        timeout: Duration,
        transactional_id: String,
        progress: Arc<Mutex<Restores>>,
        shutdown: Shutdown,
        policy: TimestampPolicy,
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
            transactional_id,
            progress,
            shutdown,
            policy,
        })
    }

    /// Brings `store` up to the end of its changelog. `committed_input` has
    /// the committed offsets of the task's sources. Returns the records
    /// applied.
    pub fn restore(&self, stage: &str, store: &Store, committed_input: &Committed) -> Result<u64, RestoreError> {
        let cl = store.changelog().clone();
        let kafka = |e: KafkaError| RestoreError::Kafka {
            topic: cl.topic.clone(),
            partition: cl.partition,
            reason: e.to_string(),
        };
        let mut checkpoint = store.checkpoint()?;
        let ((low, mut high), _) = self.watermarks(&cl)?;
        let source = store.is_source_topic();
        if source {
            // A table's source topic: only what the group has committed is
            // the table's; the rest is read as input after the restore.
            // The committed offset bounds it, not the high watermark: the
            // group has read up to there, so those records exist (a broker
            // whose watermark lags — the test broker's can — must not cut a
            // table short).
            let committed = committed_input.get(&cl.topic).copied().flatten();
            high = committed.unwrap_or(low);
            if checkpoint.is_some_and(|c| c > high) {
                tracing::info!(stage, partition = cl.partition, checkpoint = ?checkpoint, committed = ?committed,
                    "local table state is ahead of the group's committed offset of {}; restoring it whole", cl.topic);
                store.wipe()?;
                checkpoint = None;
            }
        }
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
        // A table's source records without a key (no row) or, under
        // `log-and-skip`, without a valid timestamp.
        let (mut keyless, mut untimed) = (0u64, 0u64);
        let corrupt = |offset: i64, what: &'static str| RestoreError::Corrupt {
            topic: cl.topic.clone(),
            partition: cl.partition,
            offset,
            what,
        };
        let mut chunk: Vec<Write> = Vec::with_capacity(CHUNK);
        let mut last_offset = start - 1;
        let mut last_log = Instant::now();
        let mut last_record = Instant::now();
        self.shutdown.doing(RESTORING);
        loop {
            if self.shutdown.requested() {
                let _ = self.consumer.unassign();
                return Err(RestoreError::Stopped {
                    topic: cl.topic.clone(),
                    partition: cl.partition,
                });
            }
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) if source && m.offset() >= high => break,
                Some(Ok(m)) => {
                    last_record = Instant::now();
                    seen += 1;
                    last_offset = m.offset();
                    if source {
                        // Rows keyed as the table keys them; a record
                        // without a key has no row (as in Kafka Streams).
                        let raw = m.timestamp().to_millis();
                        match (m.key(), self.policy.stamp(raw, now_ms)) {
                            (None, _) => keyless += 1,
                            (Some(k), Stamp::Use(ts)) => {
                                chunk.push((keys::plain(Some(k)), m.payload().map(|v| row::encode_value(ts, v))));
                            }
                            (Some(_), Stamp::Skip) => {
                                untimed += 1;
                                tracing::warn!(topic = %cl.topic, partition = cl.partition, offset = m.offset(),
                                    timestamp = ?raw, "skipped a table record without a valid timestamp \
                                    (timestamp-policy = \"log-and-skip\")");
                            }
                            (Some(_), Stamp::Fail) => {
                                return Err(RestoreError::InvalidTimestamp {
                                    topic: cl.topic.clone(),
                                    partition: cl.partition,
                                    offset: m.offset(),
                                    timestamp: raw,
                                });
                            }
                        }
                    } else {
                        // Weir writes every changelog record with a key and
                        // its input position: anything else is corrupt.
                        let Some(k) = m.key() else {
                            return Err(corrupt(m.offset(), "without a key"));
                        };
                        if committed(&m, committed_input).map_err(|what| corrupt(m.offset(), what))? {
                            chunk.push((k.to_vec(), m.payload().map(<[u8]>::to_vec)));
                        } else {
                            skipped += 1;
                        }
                    }
                    if source && m.offset() + 1 >= high {
                        if chunk.len() >= CHUNK {
                            applied += chunk.len() as u64;
                            store.apply_unlogged(chunk.drain(..), Some(last_offset + 1))?;
                        }
                        break;
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
                        self.stalled(&cl, e.to_string())?;
                        last_record = Instant::now();
                    }
                }
                None if last_record.elapsed() > self.timeout => {
                    self.stalled(
                        &cl,
                        format!("no records and no end of partition for {:?}", self.timeout),
                    )?;
                    last_record = Instant::now();
                }
                None => {}
            }
        }
        applied += chunk.len() as u64;
        // A source topic ends at the committed offset, or where it ran out
        // (compaction may have removed its last records).
        let end = if source {
            high.min(last_offset + 1).max(start)
        } else {
            (last_offset + 1).max(start)
        };
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
            skipped_keyless = keyless,
            skipped_without_timestamp = untimed,
            seconds = took.as_secs_f64(),
            "restored state from {}",
            cl.topic
        );
        self.report(&key, RestoreState::done(seen, total, took, checkpoint.is_some()));
        Ok(applied)
    }

    /// The low and high watermarks of a changelog partition, waiting for
    /// the brokers while they are unreachable (logged, see
    /// [`retry`](crate::clients::retry)); and whether it had to wait.
    fn watermarks(&self, cl: &Changelog) -> Result<((i64, i64), bool), RestoreError> {
        let operation = format!("read the offsets of {}[{}] to restore from it", cl.topic, cl.partition);
        let mut tries = 0;
        let got = retry::retry(&operation, &self.transactional_id, self.timeout, &self.shutdown, |t| {
            tries += 1;
            self.consumer.fetch_watermarks(&cl.topic, cl.partition, t)
        });
        match got {
            Ok(w) => Ok((w, tries > 1)),
            Err(GaveUp::Failed(e)) => Err(RestoreError::Kafka {
                topic: cl.topic.clone(),
                partition: cl.partition,
                reason: e.to_string(),
            }),
            Err(GaveUp::Stopped(_)) => Err(RestoreError::Stopped {
                topic: cl.topic.clone(),
                partition: cl.partition,
            }),
        }
    }

    /// A restore got no records for the timeout (`why`): if the brokers are
    /// unreachable, waits until they answer again, and it goes on; if they
    /// answer, it is stuck (`Err`).
    fn stalled(&self, cl: &Changelog, why: String) -> Result<(), RestoreError> {
        match self.watermarks(cl)? {
            (_, true) => Ok(()),
            (_, false) => Err(RestoreError::Kafka {
                topic: cl.topic.clone(),
                partition: cl.partition,
                reason: why,
            }),
        }
    }

    fn report(&self, key: &(String, i32), state: RestoreState) {
        if let Ok(mut p) = self.progress.lock() {
            p.insert(key.clone(), state);
        }
    }
}

/// Whether a changelog record belongs to committed work (see the module
/// docs): every source position it carries is at or below that source's
/// committed offset.
/// A record without a readable position is corrupt (`Err`: what is wrong).
fn committed(m: &rdkafka::message::BorrowedMessage<'_>, committed_input: &Committed) -> Result<bool, &'static str> {
    let header = m
        .headers()
        .and_then(|hs| hs.iter().find(|h| h.key == INPUT_NEXT))
        .ok_or("without its input position (header weir.input.next)")?;
    let position = header
        .value
        .and_then(|v| std::str::from_utf8(v).ok())
        .ok_or("with an unreadable input position (header weir.input.next)")?;
    Ok(position_committed(position, committed_input))
}

/// [`committed`] on the header's text: `next` for a task of one source,
/// `topic=next,…` for a task of several (only the sources it read since it
/// opened or last dropped uncommitted work). A position that read nothing
/// (`0`, or no pair) constrains nothing. Anything else is not committed
/// work (a record Weir did not write that way is not trusted).
fn position_committed(position: &str, committed_input: &Committed) -> bool {
    let at_most = |topic: Option<&str>, next: &str| {
        let Ok(next) = next.parse::<i64>() else { return false };
        let committed = match topic {
            Some(t) => committed_input.get(t).copied().flatten(),
            None if committed_input.len() == 1 => committed_input.values().next().copied().flatten(),
            None => None,
        };
        next == 0 || committed.is_some_and(|c| next <= c)
    };
    if position.is_empty() {
        return true;
    }
    if !position.contains('=') {
        return at_most(None, position);
    }
    position
        .split(',')
        .all(|pair| pair.split_once('=').is_some_and(|(t, next)| at_most(Some(t), next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_committed_when_every_source_is() {
        let one: Committed = [("in".to_owned(), Some(10))].into();
        assert!(position_committed("10", &one));
        assert!(!position_committed("11", &one));
        assert!(!position_committed("x", &one));
        let none: Committed = [("in".to_owned(), None)].into();
        assert!(!position_committed("1", &none));
        // Nothing read: nothing to be uncommitted about.
        assert!(position_committed("0", &none));
        assert!(position_committed("", &none));
        let two: Committed = [("a".to_owned(), Some(5)), ("b".to_owned(), Some(7))].into();
        assert!(position_committed("a=5,b=7", &two));
        assert!(position_committed("a=0,b=7", &two));
        assert!(!position_committed("a=6,b=7", &two));
        assert!(!position_committed("a=5,c=1", &two));
        assert!(position_committed("b=7", &two));
        assert!(!position_committed("a=6", &two));
        // A plain number is ambiguous for a task of two sources.
        assert!(!position_committed("5", &two));
    }
}
