//! What a running instance shows about itself: its stages and their
//! module versions, assigned partitions, tasks and stores, restores, lag,
//! swaps, counters, and interactive queries of its committed state. The
//! instance ([`crate::kafka`]) fills a [`Status`]; the admin server
//! ([`crate::admin`]) and `weir dev` read it, and never reach into the
//! instance.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::metrics::Metrics;

pub mod query;
mod views;

pub use views::{RestoreState, Restores, StoreView, TaskView, Views};

/// A store query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No such stateful stage.
    #[error("no stateful stage named {0:?}")]
    NoStage(String),
    /// The stage's emit failed on the stored accumulator.
    #[error("{0}")]
    Emit(String),
    /// A store could not be read.
    #[error("{0}")]
    Store(String),
}

/// Answers store queries from committed state.
pub trait Queries: Send + Sync {
    /// A key's value in a stage: every window whose start is in `[from, to)`
    /// for windowed stages.
    fn query(&self, stage: &str, key: &[u8], from: i64, to: i64) -> Result<serde_json::Value, QueryError>;
}

/// What the admin API reports about an instance.
pub struct Status {
    /// Application id.
    pub application_id: String,
    /// Instance id.
    pub instance_id: String,
    /// `exactly-once` or `at-least-once`.
    pub guarantee: String,
    /// Stage names with the module version (`name@sha256:…`) each runs.
    pub stages: Vec<(String, String)>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Input partitions assigned to this instance now.
    pub assigned: Arc<Mutex<BTreeSet<(String, i32)>>>,
    /// When the instance started.
    pub started: Instant,
    /// Store restores.
    pub restores: Arc<Mutex<Restores>>,
    /// Stores and lag.
    pub views: Arc<Mutex<Views>>,
    /// Store queries, when the pipeline keeps state.
    pub queries: Option<Arc<dyn Queries>>,
    /// Per stage: the version running, any swap in progress, guards.
    pub swaps: Arc<Mutex<Vec<crate::swap::SwapView>>>,
}

impl Status {
    /// Input partitions assigned now.
    pub fn assigned(&self) -> Vec<(String, i32)> {
        self.assigned
            .lock()
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The views as of the last commit.
    pub fn views(&self) -> Views {
        self.views.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Store restores, as of now.
    pub fn restores(&self) -> Restores {
        self.restores.lock().map(|r| r.clone()).unwrap_or_default()
    }
}
