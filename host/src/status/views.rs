//! What the admin API shows about the tasks, stores and restores of an
//! instance, refreshed by the instance loop (about every second).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::task::Task;

/// How far a store's restore has come.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RestoreState {
    /// `restoring` or `done`.
    pub state: &'static str,
    /// Changelog records read so far.
    pub restored: u64,
    /// Records to read (the changelog tail past the checkpoint).
    pub total: u64,
    /// Time taken so far.
    pub seconds: f64,
    /// Whether the store started from local state (a checkpoint) rather
    /// than from nothing.
    pub from_local: bool,
}

impl RestoreState {
    /// A restore under way.
    pub fn restoring(restored: u64, total: u64, took: Duration) -> Self {
        RestoreState {
            state: "restoring",
            restored,
            total,
            seconds: took.as_secs_f64(),
            from_local: false,
        }
    }

    /// A finished restore.
    pub fn done(restored: u64, total: u64, took: Duration, from_local: bool) -> Self {
        RestoreState {
            state: "done",
            restored,
            total,
            seconds: took.as_secs_f64(),
            from_local,
        }
    }
}

/// Restores by (stage, partition).
pub type Restores = BTreeMap<(String, i32), RestoreState>;

/// One store as `/status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoreView {
    /// Stage.
    pub stage: String,
    /// Task partition.
    pub partition: i32,
    /// Entries (RocksDB's estimate).
    pub keys: u64,
    /// Windows not yet closed.
    pub open_windows: usize,
    /// The task's stream time, ms.
    pub stream_time: Option<i64>,
    /// Its directory.
    pub path: String,
}

/// One task as `/status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TaskView {
    /// Its sub-topology.
    pub sub_topology: usize,
    /// The topics it reads (inputs, repartition topics), comma-separated.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// The stages it runs, in order.
    pub stages: Vec<String>,
    /// The version (`name@sha256:…`) each of those stages runs in this task.
    pub modules: Vec<String>,
}

/// What the instance refreshes at each commit for the admin API.
#[derive(Debug, Clone, Default)]
pub struct Views {
    /// Every task of the instance.
    pub tasks: Vec<TaskView>,
    /// Every open store.
    pub stores: Vec<StoreView>,
    /// Records behind the end of each assigned partition (high watermark
    /// minus the next offset to process).
    pub lag: BTreeMap<(String, i32), i64>,
}

impl Views {
    /// The views of `tasks`, and `lag` as the instance measured it.
    pub fn of<'a>(tasks: impl Iterator<Item = &'a Task>, lag: BTreeMap<(String, i32), i64>) -> Views {
        let mut views = Views {
            lag,
            ..Views::default()
        };
        for task in tasks {
            let names = task.stage_names();
            let partition = task.partition();
            views.tasks.push(TaskView {
                sub_topology: task.sub_topology(),
                topic: task.sources().join(","),
                partition,
                stages: task.stages().map(|i| names[i].to_owned()).collect(),
                modules: task.module_labels(),
            });
            for (i, stage, store) in task.stores() {
                views.stores.push(StoreView {
                    stage: names[i].to_owned(),
                    partition,
                    keys: store.estimated_keys(),
                    open_windows: stage.open_windows(),
                    stream_time: stage.stream_time(),
                    path: store.location().display().to_string(),
                });
            }
        }
        views
            .tasks
            .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        views
            .stores
            .sort_by(|a, b| (&a.stage, a.partition).cmp(&(&b.stage, b.partition)));
        views
    }
}
