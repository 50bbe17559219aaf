//! What the admin API sees of an instance: its [`Status`], and the views
//! of tasks, stores and lag that the loop refreshes every second.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::error::TopicPartition;
use super::instance::{Instance, TaskId};
use crate::status::{Status, Views};
use crate::task::Task;

impl Instance {
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
}
