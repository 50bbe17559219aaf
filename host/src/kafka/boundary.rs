//! The transaction boundary: ending the open transaction, applying its
//! outcome to every store (durable on a commit, thrown away on an abort),
//! aborting one that failed under a round, and handing the committed
//! positions to the repartition purger.

use std::collections::HashMap;

use rdkafka::producer::Producer as _;

use super::error::InstanceError;
use super::gather::Gathered;
use super::instance::{Instance, TaskId};
use crate::task::{Task, TaskError};

impl Instance {
    /// Closes the current unit of work (an abortable failure aborts and
    /// asks for a rewind, see [`super::txn::Shared::commit`]) and applies
    /// its outcome to every store.
    pub(super) fn commit(&self, tasks: &mut HashMap<TaskId, Task>) -> Result<(), InstanceError> {
        self.shared.commit(&self.consumer, &mut self.shared.lock())?;
        self.apply_outcome(tasks)
    }

    /// Commits the open transaction (if any) before the records of this
    /// batch are processed. If it aborts, they are dropped: they come again
    /// after the rewind, behind the aborted ones.
    pub(super) fn end_transaction(
        &self,
        tasks: &mut HashMap<TaskId, Task>,
        gathered: &mut Gathered<'_>,
    ) -> Result<(), InstanceError> {
        self.commit(tasks)?;
        if self.shared.lock().rewind {
            gathered.clear();
        }
        Ok(())
    }

    /// `result` of work in the open transaction (a round, idle closes, a
    /// swap). If the transaction refused a record because it has failed —
    /// its records timed out while the brokers were unreachable — it is
    /// aborted and every partition rewinds, as after a failed commit,
    /// instead of stopping the instance.
    pub(super) fn or_abort(
        &self,
        tasks: &mut HashMap<TaskId, Task>,
        result: Result<(), InstanceError>,
    ) -> Result<(), InstanceError> {
        match result {
            Err(InstanceError::Task(TaskError::Sink(e))) if e.abortable => {
                tracing::warn!("{e}; aborting the transaction and reprocessing since the last commit");
                self.shared.abort(&mut self.shared.lock())?;
                self.apply_outcome(tasks)
            }
            other => other,
        }
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

    /// Hands the committed positions to the repartition purger (which
    /// acts once per purge interval).
    pub(super) fn purge(&self) {
        let mut purger = self.purger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = purger.as_mut() {
            p.committed(&self.shared.lock().resume);
        }
    }
}
