//! The windowed stream-stream join, as Kafka Streams'
//! `KStream#join/leftJoin/outerJoin(KStream, JoinWindows)` (its
//! `KStreamKStreamJoin`, with the spurious-results fix of a join window
//! with grace):
//!
//! - A left record at `t` joins every right record of its key at
//!   `t - before ..= t + after` (both ends inclusive) that the right side
//!   still keeps, whichever comes first; each pair once, when its second
//!   record arrives. The result's timestamp is the larger of the two.
//! - Each side keeps its records for `before + after + grace` past their
//!   timestamp, by that side's own stream time (the largest timestamp of
//!   its records), as Kafka Streams' two window stores do; a record that a
//!   side no longer keeps joins nothing. A record that arrives after its
//!   own window closed is not dropped: it still joins what the other side
//!   keeps.
//! - `left` and `outer`: a left record (and for `outer` a right one) that
//!   has found no partner goes out with an absent other side once its
//!   window has closed — stream time past `t + after + grace` for a left
//!   one, `t + before + grace` for a right one — never if a partner came
//!   first; or at once if it arrives with its window's end (`t + after`,
//!   `t + before`) already behind stream time. Its timestamp is its own.
//!   Those that close together go out before the joins of the record that
//!   closed them, in Kafka Streams' order: by timestamp, then right before
//!   left, then key. `idle-close` also emits them after the task has been
//!   quiet that long on the wall clock.
//! - A record without a value is dropped (counted); one without a key is
//!   dropped too, except on a side that emits unmatched records, where it
//!   goes out at once with an absent other side (KIP-962).
//!
//! Stream time is the largest timestamp the stage has seen on either side,
//! records that cannot join included. Records, their "found a partner"
//! mark and the stream times are in the store, changelogged like every
//! store change, so emission is exactly-once across crashes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::{BatchEncoder, EventRef};
use crate::pipeline::{Join, JoinKind, JoinShape, JoinWindow, StageInput, StageKind};
use crate::runtime::{GuestError, LoadedModule, Runtime};
use crate::stage::changelog::write_logged;
use crate::stage::collector::Collector;
use crate::stage::join::{Joiner, with_keys};
use crate::stage::open::{OpenError, Opening};
use crate::stage::{GuestStage, Input, Stage, StageError};
use crate::state::keys::{self, Entry};
use crate::state::{Changelog, StateError, Store, Timers};

const LEFT: u8 = 0;
const RIGHT: u8 = 1;
/// Flag of a kept record: it has found a partner, or was emitted unmatched.
const DONE: u8 = 1;

/// The timer queue of records waiting to go out unmatched (when their
/// window closes), and of each side's kept records' deletion (past
/// retention, by that side's stream time). Queue 1 held both sides'
/// deletions before the sides kept time apart; it is emptied at open.
const PENDING: u8 = 0;
const LEGACY_EXPIRY: u8 = 1;
const EXPIRY: [u8; 2] = [2, 3];

/// Meta entries: each side's stream time.
const SIDE_TIME: [&str; 2] = ["stream-time-left", "stream-time-right"];

/// How many of the other side's kept records one read takes.
const PARTNER_PAGE: usize = 64;

/// How many timers fire at a time.
const FIRE_PAGE: usize = 1024;

/// A windowed stream-stream join in one task.
pub struct WindowJoinStage {
    joiner: Joiner,
    kind: JoinKind,
    window: JoinWindow,
    /// The input topic of each side.
    topics: [String; 2],
    idle_close: Option<Duration>,
    store: Store,
    /// The largest timestamp seen (`i64::MIN`: none yet).
    stream_time: i64,
    /// The largest timestamp of each side's records (what its records are
    /// kept by).
    side_time: [i64; 2],
    /// Records of a side that emits unmatched ones and have no partner yet,
    /// by when their window closes (timers in the store).
    pending: Timers,
    /// Each side's kept records, by when they may be deleted.
    expiry: [Timers; 2],
    /// The wall clock of the last input (`idle-close`).
    last_input: Option<Instant>,
    /// The task's input position for this batch's changelog records.
    position: String,
}

/// Whether a `kind` join emits unmatched records of `side`.
fn emits(kind: JoinKind, side: u8) -> bool {
    match kind {
        JoinKind::Inner => false,
        JoinKind::Left => side == LEFT,
        JoinKind::Outer => true,
    }
}

/// When the window of a record of `side` at `ts` closes.
fn closes_at(window: JoinWindow, side: u8, ts: i64) -> i64 {
    let reach = if side == LEFT { window.after } else { window.before };
    ts.saturating_add(reach).saturating_add(window.grace)
}

/// Where an unmatched record goes among those that go out together: Kafka
/// Streams' outer store order (`TimestampedKeyAndJoinSide`: timestamp, then
/// the side byte, right 0 before left 1, then the key), then arrival.
fn outer_order(side: u8, key: Option<Vec<u8>>, ts: i64, offset: i64) -> (i64, bool, Option<Vec<u8>>, i64) {
    (ts, side == LEFT, key, offset)
}

/// Whether an unmatched record of `side` at `ts` goes out as it arrives:
/// its window's end (not counting grace) is already behind stream time,
/// so no partner can come in order (Kafka Streams' `timeTo < streamTime`).
fn out_at_once(window: JoinWindow, side: u8, ts: i64, stream_time: i64) -> bool {
    let reach = if side == LEFT { window.after } else { window.before };
    ts.saturating_add(reach) < stream_time
}

/// The oldest timestamp a side still keeps, by its own stream time (Kafka
/// Streams' window store: `observedStreamTime - retentionPeriod + 1`).
fn kept_from(window: JoinWindow, side_time: i64) -> i64 {
    side_time.saturating_sub(window.retention()).saturating_add(1)
}

/// A kept record's side, key and time, from its key in `store`.
fn joined(store: &Store, k: &[u8]) -> Result<(u8, Option<Vec<u8>>, i64), StateError> {
    match keys::decode(k) {
        Some(Entry::Joined(side, key, ts, _)) => Ok((side, key, ts)),
        _ => Err(store.corrupt(k, "a key that is not a join record's")),
    }
}

/// The pair of a record of `side` with an absent other side.
fn unjoined(side: u8, value: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    if side == LEFT {
        (Some(value), None)
    } else {
        (None, Some(value))
    }
}

/// A kept record as stored: its flags, then its value.
fn encode(flags: u8, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + value.len());
    v.push(flags);
    v.extend_from_slice(value);
    v
}

impl WindowJoinStage {
    /// The stream-stream join [`Opening`] describes, both sides' records in
    /// the store it declared.
    pub fn open(mut o: Opening<'_>) -> Result<Box<dyn Stage>, OpenError> {
        let def = o.def();
        let bad = |detail: String| OpenError::Store {
            stage: def.name.clone(),
            detail,
        };
        let (kind, window, idle_close) = match &def.kind {
            StageKind::Join(Join {
                kind,
                shape: JoinShape::StreamStream { window },
                idle_close,
                ..
            }) => (*kind, *window, *idle_close),
            _ => return Err(bad("a stream-stream join of another shape".into())),
        };
        let topics = match def.inputs.as_slice() {
            [StageInput::Topic(l), StageInput::Topic(r)] => [l.clone(), r.clone()],
            other => return Err(bad(format!("a stream-stream join of {other:?}, not of two topics"))),
        };
        let store = o.take_store()?;
        Ok(Box::new(WindowJoinStage::new(
            o.runtime,
            o.module()?,
            o.config(),
            kind,
            window,
            topics,
            idle_close,
            store,
        )?))
    }

    /// A `kind` join of the records of `topics` (left, right) within
    /// `window`, combined by `module`, its records kept in `store`.
    #[expect(clippy::too_many_arguments, reason = "the join's settings, each one")]
    pub fn new(
        runtime: &Runtime,
        module: Arc<LoadedModule>,
        config: BTreeMap<String, String>,
        kind: JoinKind,
        window: JoinWindow,
        topics: [String; 2],
        idle_close: Option<Duration>,
        store: Store,
    ) -> Result<WindowJoinStage, StateError> {
        let mut stage = WindowJoinStage {
            joiner: Joiner::new(runtime, module, config),
            kind,
            window,
            topics,
            idle_close,
            store,
            stream_time: i64::MIN,
            side_time: [i64::MIN; 2],
            pending: Timers::new(PENDING),
            expiry: [Timers::new(EXPIRY[0]), Timers::new(EXPIRY[1])],
            last_input: None,
            position: String::new(),
        };
        stage.reload()?;
        Ok(stage)
    }

    /// Re-reads the committed store: stream time, the kept records and
    /// which of them still wait for their window to close.
    fn reload(&mut self) -> Result<(), StateError> {
        self.store.discard();
        let time = |store: &Store, name: &str| -> Result<i64, StateError> {
            match store.get(&keys::meta(name))? {
                Some(b) => Ok(i64::from_le_bytes(b.as_slice().try_into().map_err(|_| {
                    store.corrupt(&keys::meta(name), "a stream time that is not 8 bytes")
                })?)),
                None => Ok(i64::MIN),
            }
        };
        self.stream_time = time(&self.store, keys::STREAM_TIME)?;
        for side in [LEFT, RIGHT] {
            self.side_time[usize::from(side)] = time(&self.store, SIDE_TIME[usize::from(side)])?;
        }
        let outside = self.store.written_outside();
        let retention = self.window.retention();
        let store = &self.store;
        for side in [LEFT, RIGHT] {
            self.expiry[usize::from(side)].reload(store, outside, &keys::JOINED_PREFIX, |k, _| {
                let (s, _, ts) = joined(store, k)?;
                Ok((s == side).then(|| ts.saturating_add(retention)))
            })?;
        }
        // A store written before the sides kept time apart has both sides'
        // deletions in one queue: the per-side queues were rebuilt from the
        // records, so its timers go (rebuilt as none, once).
        let mut legacy = Timers::new(LEGACY_EXPIRY);
        if legacy.first(store)?.is_some() {
            legacy.reload(store, true, &keys::JOINED_PREFIX, |_, _| Ok(None))?;
        }
        let (kind, window) = (self.kind, self.window);
        let pending = |k: &[u8], v: &[u8]| {
            let (side, _, ts) = joined(store, k)?;
            let done = v
                .first()
                .ok_or_else(|| store.corrupt(k, "a join record without its flags"))?
                & DONE
                != 0;
            Ok((!done && emits(kind, side)).then(|| closes_at(window, side, ts)))
        };
        // (`outside` was taken once for both queues.)
        self.pending.reload(store, outside, &keys::JOINED_PREFIX, pending)
    }

    /// Whether unmatched records of `side` are emitted.
    fn emits(&self, side: u8) -> bool {
        emits(self.kind, side)
    }

    /// When the window of a record of `side` at `ts` closes.
    fn closes_at(&self, side: u8, ts: i64) -> i64 {
        closes_at(self.window, side, ts)
    }

    /// The times a record of `side` at `ts` joins records of the other side at.
    fn partners(&self, side: u8, ts: i64) -> (i64, i64) {
        let w = self.window;
        if side == LEFT {
            (ts.saturating_sub(w.before), ts.saturating_add(w.after))
        } else {
            (ts.saturating_sub(w.after), ts.saturating_add(w.before))
        }
    }

    /// Marks the kept record `key` done (it found a partner, or went out
    /// unmatched); it no longer waits for its window to close.
    fn mark_done(&mut self, key: &[u8], value: &[u8], out: &mut Collector<'_>) -> Result<(), StageError> {
        let (side, _, ts) = joined(&self.store, key)?;
        let close = self.closes_at(side, ts);
        self.pending.remove(&mut self.store, close, key)?;
        write_logged(
            &mut self.store,
            key.to_vec(),
            Some(encode(DONE, value)),
            &self.position,
            out,
        )
    }

    /// Emits the unmatched records whose window closed before stream time
    /// (all of them when `all`, on the wall clock), in Kafka Streams'
    /// order: by timestamp, then right before left, then key (then
    /// arrival).
    fn fire_unmatched(&mut self, all: bool, batch: &mut Pending, out: &mut Collector<'_>) -> Result<(), StageError> {
        // Windows close once stream time is past them.
        let until = if all {
            i64::MAX
        } else {
            self.stream_time.saturating_sub(1)
        };
        let mut due = Vec::new();
        loop {
            let page = self.pending.pop_due(&mut self.store, until, FIRE_PAGE)?;
            let more = page.len() == FIRE_PAGE;
            for (_, key) in page {
                let Some(Entry::Joined(side, rkey, ts, offset)) = keys::decode(&key) else {
                    return Err(self.store.corrupt(&key, "a key that is not a join record's").into());
                };
                due.push((outer_order(side, rkey, ts, offset), key));
            }
            if !more {
                break;
            }
        }
        due.sort();
        for ((ts, _, rkey, _), key) in due {
            self.emit_unmatched(key, ts, rkey, batch, out)?;
        }
        Ok(())
    }

    /// Deletes the records each side keeps past their retention, by that
    /// side's stream time.
    fn expire(&mut self) -> Result<(), StageError> {
        for side in [LEFT, RIGHT] {
            let until = self.side_time[usize::from(side)];
            loop {
                let due = self.expiry[usize::from(side)].pop_due(&mut self.store, until, FIRE_PAGE)?;
                let more = due.len() == FIRE_PAGE;
                for (_, key) in due {
                    // Not changelogged: the changelog is deleted by time
                    // (after the same retention), and a record that a
                    // restore brings back past its retention is one the
                    // side no longer keeps (it joins nothing) and is already
                    // marked done if it was to be emitted; it is deleted
                    // again at the next firing.
                    self.store.stage(key, None);
                }
                if !more {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Emits the kept record `key` (of `rkey` at `ts`), whose window
    /// closed, if it is still unmatched.
    fn emit_unmatched(
        &mut self,
        key: Vec<u8>,
        ts: i64,
        rkey: Option<Vec<u8>>,
        batch: &mut Pending,
        out: &mut Collector<'_>,
    ) -> Result<(), StageError> {
        let Some(stored) = self.store.get(&key)? else {
            return Ok(());
        };
        let (side, ..) = joined(&self.store, &key)?;
        let (flags, value) = stored
            .split_first()
            .ok_or_else(|| self.store.corrupt(&key, "a join record without its flags"))?;
        if flags & DONE != 0 {
            return Ok(());
        }
        let topic = self.topics[usize::from(side)].clone();
        batch.push(&mut self.joiner, ts, &topic, rkey.as_deref(), unjoined(side, value));
        let value = value.to_vec();
        self.mark_done(&key, &value, out)?;
        Ok(())
    }

    /// Starts a call: the input position for its changelog records, no
    /// pairs yet, and events that carry the batch's source.
    fn begin(&mut self, out: &Collector<'_>) -> Pending {
        self.position = out.context().position();
        self.joiner.pairs().clear();
        let (_, partition, offset) = out.context().source;
        Pending {
            events: BatchEncoder::new(),
            partition,
            offset,
        }
    }

    /// Calls the joiner on what `batch` holds and sends the results on.
    fn flush(&mut self, batch: Pending, out: &mut Collector<'_>) -> Result<(), StageError> {
        if batch.events.is_empty() {
            return Ok(());
        }
        let (results, traps) = self.joiner.call(out)?;
        let events = out.read_back(&batch.events)?;
        let results = with_keys(results, &events, out)?;
        out.results(&results, &traps, &events)
    }
}

/// The pairs of one call, with an event per pair for routing and error
/// policies (the record that completed the pair, or the unmatched record).
struct Pending {
    events: BatchEncoder,
    partition: i32,
    offset: i64,
}

impl Pending {
    fn push(
        &mut self,
        joiner: &mut Joiner,
        ts: i64,
        topic: &str,
        key: Option<&[u8]>,
        (left, right): (Option<&[u8]>, Option<&[u8]>),
    ) {
        joiner.pairs().push(ts, key, left, right, std::iter::empty());
        self.events.push(
            ts,
            topic,
            self.partition,
            self.offset,
            key,
            left.or(right),
            std::iter::empty(),
        );
    }
}

impl Stage for WindowJoinStage {
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        let Some(first) = input.events.first() else {
            return Ok(());
        };
        let side = match (input.from, first.topic) {
            (None, t) if t == self.topics[0] => LEFT,
            (None, t) if t == self.topics[1] => RIGHT,
            (from, topic) => {
                return Err(out.invariant(
                    "a stream-stream join got a batch of neither of its topics",
                    format!("{topic} from {from:?}"),
                ));
            }
        };
        self.last_input = Some(out.context().now);
        let mut batch = self.begin(out);
        let before = (self.stream_time, self.side_time[usize::from(side)]);
        for ev in input.events {
            self.record(side, ev, &mut batch, out)?;
        }
        if self.stream_time != before.0 {
            let st = self.stream_time.to_le_bytes().to_vec();
            write_logged(
                &mut self.store,
                keys::meta(keys::STREAM_TIME),
                Some(st),
                &self.position,
                out,
            )?;
        }
        if self.side_time[usize::from(side)] != before.1 {
            let st = self.side_time[usize::from(side)].to_le_bytes().to_vec();
            write_logged(
                &mut self.store,
                keys::meta(SIDE_TIME[usize::from(side)]),
                Some(st),
                &self.position,
                out,
            )?;
        }
        self.flush(batch, out)
    }

    fn wall_clock_due(&self, now: Instant) -> bool {
        match (self.idle_close, self.last_input) {
            (Some(idle), Some(last)) => !self.pending.is_empty() && now.saturating_duration_since(last) >= idle,
            _ => false,
        }
    }

    fn on_wall_clock(&mut self, _now: Instant, out: &mut Collector<'_>) -> Result<(), StageError> {
        let mut batch = self.begin(out);
        self.fire_unmatched(true, &mut batch, out)?;
        self.flush(batch, out)
    }

    fn commit(&mut self, checkpoint: &dyn Fn(&Changelog) -> Option<i64>) -> Result<(), StateError> {
        let c = checkpoint(self.store.changelog());
        self.store.commit(c)?;
        self.pending.commit();
        for expiry in &mut self.expiry {
            expiry.commit();
        }
        Ok(())
    }

    fn abort(&mut self) -> Result<(), StateError> {
        self.reload()
    }

    fn module_label(&self) -> String {
        self.joiner.label()
    }

    fn store(&self) -> Option<&Store> {
        Some(&self.store)
    }

    fn stream_time(&self) -> Option<i64> {
        (self.stream_time != i64::MIN).then_some(self.stream_time)
    }

    fn open_windows(&self) -> usize {
        self.pending.len()
    }

    fn guest(&mut self) -> Option<&mut dyn GuestStage> {
        Some(self)
    }
}

impl GuestStage for WindowJoinStage {
    fn swap(&mut self, module: Arc<LoadedModule>) {
        self.joiner.swap(module);
    }
    fn warm_up(&mut self) -> Result<(), GuestError> {
        self.joiner.warm_up()
    }
}

impl WindowJoinStage {
    /// One record of `side`: the unmatched records its time closes go out,
    /// then it joins the other side's kept records in its window, and is
    /// kept (or goes out unmatched at once, if its window's end is already
    /// behind stream time).
    fn record(
        &mut self,
        side: u8,
        ev: &EventRef<'_>,
        batch: &mut Pending,
        out: &mut Collector<'_>,
    ) -> Result<(), StageError> {
        // Every record moves stream time, one that cannot join too.
        self.stream_time = self.stream_time.max(ev.timestamp);
        let (key, value) = match (ev.key, ev.value) {
            (Some(key), Some(value)) => (key, value),
            (None, Some(value)) if self.emits(side) => {
                // KIP-962: an outer side's record without a key goes out at
                // once, with an absent other side.
                batch.push(&mut self.joiner, ev.timestamp, ev.topic, None, unjoined(side, value));
                return Ok(());
            }
            _ => {
                out.dropped(ev, "a stream record without a key or value cannot join");
                return Ok(());
            }
        };
        // Only a record at stream time closes windows (an earlier one moved
        // nothing).
        if ev.timestamp == self.stream_time {
            self.fire_unmatched(false, batch, out)?;
        }
        let other = 1 - side;
        let retention = self.window.retention();
        // Only what the other side still keeps.
        let (from, to) = self.partners(side, ev.timestamp);
        let from = from.max(kept_from(self.window, self.side_time[usize::from(other)]));
        let mut found = false;
        // The other side's records of the key from `from` on, a page at a
        // time, up to `to`: not every record the key has kept.
        let prefix = keys::joined_of(other, Some(key));
        let mut after = (from <= to).then(|| keys::joined_at(other, Some(key), from));
        let end = to.checked_add(1).map(|t| keys::joined_at(other, Some(key), t));
        'scan: while let Some(start) = after.take() {
            let (page, next) = self
                .store
                .scan_page(&prefix, Some(&start), end.as_deref(), PARTNER_PAGE)?;
            for (k, stored) in page {
                let (_, _, ts) = joined(&self.store, &k)?;
                if ts > to {
                    break 'scan;
                }
                let (flags, partner) = stored
                    .split_first()
                    .ok_or_else(|| self.store.corrupt(&k, "a join record without its flags"))?;
                found = true;
                let (left, right) = if side == LEFT {
                    (value, partner)
                } else {
                    (partner, value)
                };
                batch.push(
                    &mut self.joiner,
                    ts.max(ev.timestamp),
                    ev.topic,
                    Some(key),
                    (Some(left), Some(right)),
                );
                // Only a record that may go out unmatched needs to know.
                if flags & DONE == 0 && self.emits(other) {
                    let partner = partner.to_vec();
                    self.mark_done(&k, &partner, out)?;
                }
            }
            after = next;
        }
        let own = &mut self.side_time[usize::from(side)];
        *own = (*own).max(ev.timestamp);
        // Kept unless its side already keeps nothing that old.
        let kept = ev.timestamp >= kept_from(self.window, *own);
        let mut done = found;
        if !found && self.emits(side) && (!kept || out_at_once(self.window, side, ev.timestamp, self.stream_time)) {
            // Its window's end is behind stream time: Kafka Streams does not
            // wait for grace then (and a record not kept cannot wait).
            batch.push(
                &mut self.joiner,
                ev.timestamp,
                ev.topic,
                Some(key),
                unjoined(side, value),
            );
            done = true;
        }
        if kept {
            // The record's offset keeps equal keys and times apart (and
            // makes a record processed again after an abort the same entry).
            let k = keys::joined(side, Some(key), ev.timestamp, ev.offset);
            let flags = if done { DONE } else { 0 };
            write_logged(
                &mut self.store,
                k.clone(),
                Some(encode(flags, value)),
                &self.position,
                out,
            )?;
            self.expiry[usize::from(side)].insert(&mut self.store, ev.timestamp.saturating_add(retention), &k)?;
            if !done && self.emits(side) {
                let close = self.closes_at(side, ev.timestamp);
                self.pending.insert(&mut self.store, close, &k)?;
            }
        }
        self.expire()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(before: i64, after: i64, grace: i64) -> JoinWindow {
        JoinWindow { before, after, grace }
    }

    /// KStreamKStreamOuterJoinTest#testOuterJoinDuplicates: unmatched
    /// records due together go out by time, right before left, then key,
    /// then arrival (`null+11`, `null+12` before `A0+null` at 0).
    #[test]
    fn unmatched_records_go_out_in_kafka_streams_outer_store_order() {
        let mut due = [
            outer_order(LEFT, Some(b"0".to_vec()), 0, 0),
            outer_order(RIGHT, Some(b"1".to_vec()), 0, 2),
            outer_order(RIGHT, Some(b"1".to_vec()), 0, 1),
            outer_order(LEFT, Some(b"0".to_vec()), 1, 3),
            outer_order(RIGHT, Some(b"0".to_vec()), 0, 4),
        ];
        due.sort();
        let order: Vec<(i64, bool, i64)> = due.iter().map(|(ts, left, _, off)| (*ts, *left, *off)).collect();
        assert_eq!(
            order,
            [(0, false, 4), (0, false, 1), (0, false, 2), (0, true, 0), (1, true, 3)]
        );
    }

    /// KStreamKStreamLeftJoinTest#testWindowing: a left record whose
    /// window's end (t + after) is behind stream time goes out unjoined at
    /// once, grace or not; one still within it waits.
    #[test]
    fn an_unmatched_record_behind_stream_time_goes_out_at_once() {
        let w = window(100, 100, 1000);
        assert!(out_at_once(w, LEFT, 899, 1000));
        assert!(!out_at_once(w, LEFT, 900, 1000));
        let asymmetric = window(0, 100, 0);
        // A right record looks back `before` = 0: its end is itself.
        assert!(out_at_once(asymmetric, RIGHT, 999, 1000));
        assert!(!out_at_once(asymmetric, LEFT, 999, 1000));
    }

    /// Each side keeps `before + after + grace` behind its own stream time,
    /// as a Kafka Streams window store: a record late for its own window
    /// still joins what the other side keeps.
    #[test]
    fn a_side_keeps_its_retention_behind_its_own_stream_time() {
        let w = window(100, 100, 0);
        assert_eq!(kept_from(w, 1000), 801);
        assert_eq!(kept_from(w, i64::MIN), i64::MIN + 1);
        assert_eq!(
            kept_from(window(0, 0, 0), 5),
            6,
            "a zero window keeps nothing older than now"
        );
    }
}
