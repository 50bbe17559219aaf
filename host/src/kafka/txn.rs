//! The commit protocol of an instance: one transaction (exactly-once) or
//! one flush-then-commit (at-least-once) per unit of work, with the input
//! offsets in it; aborts and the rewind they need; the bookkeeping that the
//! run loop and the rebalance callback share.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};

use super::error::{InstanceError, TopicPartition};
use crate::clients::retry::{self, GaveUp};
use crate::clients::{Producer, ProducerSink};
use crate::metrics::{self, Metrics};
use crate::pipeline::Guarantee;
use crate::shutdown::Shutdown;
use crate::task::TaskError;

/// What a second signal abandons while a transaction is open.
const OPEN_TRANSACTION: &str = "the open transaction: its records are not committed; Kafka aborts them \
     and they are processed again at the next start";

/// What a second signal abandons at least-once between two commits.
const UNCOMMITTED_OFFSETS: &str = "the records processed since the last commit: their offsets are not \
     committed, so they are processed (and written) again at the next start";

/// What a second signal abandons right after a commit.
const COMMITTED: &str = "nothing uncommitted (the last commit went through)";

/// What the transaction calls wait for, in their log lines.
const SEND_OFFSETS: &str = "add the input offsets to the transaction";
const COMMIT: &str = "commit the transaction";
const ABORT: &str = "abort the transaction";

/// Transaction and offset bookkeeping, shared with the rebalance callback.
#[derive(Default)]
pub(super) struct TxnState {
    /// A transaction is open (exactly-once).
    pub(super) open: bool,
    /// Next offset per partition processed since the last commit.
    pub(super) pending: BTreeMap<TopicPartition, i64>,
    /// Where each partition resumes after an abort: its last committed
    /// position (or the first offset this instance saw of it).
    pub(super) resume: BTreeMap<TopicPartition, i64>,
    /// Partitions revoked during `poll`; their tasks must go.
    pub(super) revoked: Vec<TopicPartition>,
    /// An abort happened: kept partitions must seek back to `resume`.
    pub(super) rewind: bool,
    /// A fatal error seen inside a callback.
    pub(super) fatal: Option<InstanceError>,
    /// Partitions assigned during `poll`; their tasks open (and restore)
    /// before anything is processed.
    pub(super) assigned: Vec<TopicPartition>,
    /// Delivery failures already accounted for (at-least-once).
    pub(super) failures_seen: u64,
    /// How the last unit of work ended, until the run loop has applied it
    /// to the state stores: committed (`true`) or aborted.
    pub(super) ended: Option<bool>,
    /// Commits with work in them so far (for [`RunOptions::fault_abort_every`]).
    pub(super) commits_with_work: u64,
}

pub(super) struct Shared {
    pub(super) producer: Producer,
    /// The end of each partition as this consumer sees it (the last stable
    /// offset), from librdkafka's statistics.
    pub(super) ends: Mutex<BTreeMap<TopicPartition, i64>>,
    /// Input partitions assigned now (for the admin API).
    pub(super) assigned: Arc<Mutex<std::collections::BTreeSet<TopicPartition>>>,
    pub(super) guarantee: Guarantee,
    pub(super) timeout: Duration,
    pub(super) transactional_id: String,
    pub(super) metrics: Arc<Metrics>,
    pub(super) state: Mutex<TxnState>,
    pub(super) fault_abort_every: Option<u64>,
    /// The instance's shutdown: once requested, its last commit is not
    /// aborted on purpose.
    pub(super) shutdown: Shutdown,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, TxnState> {
        // A panic while holding the lock would already have ended the loop.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn begin(&self, st: &mut TxnState) -> Result<(), InstanceError> {
        if self.guarantee == Guarantee::ExactlyOnce && !st.open {
            self.producer.begin_transaction().map_err(|e| self.fatal(&e))?;
            st.open = true;
        }
        self.shutdown.doing(match self.guarantee {
            Guarantee::ExactlyOnce => OPEN_TRANSACTION,
            Guarantee::AtLeastOnce => UNCOMMITTED_OFFSETS,
        });
        Ok(())
    }

    /// Closes the current unit of work: commits the transaction (or flushes
    /// and commits offsets). An abortable failure aborts and asks for a rewind.
    pub(super) fn commit(
        &self,
        consumer: &BaseConsumer<impl ConsumerContext>,
        st: &mut TxnState,
    ) -> Result<(), InstanceError> {
        if let Some(every) = self.fault_abort_every
            && !st.pending.is_empty()
            && !self.shutdown.requested()
        {
            st.commits_with_work += 1;
            if st.commits_with_work.is_multiple_of(every) {
                tracing::warn!(
                    commit = st.commits_with_work,
                    "injected abort (--fault-abort-every {every}); reprocessing since the last commit"
                );
                return self.abort(st);
            }
        }
        let started = Instant::now();
        let result = match self.guarantee {
            Guarantee::ExactlyOnce => self.commit_transaction(consumer, st),
            Guarantee::AtLeastOnce => self.commit_offsets(consumer, st),
        };
        metrics::add(&self.metrics.commit_micros, started.elapsed().as_micros() as u64);
        if result.is_ok() {
            self.shutdown.doing(COMMITTED);
        }
        result
    }

    pub(super) fn commit_transaction(
        &self,
        consumer: &BaseConsumer<impl ConsumerContext>,
        st: &mut TxnState,
    ) -> Result<(), InstanceError> {
        if !st.open {
            return Ok(());
        }
        if !st.pending.is_empty() {
            // The group's generation as it is now: if the group moves on
            // while we wait, the broker refuses these offsets (an abort).
            let Some(group) = consumer.group_metadata() else {
                tracing::warn!("no consumer group metadata; aborting the transaction");
                return self.abort(st);
            };
            let offsets = offsets(&st.pending);
            match self.retry(SEND_OFFSETS, |t| {
                self.producer.send_offsets_to_transaction(&offsets, &group, t)
            }) {
                Ok(()) => {}
                Err(GaveUp::Failed(e)) => return self.on_error(e, st),
                Err(GaveUp::Stopped(s)) => return Err(s.into()),
            }
        }
        match self.retry(COMMIT, |t| self.producer.commit_transaction(t)) {
            Ok(()) => {}
            Err(GaveUp::Failed(e)) => return self.on_error(e, st),
            Err(GaveUp::Stopped(s)) => return Err(s.into()),
        }
        st.open = false;
        st.ended = Some(true);
        let pending = std::mem::take(&mut st.pending);
        st.resume.extend(pending);
        metrics::add(&self.metrics.commits, 1);
        Ok(())
    }

    pub(super) fn commit_offsets(
        &self,
        consumer: &BaseConsumer<impl ConsumerContext>,
        st: &mut TxnState,
    ) -> Result<(), InstanceError> {
        if let Err(e) = self.producer.flush(self.timeout) {
            tracing::warn!("flushing outputs failed: {e}; reprocessing since the last commit");
            return self.abort(st);
        }
        let failures = self.producer.context().failures();
        if failures != st.failures_seen {
            let new = failures - st.failures_seen;
            st.failures_seen = failures;
            tracing::warn!(
                "{new} output(s) were not delivered (latest: {}); reprocessing since the last commit",
                self.producer.context().last_failure().unwrap_or_default()
            );
            return self.abort(st);
        }
        // Everything sent so far, changelogs included, has arrived.
        st.ended = Some(true);
        if st.pending.is_empty() {
            return Ok(());
        }
        match consumer.commit(&offsets(&st.pending), CommitMode::Sync) {
            Ok(()) => {
                let pending = std::mem::take(&mut st.pending);
                st.resume.extend(pending);
                metrics::add(&self.metrics.commits, 1);
            }
            // The outputs are out; a later commit covers these offsets too.
            Err(e) => tracing::warn!("committing offsets failed: {e}; retrying at the next commit"),
        }
        Ok(())
    }

    pub(super) fn on_error(&self, e: KafkaError, st: &mut TxnState) -> Result<(), InstanceError> {
        match &e {
            KafkaError::Transaction(rd) if rd.is_fatal() => Err(self.fatal_rd(rd)),
            _ => {
                tracing::warn!("transaction failed: {e}; aborting and reprocessing since the last commit");
                self.abort(st)
            }
        }
    }

    /// Aborts the open transaction (if any) and asks for a rewind.
    pub(super) fn abort(&self, st: &mut TxnState) -> Result<(), InstanceError> {
        self.abort_until(st, &self.shutdown)
    }

    /// [`Shared::abort`] for an instance that stops anyway: it waits for
    /// unreachable brokers no longer than the timeout.
    pub(super) fn abort_before_exit(&self, st: &mut TxnState) -> Result<(), InstanceError> {
        let stopping = Shutdown::new();
        stopping.request();
        self.abort_until(st, &stopping)
    }

    fn abort_until(&self, st: &mut TxnState, shutdown: &Shutdown) -> Result<(), InstanceError> {
        if self.guarantee == Guarantee::ExactlyOnce && st.open {
            let abort = |t| self.producer.abort_transaction(t);
            match retry::retry(ABORT, &self.transactional_id, self.timeout, shutdown, abort) {
                Ok(()) => {}
                Err(GaveUp::Failed(e)) => return Err(self.fatal(&e)),
                Err(GaveUp::Stopped(s)) => return Err(s.into()),
            }
            st.open = false;
        }
        st.pending.clear();
        st.rewind = true;
        st.ended = Some(false);
        metrics::add(&self.metrics.aborts, 1);
        Ok(())
    }

    /// Calls `call` (given how long a try may wait for the brokers) until
    /// it succeeds, fails in a way trying again cannot fix, or a shutdown is
    /// requested while the brokers are unreachable; each wait is logged
    /// naming `operation` and the transactional id (see [`retry`]).
    pub(super) fn retry<T>(&self, operation: &str, call: impl FnMut(Duration) -> KafkaResult<T>) -> Result<T, GaveUp> {
        retry::retry(operation, &self.transactional_id, self.timeout, &self.shutdown, call)
    }

    /// Where a task writes: the producer (inside the open transaction).
    pub(super) fn sink(&self) -> ProducerSink<'_> {
        ProducerSink {
            producer: &self.producer,
            shutdown: &self.shutdown,
            transactional_id: &self.transactional_id,
        }
    }

    /// A task error, unless the producer failed fatally (e.g. fenced), which
    /// is the real cause and says what to do.
    pub(super) fn explain(&self, e: TaskError) -> InstanceError {
        match (&e, self.producer.client().fatal_error()) {
            (TaskError::Sink(_), Some((code, reason))) => self.fatal_code(code, reason),
            _ => InstanceError::Task(e),
        }
    }

    pub(super) fn fatal(&self, e: &KafkaError) -> InstanceError {
        match e {
            KafkaError::Transaction(rd) => self.fatal_rd(rd),
            other => InstanceError::Transaction {
                transactional_id: self.transactional_id.clone(),
                reason: other.to_string(),
            },
        }
    }

    pub(super) fn fatal_rd(&self, rd: &RDKafkaError) -> InstanceError {
        self.fatal_code(rd.code(), rd.to_string())
    }

    pub(super) fn fatal_code(&self, code: RDKafkaErrorCode, reason: String) -> InstanceError {
        let transactional_id = self.transactional_id.clone();
        match code {
            RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch | RDKafkaErrorCode::Fenced => {
                InstanceError::Fenced {
                    transactional_id,
                    reason,
                }
            }
            _ => InstanceError::Transaction {
                transactional_id,
                reason,
            },
        }
    }
}

pub(super) fn offsets(pending: &BTreeMap<TopicPartition, i64>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::with_capacity(pending.len());
    for ((topic, partition), next) in pending {
        // Only fails for an invalid offset value, which a next offset is not.
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
    }
    tpl
}
