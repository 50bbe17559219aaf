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
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};

use super::error::{InstanceError, TopicPartition};
use super::global::GlobalTables;
use super::purge::Purger;
use super::rebalance::ConsumerCtx;
use super::restore::{Committed, RestoreError, Restorer};
use super::txn::Shared;
use crate::clients::{self, ProducerSink};
use crate::codec::BatchEncoder;
use crate::metrics::{self, Metrics, Snapshot};
use crate::pipeline::{Pipeline, Stamp, wall_clock_ms};
use crate::status::query::StoreQueries;
use crate::status::{Restores, Status, Views};
use crate::swap::{self, SwapError, Swapper};
use crate::task::{Chain, Task, TaskError, Workers};

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

    /// Runs until stopped (`Ok`, after a final commit) or until a fatal
    /// error (the open transaction is aborted).
    pub fn run(self) -> Result<Snapshot, InstanceError> {
        let result = self.run_loop();
        if result.is_err() {
            let mut st = self.shared.lock();
            if st.open {
                // Best effort: the broker aborts it on timeout or when this
                // transactional.id starts again anyway.
                let _ = self.shared.abort(&mut st);
            }
        }
        // A dynamic member leaves the group now (the revoke callback sees
        // nothing left to commit). A static member only closes (when the
        // consumer is dropped): librdkafka then sends no LeaveGroup, so a
        // restart within the session timeout takes the same partitions back
        // without a rebalance, as in Kafka Streams.
        if !self.pipeline.static_membership {
            self.consumer.unsubscribe();
        }
        let snapshot = self.metrics().snapshot();
        drop(self.consumer);
        result.map(|()| snapshot)
    }

    fn run_loop(&self) -> Result<(), InstanceError> {
        let interval = self.pipeline.commit_interval;
        let batch_size = self.chain.batch_size();
        // A round takes what the consumer has ready, up to this: enough
        // that it spans several partitions (librdkafka queues a fetch's
        // records partition after partition, thousands each), so that
        // several tasks, and threads, have work in it.
        let max_gather = batch_size.saturating_mul(8).saturating_mul(self.workers.threads());
        let mut tasks: HashMap<TaskId, Task> = HashMap::new();
        // One batch encoder per task running at once, kept across rounds.
        let mut encoders: Vec<BatchEncoder> = Vec::new();
        let mut last_commit = Instant::now();
        // Views are due at once, then every second.
        let mut last_views = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        let mut errors = ErrorLog::default();
        'run: loop {
            if self.options.shutdown.requested() {
                break;
            }
            self.globals.check()?;
            let wait = (last_commit + interval)
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            let mut gathered: BTreeMap<TopicPartition, Vec<BorrowedMessage<'_>>> = BTreeMap::new();
            // Records come in runs of one partition: a run is filed under its
            // partition once, not each record (no topic name copied per record).
            let mut run: Vec<BorrowedMessage<'_>> = Vec::new();
            let mut count = 0;
            let mut next = self.consumer.poll(wait);
            while let Some(item) = next {
                match item {
                    Ok(m) => {
                        if run
                            .first()
                            .is_some_and(|f| f.partition() != m.partition() || f.topic() != m.topic())
                        {
                            file_run(&mut gathered, &mut run);
                        }
                        run.push(m);
                        count += 1;
                    }
                    Err(e @ KafkaError::MessageConsumptionFatal(_)) => return Err(self.consumer_fatal(&e)),
                    Err(e) => errors.log(&e),
                }
                if count >= max_gather {
                    break;
                }
                next = self.consumer.poll(Duration::ZERO);
            }
            file_run(&mut gathered, &mut run);
            let assigned = self.settle(&mut tasks, &mut gathered)?;
            self.swapper().poll();
            if !assigned.is_empty() || gathered.keys().any(|tp| !tasks.contains_key(&self.task_id(tp))) {
                // New tasks start with the newest version, so that a
                // partition never goes back to an older one when it changes
                // hands. Catching up may wait for a compilation: end the open
                // transaction first, so that it cannot time out meanwhile.
                self.end_transaction(&mut tasks, &mut gathered)?;
                self.catch_up()?;
            }
            if self.swapper().has_ready() {
                // A new version is compiled: end the transaction now rather
                // than at the commit interval, and swap at that boundary.
                // This batch's records then go to the new version.
                self.end_transaction(&mut tasks, &mut gathered)?;
                self.swap(&mut tasks)?;
                last_commit = Instant::now();
            }
            for tp in assigned.iter().chain(gathered.keys()) {
                let id = self.task_id(tp);
                if let std::collections::hash_map::Entry::Vacant(slot) = tasks.entry(id) {
                    match self.open_task(id, tp) {
                        Ok(task) => {
                            slot.insert(task);
                        }
                        // A stop reaches a restore too: end as after any
                        // batch, with the final commit of what is done.
                        Err(InstanceError::Restore(RestoreError::Stopped { topic, partition })) => {
                            tracing::info!(%topic, partition, "stopped while restoring state");
                            break 'run;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
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
                        .run(
                            batch_size,
                            &mut ProducerSink {
                                producer: &shared.producer,
                                shutdown: &shared.shutdown,
                            },
                        )
                        .map_err(|e| shared.explain(e))
                })?;
                let mut st = self.shared.lock();
                for round in rounds {
                    for (tp, messages) in &round.parts {
                        if let Some(last) = messages.last() {
                            st.pending.insert(tp.clone(), last.offset() + 1);
                        }
                        metrics::add(&self.metrics().consumed, messages.len() as u64);
                    }
                    encoders.push(round.encoder);
                }
            }
            self.idle_close(&mut tasks)?;
            if last_commit.elapsed() >= interval {
                self.shared.commit(&self.consumer, &mut self.shared.lock())?;
                self.apply_outcome(&mut tasks)?;
                self.purge();
                // A transaction boundary: guards are checked here.
                self.swap(&mut tasks)?;
                last_commit = Instant::now();
            }
            if last_views.elapsed() >= Duration::from_secs(1) {
                self.refresh_views(&tasks);
                last_views = Instant::now();
            }
        }
        self.shared.commit(&self.consumer, &mut self.shared.lock())?;
        self.apply_outcome(&mut tasks)?;
        Ok(())
    }

    /// Commits the open transaction (if any) before the records of this
    /// batch are processed. If it aborts, they are dropped: they come again
    /// after the rewind, behind the aborted ones.
    fn end_transaction(
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

    /// A fatal consumer error, explained: being fenced out of the group by
    /// a static member with our id says what to do.
    fn consumer_fatal(&self, e: &KafkaError) -> InstanceError {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::FencedInstanceId) => InstanceError::FencedMember {
                group_instance_id: clients::group_instance_id(&self.pipeline, &self.options.instance_id),
                reason: e.to_string(),
            },
            _ => InstanceError::Consumer { reason: e.to_string() },
        }
    }

    /// Reads the registry to its end (see [`Swapper::catch_up`]), trying a
    /// few times: running a new task with a version older than the one its
    /// partition last ran would break the order of versions.
    fn catch_up(&self) -> Result<(), InstanceError> {
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
    fn purge(&self) {
        let mut purger = self.purger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = purger.as_mut() {
            p.committed(&self.shared.lock().resume);
        }
    }

    fn swapper(&self) -> MutexGuard<'_, Swapper> {
        self.swapper.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where a task writes: the producer, inside the unit of work, which
    /// this opens when none is (the one place a transaction begins).
    fn writer(&self) -> Result<ProducerSink<'_>, InstanceError> {
        self.shared.begin(&mut self.shared.lock())?;
        Ok(ProducerSink {
            producer: &self.shared.producer,
            shutdown: &self.shared.shutdown,
        })
    }

    /// At a transaction boundary: swaps the versions that are ready into
    /// every task, and checks the guards of recent swaps. Does nothing while
    /// a transaction is open.
    fn swap(&self, tasks: &mut HashMap<TaskId, Task>) -> Result<(), InstanceError> {
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
    fn task_id(&self, (topic, partition): &TopicPartition) -> TaskId {
        (self.chain.sub_of(topic).unwrap_or(usize::MAX), *partition)
    }

    /// A task for a newly seen partition number, its stores restored from
    /// their changelogs (only the tail past the local checkpoint, when there
    /// is one).
    fn open_task(&self, (sub, partition): TaskId, tp: &TopicPartition) -> Result<Task, InstanceError> {
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
    fn committed_offset(&self, topic: &str, partition: i32) -> Result<Option<i64>, InstanceError> {
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
    fn apply_outcome(&self, tasks: &mut HashMap<TaskId, Task>) -> Result<(), InstanceError> {
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

    /// Closes windows of quiet partitions (stages with `idle-close`).
    fn idle_close(&self, tasks: &mut HashMap<TaskId, Task>) -> Result<(), InstanceError> {
        let now = Instant::now();
        for task in tasks.values_mut() {
            if !task.idle_due(now) {
                continue;
            }
            let mut sink = self.writer()?;
            task.idle_close(now, &mut sink).map_err(|e| self.shared.explain(e))?;
        }
        Ok(())
    }

    /// Refreshes what the admin API shows about tasks, stores and lag.
    fn refresh_views(&self, tasks: &HashMap<TaskId, Task>) {
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
    fn settle(
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

/// A task's share of a poll round: its records, by partition, and the
/// encoder its batches are built in.
struct Round<'t, 'm> {
    task: &'t mut Task,
    parts: Vec<(TopicPartition, Vec<BorrowedMessage<'m>>)>,
    /// Each record's timestamp under the pipeline's timestamp policy
    /// (`None`: skipped), by part.
    stamps: Vec<Vec<Option<i64>>>,
    encoder: BatchEncoder,
}

impl Round<'_, '_> {
    /// Runs the records through the task, in batches of at most `batch_size`.
    fn run(&mut self, batch_size: usize, sink: &mut ProducerSink<'_>) -> Result<(), TaskError> {
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
        for (part, range) in interleave(&times, batch_size) {
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
                    match policy.stamp(raw, wall_clock_ms) {
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

/// Files a run of one partition's records under that partition, after any
/// of its records gathered before.
fn file_run<'c>(gathered: &mut BTreeMap<TopicPartition, Vec<BorrowedMessage<'c>>>, run: &mut Vec<BorrowedMessage<'c>>) {
    let Some(first) = run.first() else {
        return;
    };
    let tp = (first.topic().to_owned(), first.partition());
    match gathered.entry(tp) {
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(std::mem::take(run));
        }
        std::collections::btree_map::Entry::Occupied(mut slot) => slot.get_mut().append(run),
    }
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

/// Consumer errors, logged at most once per 5 s each so that an outage does
/// not flood the log.
#[derive(Default)]
struct ErrorLog {
    last: HashMap<String, Instant>,
}

impl ErrorLog {
    fn log(&mut self, e: &KafkaError) {
        if matches!(e, KafkaError::PartitionEOF(_)) {
            return;
        }
        let text = e.to_string();
        let now = Instant::now();
        let due = self
            .last
            .get(&text)
            .is_none_or(|t| now.duration_since(*t) > Duration::from_secs(5));
        if due {
            tracing::warn!("consumer: {text}");
            self.last.insert(text, now);
        }
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
