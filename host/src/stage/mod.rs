//! Stages: what a task runs on its records. A [`Stage`] has a lifecycle in
//! the spirit of Arroyo's operator hooks: it is opened with the stores it
//! declared (so they exist, and are restored, before the first record), gets
//! batches from its inputs, fires timers, hears of commits and aborts, adopts
//! a new module version (hot swap) and closes. Its records leave through a
//! [`Collector`], which knows where they go.
//!
//! - [`process::ProcessStage`]: a guest processor (map, filter, flat-map,
//!   re-key, route), with trap isolation.
//! - [`aggregate::AggregateStage`]: keyed folding into a store, windows,
//!   lateness, `update`/`final` emission; `final` emission is a timer on
//!   stream time (it fires as stream time passes a window's close) and
//!   `idle-close` a timer on the wall clock.
//! - [`table::TableStage`]: the latest value per key of a topic, restored
//!   from the topic itself; its outputs are its changes.
//! - [`join::JoinStage`], [`join::TableJoinStage`]: stream-table and
//!   table-table joins through a guest joiner.
//! - [`window_join::WindowJoinStage`]: the windowed stream-stream join;
//!   unmatched records go out as stream time closes their windows.

pub mod aggregate;
pub mod changelog;
pub mod collector;
pub mod join;
pub mod open;
pub mod process;
pub mod table;
pub mod window_join;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::codec::{BatchEncoder, EventRef};
use crate::runtime::{GuestError, LoadedModule, Operator, Runtime};
use crate::stage::collector::{Collector, SinkError};
use crate::state::{Changelog, StateError, Store};

/// A batch for a stage: as encoded (what a guest call takes) and its events
/// read in place.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The encoded batch.
    pub batch: &'a BatchEncoder,
    /// Its events.
    pub events: &'a [EventRef<'a>],
    /// The stage whose outputs these are; `None`: a source topic's records.
    pub from: Option<usize>,
}

/// The lifecycle of a stage in one task.
pub trait Stage: Send {
    /// Runs a batch from one of the stage's inputs.
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError>;

    /// Whether a wall-clock timer is due at `now`.
    fn wall_clock_due(&self, _now: Instant) -> bool {
        false
    }

    /// Fires the wall-clock timers due at `now`.
    fn on_wall_clock(&mut self, _now: Instant, _out: &mut Collector<'_>) -> Result<(), StageError> {
        Ok(())
    }

    /// The unit of work committed: staged state becomes durable, with the
    /// changelog checkpoint that `checkpoint` gives for its store.
    fn commit(&mut self, _checkpoint: &dyn Fn(&Changelog) -> Option<i64>) -> Result<(), StateError> {
        Ok(())
    }

    /// The unit of work aborted (or the store was just restored): staged
    /// state is dropped and the stage re-reads its store.
    fn abort(&mut self) -> Result<(), StateError> {
        Ok(())
    }

    /// What runs it, on its outputs' `weir.module` header, its dead
    /// letters and in views: a guest stage's module version
    /// (`name@digest`), a native stage's kind.
    fn module_label(&self) -> String;

    /// Its guest, if it runs one that can be swapped: native stages (a
    /// table) have none.
    fn guest(&mut self) -> Option<&mut dyn GuestStage> {
        None
    }

    /// The store it declared, if it keeps state.
    fn store(&self) -> Option<&Store> {
        None
    }

    /// Its stream time, if it keeps one.
    fn stream_time(&self) -> Option<i64> {
        None
    }

    /// Windows it holds open.
    fn open_windows(&self) -> usize {
        0
    }

    /// The task is closing (revoked, or the instance stops): release what
    /// is not dropped with the stage.
    fn close(&mut self) {}
}

/// What only a stage that runs a guest does: swap its module, adopt its
/// state to the new version, create its instance up front.
pub trait GuestStage {
    /// Runs `module` from the next batch on (a hot swap, at a transaction
    /// boundary). The instance is created now, so the first batch does not
    /// pay for it.
    fn swap(&mut self, module: Arc<LoadedModule>);

    /// Moves the stage's state to the version it now runs, sending the
    /// changes to the changelog (a transaction must be open). `true` if the
    /// stage keeps state.
    fn adopt(&mut self, _out: &mut Collector<'_>) -> Result<bool, StageError> {
        Ok(false)
    }

    /// Creates the guest instance now (start-up cost paid up front).
    fn warm_up(&mut self) -> Result<(), GuestError>;
}

/// Opens the stage that `o` describes, as its kind builds itself.
pub fn open(o: open::Opening<'_>) -> Result<Box<dyn Stage>, open::OpenError> {
    use crate::pipeline::{JoinShape, StageKind};
    match &o.def().kind {
        StageKind::Process => process::ProcessStage::open(o),
        StageKind::Aggregate(_) => aggregate::AggregateStage::open(o),
        StageKind::Table(_) => table::TableStage::open(o),
        StageKind::Join(j) => match j.shape {
            JoinShape::StreamTable { .. } | JoinShape::StreamGlobal { .. } => join::JoinStage::open(o),
            JoinShape::TableTable { .. } => join::TableJoinStage::open(o),
            JoinShape::StreamStream { .. } => window_join::WindowJoinStage::open(o),
        },
        StageKind::GlobalTable => Err(open::OpenError::Scope {
            stage: o.def().name.clone(),
            scope: crate::state::Scope::Global,
        }),
    }
}

/// A new operator instance of `module` for a stage that swaps to it, created
/// now so that the first batch does not pay for it. One that does not start
/// is logged; its first call retries and applies the stage's error policy.
pub(crate) fn swapped(runtime: &Runtime, module: Arc<LoadedModule>, config: &BTreeMap<String, String>) -> Operator {
    let mut op = runtime.operator(module, config.clone());
    if let Err(e) = op.warm_up() {
        tracing::warn!(module = %op.module().info().version_label(), "the new version did not start: {e}");
    }
    op
}

/// A stage stopped its task: an event failed under the `fail` policy, a
/// record could not be sent, a store failed, or an invariant broke.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A stage with `on-error = "fail"` failed on an event.
    #[error(
        "stage {stage} ({module}) failed on {topic}[{partition}]@{offset}: {error}; \
         the stage's on-error is \"fail\", so the pipeline stops (use \"skip\" or \"dead-letter\" to keep going)"
    )]
    Failed {
        /// Stage name.
        stage: String,
        /// Module label.
        module: String,
        /// Source topic.
        topic: String,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// The failure or trap.
        error: String,
    },
    /// The sink refused a record.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Something that cannot happen did: a batch the host encoded does not
    /// read back, or results do not match their events. The task stops
    /// rather than drop records and commit their offsets anyway.
    #[error("stage {stage}: {what} ({detail}); this is a bug in Weir, and the open transaction is aborted")]
    Invariant {
        /// Stage name.
        stage: String,
        /// What broke.
        what: &'static str,
        /// The values that show it.
        detail: String,
    },
}
