//! One running instance of a pipeline: a consumer group member with one task
//! per sub-topology and assigned partition number, and the loop that feeds
//! them and commits (the protocol is in `txn`, the rebalance callbacks in
//! `rebalance`, restores in `restore`, swaps in [`crate::swap::apply`]).
//!
//! The loop: poll a batch of records → run each topic partition's records
//! through its task (outputs go to the producer) → every commit interval, close the
//! transaction with the input offsets in it (`send_offsets_to_transaction`),
//! or, at-least-once, flush the producer and then commit the offsets.
//!
//! Tasks run on the instance's processing threads ([`Workers`]): each poll
//! gives a round, every task with records in it runs on one thread, and
//! the round ends when all are done. All threads write into the one open
//! transaction through the one producer, so a commit (and a swap, a
//! rebalance, a restore) happens on the loop's thread between rounds, with
//! every task idle: one transaction boundary that every thread reaches.
//!
//! Between two batches nothing is in flight inside a task: that is where a
//! transaction ends, where state will be flushed and modules swapped.
//!
//! Rebalances: the consumer's revoke callback runs inside `poll`, between
//! batches. It commits the open transaction before the partitions go, so the
//! next owner starts exactly where this one stopped; a lost assignment (the
//! group moved on without us) aborts instead. An abort rewinds every kept
//! partition to its last committed offset, so aborted work is redone once.
//!
//! Outages: a call to the brokers that fails retriably (a commit, an abort,
//! a rewind, reading a committed offset) is tried again until they answer,
//! saying what it waits for ([`crate::clients::retry`]). A transaction
//! whose records could not be delivered meanwhile fails; it is aborted and
//! every partition rewinds, as after any abortable error. A consumer whose
//! group session expired meanwhile rejoins (librdkafka does), its lost
//! partitions aborted as in any rebalance. Only fatal errors stop it.
//!
//! This file holds the instance and its options; each part of its life is
//! a file of this module: start-up in `startup` ([`Instance::connect`]),
//! the loop in `run_loop` ([`Instance::run`]), polling in `gather`, a round
//! through the tasks in `round`, settling after a rebalance in `settle`,
//! the transaction boundary in `boundary`, module versions in `swaps`, and
//! what the admin API sees in `views` ([`Instance::status`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;

use super::error::{InstanceError, TopicPartition};
use super::global::GlobalTables;
use super::purge::Purger;
use super::rebalance::ConsumerCtx;
use super::restore::Restorer;
use super::txn::Shared;
use crate::clients::ProducerSink;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::shutdown::Shutdown;
use crate::status::query::StoreQueries;
use crate::status::{Restores, Views};
use crate::swap::Swapper;
use crate::task::{Chain, Workers};

/// How an instance runs, beyond its pipeline file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stable id of this instance among those of the application; part of
    /// its transactional.id, so it must not change across restarts and must
    /// differ between instances running at once.
    pub instance_id: String,
    /// How long to wait for the brokers at start-up. While running, an
    /// operation (a commit, an abort, a rewind) whose brokers are
    /// unreachable is tried again, each try waiting at most this long (and
    /// [`ATTEMPT`](crate::clients::retry::ATTEMPT)), until they answer;
    /// after a stop it is given this long in all.
    pub kafka_timeout: Duration,
    /// Requested to stop: the current batch finishes and is committed. A
    /// dynamic member then leaves the group; a static one (the default)
    /// does not, so that a restart within the session timeout causes no
    /// rebalance.
    pub shutdown: Shutdown,
    /// Fault injection for tests: every Nth commit that has work in it
    /// aborts instead, as on an abortable broker error (the transaction is
    /// aborted, partitions rewind to their committed offsets, staged state
    /// is discarded, and the work is redone). N ≥ 2, or no commit would
    /// ever succeed; the last commit before a stop is never aborted.
    pub fault_abort_every: Option<u64>,
    /// Processing threads, over the pipeline file's `threads` (`None`:
    /// the file's, else one per core).
    pub threads: Option<usize>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            instance_id: "0".into(),
            kafka_timeout: Duration::from_secs(30),
            shutdown: Shutdown::new(),
            fault_abort_every: None,
            threads: None,
        }
    }
}

/// A task: (sub-topology, partition number).
pub(super) type TaskId = (usize, i32);

/// A pipeline instance connected to Kafka, ready to run.
pub struct Instance {
    pub(super) chain: Arc<Chain>,
    pub(super) pipeline: Pipeline,
    pub(super) options: RunOptions,
    pub(super) shared: Arc<Shared>,
    pub(super) consumer: BaseConsumer<ConsumerCtx>,
    /// Stores live under `<state-dir>/<application>/<instance>/`.
    pub(super) state_root: PathBuf,
    pub(super) restorer: Option<Restorer>,
    pub(super) restores: Arc<Mutex<Restores>>,
    pub(super) views: Arc<Mutex<Views>>,
    pub(super) queries: Option<Arc<StoreQueries>>,
    pub(super) swapper: Mutex<Swapper>,
    pub(super) purger: Mutex<Option<Purger>>,
    pub(super) workers: Workers,
    pub(super) started: Instant,
    /// Global tables, kept current by threads of their own while the
    /// instance lives.
    pub(super) globals: GlobalTables,
}

impl Instance {
    /// How many processing threads run its tasks.
    pub fn threads(&self) -> usize {
        self.workers.threads()
    }

    /// The instance's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.chain.metrics()
    }

    pub(super) fn swapper(&self) -> MutexGuard<'_, Swapper> {
        self.swapper.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where a task writes: the producer, inside the unit of work, which
    /// this opens when none is (the one place a transaction begins).
    pub(super) fn writer(&self) -> Result<ProducerSink<'_>, InstanceError> {
        self.shared.begin(&mut self.shared.lock())?;
        Ok(self.shared.sink())
    }

    /// The task that reads a topic partition: the sub-topology that reads
    /// the topic, at that partition number. Every subscribed topic is a
    /// source of some sub-topology; `usize::MAX` (no task, which
    /// [`Instance::open_task`] refuses naming the topic) if not.
    pub(super) fn task_id(&self, (topic, partition): &TopicPartition) -> TaskId {
        (self.chain.sub_of(topic).unwrap_or(usize::MAX), *partition)
    }
}
