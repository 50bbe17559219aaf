//! Settling what a rebalance changed, between rounds: tasks of revoked
//! partitions close, tasks of assigned ones open with their stores
//! restored from their changelogs, and after an abort every partition
//! rewinds to its last committed offset.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::error::{InstanceError, TopicPartition};
use super::gather::Gathered;
use super::instance::{Instance, TaskId};
use super::restore::Committed;
use super::txn::offsets;
use crate::clients::retry::{self, GaveUp};
use crate::task::Task;

impl Instance {
    /// Applies what happened inside `poll`: applies a commit or abort that
    /// the rebalance callback made, drops tasks of revoked partitions, notes
    /// where new partitions start, and rewinds after an abort (dropping the
    /// records gathered since, which will come again).
    /// Returns the partitions assigned since, whose tasks must open.
    pub(super) fn settle(
        &self,
        tasks: &mut HashMap<TaskId, Task>,
        gathered: &mut Gathered<'_>,
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
            self.seek_back(&st.resume, "their last committed offsets")?;
        }
        Ok(assigned)
    }

    /// Seeks every partition of `resume` to its offset (`to` says which),
    /// waiting out retriable failures (see [`retry`](crate::clients::retry)).
    pub(super) fn seek_back(&self, resume: &BTreeMap<TopicPartition, i64>, to: &str) -> Result<(), InstanceError> {
        if resume.is_empty() {
            // Every partition went (librdkafka refuses an empty seek).
            return Ok(());
        }
        let mut left = offsets(resume);
        let operation = format!("rewind {} partition(s) to {to}", resume.len());
        let sought = self.shared.retry(&operation, |timeout| {
            let done = self.consumer.seek_partitions(left.clone(), timeout)?;
            // Partitions that failed retriably are tried again; the first
            // other failure is given back.
            let mut again = TopicPartitionList::new();
            let mut last = None;
            for e in done.elements() {
                match e.error() {
                    Ok(()) => {}
                    Err(err) if retry::retriable(&err) => {
                        again.add_partition_offset(e.topic(), e.partition(), e.offset())?;
                        last = Some(err);
                    }
                    Err(err) => {
                        return Err(KafkaError::Seek(format!(
                            "{}[{}] to {:?}: {err}",
                            e.topic(),
                            e.partition(),
                            e.offset()
                        )));
                    }
                }
            }
            left = again;
            last.map_or(Ok(()), Err)
        });
        match sought {
            Ok(()) => {
                tracing::info!(partitions = resume.len(), "rewound to {to}");
                Ok(())
            }
            Err(GaveUp::Stopped(s)) => Err(s.into()),
            Err(GaveUp::Failed(e)) => Err(InstanceError::Rewind {
                partitions: resume.len(),
                reason: e.to_string(),
            }),
        }
    }

    /// Opens the tasks of partitions assigned since, and of partitions
    /// with records and no task yet. A stop during a restore ends it with
    /// [`RestoreError::Stopped`](super::restore::RestoreError::Stopped).
    pub(super) fn open_tasks(
        &self,
        tasks: &mut HashMap<TaskId, Task>,
        assigned: &[TopicPartition],
        gathered: &Gathered<'_>,
    ) -> Result<(), InstanceError> {
        for tp in assigned.iter().chain(gathered.keys()) {
            let id = self.task_id(tp);
            if let Entry::Vacant(slot) = tasks.entry(id) {
                slot.insert(self.open_task(id, tp)?);
            }
        }
        Ok(())
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
        let operation = format!("read the committed offset of {topic}[{partition}]");
        let got = match self.shared.retry(&operation, |timeout| {
            self.consumer.committed_offsets(tpl.clone(), timeout)
        }) {
            Ok(got) => got,
            Err(GaveUp::Stopped(s)) => return Err(s.into()),
            Err(GaveUp::Failed(e)) => {
                return Err(InstanceError::Transaction {
                    transactional_id: self.shared.transactional_id.clone(),
                    reason: format!("cannot read the committed offset of {topic}[{partition}]: {e}"),
                });
            }
        };
        Ok(got.find_partition(topic, partition).and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }))
    }
}
