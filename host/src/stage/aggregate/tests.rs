//! Tests of the aggregate stage as a whole (see [`super::harness`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::codec::{self, BatchEncoder};
use crate::event::{Failure, Window};
use crate::pipeline::Emit;
use crate::runtime::{Folded, Group, GuestError};
use crate::state::keys;
use crate::state::{Changelog, Store};
use crate::window::WindowKind;

use super::count::Count;
use super::fold::{Aggregator, Fold, Rejection};
use super::harness::{Discard, Out, concat, k1, run, run_batched, spec};

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
