//! The `aggregate` stage of one task: keyed folding into a [`Store`], with
//! optional windows, `update` or `final` emission, lateness, and idle close.
//!
//! A batch goes through in three steps:
//!
//! 1. **Assign**: each event advances stream time, then goes to its key's
//!    accumulator, or to each window it falls in (see [`crate::window`]).
//!    An event whose windows have all closed is *late* and goes to the
//!    stage's error policy.
//! 2. **Fold**: one guest `add` call for every (key, window) group of the
//!    batch (sessions fold event by event, since an event can merge sessions
//!    through the guest's `merge`). A call that traps is narrowed down to the
//!    events that cause it.
//! 3. **Emit and close**: in `update` mode every accumulator the batch
//!    changed is emitted once; then every window whose close time stream time
//!    has reached is deleted — and, in `final` mode, emitted just before.
//!
//! Every store change is staged (see [`crate::state`]) and written to the
//! changelog, inside the task's transaction. Changelog records carry
//! [`INPUT_NEXT`](crate::state::changelog::INPUT_NEXT), the task's input
//! position after the batch that wrote them; a restore uses it to skip
//! records of transactions that never committed on brokers that do not
//! filter them.
//!
//! The [`Aggregator`] is one struct whose `impl` is spread over this folder,
//! a file per concern. This file holds what a step reports, the [`Fold`] the
//! stage folds with, and the Aggregator's entry points (open, reload, step,
//! idle close, adopt, commit). Each kind of window is assigned and folded in
//! its own file: `fixed.rs` (tumbling, hopping and unwindowed), `sliding.rs`,
//! `session.rs`, and `table.rs` (table aggregation, with `subtract`);
//! `groups.rs` folds a batch's groups in one call, narrowing traps down;
//! `emit.rs` emits updates and closes windows; `migrate.rs` converts the
//! accumulators for a new version; `store.rs` keeps their stamps and sends
//! the changes to the changelog. `count.rs` is a native fold for tests.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::codec::EventRef;
use crate::event::{Failure, Window};
use crate::pipeline::{Aggregation, Emit};
use crate::runtime::{Folded, Group, GuestError, Operator};
use crate::stage::collector::{Sink, SinkError};
use crate::state::keys::{self, Entry};
use crate::state::{StateError, Store, Timers};
use crate::window::{StreamTime, WindowKind, Windowing};

/// Header on windowed outputs: the window's start, ms (decimal).
pub const WINDOW_START: &str = "weir.window.start";
/// Header on windowed outputs: the window's end, ms, exclusive (decimal).
pub const WINDOW_END: &str = "weir.window.end";

/// Why an input event did not change any accumulator.
#[derive(Debug, Clone)]
pub enum Rejection {
    /// Every window it belongs to had closed.
    Late {
        /// The (latest) window it would have gone to.
        window: Window,
        /// Stream time when it arrived.
        stream_time: i64,
    },
    /// The guest refused it (`add`, or `merge` for a session it bridged).
    Failed(Failure),
    /// The guest trapped on it.
    Trapped(GuestError),
}

/// An accumulator to emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its window.
    pub window: Option<Window>,
    /// Timestamp of the outputs unless the guest sets one: the newest event
    /// folded in (a session: its last event).
    pub timestamp: i64,
    /// The accumulator; `None` for a session that a merge deleted, which
    /// `update` emits as a tombstone (a null value), as Kafka Streams does.
    pub acc: Option<Vec<u8>>,
}

/// What a batch (or an idle tick) did.
#[derive(Debug, Default)]
pub struct Step {
    /// Input events (by index in the batch) that changed nothing.
    pub rejected: Vec<(usize, Rejection)>,
    /// Accumulators to emit, in order.
    pub due: Vec<Due>,
    /// Accumulators a new version could not migrate: (key, why). They are
    /// kept as they were.
    pub unmigrated: Vec<(Option<Vec<u8>>, String)>,
}

/// The aggregate stage could not go on.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// The store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A changelog record could not be sent.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// What an aggregate stage folds with: a guest's `add`, `merge` and
/// `migrate` ([`Operator`]), or a native fold (tests, the driver's checks).
pub trait Fold {
    /// The version whose format its accumulators are in (`name@digest`).
    fn version_label(&self) -> String;
    /// Whether it converts accumulators of other versions (`migrate`); a
    /// fold that does not keeps the defaults of this and [`Fold::migrate`].
    fn migrates(&self) -> bool {
        false
    }
    /// Folds each group's events into its accumulator.
    fn add(&mut self, groups: Vec<Group>) -> Result<Vec<Folded>, GuestError>;
    /// Merges two sessions' accumulators (older first).
    fn merge(&mut self, key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Result<Vec<u8>, Failure>, GuestError>;
    /// Takes each group's events back out of its accumulator (a table
    /// aggregation); `None` when it cannot.
    fn subtract(&mut self, _groups: Vec<Group>) -> Result<Option<Vec<Folded>>, GuestError> {
        Ok(None)
    }
    /// Converts an accumulator written by version `from`; `None` when it
    /// does not migrate.
    fn migrate(
        &mut self,
        _from: &str,
        _key: Option<&[u8]>,
        _acc: &[u8],
    ) -> Result<Option<Result<Vec<u8>, Failure>>, GuestError> {
        Ok(None)
    }
}

impl Fold for Operator {
    fn version_label(&self) -> String {
        self.module().info().version_label()
    }

    fn migrates(&self) -> bool {
        self.module().info().migrate
    }

    fn add(&mut self, groups: Vec<Group>) -> Result<Vec<Folded>, GuestError> {
        Operator::add(self, groups)
    }

    fn merge(&mut self, key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Result<Vec<u8>, Failure>, GuestError> {
        Operator::merge(self, key, a, b)
    }

    fn subtract(&mut self, groups: Vec<Group>) -> Result<Option<Vec<Folded>>, GuestError> {
        Operator::subtract(self, groups)
    }

    fn migrate(
        &mut self,
        from: &str,
        key: Option<&[u8]>,
        acc: &[u8],
    ) -> Result<Option<Result<Vec<u8>, Failure>>, GuestError> {
        Operator::migrate(self, from, key, acc)
    }
}

/// One task's aggregate stage: its store, open windows and stream time.
pub struct Aggregator {
    pub(super) spec: Aggregation,
    pub(super) store: Store,
    /// Open windows by close time: the stage's timers on stream time, kept
    /// in the store. One fires (its window closes; in `final` mode it is
    /// emitted just before) once stream time reaches it, record by record —
    /// or on the wall clock for `idle-close`.
    pub(super) timers: Timers,
    /// When the first open window closes (as of the last step).
    pub(super) first_close: Option<i64>,
    pub(super) stream_time: StreamTime,
    pub(super) saved_stream_time: StreamTime,
    /// Store keys changed since the last changelog flush.
    pub(super) touched: BTreeSet<Vec<u8>>,
    /// When the last input arrived, and from when wall-clock time has already
    /// been added to stream time (idle close).
    pub(super) last_input: Instant,
    pub(super) advanced_until: Instant,
    /// The version whose format the stored accumulators are in.
    pub(super) format: Option<String>,
    /// When the meta entries (stream time, format) last went to the changelog.
    pub(super) meta_sent: Instant,
}

/// The timer queue of window closes (the stage's only one).
const WINDOW_CLOSE: u8 = 0;

impl Aggregator {
    /// The stage over `store` (already restored).
    pub fn open(spec: Aggregation, store: Store) -> Result<Aggregator, StateError> {
        let now = Instant::now();
        let mut a = Aggregator {
            spec,
            store,
            timers: Timers::new(WINDOW_CLOSE),
            first_close: None,
            stream_time: StreamTime::default(),
            saved_stream_time: StreamTime::default(),
            touched: BTreeSet::new(),
            last_input: now,
            advanced_until: now,
            format: None,
            meta_sent: now,
        };
        a.reload()?;
        Ok(a)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stream time, if any event was seen.
    pub fn stream_time(&self) -> Option<i64> {
        (self.stream_time != StreamTime::default()).then_some(self.stream_time.0)
    }

    /// Windows not yet closed.
    pub fn open_windows(&self) -> usize {
        self.timers.len()
    }

    /// Re-reads open windows and stream time from the store (after a
    /// restore, or after an abort threw the staged writes away).
    pub fn reload(&mut self) -> Result<(), StateError> {
        self.store.discard();
        self.touched.clear();
        let outside = self.store.written_outside();
        if let Some(w) = self.spec.window {
            let store = &self.store;
            self.timers
                .reload(store, outside, &keys::WINDOWS_PREFIX, |k, _| match store.entry(k)? {
                    Entry::Windowed(_, window) => Ok(Some(w.close_time(window))),
                    _ => Err(store.corrupt(k, "a key that is not a window's")),
                })?;
            self.first_close = self.timers.first(&self.store)?;
        }
        let key = keys::meta(keys::STREAM_TIME);
        self.stream_time = match self.store.get(&key)? {
            None => StreamTime::default(),
            Some(b) => StreamTime(i64::from_le_bytes(
                b.try_into()
                    .map_err(|_| self.store.corrupt(&key, "a stream time that is not 8 bytes"))?,
            )),
        };
        self.saved_stream_time = self.stream_time;
        self.format = self
            .store
            .get(&keys::meta(keys::FORMAT))?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(())
    }

    /// The transaction committed: apply staged writes.
    pub fn commit(&mut self, checkpoint: Option<i64>) -> Result<(), StateError> {
        self.store.commit(checkpoint)?;
        self.timers.commit();
        Ok(())
    }

    /// Folds a batch, sends its store changes to the changelog, and says what
    /// to emit and which events were rejected.
    pub fn step(
        &mut self,
        op: &mut dyn Fold,
        events: &[EventRef<'_>],
        position: &str,
        now: Instant,
        sink: &mut dyn Sink,
    ) -> Result<Step, AggregateError> {
        let mut step = Step::default();
        self.adopt(op, &mut step)?;
        if !events.is_empty() {
            self.last_input = now;
            self.advanced_until = now;
        }
        let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
        // Sliding windows: where each changed window's update goes.
        let mut order: HashMap<Vec<u8>, SlidingOrder> = HashMap::new();
        match self.spec.window {
            Some(
                w @ Windowing {
                    kind: WindowKind::Session { gap },
                    ..
                },
            ) => self.fold_sessions(op, w, gap, events, &mut step, &mut latest)?,
            Some(
                w @ Windowing {
                    kind: WindowKind::Sliding { size },
                    ..
                },
            ) => self.fold_sliding(op, w, size, events, &mut step, &mut latest, &mut order)?,
            None if self.spec.table => self.fold_table(op, events, &mut step, &mut latest)?,
            window => self.fold_fixed(op, window, events, &mut step, &mut latest)?,
        }
        if self.spec.emit == Emit::Update {
            self.emit_updates(&latest, &order, &mut step)?;
        }
        self.close(self.stream_time.0, &mut step)?;
        self.flush(position, sink)?;
        Ok(step)
    }

    /// When the stage closes windows on wall-clock time (`idle-close`) and
    /// the partition has been quiet long enough for a window to close: the
    /// stream time it would advance to.
    pub fn idle_due(&self, now: Instant) -> Option<i64> {
        let idle = self.spec.idle_close?;
        let st = self.stream_time()?;
        let from = (self.last_input + idle).max(self.advanced_until);
        let quiet = now.checked_duration_since(from).filter(|d| !d.is_zero())?;
        let advanced = st.saturating_add(millis(quiet));
        (self.first_close? <= advanced).then_some(advanced)
    }

    /// Adopts the stored accumulators for `op` now (see `adopt`): at a hot
    /// swap, so that quiet partitions and queries see the new format too.
    /// The migrated entries go to the changelog in the open transaction.
    pub fn adopt_now(
        &mut self,
        op: &mut dyn Fold,
        position: &str,
        sink: &mut dyn Sink,
    ) -> Result<Step, AggregateError> {
        let mut step = Step::default();
        self.adopt(op, &mut step)?;
        self.flush(position, sink)?;
        Ok(step)
    }

    /// Advances stream time on the wall clock (see [`Aggregator::idle_due`])
    /// and closes what that closes.
    pub fn idle_close(
        &mut self,
        op: &mut dyn Fold,
        now: Instant,
        stream_time: i64,
        position: &str,
        sink: &mut dyn Sink,
    ) -> Result<Step, AggregateError> {
        self.advanced_until = now;
        self.stream_time.observe(stream_time);
        let mut step = Step::default();
        self.adopt(op, &mut step)?;
        self.close(self.stream_time.0, &mut step)?;
        self.flush(position, sink)?;
        Ok(step)
    }
}

/// Where a sliding window's update goes among a batch's: the batch index of
/// the last new event that changed it, then its place among that event's
/// windows ([`sliding_rank`](super::sliding::sliding_rank)).
pub(super) type SlidingOrder = (usize, (u8, i64));

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
