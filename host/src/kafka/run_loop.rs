//! The loop: [`Instance::run`] polls a round, settles what a rebalance
//! changed, opens tasks, runs the round through them, closes idle windows,
//! and every commit interval ends the transaction at a boundary where
//! swaps and purges happen; until a stop, then a final commit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;

use super::error::InstanceError;
use super::gather::ErrorLog;
use super::instance::{Instance, TaskId};
use super::restore::RestoreError;
use crate::codec::BatchEncoder;
use crate::metrics::Snapshot;
use crate::task::Task;

impl Instance {
    /// Runs until stopped (`Ok`, after a final commit) or until a fatal
    /// error (the open transaction is aborted).
    pub fn run(self) -> Result<Snapshot, InstanceError> {
        let result = self.run_loop();
        // Best effort: the broker aborts it on timeout or when this
        // transactional.id starts again anyway (and is not waited for
        // again after a stop while the brokers were unreachable).
        if result.is_err() && !matches!(result, Err(InstanceError::StoppedWaiting(_))) {
            let mut st = self.shared.lock();
            if st.open {
                let _ = self.shared.abort_before_exit(&mut st);
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
        let round_budget = crate::clients::round_budget(&self.pipeline, &self.options.instance_id);
        'run: loop {
            if self.options.shutdown.requested() {
                break;
            }
            self.globals.check()?;
            let wait = (last_commit + interval)
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            let mut gathered = self.gather(wait, max_gather, &mut errors)?;
            let polled = Instant::now();
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
                let swapped = self.swap(&mut tasks);
                self.or_abort(&mut tasks, swapped)?;
                last_commit = Instant::now();
            }
            match self.open_tasks(&mut tasks, &assigned, &gathered) {
                Ok(()) => {}
                // A stop reaches a restore too: end as after any
                // batch, with the final commit of what is done.
                Err(InstanceError::Restore(RestoreError::Stopped { topic, partition })) => {
                    tracing::info!(%topic, partition, "stopped while restoring state");
                    break 'run;
                }
                Err(e) => return Err(e),
            }
            let worked = self
                .run_round(&mut tasks, gathered, &mut encoders, batch_size, polled + round_budget)
                .and_then(|()| self.idle_close(&mut tasks));
            self.or_abort(&mut tasks, worked)?;
            if last_commit.elapsed() >= interval {
                self.commit(&mut tasks)?;
                self.purge();
                // A transaction boundary: guards are checked here.
                let swapped = self.swap(&mut tasks);
                self.or_abort(&mut tasks, swapped)?;
                last_commit = Instant::now();
            }
            if last_views.elapsed() >= Duration::from_secs(1) {
                self.refresh_views(&tasks);
                last_views = Instant::now();
            }
        }
        self.commit(&mut tasks)
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
}
