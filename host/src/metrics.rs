//! Counters of a running pipeline, shared between the tasks that count and
//! whoever shows them (`weir dev`, logs on exit).
//!
//! Counts are of work done, including work of transactions that were later
//! aborted and redone; committed results are what Kafka holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one stage.
#[derive(Debug, Default)]
pub struct StageCounters {
    /// Stage name.
    pub name: String,
    /// Events that went into the stage.
    pub events: AtomicU64,
    /// Outputs the stage produced.
    pub outputs: AtomicU64,
    /// Events the stage failed on (typed failures and traps).
    pub failed: AtomicU64,
    /// Of those, traps (panic, deadline, memory, …).
    pub trapped: AtomicU64,
    /// Failed events that were skipped.
    pub skipped: AtomicU64,
    /// Failed events written to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Of the failed events, those later than their window's grace.
    pub late: AtomicU64,
    /// Records dropped as unusable (a table record without a key, a stream
    /// record without a key or value at a join), as Kafka Streams drops them.
    pub dropped: AtomicU64,
}

/// Counters of a pipeline instance.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Records consumed from the input topics.
    pub consumed: AtomicU64,
    /// Records sent to output, route and dead-letter topics.
    pub produced: AtomicU64,
    /// Transactions (or offset commits) that succeeded.
    pub commits: AtomicU64,
    /// Time spent committing, in µs (the loop does nothing else meanwhile).
    pub commit_micros: AtomicU64,
    /// Transactions aborted (and their input rewound).
    pub aborts: AtomicU64,
    /// Per stage, in order.
    pub stages: Vec<StageCounters>,
}

impl Metrics {
    /// Zeroed counters for stages with these names.
    pub fn new<'a>(stage_names: impl IntoIterator<Item = &'a str>) -> Arc<Self> {
        Arc::new(Metrics {
            stages: stage_names
                .into_iter()
                .map(|n| StageCounters {
                    name: n.to_owned(),
                    ..StageCounters::default()
                })
                .collect(),
            ..Metrics::default()
        })
    }

    /// A consistent-enough copy for display.
    pub fn snapshot(&self) -> Snapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            consumed: get(&self.consumed),
            produced: get(&self.produced),
            commits: get(&self.commits),
            aborts: get(&self.aborts),
            stages: self
                .stages
                .iter()
                .map(|s| StageSnapshot {
                    name: s.name.clone(),
                    events: get(&s.events),
                    outputs: get(&s.outputs),
                    failed: get(&s.failed),
                    trapped: get(&s.trapped),
                    skipped: get(&s.skipped),
                    dead_lettered: get(&s.dead_lettered),
                    late: get(&s.late),
                    dropped: get(&s.dropped),
                })
                .collect(),
        }
    }
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A copy of [`Metrics`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Records consumed.
    pub consumed: u64,
    /// Records produced.
    pub produced: u64,
    /// Commits.
    pub commits: u64,
    /// Aborts.
    pub aborts: u64,
    /// Per stage.
    pub stages: Vec<StageSnapshot>,
}

/// A copy of [`StageCounters`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StageSnapshot {
    /// Stage name.
    pub name: String,
    /// Events in.
    pub events: u64,
    /// Outputs.
    pub outputs: u64,
    /// Failed events.
    pub failed: u64,
    /// Of those, traps.
    pub trapped: u64,
    /// Skipped.
    pub skipped: u64,
    /// Dead-lettered.
    pub dead_lettered: u64,
    /// Late (beyond grace).
    pub late: u64,
    /// Dropped as unusable (no key, or no value at a join).
    pub dropped: u64,
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "consumed {} · produced {} · commits {} · aborts {}",
            self.consumed, self.produced, self.commits, self.aborts
        )?;
        for s in &self.stages {
            write!(
                f,
                " | {}: in {} out {} failed {} (traps {}, late {}, skipped {}, dead-lettered {})",
                s.name, s.events, s.outputs, s.failed, s.trapped, s.late, s.skipped, s.dead_lettered
            )?;
            if s.dropped > 0 {
                write!(f, " dropped {}", s.dropped)?;
            }
        }
        Ok(())
    }
}
