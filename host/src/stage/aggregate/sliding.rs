//! Sliding windows: a window's contents are a set of events, not a running
//! total, so the events themselves are kept and every window a new event
//! changes is folded again from them, as Kafka Streams'
//! `KStreamSlidingWindowAggregate` computes them one record at a time.

use std::collections::{BTreeSet, HashMap};

use crate::codec::EventRef;
use crate::event::Window;
use crate::runtime::Group;
use crate::state::keys::{self, Entry};
use crate::window::{self, Windowing};

use super::fold::{AggregateError, Aggregator, Fold, Rejection, SlidingOrder, Step};
use super::groups::{encode, fold, join};

impl Aggregator {
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
    pub(super) fn fold_sliding(
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

    /// Deletes a key's kept events that no open or future window can hold.
    pub(super) fn purge_events(&mut self, key: Option<&[u8]>, size: i64, grace: i64) -> Result<(), AggregateError> {
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
}

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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pipeline::Emit;
    use crate::stage::aggregate::harness::{Out, concat, k1, run, run_batched, spec};
    use crate::window::WindowKind;

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
}
