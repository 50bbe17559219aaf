//! Tests of the aggregate stage as a whole (see [`super::harness`]): its
//! entry points (opening corrupt state, idle close, the windows a restore
//! brings back) and what holds for every kind of window (batching, refused
//! events).

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
use super::harness::{Discard, run_batched, spec};

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
