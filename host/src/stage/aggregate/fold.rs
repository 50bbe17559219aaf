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
//! [`INPUT_NEXT`](crate::stage::changelog::INPUT_NEXT), the task's input
//! position after the batch that wrote them; a restore uses it to skip
//! records of transactions that never committed on brokers that do not
//! filter them.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::codec;
use crate::codec::{BatchEncoder, EventRef};
use crate::event::{Failure, Window};
use crate::pipeline::{Aggregation, Emit};
use crate::runtime::{Folded, Group, GuestError, GuestFault, Operator};
use crate::stage::changelog;
use crate::stage::collector::{Sink, SinkError};
use crate::state::keys::{self, Entry};
use crate::state::{StateError, Store, Timers};
use crate::window::{self, StreamTime, WindowKind, Windowing};

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

/// A native count: the accumulator is a little-endian u64 of the events
/// folded in (the same format as the example `count` guests), sessions
/// merge by adding. For tests of the stage's semantics without a guest.
#[derive(Debug, Default, Clone, Copy)]
pub struct Count;

impl Count {
    /// An accumulator's count; `None` for bytes that are not one.
    pub fn read(acc: &[u8]) -> Option<u64> {
        acc.try_into().ok().map(u64::from_le_bytes)
    }
}

impl Fold for Count {
    fn version_label(&self) -> String {
        "native-count@0".to_owned()
    }

    fn add(&mut self, groups: Vec<Group>) -> Result<Vec<Folded>, GuestError> {
        Ok(groups
            .into_iter()
            .map(|g| {
                let n = codec::batch_len(&g.events);
                match g.acc.as_deref().map_or(Some(0), Count::read) {
                    Some(before) => Folded {
                        acc: (before + u64::from(n)).to_le_bytes().to_vec(),
                        failures: Vec::new(),
                    },
                    None => Folded {
                        acc: g.acc.unwrap_or_default(),
                        failures: (0..n)
                            .map(|i| (i, Failure::new("bad-accumulator", "not a little-endian u64")))
                            .collect(),
                    },
                }
            })
            .collect())
    }

    fn merge(&mut self, _key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Result<Vec<u8>, Failure>, GuestError> {
        Ok(match (Count::read(a), Count::read(b)) {
            (Some(a), Some(b)) => Ok((a + b).to_le_bytes().to_vec()),
            _ => Err(Failure::new("bad-accumulator", "not a little-endian u64")),
        })
    }

    fn subtract(&mut self, groups: Vec<Group>) -> Result<Option<Vec<Folded>>, GuestError> {
        Ok(Some(
            groups
                .into_iter()
                .map(|g| {
                    let n = codec::batch_len(&g.events);
                    match g.acc.as_deref().and_then(Count::read) {
                        Some(before) if before >= u64::from(n) => Folded {
                            acc: (before - u64::from(n)).to_le_bytes().to_vec(),
                            failures: Vec::new(),
                        },
                        _ => Folded {
                            acc: g.acc.unwrap_or_default(),
                            failures: (0..n)
                                .map(|i| (i, Failure::new("negative-count", "a count below 0")))
                                .collect(),
                        },
                    }
                })
                .collect(),
        ))
    }
}

/// One task's aggregate stage: its store, open windows and stream time.
pub struct Aggregator {
    spec: Aggregation,
    store: Store,
    /// Open windows by close time: the stage's timers on stream time, kept
    /// in the store. One fires (its window closes; in `final` mode it is
    /// emitted just before) once stream time reaches it, record by record —
    /// or on the wall clock for `idle-close`.
    timers: Timers,
    /// When the first open window closes (as of the last step).
    first_close: Option<i64>,
    stream_time: StreamTime,
    saved_stream_time: StreamTime,
    /// Store keys changed since the last changelog flush.
    touched: BTreeSet<Vec<u8>>,
    /// When the last input arrived, and from when wall-clock time has already
    /// been added to stream time (idle close).
    last_input: Instant,
    advanced_until: Instant,
    /// The version whose format the stored accumulators are in.
    format: Option<String>,
    /// When the meta entries (stream time, format) last went to the changelog.
    meta_sent: Instant,
}

/// The timer queue of window closes (the stage's only one).
const WINDOW_CLOSE: u8 = 0;

/// How many windows close at a time (a jump of stream time may close
/// millions: their timers are read from the store a page at a time).
const CLOSE_PAGE: usize = 1024;

/// How often a windowed stage writes its meta entries (stream time, format)
/// to the changelog again while it runs, though they did not change: its
/// changelog is deleted by time too (`retention + 1 day` after a record's
/// writing), and a full restore needs them.
const META_REFRESH: Duration = Duration::from_secs(60 * 60);

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

    /// Makes the stored accumulators `op`'s (the first step after a hot swap,
    /// or after a restart into a new version). When another version wrote
    /// them and `op` exports `migrate`, every accumulator passes through it,
    /// in this step's transaction: eagerly, so that the changelog, the store
    /// and the outputs change together and a crash redoes all of it. Without
    /// `migrate` the state is kept as it is (the versions share a format).
    fn adopt(&mut self, op: &mut dyn Fold, step: &mut Step) -> Result<(), AggregateError> {
        let label = op.version_label();
        // The same bytes may go by several names (a file, a registry name).
        let digest = |l: &str| l.rsplit_once('@').map_or(l, |(_, d)| d).to_owned();
        if self.format.as_deref().map(digest) == Some(digest(&label)) {
            return Ok(());
        }
        if let Some(previous) = self.format.clone()
            && op.migrates()
        {
            let mut migrated = 0u64;
            for prefix in [[1u8], [2u8]] {
                for (k, acc) in self.store.scan(&prefix)? {
                    let (key, _) = split(&self.store, &k)?;
                    match op.migrate(&previous, key.as_deref(), &acc) {
                        Ok(Some(Ok(new))) => {
                            self.put(k, Some(new));
                            migrated += 1;
                        }
                        Ok(Some(Err(f))) => step.unmigrated.push((key, format!("{}: {}", f.code, f.message))),
                        Ok(None) => {}
                        Err(e) => step.unmigrated.push((key, e.to_string())),
                    }
                }
            }
            tracing::info!(from = %previous, to = %label, migrated, failed = step.unmigrated.len(),
                "migrated the stage's accumulators");
        }
        self.put(keys::meta(keys::FORMAT), Some(label.clone().into_bytes()));
        self.format = Some(label);
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
            for (k, ts) in &latest {
                if let Some(acc) = self.store.get(k)? {
                    let (key, window) = split(&self.store, k)?;
                    step.due.push(Due {
                        key,
                        window,
                        timestamp: *ts,
                        acc: Some(acc),
                    });
                }
            }
            if order.is_empty() {
                // Emission in event-time order (then key), as records would
                // go: downstream stream time then moves forward through a
                // batch. At one time and key, tombstones first (as a merge
                // emits them).
                step.due.sort_by(|a, b| {
                    (a.timestamp, &a.key, a.acc.is_some(), a.window).cmp(&(
                        b.timestamp,
                        &b.key,
                        b.acc.is_some(),
                        b.window,
                    ))
                });
            } else {
                // Sliding windows: in the order Kafka Streams forwards them,
                // by the event that last changed each.
                let of = |d: &Due| {
                    d.window
                        .map(|win| keys::windowed(d.key.as_deref(), win))
                        .and_then(|k| order.get(&k).copied())
                };
                step.due.sort_by_key(|d| of(d));
            }
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

    fn fold_fixed(
        &mut self,
        op: &mut dyn Fold,
        windowing: Option<Windowing>,
        events: &[EventRef<'_>],
        step: &mut Step,
        latest: &mut HashMap<Vec<u8>, i64>,
    ) -> Result<(), AggregateError> {
        struct Build {
            store_key: Vec<u8>,
            window: Option<Window>,
            members: Vec<usize>,
        }
        let mut builds: Vec<Build> = Vec::new();
        let mut at: HashMap<Vec<u8>, usize> = HashMap::new();
        for (i, ev) in events.iter().enumerate() {
            self.stream_time.observe(ev.timestamp);
            let targets: Vec<(Vec<u8>, Option<Window>)> = match windowing {
                None => vec![(keys::plain(ev.key), None)],
                Some(w) => {
                    let all = w.windows_for(ev.timestamp);
                    let open: Vec<_> = all
                        .iter()
                        .filter(|win| !w.is_late(**win, self.stream_time.0))
                        .map(|win| (keys::windowed(ev.key, *win), Some(*win)))
                        .collect();
                    if open.is_empty() {
                        let window = all.last().copied().unwrap_or(Window {
                            start: ev.timestamp,
                            end: ev.timestamp.saturating_add(1),
                        });
                        step.rejected.push((
                            i,
                            Rejection::Late {
                                window,
                                stream_time: self.stream_time.0,
                            },
                        ));
                        continue;
                    }
                    open
                }
            };
            for (store_key, window) in targets {
                let b = *at.entry(store_key.clone()).or_insert_with(|| {
                    builds.push(Build {
                        store_key,
                        window,
                        members: Vec::new(),
                    });
                    builds.len() - 1
                });
                builds[b].members.push(i);
            }
        }
        let mut groups = Vec::with_capacity(builds.len());
        // Windows that exist have their timer.
        let mut existed = Vec::with_capacity(builds.len());
        for b in &builds {
            let first = &events[b.members[0]];
            let acc = self.store.get(&b.store_key)?;
            existed.push(acc.is_some());
            groups.push(Group {
                key: first.key.map(<[u8]>::to_vec),
                window: b.window,
                acc,
                events: encode(events, &b.members),
            });
        }
        let sizes: Vec<usize> = builds.iter().map(|b| b.members.len()).collect();
        let outcomes = fold(op, groups, &sizes, &|g, j| encode(events, &[builds[g].members[j]]));
        let mut failed: BTreeSet<usize> = BTreeSet::new();
        for ((b, outcome), existed) in builds.into_iter().zip(outcomes).zip(existed) {
            let mut refused: BTreeSet<usize> = BTreeSet::new();
            for (j, why) in outcome.failures {
                refused.insert(j);
                let i = b.members[j];
                if failed.insert(i) {
                    step.rejected.push((i, why));
                }
            }
            let Some(acc) = outcome.acc.filter(|_| outcome.changed) else {
                continue;
            };
            // The newest event that went in (a refused one is not in it).
            let newest = b
                .members
                .iter()
                .enumerate()
                .filter(|(j, _)| !refused.contains(j))
                .map(|(_, &i)| events[i].timestamp)
                .max();
            let ts = self.restamp(&b.store_key, newest)?;
            if let (Some(w), Some(window), false) = (windowing, b.window, existed) {
                self.timers
                    .insert(&mut self.store, w.close_time(window), &b.store_key)?;
            }
            latest.insert(b.store_key.clone(), ts);
            self.put(b.store_key, Some(acc));
        }
        Ok(())
    }

    /// Sliding windows: the events themselves are kept (for `2 × size + grace`
    /// past them), and every window a new event changes is folded again from
    /// its events: a window's contents are a set of events, not a running
    /// total, since events drop out as it slides.
    ///
    /// The result is what Kafka Streams' `KStreamSlidingWindowAggregate`
    /// computes one record at a time (it copies a neighbouring window's
    /// aggregate into a new window and adds the record): a window holds the
    /// events in its range that came while it was open, folded in the order
    /// they came (offsets order arrivals within a task); an event earlier than
    /// `size` goes to `[0, size]` instead of its left window; and an event
    /// changes only the windows it goes into and its right window when that
    /// window is new, so `update` emits nothing that did not change. (Kafka
    /// Streams' copy can miss an event that came about grace behind stream
    /// time, where Weir's window holds it: docs/kafka-streams.md, "Where Weir differs".)
    #[expect(
        clippy::too_many_arguments,
        reason = "the batch, and the step's three records of what it did: results, emission stamps and order"
    )]
    fn fold_sliding(
        &mut self,
        op: &mut dyn Fold,
        w: Windowing,
        size: i64,
        events: &[EventRef<'_>],
        step: &mut Step,
        latest: &mut HashMap<Vec<u8>, i64>,
        order: &mut HashMap<Vec<u8>, SlidingOrder>,
    ) -> Result<(), AggregateError> {
        /// Why a window is folded again: the new events that go into it, and
        /// the new events whose (new) right window it is.
        #[derive(Default)]
        struct Touch {
            gains: BTreeSet<(i64, i64)>,
            creators: BTreeSet<(i64, i64)>,
            /// Where its update goes among the batch's (by the last event
            /// that changed it).
            order: Option<SlidingOrder>,
        }
        let mut new_by_key: std::collections::BTreeMap<Option<Vec<u8>>, Vec<usize>> = Default::default();
        // Stream time when each new event arrived.
        let mut arrived: HashMap<(i64, i64), i64> = HashMap::new();
        for (i, ev) in events.iter().enumerate() {
            self.stream_time.observe(ev.timestamp);
            arrived.insert((ev.timestamp, ev.offset), self.stream_time.0);
            // No window starts before 0: a negative time has none (as for
            // tumbling and hopping windows).
            if ev.timestamp < 0 || window::sliding_is_late(ev.timestamp, size, w.grace, self.stream_time.0) {
                let window = if ev.timestamp < 0 {
                    Window {
                        start: ev.timestamp,
                        end: ev.timestamp.saturating_add(1),
                    }
                } else {
                    window::sliding_left(ev.timestamp, size)
                };
                let stream_time = self.stream_time.0;
                step.rejected.push((i, Rejection::Late { window, stream_time }));
                continue;
            }
            self.put(keys::event(ev.key, ev.timestamp, ev.offset), Some(encode(events, &[i])));
            new_by_key.entry(ev.key.map(<[u8]>::to_vec)).or_default().push(i);
        }
        for (key, mut news) in new_by_key {
            // Arrival order.
            news.sort_by_key(|&i| events[i].offset);
            let new_at: BTreeSet<(i64, i64)> = news.iter().map(|&i| (events[i].timestamp, events[i].offset)).collect();
            let (lo, hi) = match (new_at.first(), new_at.last()) {
                // Event times come from outside: saturate at the ends of time.
                (Some(a), Some(b)) => {
                    let reach = size.saturating_mul(2).saturating_add(2);
                    (a.0.saturating_sub(reach), b.0.saturating_add(reach))
                }
                _ => continue,
            };
            // The key's kept events near the new ones, in (time, offset) order.
            let mut kept: Vec<(i64, i64, Vec<u8>)> = Vec::new();
            for (k, v) in self.store.scan(&keys::events_of(key.as_deref()))? {
                match self.store.entry(&k)? {
                    Entry::Event(_, ts, off) if (lo..=hi).contains(&ts) => kept.push((ts, off, v)),
                    Entry::Event(..) => {}
                    _ => return Err(self.store.corrupt(&k, "a key that is not a kept event's").into()),
                }
            }
            // When an event came, in stream time; events of earlier batches
            // came before every window open now closed.
            let came = |t: i64, off: i64| arrived.get(&(t, off)).copied().unwrap_or(i64::MIN);
            // As if one event came at a time (Kafka Streams): each new event
            // goes into the windows that exist once it has come (over the
            // events that came up to it) and hold it, if they are open when
            // it comes, and makes its right window if that is new. An event
            // that does neither is late: Kafka Streams keeps no trace of it,
            // so it must not count in a window made later either.
            let mut dropped: BTreeSet<(i64, i64)> = BTreeSet::new();
            let mut touched: std::collections::BTreeMap<Window, Touch> = Default::default();
            for &i in &news {
                let (t, off) = (events[i].timestamp, events[i].offset);
                let now = came(t, off);
                let before: Vec<i64> = kept
                    .iter()
                    .filter(|e| e.1 < off && !dropped.contains(&(e.0, e.1)))
                    .map(|e| e.0)
                    .collect();
                let right = window::sliding_right(t, size);
                let existing = window::sliding_windows(&before, size);
                let right_is_new = !existing.contains(&right);
                let mut after = before;
                after.push(t);
                let mut used = false;
                for win in window::sliding_windows(&after, size) {
                    if w.is_closed(win, now) {
                        continue;
                    }
                    let touch = if window::holds(win, t) {
                        let touch = touched.entry(win).or_default();
                        touch.gains.insert((t, off));
                        touch
                    } else if win == right && right_is_new {
                        let touch = touched.entry(win).or_default();
                        touch.creators.insert((t, off));
                        touch
                    } else {
                        continue;
                    };
                    touch.order = touch
                        .order
                        .max(Some((i, sliding_rank(win, t, size, existing.contains(&win)))));
                    used = true;
                }
                if !used {
                    dropped.insert((t, off));
                    let window = window::sliding_left(t, size);
                    step.rejected.push((
                        i,
                        Rejection::Late {
                            window,
                            stream_time: now,
                        },
                    ));
                    self.put(keys::event(key.as_deref(), t, off), None);
                }
            }
            let affected: Vec<(Window, Touch)> = touched.into_iter().collect();
            let members: Vec<Vec<usize>> = affected
                .iter()
                .map(|(win, _)| {
                    let mut m: Vec<usize> = (0..kept.len())
                        .filter(|&j| {
                            let (ts, off) = (kept[j].0, kept[j].1);
                            window::holds(*win, ts)
                                && !dropped.contains(&(ts, off))
                                && !w.is_closed(*win, came(ts, off))
                        })
                        .collect();
                    // In the order they came, as Kafka Streams adds them.
                    m.sort_by_key(|&j| kept[j].1);
                    m
                })
                .collect();
            let groups: Vec<Group> = affected
                .iter()
                .zip(&members)
                .map(|((win, _), m)| Group {
                    key: key.clone(),
                    window: Some(*win),
                    acc: None,
                    events: join(m.iter().map(|&j| kept[j].2.as_slice())),
                })
                .collect();
            let sizes: Vec<usize> = members.iter().map(Vec::len).collect();
            let outcomes = fold(op, groups, &sizes, &|g, j| kept[members[g][j]].2.clone());
            // First the refusals of new events (the others went in before),
            // then what each window became: a refused event makes nothing.
            let mut failed: BTreeSet<(i64, i64)> = BTreeSet::new();
            let mut results = Vec::with_capacity(outcomes.len());
            for (m, outcome) in members.iter().zip(outcomes) {
                let mut refused: BTreeSet<(i64, i64)> = BTreeSet::new();
                for (j, why) in outcome.failures {
                    let Some(&kj) = m.get(j) else { continue };
                    let (ts, off) = (kept[kj].0, kept[kj].1);
                    refused.insert((ts, off));
                    if new_at.contains(&(ts, off)) && failed.insert((ts, off)) {
                        if let Some(&i) = news.iter().find(|&&i| events[i].offset == off) {
                            step.rejected.push((i, why));
                        }
                        self.put(keys::event(key.as_deref(), ts, off), None);
                    }
                }
                results.push((outcome.acc.filter(|_| outcome.changed), refused));
            }
            for (((win, touch), m), (acc, refused)) in affected.iter().zip(&members).zip(results) {
                let changed = touch.gains.iter().any(|e| !refused.contains(e))
                    || touch.creators.iter().any(|e| !failed.contains(e));
                // A window none of whose events went in is not made.
                let Some(acc) = acc.filter(|_| changed) else {
                    continue;
                };
                let k = keys::windowed(key.as_deref(), *win);
                self.timers.insert(&mut self.store, w.close_time(*win), &k)?;
                // Refolded from all its events: the newest of those that went in.
                let ts = m
                    .iter()
                    .map(|&j| (kept[j].0, kept[j].1))
                    .filter(|e| !refused.contains(e))
                    .map(|e| e.0)
                    .max()
                    .unwrap_or(win.start);
                self.put(keys::stamp(&k), Some(ts.to_le_bytes().to_vec()));
                latest.insert(k.clone(), ts);
                if let Some(o) = touch.order {
                    order.insert(k.clone(), o);
                }
                self.put(k, Some(acc));
            }
            self.purge_events(key.as_deref(), size, w.grace)?;
        }
        // Keys were taken one after another: rejections in batch order.
        step.rejected.sort_by_key(|(i, _)| *i);
        Ok(())
    }

    /// A table aggregation, record by record as Kafka Streams'
    /// `KTableAggregate`: a change's old value (header
    /// [`OLD_VALUE`](crate::stage::table::OLD_VALUE)) is taken out of its
    /// group's accumulator if it has one (`subtract`), then its new value
    /// (the record's value) added, from the initial value if there is no
    /// accumulator. The result's timestamp is the record's, or the
    /// accumulator's if later and there was one. A group whose accumulator
    /// is gone (no new value and nothing to take from) is deleted.
    fn fold_table(
        &mut self,
        op: &mut dyn Fold,
        events: &[EventRef<'_>],
        step: &mut Step,
        latest: &mut HashMap<Vec<u8>, i64>,
    ) -> Result<(), AggregateError> {
        // Each key's records in order; a round takes the next one of every
        // key, so that a round's subtractions go to the guest in one call
        // and its additions in another (a key's records must follow one
        // another; different keys do not meet).
        let mut queues: Vec<std::collections::VecDeque<usize>> = Vec::new();
        let mut queue_of: HashMap<Option<&[u8]>, usize> = HashMap::new();
        for (i, ev) in events.iter().enumerate() {
            self.stream_time.observe(ev.timestamp);
            let q = *queue_of.entry(ev.key).or_insert_with(|| {
                queues.push(std::collections::VecDeque::new());
                queues.len() - 1
            });
            queues[q].push_back(i);
        }
        let one = |ev: &EventRef<'_>, value: &[u8]| {
            let mut enc = BatchEncoder::new();
            enc.push(
                ev.timestamp,
                ev.topic,
                ev.partition,
                ev.offset,
                ev.key,
                Some(value),
                ev.headers.iter(),
            );
            enc.as_bytes().to_vec()
        };
        let group = |ev: &EventRef<'_>, acc: Option<Vec<u8>>, events: Vec<u8>| Group {
            key: ev.key.map(<[u8]>::to_vec),
            window: None,
            acc,
            events,
        };
        loop {
            let round: Vec<usize> = queues.iter_mut().filter_map(|q| q.pop_front()).collect();
            if round.is_empty() {
                break;
            }
            // Per record of the round: its accumulator as it is, then as it
            // goes (`None`: refused).
            let mut current = Vec::with_capacity(round.len());
            for &i in &round {
                current.push(self.store.get(&keys::plain(events[i].key))?);
            }
            let mut acc: Vec<Option<Result<Vec<u8>, Rejection>>> = current.iter().map(|c| c.clone().map(Ok)).collect();
            let subtracting: Vec<usize> = (0..round.len())
                .filter(|&r| current[r].is_some() && old_value(&events[round[r]]).is_some())
                .collect();
            let groups = subtracting
                .iter()
                .map(|&r| {
                    let ev = &events[round[r]];
                    group(ev, current[r].clone(), one(ev, old_value(ev).unwrap_or_default()))
                })
                .collect();
            for (&r, result) in subtracting.iter().zip(table_round(op, groups, true)) {
                acc[r] = Some(result);
            }
            let adding: Vec<usize> = (0..round.len())
                .filter(|&r| events[round[r]].value.is_some() && !matches!(acc[r], Some(Err(_))))
                .collect();
            let groups = adding
                .iter()
                .map(|&r| {
                    let ev = &events[round[r]];
                    let base = acc[r].clone().and_then(Result::ok);
                    group(ev, base, one(ev, ev.value.unwrap_or_default()))
                })
                .collect();
            for (&r, result) in adding.iter().zip(table_round(op, groups, false)) {
                acc[r] = Some(result);
            }
            for (r, &i) in round.iter().enumerate() {
                let ev = &events[i];
                let k = keys::plain(ev.key);
                match acc[r].take() {
                    Some(Ok(next)) => {
                        // Kafka Streams: the record's timestamp, or the
                        // accumulator's if there was one and it is later.
                        let ts = match self.stamp(&k)? {
                            Some(stamp) if current[r].is_some() => stamp.max(ev.timestamp),
                            _ => ev.timestamp,
                        };
                        self.put(keys::stamp(&k), Some(ts.to_le_bytes().to_vec()));
                        latest.insert(k.clone(), ts);
                        self.put(k, Some(next));
                    }
                    Some(Err(why)) => step.rejected.push((i, why)),
                    // Nothing to take out of and nothing to add: no change.
                    None => {}
                }
            }
        }
        step.rejected.sort_by_key(|(i, _)| *i);
        Ok(())
    }

    /// Deletes a key's kept events that no open or future window can hold.
    fn purge_events(&mut self, key: Option<&[u8]>, size: i64, grace: i64) -> Result<(), AggregateError> {
        let st = self.stream_time.0;
        for (k, _) in self.store.scan(&keys::events_of(key))? {
            match self.store.entry(&k)? {
                Entry::Event(_, ts, _) if ts.saturating_add(2 * size + 2).saturating_add(grace) <= st => {
                    self.put(k, None);
                }
                Entry::Event(..) => break,
                _ => return Err(self.store.corrupt(&k, "a key that is not a kept event's").into()),
            }
        }
        Ok(())
    }

    fn fold_sessions(
        &mut self,
        op: &mut dyn Fold,
        w: Windowing,
        gap: i64,
        events: &[EventRef<'_>],
        step: &mut Step,
        latest: &mut HashMap<Vec<u8>, i64>,
    ) -> Result<(), AggregateError> {
        let mut sessions: HashMap<Option<Vec<u8>>, Vec<Window>> = HashMap::new();
        // Sessions that existed before this batch: `update` has shown them,
        // so a merge that deletes one sends a tombstone.
        let mut shown: BTreeSet<(Option<Vec<u8>>, Window)> = BTreeSet::new();
        // Each key's initial accumulator, once asked for (merges start from it).
        let mut inits: HashMap<Option<Vec<u8>>, Vec<u8>> = HashMap::new();
        for (i, ev) in events.iter().enumerate() {
            // Sessions closed before this event came are gone for it, as if
            // every record were a batch of its own (they are emitted and
            // deleted at the end of the batch).
            let before = self.stream_time.0;
            self.stream_time.observe(ev.timestamp);
            let key = ev.key.map(<[u8]>::to_vec);
            if !sessions.contains_key(&key) {
                let mut known = Vec::new();
                for (k, _) in self.store.scan(&keys::windows_of(ev.key))? {
                    let Entry::Windowed(_, window) = self.store.entry(&k)? else {
                        return Err(self.store.corrupt(&k, "a key that is not a window's").into());
                    };
                    known.push(window);
                    shown.insert((key.clone(), window));
                }
                sessions.insert(key.clone(), known);
            }
            let mut known = sessions.get_mut(&key).map(std::mem::take).unwrap_or_default();
            known.retain(|s| !w.is_closed(*s, before));
            let plan = window::session_for(&known, ev.timestamp, gap);
            let outcome = if w.is_late(plan.window, self.stream_time.0) {
                Err(Rejection::Late {
                    window: plan.window,
                    stream_time: self.stream_time.0,
                })
            } else {
                self.fold_into_session(op, ev, &plan, events, i, &mut inits)
            };
            match outcome {
                Err(why) => step.rejected.push((i, why)),
                Ok(acc) => {
                    // Kafka Streams deletes (and sends a tombstone for) every
                    // session the event joins, even one the merge gives back
                    // unchanged in its bounds, unless the event makes a
                    // session of its own time alone (`mergedWindow` equals
                    // the new single-point window): then it updates in place.
                    let alone = plan.window
                        == Window {
                            start: ev.timestamp,
                            end: ev.timestamp.saturating_add(1),
                        };
                    for m in &plan.merged {
                        let k = keys::windowed(ev.key, *m);
                        self.timers.remove(&mut self.store, w.close_time(*m), &k)?;
                        latest.remove(&k);
                        self.put(k, None);
                        if self.spec.emit == Emit::Update && !alone && shown.remove(&(key.clone(), *m)) {
                            step.due.push(Due {
                                key: key.clone(),
                                window: Some(*m),
                                timestamp: m.end - 1,
                                acc: None,
                            });
                        }
                    }
                    known.retain(|s| !plan.merged.contains(s));
                    known.push(plan.window);
                    let k = keys::windowed(ev.key, plan.window);
                    self.timers.insert(&mut self.store, w.close_time(plan.window), &k)?;
                    // A session's results carry its end (its newest event).
                    latest.insert(k.clone(), plan.window.end - 1);
                    self.put(k, Some(acc));
                }
            }
            sessions.insert(key, known);
        }
        Ok(())
    }

    /// The accumulator an event makes with the sessions it joins, as Kafka
    /// Streams' `KStreamSessionWindowAggregate` computes it: the key's initial
    /// value, merged with each of those sessions (oldest first) through the
    /// guest's `merge`, then the event added. With an initial value that is
    /// not neutral for `merge` this differs from adding the event to the
    /// session (`0+0+1+2`, not `0+1+2`). An event that joins no session is
    /// simply added to the initial value.
    fn fold_into_session(
        &mut self,
        op: &mut dyn Fold,
        ev: &EventRef<'_>,
        plan: &window::SessionPlan,
        events: &[EventRef<'_>],
        i: usize,
        inits: &mut HashMap<Option<Vec<u8>>, Vec<u8>>,
    ) -> Result<Vec<u8>, Rejection> {
        let key = ev.key.map(<[u8]>::to_vec);
        let mut acc: Option<Vec<u8>> = None;
        if !plan.merged.is_empty() {
            let mut merged = match inits.get(&key) {
                Some(init) => init.clone(),
                None => {
                    let init = initial(op, key.clone(), plan.window)?;
                    inits.insert(key.clone(), init.clone());
                    init
                }
            };
            for m in &plan.merged {
                let Some(next) = self
                    .store
                    .get(&keys::windowed(ev.key, *m))
                    .map_err(|e| Rejection::Failed(Failure::new("state", e.to_string())))?
                else {
                    continue;
                };
                merged = match op.merge(ev.key, &merged, &next) {
                    Ok(Ok(merged)) => merged,
                    Ok(Err(f)) => return Err(Rejection::Failed(f)),
                    Err(e) => return Err(Rejection::Trapped(e)),
                };
            }
            acc = Some(merged);
        }
        let group = Group {
            key,
            window: Some(plan.window),
            acc,
            events: encode(events, &[i]),
        };
        match op.add(vec![group]) {
            Ok(mut folded) => match folded.pop() {
                Some(Folded { failures, .. }) if !failures.is_empty() => {
                    let f = failures.into_iter().next().map(|(_, f)| f);
                    Err(Rejection::Failed(f.unwrap_or_else(|| Failure::new("failed", ""))))
                }
                Some(f) => Ok(f.acc),
                None => Err(Rejection::Failed(Failure::new("bad-result", "add returned nothing"))),
            },
            Err(e) => Err(Rejection::Trapped(e)),
        }
    }

    /// Deletes every window whose close time `stream_time` has reached,
    /// emitting it first in `final` mode.
    fn close(&mut self, stream_time: i64, step: &mut Step) -> Result<(), AggregateError> {
        if self.spec.window.is_none() {
            return Ok(());
        }
        loop {
            let due = self.timers.pop_due(&mut self.store, stream_time, CLOSE_PAGE)?;
            let more = due.len() == CLOSE_PAGE;
            for (_, k) in due {
                self.close_window(k, step)?;
            }
            if !more {
                break;
            }
        }
        self.first_close = self.timers.first(&self.store)?;
        Ok(())
    }

    /// Deletes the window at store key `k`, whose timer fired.
    fn close_window(&mut self, k: Vec<u8>, step: &mut Step) -> Result<(), AggregateError> {
        if self.spec.emit == Emit::Final
            && let Some(acc) = self.store.get(&k)?
            && let (key, Some(window)) = split(&self.store, &k)?
        {
            let timestamp = match self.stamp(&k)? {
                Some(ts) => ts,
                // Sessions carry their end; so did windows stored
                // before stamps were kept.
                None => window.end - 1,
            };
            step.due.push(Due {
                key,
                window: Some(window),
                timestamp,
                acc: Some(acc),
            });
        }
        if let (
            Some(Windowing {
                kind: WindowKind::Sliding { size },
                grace,
            }),
            Some(Entry::Windowed(key, _)),
        ) = (self.spec.window, keys::decode(&k))
        {
            self.purge_events(key.as_deref(), size, grace)?;
        }
        if self.stamp(&k)?.is_some() {
            self.put(keys::stamp(&k), None);
        }
        self.put(k, None);
        Ok(())
    }

    /// The timestamp of the accumulator at `store_key`, if stamped.
    fn stamp(&self, store_key: &[u8]) -> Result<Option<i64>, StateError> {
        let Some(bytes) = self.store.get(&keys::stamp(store_key))? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| self.store.corrupt(store_key, "a timestamp that is not 8 bytes"))?;
        Ok(Some(i64::from_le_bytes(bytes)))
    }

    /// Moves the accumulator's timestamp to the newest event folded in
    /// (`newest`, of this batch) if that is later, and returns it: results
    /// carry the largest timestamp of the events in them, as in Kafka Streams.
    fn restamp(&mut self, store_key: &[u8], newest: Option<i64>) -> Result<i64, StateError> {
        let old = self.stamp(store_key)?;
        let ts = match (old, newest) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a
                .or(b)
                .ok_or_else(|| self.store.corrupt(store_key, "an accumulator folded from no events"))?,
        };
        if old != Some(ts) {
            self.put(keys::stamp(store_key), Some(ts.to_le_bytes().to_vec()));
        }
        Ok(ts)
    }

    fn put(&mut self, k: Vec<u8>, v: Option<Vec<u8>>) {
        self.touched.insert(k.clone());
        self.store.stage(k, v);
    }

    /// Sends every changed entry (and stream time, if it moved) to the changelog.
    fn flush(&mut self, position: &str, sink: &mut dyn Sink) -> Result<(), AggregateError> {
        if self.spec.window.is_some() && self.meta_sent.elapsed() >= META_REFRESH {
            self.meta_sent = Instant::now();
            if let Some(format) = self.format.clone() {
                self.put(keys::meta(keys::FORMAT), Some(format.into_bytes()));
            }
            if let Some(st) = self.stream_time() {
                self.put(keys::meta(keys::STREAM_TIME), Some(st.to_le_bytes().to_vec()));
            }
        }
        if self.stream_time != self.saved_stream_time {
            self.saved_stream_time = self.stream_time;
            self.put(
                keys::meta(keys::STREAM_TIME),
                Some(self.stream_time.0.to_le_bytes().to_vec()),
            );
        }
        for k in std::mem::take(&mut self.touched) {
            let value = self.store.get(&k)?;
            changelog::send(sink, self.store.changelog(), &k, value.as_deref(), position)?;
        }
        Ok(())
    }
}

/// A store key's record key and window.
/// A grouped table's change's old value (header
/// [`OLD_VALUE`](crate::stage::table::OLD_VALUE)).
fn old_value<'a>(ev: &EventRef<'a>) -> Option<&'a [u8]> {
    ev.headers
        .iter()
        .find(|(name, _)| *name == crate::stage::table::OLD_VALUE)
        .and_then(|(_, v)| v)
}

/// One `subtract` or `add` call for a round of one-event groups: each
/// group's accumulator, or why its event was refused. A call that traps
/// is made again group by group, so that only the records that trap fail.
fn table_round(op: &mut dyn Fold, groups: Vec<Group>, subtract: bool) -> Vec<Result<Vec<u8>, Rejection>> {
    if groups.is_empty() {
        return Vec::new();
    }
    let n = groups.len();
    let call = |op: &mut dyn Fold, groups: Vec<Group>| {
        if subtract {
            op.subtract(groups)
        } else {
            op.add(groups).map(Some)
        }
    };
    match call(op, groups.clone()) {
        Ok(Some(folded)) if folded.len() == n => folded
            .into_iter()
            .map(|f| table_fold(Ok(Some(vec![f])), subtract))
            .collect(),
        Ok(None) => (0..n).map(|_| table_fold(Ok(None), subtract)).collect(),
        alone if n == 1 => vec![table_fold(alone, subtract)],
        _ => groups
            .into_iter()
            .map(|g| table_fold(call(op, vec![g]), subtract))
            .collect(),
    }
}

/// The accumulator one `add` or `subtract` of one event made, or why the
/// event was refused.
fn table_fold(folded: Result<Option<Vec<Folded>>, GuestError>, subtract: bool) -> Result<Vec<u8>, Rejection> {
    match folded {
        Ok(None) if subtract => Err(Rejection::Failed(Failure::new(
            "no-subtract",
            "a table aggregation needs the module's subtract",
        ))),
        Ok(folded) => match folded.and_then(|mut f| f.pop()) {
            Some(Folded { failures, .. }) if !failures.is_empty() => {
                let f = failures.into_iter().next().map(|(_, f)| f);
                Err(Rejection::Failed(f.unwrap_or_else(|| Failure::new("failed", ""))))
            }
            Some(f) => Ok(f.acc),
            None => Err(Rejection::Failed(Failure::new(
                "bad-result",
                "no accumulator came back",
            ))),
        },
        Err(e) => Err(Rejection::Trapped(e)),
    }
}

/// Where a sliding window's update goes among a batch's: the batch index of
/// the last new event that changed it, then its place among that event's
/// windows ([`sliding_rank`]).
type SlidingOrder = (usize, (u8, i64));

/// Where an event at `t` updates sliding window `win` among the windows it
/// changes, as Kafka Streams forwards them. A record at or past `size`
/// (`processReverse`, its default store): the existing windows that hold it
/// from the latest start down, then the previous record's new right window,
/// its own new left window, its own new right window (`createWindows`). An
/// earlier one (`processEarly`): the existing windows that hold it from the
/// earliest start up, then its new right window, the previous record's new
/// right window, and `[0, size]` last.
fn sliding_rank(win: Window, t: i64, size: i64, existed: bool) -> (u8, i64) {
    let right = win.start > t;
    if t >= size {
        return match (right, existed) {
            (true, _) => (3, 0),
            (false, true) => (0, -win.start),
            (false, false) if win.start == t - size => (2, 0),
            (false, false) => (1, 0),
        };
    }
    match (right, win.start, existed) {
        (true, _, _) => (1, 0),
        (false, 0, _) => (3, 0),
        (false, _, true) => (0, win.start),
        (false, _, false) => (2, 0),
    }
}

/// The record key and window of an accumulator's key in `store`; any other
/// key is corrupt state there.
fn split(store: &Store, k: &[u8]) -> Result<(Option<Vec<u8>>, Option<Window>), StateError> {
    match store.entry(k)? {
        Entry::Plain(key) => Ok((key, None)),
        Entry::Windowed(key, w) => Ok((key, Some(w))),
        Entry::Meta(_) | Entry::Event(..) | Entry::Stamp(_) | Entry::Joined(..) | Entry::Timer(..) => {
            Err(store.corrupt(k, "a key that is not an accumulator's"))
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Encodes some events of a batch as an `event-batch`.
fn encode(events: &[EventRef<'_>], members: &[usize]) -> Vec<u8> {
    let mut enc = BatchEncoder::new();
    for &i in members {
        let e = &events[i];
        enc.push(
            e.timestamp,
            e.topic,
            e.partition,
            e.offset,
            e.key,
            e.value,
            e.headers.iter(),
        );
    }
    enc.as_bytes().to_vec()
}

/// Joins single-event `event-batch`es into one batch.
fn join<'a>(parts: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    let mut n: u32 = 0;
    for p in parts {
        out.extend_from_slice(p.get(4..).unwrap_or_default());
        n += 1;
    }
    out[..4].copy_from_slice(&n.to_le_bytes());
    out
}

/// A key's initial accumulator (Kafka Streams' initializer): the guest's
/// `add` of no events to no accumulator, which the aggregator world defines
/// as its `init`. `window` is the window it is asked for.
fn initial(op: &mut dyn Fold, key: Option<Vec<u8>>, window: Window) -> Result<Vec<u8>, Rejection> {
    let group = Group {
        key,
        window: Some(window),
        acc: None,
        events: BatchEncoder::new().as_bytes().to_vec(),
    };
    match op.add(vec![group]) {
        Ok(mut folded) => match folded.pop() {
            Some(f) => Ok(f.acc),
            None => Err(Rejection::Failed(Failure::new("bad-result", "add returned nothing"))),
        },
        Err(e) => Err(Rejection::Trapped(e)),
    }
}

/// What folding one group did.
struct Outcome {
    /// The accumulator after it (`None`: none existed and nothing folded).
    acc: Option<Vec<u8>>,
    /// At least one event went in.
    changed: bool,
    /// Events (index within the group) that did not.
    failures: Vec<(usize, Rejection)>,
}

/// Folds groups with one `add` call. When the call traps, each group is
/// retried alone, and a group that still traps is folded event by event
/// (`single(group, j)` encodes its `j`-th event alone), so that only the
/// events that trap are rejected (operators are deterministic).
fn fold(
    op: &mut dyn Fold,
    groups: Vec<Group>,
    sizes: &[usize],
    single: &dyn Fn(usize, usize) -> Vec<u8>,
) -> Vec<Outcome> {
    match op.add(groups.clone()) {
        Ok(folded) => return folded.into_iter().zip(sizes).map(|(f, n)| outcome(f, *n)).collect(),
        Err(e) if matches!(e.fault, GuestFault::Instantiate(_)) => {
            return sizes.iter().map(|&n| all_trapped(n, &e)).collect();
        }
        Err(_) => {}
    }
    groups
        .into_iter()
        .zip(sizes)
        .enumerate()
        .map(|(gi, (g, &n))| match op.add(vec![g.clone()]) {
            Ok(mut f) => f.pop().map_or_else(|| all_trapped_text(n), |f| outcome(f, n)),
            Err(e) if matches!(e.fault, GuestFault::Instantiate(_)) => all_trapped(n, &e),
            Err(_) => one_by_one(op, g, n, &|j| single(gi, j)),
        })
        .collect()
}

fn one_by_one(op: &mut dyn Fold, g: Group, n: usize, single: &dyn Fn(usize) -> Vec<u8>) -> Outcome {
    let mut acc = g.acc.clone();
    let mut changed = false;
    let mut failures = Vec::new();
    for j in 0..n {
        let one = Group {
            key: g.key.clone(),
            window: g.window,
            acc: acc.clone(),
            events: single(j),
        };
        match op.add(vec![one]) {
            Ok(mut f) => match f.pop() {
                Some(f) if f.failures.is_empty() => {
                    acc = Some(f.acc);
                    changed = true;
                }
                Some(mut f) => failures.push((j, Rejection::Failed(f.failures.remove(0).1))),
                None => failures.push((j, Rejection::Failed(Failure::new("bad-result", "add returned nothing")))),
            },
            Err(e) => failures.push((j, Rejection::Trapped(e))),
        }
    }
    Outcome { acc, changed, failures }
}

fn outcome(f: Folded, n: usize) -> Outcome {
    let failures: Vec<(usize, Rejection)> = f
        .failures
        .into_iter()
        .map(|(j, why)| (j as usize, Rejection::Failed(why)))
        .collect();
    Outcome {
        changed: failures.len() < n,
        acc: Some(f.acc),
        failures,
    }
}

fn all_trapped(n: usize, e: &GuestError) -> Outcome {
    Outcome {
        acc: None,
        changed: false,
        failures: (0..n).map(|j| (j, Rejection::Trapped(e.clone()))).collect(),
    }
}

fn all_trapped_text(n: usize) -> Outcome {
    Outcome {
        acc: None,
        changed: false,
        failures: (0..n)
            .map(|j| (j, Rejection::Failed(Failure::new("bad-result", "add returned nothing"))))
            .collect(),
    }
}

/// The stage's semantics against Kafka Streams' documented behaviour, on the
/// in-memory store with the native [`Count`]: no broker, no guest. Every
/// scenario runs at several batch sizes and must give the same windows,
/// counts, timestamps and late records (updates aside, which are per batch).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::collector::OutRecord;
    use crate::state::Changelog;
    use crate::window::WindowKind;

    /// Changelog records are checked elsewhere; here they only go somewhere.
    struct Discard;

    impl Sink for Discard {
        fn send(&mut self, _: &OutRecord<'_>) -> Result<(), SinkError> {
            Ok(())
        }
    }

    /// A result: key, window as `[start, end)`, value (a count unless
    /// said otherwise), timestamp.
    type Out<V = u64> = (String, Option<(i64, i64)>, V, i64);

    /// What a run emitted, dropped as late (key, timestamp) and left in its
    /// store (accumulators and their stamps).
    #[derive(Debug, PartialEq)]
    struct Ran<V = u64> {
        out: Vec<Out<V>>,
        late: Vec<(String, i64)>,
        store: Vec<crate::state::Entry>,
    }

    fn spec(window: Option<(WindowKind, i64)>, emit: Emit) -> Aggregation {
        Aggregation {
            window: window.map(|(kind, grace)| Windowing::new(kind, grace).unwrap()),
            emit,
            idle_close: None,
            repartition: false,
            partitions: None,
            table: false,
        }
    }

    /// Feeds `records` (key, timestamp) in order, `batch` at a time, each
    /// batch committed before the next, to [`Count`].
    fn run(spec: &Aggregation, records: &[(&str, i64)], batch: usize) -> Ran {
        let records: Vec<(&str, &str, i64)> = records.iter().map(|(k, ts)| (*k, "v", *ts)).collect();
        // A tombstone counts as 0.
        drive(spec, &mut Count, &records, batch, |acc| {
            acc.map_or(Some(0), Count::read).unwrap()
        })
    }

    /// Feeds `records` (key, value, timestamp) to `fold` in order, `batch` at
    /// a time (offsets count from 0), each batch committed before the next;
    /// `read` turns an emitted accumulator (`None`: a tombstone) into a value.
    fn drive<V>(
        spec: &Aggregation,
        fold: &mut dyn Fold,
        records: &[(&str, &str, i64)],
        batch: usize,
        read: impl Fn(Option<&[u8]>) -> V,
    ) -> Ran<V> {
        let changelog = Changelog {
            topic: "t-changelog".into(),
            partition: 0,
        };
        let mut agg = Aggregator::open(spec.clone(), Store::in_memory(changelog)).unwrap();
        let mut ran = Ran {
            out: Vec::new(),
            late: Vec::new(),
            store: Vec::new(),
        };
        for (n, chunk) in records.chunks(batch).enumerate() {
            let mut enc = BatchEncoder::new();
            for (i, (key, value, ts)) in chunk.iter().enumerate() {
                let offset = (n * batch + i) as i64;
                enc.push(
                    *ts,
                    "in",
                    0,
                    offset,
                    Some(key.as_bytes()),
                    Some(value.as_bytes()),
                    std::iter::empty(),
                );
            }
            let events = codec::read_events(enc.as_bytes()).unwrap();
            let next = (n * batch + chunk.len()) as i64;
            let step = agg
                .step(fold, &events, &next.to_string(), Instant::now(), &mut Discard)
                .unwrap();
            for (i, why) in step.rejected {
                assert!(matches!(why, Rejection::Late { .. }), "{why:?}");
                ran.late.push((chunk[i].0.to_owned(), chunk[i].2));
            }
            for d in step.due {
                let key = String::from_utf8(d.key.unwrap()).unwrap();
                let window = d.window.map(|w| (w.start, w.end));
                ran.out.push((key, window, read(d.acc.as_deref()), d.timestamp));
            }
            agg.commit(None).unwrap();
        }
        ran.store = agg.store().scan(&[1]).unwrap();
        ran.store.extend(agg.store().scan(&[2]).unwrap());
        // Kept sliding events are left out: those no window needs go when
        // their key is next touched, which depends on batching.
        ran.store.extend(agg.store().scan(&[4]).unwrap());
        ran
    }

    /// The same results at batch sizes 1, 2, 3 and all at once.
    fn run_batched(spec: &Aggregation, records: &[(&str, i64)]) -> Ran {
        same_at_any_batch_size(spec, records.len(), |batch| run(spec, records, batch))
    }

    /// `run(batch)` at batch sizes 1, 2, 3 and all at once (`n` records):
    /// the same final results, late records and store (updates aside,
    /// which come once per batch); the run at batch size 1.
    fn same_at_any_batch_size<V: PartialEq + Clone + std::fmt::Debug>(
        spec: &Aggregation,
        n: usize,
        run: impl Fn(usize) -> Ran<V>,
    ) -> Ran<V> {
        let one = run(1);
        for batch in [2, 3, n] {
            let other = run(batch);
            if spec.emit == Emit::Final {
                let only = |a: &Ran<V>, b: &Ran<V>| -> Vec<Out<V>> {
                    a.out.iter().filter(|o| !b.out.contains(o)).cloned().collect()
                };
                assert!(
                    other == one,
                    "batch size {batch}: only at batch 1 {:?}, only at batch {batch} {:?}; late {:?} vs {:?}",
                    only(&one, &other),
                    only(&other, &one),
                    one.late,
                    other.late
                );
            } else {
                // Updates come once per batch (a session merged within a
                // batch is never shown); what they leave is the same.
                assert_eq!(other.late, one.late, "late records at batch size {batch}");
                assert_eq!(other.store, one.store, "the store at batch size {batch}");
            }
        }
        one
    }

    fn k1(times: &[i64]) -> Vec<(&'static str, i64)> {
        times.iter().map(|t| ("k1", *t)).collect()
    }

    #[test]
    fn corrupt_state_stops_the_task_naming_the_store_and_key() {
        let s = spec(Some((WindowKind::Tumbling { size: 10 }, 0)), Emit::Update);
        let open_with = |writes: Vec<crate::state::Write>| {
            let store = Store::in_memory(Changelog {
                topic: "t-changelog".into(),
                partition: 3,
            });
            store.apply(writes, Some(1)).unwrap();
            match Aggregator::open(s.clone(), store) {
                Ok(_) => panic!("corrupt state opened"),
                Err(e) => e.to_string(),
            }
        };
        let e = open_with(vec![(keys::meta(keys::STREAM_TIME), Some(vec![1, 2, 3]))]);
        assert!(
            e.starts_with("state store t-changelog[3] is corrupt: entry [00, ")
                && e.contains("a stream time that is not 8 bytes"),
            "{e}"
        );
        let e = open_with(vec![(vec![2, 9], Some(b"acc".to_vec()))]);
        assert_eq!(
            e,
            "state store t-changelog[3] is corrupt: entry [02, 09] holds a key that does not decode; the task stops"
        );
    }

    #[test]
    fn tumbling_final_results_as_kafka_streams_suppression() {
        // SuppressScenarioTest.shouldSupportFinalResultsForTimeWindows:
        // size 2, grace 1; the last record is out of the grace period.
        let s = spec(Some((WindowKind::Tumbling { size: 2 }, 1)), Emit::Final);
        let ran = run_batched(&s, &k1(&[0, 1, 2, 1, 0, 5, 0]));
        assert_eq!(
            ran.out,
            [("k1".into(), Some((0, 2)), 4, 1), ("k1".into(), Some((2, 4)), 1, 2)],
            "window [0,2) holds four records and carries the newest one's time"
        );
        assert_eq!(ran.late, [("k1".to_owned(), 0)]);
    }

    #[test]
    fn tumbling_final_results_with_a_large_jump() {
        // shouldSupportFinalResultsForTimeWindowsWithLargeJump: size 2, grace 2.
        let s = spec(Some((WindowKind::Tumbling { size: 2 }, 2)), Emit::Final);
        let ran = run_batched(&s, &k1(&[0, 1, 2, 0, 3, 0, 4, 0, 30]));
        assert_eq!(
            ran.out,
            [
                ("k1".into(), Some((0, 2)), 4, 1),
                ("k1".into(), Some((2, 4)), 2, 3),
                ("k1".into(), Some((4, 6)), 1, 4)
            ]
        );
        assert_eq!(ran.late, [("k1".to_owned(), 0)]);
    }

    #[test]
    fn updates_carry_the_newest_time_in_the_window_across_batches() {
        // The raw (update) stream of the same scenario: [0/2] is 4 at time 1
        // even though its last record has time 0.
        let s = spec(Some((WindowKind::Tumbling { size: 2 }, 1)), Emit::Update);
        let ran = run(&s, &k1(&[0, 1, 2, 1, 0, 5, 0]), 1);
        assert_eq!(
            ran.out,
            [
                ("k1".into(), Some((0, 2)), 1, 0),
                ("k1".into(), Some((0, 2)), 2, 1),
                ("k1".into(), Some((2, 4)), 1, 2),
                ("k1".into(), Some((0, 2)), 3, 1),
                ("k1".into(), Some((0, 2)), 4, 1),
                ("k1".into(), Some((4, 6)), 1, 5)
            ]
        );
        run_batched(&s, &k1(&[0, 1, 2, 1, 0, 5, 0]));
        // Unwindowed: the newest time folded in, too.
        let plain = spec(None, Emit::Update);
        let ran = run(&plain, &k1(&[5, 3]), 1);
        assert_eq!(ran.out, [("k1".into(), None, 1, 5), ("k1".into(), None, 2, 5)]);
    }

    #[test]
    fn hopping_lateness_is_per_window() {
        // Size 10, advance 5, grace 0: a record at 7 belongs to [0,10) and
        // [5,15). At stream time 12, [0,10) has closed and [5,15) has not:
        // the record counts in [5,15) only.
        let s = spec(Some((WindowKind::Hopping { size: 10, advance: 5 }, 0)), Emit::Final);
        let ran = run_batched(&s, &[("a", 1), ("a", 12), ("a", 7), ("a", 40)]);
        assert_eq!(
            ran.out,
            [
                ("a".into(), Some((0, 10)), 1, 1),
                ("a".into(), Some((5, 15)), 2, 12),
                ("a".into(), Some((10, 20)), 1, 12)
            ]
        );
        assert!(ran.late.is_empty(), "on time for one of its windows: {:?}", ran.late);
    }

    #[test]
    fn stream_time_is_shared_across_keys() {
        // Another key's record moves stream time: k1's window closes.
        let s = spec(Some((WindowKind::Tumbling { size: 10 }, 0)), Emit::Final);
        let ran = run_batched(&s, &[("k1", 1), ("k2", 10), ("k1", 2)]);
        assert_eq!(ran.out, [("k1".into(), Some((0, 10)), 1, 1)]);
        assert_eq!(ran.late, [("k1".to_owned(), 2)]);
    }

    #[test]
    fn sessions_as_kafka_streams_suppression() {
        // shouldSupportFinalResultsForSessionWindows: gap 5, grace 0. A
        // session is stored as [start, last + 1).
        let s = spec(Some((WindowKind::Session { gap: 5 }, 0)), Emit::Final);
        let records = [("k1", 0), ("k1", 5), ("k1", 1), ("k2", 11), ("k1", 5), ("k1", 30)];
        let ran = run_batched(&s, &records);
        assert_eq!(
            ran.out,
            [("k1".into(), Some((0, 6)), 3, 5), ("k2".into(), Some((11, 12)), 1, 11)],
            "final results wait for end + gap + grace"
        );
        assert_eq!(
            ran.late,
            [("k1".to_owned(), 5)],
            "late once end + gap + grace is behind stream time"
        );
        // At stream time 6 (k2 at 6), k1@5 would extend [0, 5] to the same
        // bounds: on time, as in Kafka Streams (5 is not before 6 - 0 - 5).
        let records = [("k1", 0), ("k1", 5), ("k1", 1), ("k2", 6), ("k1", 5), ("k1", 30)];
        let ran = run_batched(&s, &records);
        assert_eq!(
            ran.out,
            [("k1".into(), Some((0, 6)), 4, 5), ("k2".into(), Some((6, 7)), 1, 6)]
        );
        assert!(ran.late.is_empty(), "{:?}", ran.late);
    }

    #[test]
    fn session_merges_are_inclusive_on_both_sides_and_delete_what_they_merge() {
        // Gap 10: sessions {0} and {20} are bridged by 10 (10 - 0 = gap and
        // 20 - 10 = gap); the merged session replaces both.
        let s = spec(Some((WindowKind::Session { gap: 10 }, 100)), Emit::Final);
        let ran = run_batched(&s, &[("a", 0), ("a", 20), ("a", 10), ("b", 500)]);
        assert_eq!(ran.out, [("a".into(), Some((0, 21)), 3, 20)]);
        let ran = run_batched(&s, &[("a", 0), ("a", 11), ("b", 500)]);
        assert_eq!(
            ran.out,
            [("a".into(), Some((0, 1)), 1, 0), ("a".into(), Some((11, 12)), 1, 11)],
            "11 is past the gap"
        );
    }

    /// KTableAggregateTest#testCount, as the grouped table sends it (key,
    /// new value, old value in the header, timestamp): a row's old value
    /// leaves its group before its new one is added, one result per
    /// record, stamped with the record's time or the group's if later; a
    /// group that empties counts 0.
    #[test]
    fn a_table_aggregation_subtracts_old_rows_then_adds_new_ones() {
        let spec = Aggregation {
            table: true,
            ..spec(None, Emit::Update)
        };
        let mut agg = Aggregator::open(
            spec,
            Store::in_memory(Changelog {
                topic: "t-changelog".into(),
                partition: 0,
            }),
        )
        .unwrap();
        // (group, new, old, ts): A green@10, B green@10, A blue@12 (green
        // loses A, blue gains it), C yellow@15, D green@11.
        let records: [(&str, Option<&str>, Option<&str>, i64); 6] = [
            ("green", Some("green"), None, 10),
            ("green", Some("green"), None, 10),
            ("green", None, Some("green"), 12),
            ("blue", Some("blue"), None, 12),
            ("yellow", Some("yellow"), None, 15),
            ("green", Some("green"), None, 11),
        ];
        let mut out = Vec::new();
        for (n, (key, new, old, ts)) in records.iter().enumerate() {
            let mut enc = BatchEncoder::new();
            let header = old.map(|o| (crate::stage::table::OLD_VALUE, Some(o.as_bytes())));
            enc.push(
                *ts,
                "repartition",
                0,
                n as i64,
                Some(key.as_bytes()),
                new.map(str::as_bytes),
                header,
            );
            let events = codec::read_events(enc.as_bytes()).unwrap();
            let step = agg
                .step(&mut Count, &events, &n.to_string(), Instant::now(), &mut Discard)
                .unwrap();
            assert!(step.rejected.is_empty());
            for d in step.due {
                let count = Count::read(d.acc.as_deref().unwrap()).unwrap();
                out.push((String::from_utf8(d.key.unwrap()).unwrap(), count, d.timestamp));
            }
            agg.commit(None).unwrap();
        }
        let want: Vec<(String, u64, i64)> = [
            ("green", 1, 10),
            ("green", 2, 10),
            ("green", 1, 12),
            ("blue", 1, 12),
            ("yellow", 1, 15),
            ("green", 2, 12),
        ]
        .into_iter()
        .map(|(k, n, ts)| (k.to_owned(), n, ts))
        .collect();
        assert_eq!(out, want);
        // One record with both values (a row that stays in its group): one
        // result, subtracted then added; a group that empties counts 0.
        let mut enc = BatchEncoder::new();
        enc.push(
            20,
            "r",
            0,
            6,
            Some(b"blue"),
            Some(b"blue"),
            [(crate::stage::table::OLD_VALUE, Some(&b"blue"[..]))],
        );
        enc.push(
            21,
            "r",
            0,
            7,
            Some(b"yellow"),
            None,
            [(crate::stage::table::OLD_VALUE, Some(&b"yellow"[..]))],
        );
        let events = codec::read_events(enc.as_bytes()).unwrap();
        let step = agg
            .step(&mut Count, &events, "8", Instant::now(), &mut Discard)
            .unwrap();
        let got: Vec<(String, u64, i64)> = step
            .due
            .into_iter()
            .map(|d| {
                (
                    String::from_utf8(d.key.unwrap()).unwrap(),
                    Count::read(&d.acc.unwrap()).unwrap(),
                    d.timestamp,
                )
            })
            .collect();
        assert_eq!(got, [("blue".to_owned(), 1, 20), ("yellow".to_owned(), 0, 21)]);
        agg.commit(None).unwrap();
        // In one call for the round: yellow's subtraction below 0 is
        // refused (the count's own failure) and changes nothing; blue's
        // addition, and then blue's second one, go through.
        let mut enc = BatchEncoder::new();
        let old = |v: &'static [u8]| [(crate::stage::table::OLD_VALUE, Some(v))];
        enc.push(30, "r", 0, 8, Some(b"yellow"), None, old(b"yellow"));
        enc.push(31, "r", 0, 9, Some(b"blue"), Some(b"blue"), std::iter::empty());
        enc.push(32, "r", 0, 10, Some(b"blue"), Some(b"blue"), std::iter::empty());
        let events = codec::read_events(enc.as_bytes()).unwrap();
        let step = agg
            .step(&mut Count, &events, "11", Instant::now(), &mut Discard)
            .unwrap();
        assert!(
            matches!(step.rejected.as_slice(), [(0, Rejection::Failed(f))] if f.code == "negative-count"),
            "{:?}",
            step.rejected
        );
        let got: Vec<(String, u64, i64)> = step
            .due
            .into_iter()
            .map(|d| {
                (
                    String::from_utf8(d.key.unwrap()).unwrap(),
                    Count::read(&d.acc.unwrap()).unwrap(),
                    d.timestamp,
                )
            })
            .collect();
        assert_eq!(got, [("blue".to_owned(), 3, 32)], "one result per key and batch");
    }

    #[test]
    fn sliding_updates_go_out_in_kafka_streams_order() {
        // SuppressScenarioTest.shouldSupportFinalResultsForSlidingWindows,
        // its raw output (size 5, grace 15), record by record: a record's
        // existing windows from the latest start down, then the previous
        // record's new right window, its new left window, its new right
        // window (Kafka Streams' processReverse and createWindows); an early
        // record (before `size`) as processEarly forwards them.
        let s = spec(Some((WindowKind::Sliding { size: 5 }, 15)), Emit::Update);
        let ran = run(&s, &k1(&[10, 11, 10, 13, 10, 24, 5, 7, 90]), 1);
        let w = |start: i64| Some((start, start + 6));
        assert_eq!(
            ran.out,
            [
                ("k1".into(), w(5), 1, 10),
                ("k1".into(), w(11), 1, 11),
                ("k1".into(), w(6), 2, 11),
                ("k1".into(), w(6), 3, 11),
                ("k1".into(), w(5), 2, 10),
                ("k1".into(), w(11), 2, 13),
                ("k1".into(), w(12), 1, 13),
                ("k1".into(), w(8), 4, 13),
                ("k1".into(), w(8), 5, 13),
                ("k1".into(), w(6), 4, 11),
                ("k1".into(), w(5), 3, 10),
                ("k1".into(), w(19), 1, 24),
                ("k1".into(), w(5), 4, 10),
                ("k1".into(), w(6), 5, 11),
                ("k1".into(), w(5), 5, 10),
                ("k1".into(), w(85), 1, 90),
            ]
        );
        // processEarly (size 10): records at 1 and 3, then 2: its existing
        // windows, its new right window [3,13], then [0,10].
        let s = spec(Some((WindowKind::Sliding { size: 10 }, 100)), Emit::Update);
        let ran = run(&s, &k1(&[1, 3, 2]), 1);
        let w = |start: i64| Some((start, start + 11));
        assert_eq!(
            ran.out,
            [
                ("k1".into(), w(0), 1, 1),
                ("k1".into(), w(2), 1, 3),
                ("k1".into(), w(0), 2, 3),
                ("k1".into(), w(2), 2, 3),
                ("k1".into(), w(3), 1, 3),
                ("k1".into(), w(0), 3, 3),
            ]
        );
    }

    #[test]
    fn sliding_final_results_as_kafka_streams_suppression() {
        // shouldSupportFinalResultsForSlidingWindows: time difference 5,
        // grace 15; windows are inclusive, stored as [start, end + 1).
        let s = spec(Some((WindowKind::Sliding { size: 5 }, 15)), Emit::Final);
        let ran = run_batched(&s, &k1(&[10, 11, 10, 13, 10, 24, 5, 7, 90]));
        let mut got = ran.out.clone();
        got.sort();
        assert_eq!(
            got,
            [
                ("k1".into(), Some((5, 11)), 5, 10),
                ("k1".into(), Some((6, 12)), 5, 11),
                ("k1".into(), Some((8, 14)), 5, 13),
                ("k1".into(), Some((11, 17)), 2, 13),
                ("k1".into(), Some((12, 18)), 1, 13),
                ("k1".into(), Some((19, 25)), 1, 24)
            ]
        );
        assert!(ran.late.is_empty(), "{:?}", ran.late);
    }

    #[test]
    fn results_never_depend_on_batching() {
        // 300 out-of-order records over 4 keys, at batch sizes 1, 2, 3 and
        // 300, for every kind of window (final) and for updates.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let keys = ["a", "b", "c", "d"];
        let mut t = 0i64;
        let records: Vec<(&str, i64)> = (0..300)
            .map(|_| {
                t += (next() % 7) as i64;
                let jitter = (next() % 45) as i64;
                (keys[(next() % 4) as usize], (t - jitter).max(0))
            })
            .collect();
        for kind in [
            WindowKind::Tumbling { size: 20 },
            WindowKind::Hopping { size: 20, advance: 5 },
            WindowKind::Session { gap: 6 },
            WindowKind::Sliding { size: 10 },
        ] {
            for emit in [Emit::Final, Emit::Update] {
                let ran = run_batched(&spec(Some((kind, 8)), emit), &records);
                assert!(
                    !ran.out.is_empty() && !ran.late.is_empty(),
                    "{kind:?}: a test that proves something"
                );
            }
        }
    }

    #[test]
    fn idle_close_is_a_wall_clock_timer() {
        // Final results of a quiet partition: once it has been quiet for
        // `idle-close`, stream time moves with the wall clock from there.
        let mut s = spec(Some((WindowKind::Tumbling { size: 10 }, 0)), Emit::Final);
        s.idle_close = Some(Duration::from_secs(1));
        let changelog = crate::state::Changelog {
            topic: "t-changelog".into(),
            partition: 0,
        };
        let mut agg = Aggregator::open(s, Store::in_memory(changelog)).unwrap();
        let t0 = Instant::now();
        let mut enc = BatchEncoder::new();
        for (i, ts) in [1, 5].into_iter().enumerate() {
            enc.push(ts, "in", 0, i as i64, Some(b"a"), Some(b"v"), std::iter::empty());
        }
        let events = codec::read_events(enc.as_bytes()).unwrap();
        let step = agg.step(&mut Count, &events, "2", t0, &mut Discard).unwrap();
        assert!(step.due.is_empty());
        assert_eq!(
            agg.idle_due(t0 + Duration::from_millis(500)),
            None,
            "not quiet long enough"
        );
        assert_eq!(
            agg.idle_due(t0 + Duration::from_millis(1004)),
            None,
            "stream time 9: [0, 10) still open"
        );
        let st = agg
            .idle_due(t0 + Duration::from_millis(1005))
            .expect("stream time 10 closes [0, 10)");
        assert_eq!(st, 10);
        let step = agg
            .idle_close(&mut Count, t0 + Duration::from_millis(1005), st, "2", &mut Discard)
            .unwrap();
        let due: Vec<_> = step
            .due
            .iter()
            .map(|d| (d.window, d.acc.as_deref().and_then(Count::read), d.timestamp))
            .collect();
        assert_eq!(due, [(Some(Window { start: 0, end: 10 }), Some(2), 5)]);
        assert_eq!(agg.open_windows(), 0);
    }

    #[test]
    fn update_sends_a_tombstone_for_a_session_a_merge_deletes() {
        // Kafka Streams' raw stream of shouldSupportFinalResultsForSessionWindows
        // (gap 5): [0,0] 1; then 5 merges it: null for [0,0], [0,5] 2; then
        // 1 joins [0,5]: null for [0,5], [0,5] 3 (written [0, 6) here) — a
        // merge deletes what it merges, even when the bounds stay.
        let s = spec(Some((WindowKind::Session { gap: 5 }, 0)), Emit::Update);
        let ran = run(
            &s,
            &[("k1", 0), ("k1", 5), ("k1", 1), ("k2", 11), ("k1", 5), ("k1", 30)],
            1,
        );
        assert_eq!(
            ran.out,
            [
                ("k1".into(), Some((0, 1)), 1, 0),
                ("k1".into(), Some((0, 1)), 0, 0),
                ("k1".into(), Some((0, 6)), 2, 5),
                ("k1".into(), Some((0, 6)), 0, 5),
                ("k1".into(), Some((0, 6)), 3, 5),
                ("k2".into(), Some((11, 12)), 1, 11),
                ("k1".into(), Some((30, 31)), 1, 30)
            ]
        );
        // shouldUpdateSessionIfTheSameTime: a record at the time of a
        // single-point session updates it in place (no tombstone).
        let ran = run(&s, &[("mel", 0), ("mel", 0)], 1);
        assert_eq!(
            ran.out,
            [("mel".into(), Some((0, 1)), 1, 0), ("mel".into(), Some((0, 1)), 2, 0)]
        );
        // Merged within one batch, [0,0] was never shown: no tombstone.
        let ran = run(&s, &[("k1", 0), ("k1", 5)], 2);
        assert_eq!(ran.out, [("k1".into(), Some((0, 6)), 2, 5)]);
    }

    #[test]
    fn a_closed_session_is_not_merged_within_a_batch() {
        // Gap 5, grace 0: [0] closes at stream time 5 (k2's record), so k1@5
        // starts a new session, whether the three records come one by one
        // or together.
        let s = spec(Some((WindowKind::Session { gap: 5 }, 0)), Emit::Final);
        let ran = run_batched(&s, &[("k1", 0), ("k2", 5), ("k1", 5), ("k3", 100)]);
        assert_eq!(
            ran.out,
            [
                ("k1".into(), Some((0, 1)), 1, 0),
                ("k1".into(), Some((5, 6)), 1, 5),
                ("k2".into(), Some((5, 6)), 1, 5)
            ]
        );
    }

    /// [`Count`], refusing the events whose value is `bad` (a guest's typed
    /// failure).
    struct Picky;

    impl Fold for Picky {
        fn version_label(&self) -> String {
            "picky@0".to_owned()
        }

        fn add(&mut self, groups: Vec<Group>) -> Result<Vec<Folded>, GuestError> {
            Ok(groups
                .into_iter()
                .map(|g| {
                    let events = codec::read_events(&g.events).unwrap();
                    let bad: Vec<u32> = (0..events.len() as u32)
                        .filter(|&j| events[j as usize].value == Some(&b"bad"[..]))
                        .collect();
                    let before = g.acc.as_deref().map_or(0, |a| Count::read(a).unwrap());
                    Folded {
                        acc: (before + events.len() as u64 - bad.len() as u64).to_le_bytes().to_vec(),
                        failures: bad.into_iter().map(|j| (j, Failure::new("bad", "refused"))).collect(),
                    }
                })
                .collect())
        }

        fn merge(&mut self, key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Result<Vec<u8>, Failure>, GuestError> {
            Count.merge(key, a, b)
        }
    }

    /// Windows that a restore brings back (written behind the task, with no
    /// timers) close on time, like the windows the task opened itself.
    #[test]
    fn windows_restored_from_the_changelog_close_on_time() {
        let changelog = Changelog {
            topic: "t-changelog".into(),
            partition: 0,
        };
        let s = spec(Some((WindowKind::Tumbling { size: 10 }, 100)), Emit::Final);
        let batch = |records: &[(&str, i64)], first: i64| {
            let mut enc = BatchEncoder::new();
            for (i, (key, ts)) in records.iter().enumerate() {
                enc.push(
                    *ts,
                    "in",
                    0,
                    first + i as i64,
                    Some(key.as_bytes()),
                    Some(b"v"),
                    std::iter::empty(),
                );
            }
            enc
        };
        // The first life: 300 keys, each in windows [0, 10) and [10, 20).
        let mut first = Aggregator::open(s.clone(), Store::in_memory(changelog.clone())).unwrap();
        let keys: Vec<String> = (0..300).map(|k| format!("k{k:03}")).collect();
        let records: Vec<(&str, i64)> = keys.iter().flat_map(|k| [(k.as_str(), 1), (k.as_str(), 11)]).collect();
        let enc = batch(&records, 0);
        let mut log = crate::stage::collector::MemorySink::default();
        let step = first
            .step(
                &mut Count,
                &codec::read_events(enc.as_bytes()).unwrap(),
                "600",
                Instant::now(),
                &mut log,
            )
            .unwrap();
        assert!(step.due.is_empty(), "a grace of 100 closes nothing yet: {:?}", step.due);
        first.commit(None).unwrap();
        assert_eq!(first.open_windows(), 600);
        // The next life's store already has one window of its own, then the
        // restore writes the changelog into it.
        let store = Store::in_memory(changelog);
        let mut next = Aggregator::open(s, store).unwrap();
        let enc = batch(&[("zzz", 12)], 600);
        next.step(
            &mut Count,
            &codec::read_events(enc.as_bytes()).unwrap(),
            "601",
            Instant::now(),
            &mut Discard,
        )
        .unwrap();
        next.commit(None).unwrap();
        let writes: Vec<crate::state::Write> = log
            .records
            .iter()
            .filter(|r| r.topic == "t-changelog")
            .map(|r| (r.key.clone().unwrap(), r.value.clone()))
            .collect();
        assert_eq!(
            writes.len(),
            1202,
            "600 accumulators, their 600 stamps, stream time and format"
        );
        next.store().apply(writes, Some(1)).unwrap();
        next.reload().unwrap();
        assert_eq!(next.open_windows(), 601, "600 restored, one of its own");
        // Stream time 200 closes every window.
        let enc = batch(&[("zzz", 200)], 601);
        let step = next
            .step(
                &mut Count,
                &codec::read_events(enc.as_bytes()).unwrap(),
                "602",
                Instant::now(),
                &mut Discard,
            )
            .unwrap();
        let mut closed: Vec<(String, i64, Option<u64>)> = step
            .due
            .iter()
            .map(|d| {
                let key = String::from_utf8(d.key.clone().unwrap()).unwrap();
                (key, d.window.unwrap().start, d.acc.as_deref().and_then(Count::read))
            })
            .collect();
        closed.sort();
        let mut want: Vec<(String, i64, Option<u64>)> = keys
            .iter()
            .flat_map(|k| [(k.clone(), 0, Some(1)), (k.clone(), 10, Some(1))])
            .collect();
        want.push(("zzz".into(), 10, Some(1)));
        want.sort();
        assert_eq!(closed, want);
        assert_eq!(next.open_windows(), 1, "[200, 210) of zzz");
    }

    #[test]
    fn a_refused_event_does_not_stamp_the_result() {
        let changelog = crate::state::Changelog {
            topic: "t-changelog".into(),
            partition: 0,
        };
        for kind in [WindowKind::Tumbling { size: 10 }, WindowKind::Sliding { size: 10 }] {
            let s = spec(Some((kind, 100)), Emit::Update);
            let mut agg = Aggregator::open(s, Store::in_memory(changelog.clone())).unwrap();
            let mut enc = BatchEncoder::new();
            for (i, (ts, value)) in [(1, &b"ok"[..]), (5, &b"bad"[..])].into_iter().enumerate() {
                enc.push(ts, "in", 0, i as i64, Some(b"a"), Some(value), std::iter::empty());
            }
            let events = codec::read_events(enc.as_bytes()).unwrap();
            let step = agg
                .step(&mut Picky, &events, "2", Instant::now(), &mut Discard)
                .unwrap();
            assert!(
                step.rejected
                    .iter()
                    .all(|(i, why)| *i == 1 && matches!(why, Rejection::Failed(_))),
                "{kind:?}: {:?}",
                step.rejected
            );
            let due: Vec<_> = step
                .due
                .iter()
                .map(|d| (d.window, d.acc.as_deref().and_then(Count::read), d.timestamp))
                .collect();
            assert!(!due.is_empty(), "{kind:?}");
            assert!(
                due.iter().all(|(_, n, ts)| *n == Some(1) && *ts == 1),
                "{kind:?}: only the event at 1 went in: {due:?}"
            );
        }
    }

    /// Kafka Streams' string aggregation in its window tests:
    /// `MockInitializer.STRING_INIT` ("0"), `MockAggregator.TOSTRING_ADDER`
    /// (`agg + "+" + value`) and SessionWindowedKStreamImplTest's merger
    /// (`a + "+" + b`). The order of the folds shows in the result, and the
    /// initial value is not neutral for the merge.
    struct Concat;

    impl Fold for Concat {
        fn version_label(&self) -> String {
            "concat@0".to_owned()
        }

        fn add(&mut self, groups: Vec<Group>) -> Result<Vec<Folded>, GuestError> {
            Ok(groups
                .into_iter()
                .map(|g| {
                    let mut acc = g.acc.unwrap_or_else(|| b"0".to_vec());
                    for e in codec::read_events(&g.events).unwrap() {
                        acc.push(b'+');
                        acc.extend_from_slice(e.value.unwrap_or_default());
                    }
                    Folded {
                        acc,
                        failures: Vec::new(),
                    }
                })
                .collect())
        }

        fn merge(&mut self, _key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Result<Vec<u8>, Failure>, GuestError> {
            Ok(Ok([a, b"+", b].concat()))
        }
    }

    /// [`Concat`] over `records` (key, value, timestamp) at batch sizes 1, 2, 3
    /// and all at once (see [`same_at_any_batch_size`]); the run at batch
    /// size 1. A tombstone reads as `None`.
    fn concat(spec: &Aggregation, records: &[(&str, &str, i64)]) -> Ran<Option<String>> {
        same_at_any_batch_size(spec, records.len(), |batch| {
            drive(spec, &mut Concat, records, batch, |acc| {
                acc.map(|a| String::from_utf8(a.to_vec()).unwrap())
            })
        })
    }

    /// Kafka Streams' `gatherOutput` of KStreamSlidingWindowAggregateTest:
    /// the (value, timestamp) results of each window start, as a set. Weir
    /// must not emit any of them twice (Kafka Streams emits a window only
    /// when a record changes it, which a string always shows).
    fn by_start(out: &[Out<Option<String>>]) -> std::collections::BTreeMap<i64, BTreeSet<(String, i64)>> {
        let mut got: std::collections::BTreeMap<i64, BTreeSet<(String, i64)>> = Default::default();
        for (_, window, value, ts) in out {
            let (start, value) = (window.unwrap().0, value.clone().unwrap());
            assert!(
                got.entry(start).or_default().insert((value.clone(), *ts)),
                "[{start}, ..] {value} at {ts} emitted twice: {out:?}"
            );
        }
        got
    }

    /// Expected results by window start, as Kafka Streams' tests write them.
    fn starts(want: &[(i64, &[(&str, i64)])]) -> std::collections::BTreeMap<i64, BTreeSet<(String, i64)>> {
        want.iter()
            .map(|(start, results)| (*start, results.iter().map(|(v, ts)| ((*v).to_owned(), *ts)).collect()))
            .collect()
    }

    /// Results sorted by key and window start (a stable sort: a window's
    /// results stay in the order they came), with Kafka Streams' inclusive
    /// window end, as KStreamSlidingWindowAggregateTest compares them.
    fn sorted(out: &[Out<Option<String>>]) -> Vec<(String, i64, i64, String, i64)> {
        let mut got: Vec<(String, i64, i64, String, i64)> = out
            .iter()
            .map(|(key, window, value, ts)| {
                let (start, end) = window.unwrap();
                (key.clone(), start, end - 1, value.clone().unwrap(), *ts)
            })
            .collect();
        got.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        got
    }

    fn listed(want: &[(&str, i64, i64, &str, i64)]) -> Vec<(String, i64, i64, String, i64)> {
        want.iter()
            .map(|(k, s, e, v, ts)| ((*k).to_owned(), *s, *e, (*v).to_owned(), *ts))
            .collect()
    }

    /// `(key, value, time)` records of one key, values "1", "2", … in order.
    fn numbered<'a>(key: &'a str, times: &[i64], values: &'a [&'a str]) -> Vec<(&'a str, &'a str, i64)> {
        times.iter().zip(values).map(|(t, v)| (key, *v, *t)).collect()
    }

    const DIGITS: [&str; 9] = ["1", "2", "3", "4", "5", "6", "7", "8", "9"];

    #[test]
    fn sliding_folds_in_arrival_order_and_emits_only_what_changed() {
        // KStreamSlidingWindowAggregateTest.testAggregateSmallInput: time
        // difference 10, grace 5.
        let records = numbered("A", &[10, 10, 14, 15, 20, 22, 30], &DIGITS);
        let kind = WindowKind::Sliding { size: 10 };
        let ran = concat(&spec(Some((kind, 5)), Emit::Update), &records);
        assert_eq!(
            by_start(&ran.out),
            starts(&[
                (0, &[("0+1", 10), ("0+1+2", 10)]),
                (4, &[("0+1+2+3", 14)]),
                (5, &[("0+1+2+3+4", 15)]),
                (10, &[("0+1+2+3+4+5", 20)]),
                (11, &[("0+3", 14), ("0+3+4", 15), ("0+3+4+5", 20)]),
                (12, &[("0+3+4+5+6", 22)]),
                (15, &[("0+4", 15), ("0+4+5", 20), ("0+4+5+6", 22)]),
                (16, &[("0+5", 20), ("0+5+6", 22)]),
                (20, &[("0+5+6+7", 30)]),
                (21, &[("0+6", 22), ("0+6+7", 30)]),
                (23, &[("0+7", 30)]),
            ])
        );
        let ran = concat(&spec(Some((kind, 5)), Emit::Final), &records);
        assert_eq!(
            by_start(&ran.out),
            starts(&[
                (0, &[("0+1+2", 10)]),
                (4, &[("0+1+2+3", 14)]),
                (5, &[("0+1+2+3+4", 15)]),
                (10, &[("0+1+2+3+4+5", 20)]),
                (11, &[("0+3+4+5", 20)]),
                (12, &[("0+3+4+5+6", 22)]),
            ])
        );
    }

    #[test]
    fn sliding_records_earlier_than_the_size_share_the_first_window() {
        // testEarlyRecordsSmallInput: time difference 50, grace 0. Records
        // before 50 go to [0, 50] (Kafka Streams' processEarly), not to
        // windows that start before 0.
        let records = numbered("A", &[0, 5, 6, 3, 13, 10, 70], &DIGITS);
        let kind = WindowKind::Sliding { size: 50 };
        let ran = concat(&spec(Some((kind, 0)), Emit::Update), &records);
        let all_final: &[(i64, &[(&str, i64)])] = &[
            (0, &[("0+1+2+3+4+5+6", 13)]),
            (1, &[("0+2+3+4+5+6", 13)]),
            (4, &[("0+2+3+5+6", 13)]),
            (6, &[("0+3+5+6", 13)]),
            (7, &[("0+5+6", 13)]),
            (11, &[("0+5", 13)]),
        ];
        assert_eq!(
            by_start(&ran.out),
            starts(&[
                (
                    0,
                    &[
                        ("0+1", 0),
                        ("0+1+2", 5),
                        ("0+1+2+3", 6),
                        ("0+1+2+3+4", 6),
                        ("0+1+2+3+4+5", 13),
                        ("0+1+2+3+4+5+6", 13)
                    ]
                ),
                (
                    1,
                    &[
                        ("0+2", 5),
                        ("0+2+3", 6),
                        ("0+2+3+4", 6),
                        ("0+2+3+4+5", 13),
                        ("0+2+3+4+5+6", 13)
                    ]
                ),
                (4, &[("0+2+3", 6), ("0+2+3+5", 13), ("0+2+3+5+6", 13)]),
                (6, &[("0+3", 6), ("0+3+5", 13), ("0+3+5+6", 13)]),
                (7, &[("0+5", 13), ("0+5+6", 13)]),
                (11, &[("0+5", 13)]),
                (20, &[("0+7", 70)]),
            ])
        );
        let ran = concat(&spec(Some((kind, 0)), Emit::Final), &records);
        assert_eq!(by_start(&ran.out), starts(all_final));

        // testEarlyRecordsRepeatedInput: time difference 5, grace 0.
        let records = numbered("A", &[0, 2, 4, 0, 2, 2, 0, 7], &DIGITS);
        let kind = WindowKind::Sliding { size: 5 };
        let ran = concat(&spec(Some((kind, 0)), Emit::Update), &records);
        assert_eq!(
            by_start(&ran.out),
            starts(&[
                (
                    0,
                    &[
                        ("0+1", 0),
                        ("0+1+2", 2),
                        ("0+1+2+3", 4),
                        ("0+1+2+3+4", 4),
                        ("0+1+2+3+4+5", 4),
                        ("0+1+2+3+4+5+6", 4),
                        ("0+1+2+3+4+5+6+7", 4)
                    ]
                ),
                (1, &[("0+2", 2), ("0+2+3", 4), ("0+2+3+5", 4), ("0+2+3+5+6", 4)]),
                (2, &[("0+2+3+5+6+8", 7)]),
                (3, &[("0+3", 4), ("0+3+8", 7)]),
                (5, &[("0+8", 7)]),
            ])
        );
        let ran = concat(&spec(Some((kind, 0)), Emit::Final), &records);
        assert_eq!(
            by_start(&ran.out),
            starts(&[(0, &[("0+1+2+3+4+5+6+7", 4)]), (1, &[("0+2+3+5+6", 4)])])
        );
    }

    #[test]
    fn sliding_early_records_large_input_as_kafka_streams() {
        // testEarlyRecordsLargeInput: time difference 10; grace 50 for
        // updates, 1 for final results.
        let records = numbered(
            "E",
            &[0, 5, 6, 3, 13, 10, 4, 2, 15],
            &["1", "3", "4", "2", "6", "5", "7", "8", "9"],
        );
        let kind = WindowKind::Sliding { size: 10 };
        let ran = concat(&spec(Some((kind, 50)), Emit::Update), &records);
        assert_eq!(
            sorted(&ran.out),
            listed(&[
                ("E", 0, 10, "0+1", 0),
                ("E", 0, 10, "0+1+3", 5),
                ("E", 0, 10, "0+1+3+4", 6),
                ("E", 0, 10, "0+1+3+4+2", 6),
                ("E", 0, 10, "0+1+3+4+2+5", 10),
                ("E", 0, 10, "0+1+3+4+2+5+7", 10),
                ("E", 0, 10, "0+1+3+4+2+5+7+8", 10),
                ("E", 1, 11, "0+3", 5),
                ("E", 1, 11, "0+3+4", 6),
                ("E", 1, 11, "0+3+4+2", 6),
                ("E", 1, 11, "0+3+4+2+5", 10),
                ("E", 1, 11, "0+3+4+2+5+7", 10),
                ("E", 1, 11, "0+3+4+2+5+7+8", 10),
                ("E", 3, 13, "0+3+4+2+6", 13),
                ("E", 3, 13, "0+3+4+2+6+5", 13),
                ("E", 3, 13, "0+3+4+2+6+5+7", 13),
                ("E", 4, 14, "0+3+4", 6),
                ("E", 4, 14, "0+3+4+6", 13),
                ("E", 4, 14, "0+3+4+6+5", 13),
                ("E", 4, 14, "0+3+4+6+5+7", 13),
                ("E", 5, 15, "0+3+4+6+5", 13),
                ("E", 5, 15, "0+3+4+6+5+9", 15),
                ("E", 6, 16, "0+4", 6),
                ("E", 6, 16, "0+4+6", 13),
                ("E", 6, 16, "0+4+6+5", 13),
                ("E", 6, 16, "0+4+6+5+9", 15),
                ("E", 7, 17, "0+6", 13),
                ("E", 7, 17, "0+6+5", 13),
                ("E", 7, 17, "0+6+5+9", 15),
                ("E", 11, 21, "0+6", 13),
                ("E", 11, 21, "0+6+9", 15),
                ("E", 14, 24, "0+9", 15),
            ])
        );
        let ran = concat(&spec(Some((kind, 1)), Emit::Final), &records);
        assert_eq!(
            sorted(&ran.out),
            listed(&[
                ("E", 0, 10, "0+1+3+4+2", 6),
                ("E", 1, 11, "0+3+4+2", 6),
                ("E", 3, 13, "0+3+4+2+6+5+7", 13),
            ])
        );
        // E@2 came when every window it belongs to had closed: late.
        assert_eq!(ran.late, [("E".to_owned(), 2)]);
    }

    #[test]
    fn sliding_large_input_as_kafka_streams() {
        // testAggregateLargeInput: time difference 10; grace 50 for updates,
        // 10 for final results (where records whose windows have all closed
        // are dropped and leave no trace in windows made later).
        let mut records = numbered("A", &[10, 20, 22, 15], &DIGITS);
        records.extend(numbered("B", &[12, 13, 18, 19, 25, 14], &DIGITS));
        records.extend(numbered("C", &[11, 15, 16, 21, 23], &DIGITS));
        records.extend(numbered("D", &[11, 12, 29, 16], &["4", "2", "3", "5"]));
        let kind = WindowKind::Sliding { size: 10 };
        let ran = concat(&spec(Some((kind, 50)), Emit::Update), &records);
        assert_eq!(
            sorted(&ran.out),
            listed(&[
                ("A", 0, 10, "0+1", 10),
                ("A", 5, 15, "0+1+4", 15),
                ("A", 10, 20, "0+1+2", 20),
                ("A", 10, 20, "0+1+2+4", 20),
                ("A", 11, 21, "0+2", 20),
                ("A", 11, 21, "0+2+4", 20),
                ("A", 12, 22, "0+2+3", 22),
                ("A", 12, 22, "0+2+3+4", 22),
                ("A", 16, 26, "0+2+3", 22),
                ("A", 21, 31, "0+3", 22),
                ("B", 2, 12, "0+1", 12),
                ("B", 3, 13, "0+1+2", 13),
                ("B", 4, 14, "0+1+2+6", 14),
                ("B", 8, 18, "0+1+2+3", 18),
                ("B", 8, 18, "0+1+2+3+6", 18),
                ("B", 9, 19, "0+1+2+3+4", 19),
                ("B", 9, 19, "0+1+2+3+4+6", 19),
                ("B", 13, 23, "0+2", 13),
                ("B", 13, 23, "0+2+3", 18),
                ("B", 13, 23, "0+2+3+4", 19),
                ("B", 13, 23, "0+2+3+4+6", 19),
                ("B", 14, 24, "0+3", 18),
                ("B", 14, 24, "0+3+4", 19),
                ("B", 14, 24, "0+3+4+6", 19),
                ("B", 15, 25, "0+3+4+5", 25),
                ("B", 19, 29, "0+4", 19),
                ("B", 19, 29, "0+4+5", 25),
                ("B", 20, 30, "0+5", 25),
                ("C", 1, 11, "0+1", 11),
                ("C", 5, 15, "0+1+2", 15),
                ("C", 6, 16, "0+1+2+3", 16),
                ("C", 11, 21, "0+1+2+3+4", 21),
                ("C", 12, 22, "0+2", 15),
                ("C", 12, 22, "0+2+3", 16),
                ("C", 12, 22, "0+2+3+4", 21),
                ("C", 13, 23, "0+2+3+4+5", 23),
                ("C", 16, 26, "0+3", 16),
                ("C", 16, 26, "0+3+4", 21),
                ("C", 16, 26, "0+3+4+5", 23),
                ("C", 17, 27, "0+4", 21),
                ("C", 17, 27, "0+4+5", 23),
                ("C", 22, 32, "0+5", 23),
                ("D", 1, 11, "0+4", 11),
                ("D", 2, 12, "0+4+2", 12),
                ("D", 6, 16, "0+4+2+5", 16),
                ("D", 12, 22, "0+2", 12),
                ("D", 12, 22, "0+2+5", 16),
                ("D", 13, 23, "0+5", 16),
                ("D", 19, 29, "0+3", 29),
            ])
        );
        let ran = concat(&spec(Some((kind, 10)), Emit::Final), &records);
        assert_eq!(
            sorted(&ran.out),
            listed(&[
                ("A", 0, 10, "0+1", 10),
                ("A", 5, 15, "0+1+4", 15),
                ("B", 2, 12, "0+1", 12),
                ("B", 3, 13, "0+1+2", 13),
                ("B", 8, 18, "0+1+2+3+6", 18),
                ("C", 5, 15, "0+2", 15),
                ("C", 6, 16, "0+2+3", 16),
            ])
        );
        assert_eq!(
            ran.late,
            [
                ("C".to_owned(), 11),
                ("D".to_owned(), 11),
                ("D".to_owned(), 12),
                ("D".to_owned(), 16)
            ]
        );
    }

    #[test]
    fn sessions_merge_from_the_initial_value_as_kafka_streams() {
        // SessionWindowedKStreamImplTest.shouldAggregateSessionWindowed: gap
        // 500, grace 0. A merge starts from the initial value and merges
        // every session the record joins into it, then adds the record:
        // "0+0+1+2", not "0+1+2". Sessions are written [start, last + 1).
        let records = [
            ("1", "1", 10),
            ("1", "2", 15),
            ("1", "3", 600),
            ("2", "1", 600),
            ("2", "2", 599),
        ];
        let kind = WindowKind::Session { gap: 500 };
        let s = spec(Some((kind, 0)), Emit::Update);
        let ran = drive(&s, &mut Concat, &records, 1, |acc| {
            acc.map(|a| String::from_utf8(a.to_vec()).unwrap())
        });
        let some = |v: &str| Some(v.to_owned());
        assert_eq!(
            ran.out,
            [
                ("1".into(), Some((10, 11)), some("0+1"), 10),
                ("1".into(), Some((10, 11)), None, 10),
                ("1".into(), Some((10, 16)), some("0+0+1+2"), 15),
                ("1".into(), Some((600, 601)), some("0+3"), 600),
                ("2".into(), Some((600, 601)), some("0+1"), 600),
                ("2".into(), Some((600, 601)), None, 600),
                ("2".into(), Some((599, 601)), some("0+0+1+2"), 600)
            ]
        );
        concat(&s, &records);
        let ran = concat(&spec(Some((kind, 0)), Emit::Final), &records);
        assert_eq!(ran.out, [("1".into(), Some((10, 16)), some("0+0+1+2"), 15)]);
        // A record bridging two sessions merges both, oldest first, into
        // the initial value.
        let s = spec(Some((WindowKind::Session { gap: 10 }, 100)), Emit::Final);
        let ran = concat(&s, &[("a", "1", 0), ("a", "2", 20), ("a", "3", 10), ("b", "x", 500)]);
        assert_eq!(ran.out, [("a".into(), Some((0, 21)), some("0+0+1+0+2+3"), 20)]);
    }

    #[test]
    fn session_lateness_counts_gap_and_grace_as_kafka_streams() {
        // KStreamSessionWindowAggregateProcessorTest
        // .shouldLogAndMeterWhenSkippingLateRecordWithZeroGrace: gap 10,
        // grace 0; stream time 11 makes a record at 0 late.
        let s = spec(Some((WindowKind::Session { gap: 10 }, 0)), Emit::Update);
        let ran = run_batched(&s, &[("dummy", 0), ("OnTime1", 0), ("dummy", 11), ("Late1", 0)]);
        assert_eq!(ran.late, [("Late1".to_owned(), 0)]);
        // ...WithNonzeroGrace: grace 1; at stream time 11 a record at 0 is
        // still on time, at 12 it is late.
        let s = spec(Some((WindowKind::Session { gap: 10 }, 1)), Emit::Update);
        let records = [
            ("dummy", 0),
            ("OnTime1", 0),
            ("dummy", 11),
            ("OnTime2", 0),
            ("dummy", 12),
            ("Late1", 0),
        ];
        let ran = run_batched(&s, &records);
        assert_eq!(ran.late, [("Late1".to_owned(), 0)]);
        assert!(
            ran.out.contains(&("OnTime2".into(), Some((0, 1)), 1, 0)),
            "{:?}",
            ran.out
        );
    }
}
