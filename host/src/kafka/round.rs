//! A round through the tasks: the gathered records grouped by task, each
//! task's partitions interleaved by timestamp, every record stamped under
//! the pipeline's timestamp policy, encoded in batches and run on the
//! processing threads; then where each partition continues. A round that
//! runs past its time budget (a slow guest) stops between batches, and the
//! partitions it did not finish are read again from where it stopped.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};

use super::error::{InstanceError, TopicPartition};
use super::gather::Gathered;
use super::instance::{Instance, TaskId};
use crate::clients::ProducerSink;
use crate::codec::BatchEncoder;
use crate::metrics;
use crate::pipeline::{Pipeline, Stamp};
use crate::task::{Task, TaskError};
use crate::units::now_ms;

impl Instance {
    /// Runs a round's records through their tasks (open by now), on the
    /// processing threads, and notes each partition's next offset in the
    /// open transaction. `encoders` are kept across rounds, one per task
    /// running at once.
    ///
    /// A task stops between batches once the round has run until `until`:
    /// a round is bounded so that the loop polls again (and stays in its
    /// group) within `max.poll.interval.ms`, and the transaction ends
    /// within `transaction.timeout.ms`, however slow a guest becomes. The
    /// records it did not take are read again: their partitions are sought
    /// back to the first of them.
    pub(super) fn run_round(
        &self,
        tasks: &mut HashMap<TaskId, Task>,
        gathered: Gathered<'_>,
        encoders: &mut Vec<BatchEncoder>,
        batch_size: usize,
        until: Instant,
    ) -> Result<(), InstanceError> {
        // A task's partitions (several when it reads several topics)
        // give their records in timestamp order, as Kafka Streams'
        // PartitionGroup picks them: runs of one partition at a time.
        let mut by_task: BTreeMap<TaskId, Vec<(TopicPartition, Vec<BorrowedMessage<'_>>)>> = BTreeMap::new();
        for (tp, messages) in gathered {
            by_task.entry(self.task_id(&tp)).or_default().push((tp, messages));
        }
        let mut rounds: Vec<Round<'_, '_>> = tasks
            .iter_mut()
            .filter_map(|(id, task)| {
                let parts = by_task.remove(id)?;
                Some(Round {
                    task,
                    parts,
                    stamps: Vec::new(),
                    taken: Vec::new(),
                    encoder: encoders.pop().unwrap_or_default(),
                })
            })
            .collect();
        for round in &mut rounds {
            round.stamps = stamps(&round.parts, &self.pipeline)?;
        }
        if !rounds.is_empty() {
            // Begins the transaction if none is open, as `writer` does for
            // the loop's own writes; every thread writes into it.
            self.shared.begin(&mut self.shared.lock())?;
            let shared = &self.shared;
            self.workers.for_each(&mut rounds, |round| {
                round
                    .run(batch_size, until, &mut shared.sink())
                    .map_err(|e| shared.explain(e))
            })?;
            let mut again: BTreeMap<TopicPartition, i64> = BTreeMap::new();
            let mut st = self.shared.lock();
            for round in rounds {
                for ((tp, messages), &taken) in round.parts.iter().zip(&round.taken) {
                    if let Some(last) = messages[..taken].last() {
                        st.pending.insert(tp.clone(), last.offset() + 1);
                    }
                    if let Some(next) = messages.get(taken) {
                        again.insert(tp.clone(), next.offset());
                    }
                    metrics::add(&self.metrics().consumed, taken as u64);
                }
                encoders.push(round.encoder);
            }
            drop(st);
            if !again.is_empty() {
                tracing::warn!(
                    partitions = again.len(),
                    "a round ran out of time (a slow guest?): it stopped between batches, and \
                     the rest of its records are read again"
                );
                self.seek_back(&again, "the first record a round did not take")?;
            }
        }
        Ok(())
    }
}

/// A task's share of a poll round: its records, by partition, and the
/// encoder its batches are built in.
struct Round<'t, 'm> {
    task: &'t mut Task,
    parts: Vec<(TopicPartition, Vec<BorrowedMessage<'m>>)>,
    /// Each record's timestamp under the pipeline's timestamp policy
    /// (`None`: skipped), by part.
    stamps: Vec<Vec<Option<i64>>>,
    /// How many records of each part the task took, from the first.
    taken: Vec<usize>,
    encoder: BatchEncoder,
}

impl Round<'_, '_> {
    /// Runs the records through the task, in batches of at most
    /// `batch_size`, until all are taken or `until` has passed (then it
    /// stops between batches, having taken at least one).
    fn run(&mut self, batch_size: usize, until: Instant, sink: &mut ProducerSink<'_>) -> Result<(), TaskError> {
        // A skipped record keeps its partition's time for the interleaving.
        let times: Vec<Vec<i64>> = self
            .stamps
            .iter()
            .map(|part| {
                let mut time = 0;
                part.iter()
                    .map(|t| {
                        time = t.unwrap_or(time);
                        time
                    })
                    .collect()
            })
            .collect();
        self.taken = vec![0; self.parts.len()];
        for (part, range) in interleave(&times, batch_size) {
            if self.taken.iter().any(|&n| n > 0) && Instant::now() >= until {
                break;
            }
            self.taken[part] = range.end;
            let (_, messages) = &self.parts[part];
            let stamps = &self.stamps[part][range.clone()];
            self.encoder.clear();
            for (m, stamp) in messages[range].iter().zip(stamps) {
                let Some(timestamp) = *stamp else { continue };
                let headers = m.headers().into_iter().flat_map(|h| h.iter()).map(|h| (h.key, h.value));
                self.encoder.push(
                    timestamp,
                    m.topic(),
                    m.partition(),
                    m.offset(),
                    m.key(),
                    m.payload(),
                    headers,
                );
            }
            self.task.process(&self.encoder, sink)?;
        }
        Ok(())
    }
}

/// Each record's timestamp under the pipeline's `timestamp-policy`, by
/// part (`None`: skipped, and logged); an invalid one under `fail` stops
/// the instance, naming the record.
fn stamps(
    parts: &[(TopicPartition, Vec<BorrowedMessage<'_>>)],
    pipeline: &Pipeline,
) -> Result<Vec<Vec<Option<i64>>>, InstanceError> {
    let policy = pipeline.timestamp_policy;
    parts
        .iter()
        .map(|(_, messages)| {
            messages
                .iter()
                .map(|m| {
                    let raw = m.timestamp().to_millis();
                    match policy.stamp(raw, now_ms) {
                        Stamp::Use(t) => Ok(Some(t)),
                        Stamp::Skip => {
                            tracing::warn!(
                                topic = m.topic(),
                                partition = m.partition(),
                                offset = m.offset(),
                                timestamp = ?raw,
                                "skipped a record without a valid timestamp (timestamp-policy = \"log-and-skip\")"
                            );
                            Ok(None)
                        }
                        Stamp::Fail => Err(InstanceError::InvalidTimestamp {
                            topic: m.topic().to_owned(),
                            partition: m.partition(),
                            offset: m.offset(),
                            timestamp: raw,
                            file: pipeline.file.clone(),
                        }),
                    }
                })
                .collect()
        })
        .collect()
}

/// The order in which a task takes the records of its partitions (each
/// in offset order, with these timestamps): runs of one partition, at most
/// `batch` long, always from the partition whose next record is the oldest
/// (ties: the earlier partition) and on while that stays so — Kafka
/// Streams' choice of the next record among a task's partitions. One
/// partition is simply cut into batches.
fn interleave(times: &[Vec<i64>], batch: usize) -> Vec<(usize, std::ops::Range<usize>)> {
    let batch = batch.max(1);
    let mut next = vec![0usize; times.len()];
    let mut out = Vec::new();
    loop {
        let head = |p: usize, next: &[usize]| times[p].get(next[p]).copied();
        let Some(part) = (0..times.len())
            .filter_map(|p| head(p, &next).map(|t| (t, p)))
            .min()
            .map(|(_, p)| p)
        else {
            return out;
        };
        // The oldest next record of the other partitions bounds this run
        // (strictly for later partitions, which lose ties).
        let bound = (0..times.len())
            .filter(|&p| p != part)
            .filter_map(|p| head(p, &next).map(|t| (t, p)))
            .min();
        let start = next[part];
        let mut end = start;
        while end < times[part].len() && end - start < batch {
            let t = times[part][end];
            let ok = match bound {
                None => true,
                Some((b, p)) => t < b || (t == b && part < p),
            };
            if end > start && !ok {
                break;
            }
            end += 1;
        }
        next[part] = end;
        out.push((part, start..end));
    }
}

#[cfg(test)]
mod tests {
    use super::interleave;

    #[test]
    fn one_partition_is_cut_into_batches() {
        assert_eq!(
            interleave(&[vec![5, 1, 9, 2, 7]], 2),
            vec![(0, 0..2), (0, 2..4), (0, 4..5)]
        );
        assert_eq!(interleave(&[vec![]], 3), vec![]);
    }

    #[test]
    fn several_partitions_give_their_records_oldest_first() {
        // Partition 0: 1 2 5 9, partition 1: 3 4 5 6 — ties go to the first.
        let order = interleave(&[vec![1, 2, 5, 9], vec![3, 4, 5, 6]], 10);
        assert_eq!(order, vec![(0, 0..2), (1, 0..2), (0, 2..3), (1, 2..4), (0, 3..4)]);
        // Each partition stays in offset order even when its own timestamps go back.
        let order = interleave(&[vec![10, 1], vec![5]], 10);
        assert_eq!(order, vec![(1, 0..1), (0, 0..2)]);
        // Batches cut long runs.
        let order = interleave(&[vec![1, 2, 3], vec![9]], 2);
        assert_eq!(order, vec![(0, 0..2), (0, 2..3), (1, 0..1)]);
    }
}
