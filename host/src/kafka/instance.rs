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

use crate::shutdown::Shutdown;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};

use super::error::{InstanceError, TopicPartition};
use super::global::GlobalTables;
use super::purge::Purger;
use super::rebalance::ConsumerCtx;
use super::restore::{Committed, Restorer};
use super::txn::Shared;
use crate::clients::ProducerSink;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::status::query::StoreQueries;
use crate::status::{Restores, Status, Views};
use crate::swap::{self, SwapError, Swapper};
use crate::task::{Chain, Task, Workers};

/// How an instance runs, beyond its pipeline file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stable id of this instance among those of the application; part of
    /// its transactional.id, so it must not change across restarts and must
    /// differ between instances running at once.
    pub instance_id: String,
    /// How long to wait for the brokers at start-up and for a transaction
    /// operation.
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

    /// What the admin API shows about this instance.
    pub fn status(&self) -> Arc<Status> {
        Arc::new(Status {
            application_id: self.pipeline.application_id.clone(),
            instance_id: self.options.instance_id.clone(),
            guarantee: self.pipeline.guarantee.to_string(),
            stages: self
                .pipeline
                .stages
                .iter()
                .map(|s| s.name.clone())
                .zip(self.chain.module_labels())
                .collect(),
            metrics: self.chain.metrics().clone(),
            assigned: self.shared.assigned.clone(),
            started: self.started,
            restores: self.restores.clone(),
            views: self.views.clone(),
            queries: self.queries.clone().map(|q| q as Arc<dyn crate::status::Queries>),
            swaps: self.swapper().views(),
        })
    }

    /// Commits the open transaction (if any) before the records of this
    /// batch are processed. If it aborts, they are dropped: they come again
    /// after the rewind, behind the aborted ones.
    pub(super) fn end_transaction(
        &self,
        tasks: &mut HashMap<TaskId, Task>,
        gathered: &mut BTreeMap<TopicPartition, Vec<BorrowedMessage<'_>>>,
    ) -> Result<(), InstanceError> {
        self.shared.commit(&self.consumer, &mut self.shared.lock())?;
        self.apply_outcome(tasks)?;
        if self.shared.lock().rewind {
            gathered.clear();
        }
        Ok(())
    }

    /// Reads the registry to its end (see [`Swapper::catch_up`]), trying a
    /// few times: running a new task with a version older than the one its
    /// partition last ran would break the order of versions.
    pub(super) fn catch_up(&self) -> Result<(), InstanceError> {
        let mut attempt = 0;
        loop {
            match self.swapper().catch_up() {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!("{e}; trying again");
                }
                Err(e) => return Err(InstanceError::Swap(SwapError::Registry(e))),
            }
        }
    }

    /// Hands the committed positions to the repartition purger (which
    /// acts once per purge interval).
    pub(super) fn purge(&self) {
        let mut purger = self.purger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = purger.as_mut() {
            p.committed(&self.shared.lock().resume);
        }
    }

    pub(super) fn swapper(&self) -> MutexGuard<'_, Swapper> {
        self.swapper.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where a task writes: the producer, inside the unit of work, which
    /// this opens when none is (the one place a transaction begins).
    pub(super) fn writer(&self) -> Result<ProducerSink<'_>, InstanceError> {
        self.shared.begin(&mut self.shared.lock())?;
        Ok(ProducerSink {
            producer: &self.shared.producer,
            shutdown: &self.shared.shutdown,
        })
    }

    /// At a transaction boundary: swaps the versions that are ready into
    /// every task, and checks the guards of recent swaps. Does nothing while
    /// a transaction is open.
    pub(super) fn swap(&self, tasks: &mut HashMap<TaskId, Task>) -> Result<(), InstanceError> {
        if self.shared.lock().open {
            return Ok(());
        }
        swap::apply::apply_ready(
            &mut self.swapper(),
            &self.chain,
            tasks.values_mut().collect(),
            || self.writer(),
            |e| self.shared.explain(e),
        )
    }

    /// The task that reads a topic partition: the sub-topology that reads
    /// the topic, at that partition number. Every subscribed topic is a
    /// source of some sub-topology; `usize::MAX` (no task, which
    /// [`Instance::open_task`] refuses naming the topic) if not.
    pub(super) fn task_id(&self, (topic, partition): &TopicPartition) -> TaskId {
        (self.chain.sub_of(topic).unwrap_or(usize::MAX), *partition)
    }

    /// A task for a newly seen partition number, its stores restored from
    /// their changelogs (only the tail past the local checkpoint, when there
    /// is one).
    pub(super) fn open_task(&self, (sub, partition): TaskId, tp: &TopicPartition) -> Result<Task, InstanceError> {
        let sources = self
            .chain
            .topology()
            .sub_topologies()
            .get(sub)
            .map(|s| s.sources.clone())
            .unwrap_or_default();
        let topic = sources.first().unwrap_or(&tp.0);
        let mut task = self.chain.open_task(topic, partition, &self.state_root)?;
        let Some(restorer) = &self.restorer else {
            return Ok(task);
        };
        if task.stores().next().is_none() {
            return Ok(task);
        }
        let mut committed = Committed::new();
        for t in &sources {
            committed.insert(t.clone(), self.committed_offset(t, partition)?);
        }
        let names = self.chain.stage_names();
        for (i, _, store) in task.stores() {
            restorer.restore(names[i], store, &committed)?;
        }
        task.reload()?;
        if let Some(q) = &self.queries {
            for (i, _, store) in task.stores() {
                q.add(i, partition, store.committed());
            }
        }
        Ok(task)
    }

    /// The group's committed offset of a partition (`None`: nothing committed yet).
    pub(super) fn committed_offset(&self, topic: &str, partition: i32) -> Result<Option<i64>, InstanceError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let got = self
            .consumer
            .committed_offsets(tpl, self.options.kafka_timeout)
            .map_err(|e| InstanceError::Transaction {
                transactional_id: self.shared.transactional_id.clone(),
                reason: format!("cannot read the committed offset of {topic}[{partition}]: {e}"),
            })?;
        Ok(got.find_partition(topic, partition).and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }))
    }

    /// Applies the end of the last unit of work to every store: a commit
    /// makes the staged writes durable (with each changelog's checkpoint), an
    /// abort throws them away.
    pub(super) fn apply_outcome(&self, tasks: &mut HashMap<TaskId, Task>) -> Result<(), InstanceError> {
        let ended = self.shared.lock().ended.take();
        match ended {
            Some(true) => {
                // Stores are a task's own: they apply their staged writes
                // on the processing threads too.
                let ctx = self.shared.producer.context();
                let mut all: Vec<&mut Task> = tasks.values_mut().collect();
                self.workers.for_each(&mut all, |task| {
                    task.commit_state(|cl| ctx.changelog_end(&cl.topic, cl.partition))
                })?;
            }
            Some(false) => {
                for task in tasks.values_mut() {
                    task.reload()?;
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Refreshes what the admin API shows about tasks, stores and lag.
    pub(super) fn refresh_views(&self, tasks: &HashMap<TaskId, Task>) {
        // Lag: the partition's end minus where this instance will read next.
        let positions: BTreeMap<TopicPartition, i64> = {
            let st = self.shared.lock();
            let mut p = st.resume.clone();
            p.extend(st.pending.iter().map(|(k, v)| (k.clone(), *v)));
            p
        };
        let ends = self.shared.ends.lock().map(|e| e.clone()).unwrap_or_default();
        let lag: BTreeMap<TopicPartition, i64> = positions
            .into_iter()
            .filter_map(|(tp, next)| ends.get(&tp).map(|end| (tp, (end - next).max(0))))
            .collect();
        let views = Views::of(tasks.values(), lag);
        if let Ok(mut v) = self.views.lock() {
            *v = views;
        }
    }

    /// Applies what happened inside `poll`: applies a commit or abort that
    /// the rebalance callback made, drops tasks of revoked partitions, notes
    /// where new partitions start, and rewinds after an abort (dropping the
    /// records gathered since, which will come again).
    /// Returns the partitions assigned since, whose tasks must open.
    pub(super) fn settle(
        &self,
        tasks: &mut HashMap<TaskId, Task>,
        gathered: &mut BTreeMap<TopicPartition, Vec<BorrowedMessage<'_>>>,
    ) -> Result<Vec<TopicPartition>, InstanceError> {
        self.apply_outcome(tasks)?;
        let mut st = self.shared.lock();
        if let Some(e) = st.fatal.take() {
            return Err(e);
        }
        let assigned = std::mem::take(&mut st.assigned);
        for tp in std::mem::take(&mut st.revoked) {
            // A task goes with any of its partitions; one whose other
            // sources stay here reopens (and restores) on their next
            // records. (A task with state over several topics loses them
            // together: the `range` assignor moves a partition number whole.)
            if let Some(task) = tasks.remove(&self.task_id(&tp)) {
                if let Some(q) = &self.queries {
                    for (i, _, _) in task.stores() {
                        q.remove(i, tp.1);
                    }
                }
                task.close();
            }
            gathered.remove(&tp);
        }
        // Tasks of assigned partitions open now, stateless ones too: the
        // registry is then caught up once per rebalance, before records
        // flow, rather than once per partition as its first records come
        // (each time ending the open transaction early).
        for (tp, messages) in gathered.iter() {
            if let Some(first) = messages.first() {
                st.resume.entry(tp.clone()).or_insert(first.offset());
            }
        }
        if st.rewind {
            st.rewind = false;
            gathered.clear();
            for ((topic, partition), offset) in &st.resume {
                self.consumer
                    .seek(topic, *partition, Offset::Offset(*offset), self.options.kafka_timeout)
                    .map_err(|e| InstanceError::Rewind {
                        topic: topic.clone(),
                        partition: *partition,
                        offset: *offset,
                        reason: e.to_string(),
                    })?;
            }
            tracing::info!(partitions = st.resume.len(), "rewound to the last committed offsets");
        }
        Ok(assigned)
    }
}
