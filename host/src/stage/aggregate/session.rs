//! Session windows: an event joins the key's sessions within the gap of it,
//! merging them through the guest's `merge` (event by event, since one
//! event can bridge sessions), as Kafka Streams'
//! `KStreamSessionWindowAggregate`.

use std::collections::{BTreeSet, HashMap};

use crate::codec::{BatchEncoder, EventRef};
use crate::event::{Failure, Window};
use crate::pipeline::Emit;
use crate::runtime::{Folded, Group};
use crate::state::keys::{self, Entry};
use crate::window::{self, Windowing};

use super::fold::{AggregateError, Aggregator, Due, Fold, Rejection, Step};
use super::groups::encode;

impl Aggregator {
    pub(super) fn fold_sessions(
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stage::aggregate::harness::{Concat, concat, drive, run, run_batched, spec};
    use crate::window::WindowKind;

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
