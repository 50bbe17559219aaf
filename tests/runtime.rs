//! The runtime through its library API: the aggregator exports (add, merge,
//! emit, migrate) in every language, and instance replacement after a trap.

mod support;

use std::collections::BTreeMap;

use support::guests;
use weir::codec::encode_events;
use weir::event::{Event, EventResult, Failure, Window};
use weir::runtime::{EmitRequest, Group, Runtime, RuntimeConfig};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

fn events(n: usize) -> Vec<u8> {
    let evs: Vec<Event> = (0..n)
        .map(|i| Event {
            value: Some(vec![b'x']),
            offset: i as i64,
            ..Event::default()
        })
        .collect();
    encode_events(&evs).as_bytes().to_vec()
}

fn value_of(results: &[EventResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            EventResult::Outputs(outs) => {
                String::from_utf8_lossy(outs[0].value.as_deref().unwrap_or_default()).into_owned()
            }
            EventResult::Failed(f) => format!("failed: {f}"),
        })
        .collect()
}

/// `count` folds, merges and emits the same way in Rust, Python, JavaScript
/// and Go, and their accumulators are interchangeable (all are little-endian
/// u64).
#[test]
fn count_folds_merges_and_emits_alike_in_every_language() {
    let g = guests();
    let rt = runtime();
    for language in ["rust", "python", "js", "go"] {
        let module = rt.load_file(&g.example(language, "count")).expect("load count");
        let mut op = rt.operator(module, BTreeMap::new());
        let folded = op
            .add(vec![
                Group {
                    key: Some(b"a".to_vec()),
                    window: None,
                    acc: None,
                    events: events(3),
                },
                Group {
                    key: Some(b"b".to_vec()),
                    window: None,
                    acc: Some(40u64.to_le_bytes().to_vec()),
                    events: events(2),
                },
            ])
            .expect("add");
        assert_eq!(folded[0].acc, 3u64.to_le_bytes(), "{language}");
        assert_eq!(folded[1].acc, 42u64.to_le_bytes(), "{language}");
        assert!(folded.iter().all(|f| f.failures.is_empty()), "{language}");
        let merged = op.merge(Some(b"a"), &folded[0].acc, &folded[1].acc).expect("merge");
        assert_eq!(merged, Ok(45u64.to_le_bytes().to_vec()), "{language}");
        let window = Some(Window { start: 0, end: 1000 });
        let emitted = op
            .emit(vec![
                EmitRequest {
                    key: Some(b"a".to_vec()),
                    window,
                    acc: folded[0].acc.clone(),
                },
                EmitRequest {
                    key: None,
                    window: None,
                    acc: 7u64.to_le_bytes().to_vec(),
                },
            ])
            .expect("emit");
        assert_eq!(value_of(&emitted), ["3", "7"], "{language}");
    }
}

#[test]
fn migrate_reads_the_previous_versions_state() {
    let g = guests();
    let rt = runtime();
    let module = rt.load_file(&g.test_guest("count-text")).expect("load count-text");
    assert!(module.info().migrate);
    assert_eq!(module.info().world, "weir:stream/aggregate-with-migrate@0.1.0");
    let mut op = rt.operator(module, BTreeMap::new());
    let v1_state = 41u64.to_le_bytes();
    let migrated = op
        .migrate("count@sha256:abc", Some(b"k"), &v1_state)
        .expect("migrate")
        .expect("exported");
    assert_eq!(migrated, Ok(b"41".to_vec()));
    let folded = op
        .add(vec![Group {
            key: Some(b"k".to_vec()),
            window: None,
            acc: migrated.ok(),
            events: events(1),
        }])
        .expect("add");
    assert_eq!(folded[0].acc, b"42");
    let refused = op
        .migrate("other@sha256:def", None, &v1_state)
        .expect("migrate")
        .expect("exported");
    assert_eq!(refused.map_err(|f: Failure| f.code), Err("unknown-version".to_owned()));

    // A module without `migrate` says so instead of failing.
    let count = rt.load_file(&g.example("rust", "count")).expect("load count");
    assert!(!count.info().migrate);
    let mut op = rt.operator(count, BTreeMap::new());
    assert_eq!(op.migrate("count@sha256:abc", None, &v1_state).expect("no trap"), None);
}

#[test]
fn an_instance_that_trapped_is_replaced_and_the_next_call_runs_clean() {
    let g = guests();
    let rt = runtime();
    let module = rt.load_file(&g.test_guest("misbehave")).expect("load misbehave");
    let mut op = rt.operator(module, BTreeMap::new());
    let batch = |v: &str| {
        encode_events(&[Event {
            value: Some(v.as_bytes().to_vec()),
            ..Event::default()
        }])
    };
    let err = op.process(&batch("panic")).expect_err("a panic traps");
    assert_eq!((err.export, err.kind()), ("process", "panic"));
    assert!(err.module.starts_with("misbehave@sha256:"), "{}", err.module);
    let ok = op.process(&batch("fine")).expect("a fresh instance").into_owned();
    assert_eq!(value_of(&ok), ["fine"]);
}

/// A one-stage aggregate pipeline run through `weir::task::Task` into memory,
/// with its store in a temp dir: no broker.
struct Agg {
    chain: std::sync::Arc<weir::task::Chain>,
    task: weir::task::Task,
    _dir: tempfile::TempDir,
}

impl Agg {
    fn new(stage: &str, on_error: &str) -> Agg {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            format!(
                "application-id = \"app\"\ninputs = [\"in\"]\n[[stage]]\nname = \"agg\"\nkind = \"aggregate\"\n\
                 module = \"{}\"\n{stage}\n{on_error}\n[outputs]\ndefault = \"out\"\n",
                guests().example("rust", "count").display()
            ),
        )
        .unwrap();
        let pipeline = weir::pipeline::Pipeline::load(&file).unwrap();
        let chain = weir::task::Chain::load(&pipeline, &runtime()).unwrap();
        let task = chain.open_task("in", 0, &dir.path().join("state")).unwrap();
        Agg { chain, task, _dir: dir }
    }

    /// Events (key, timestamp) at offsets from `first`; returns what went to `out`
    /// as (key, value, window start) and to other topics.
    fn run(&mut self, first: i64, evs: &[(&str, i64)]) -> (Vec<(String, String, Option<i64>)>, usize) {
        let events: Vec<Event> = evs
            .iter()
            .enumerate()
            .map(|(i, (k, ts))| Event {
                key: Some(k.as_bytes().to_vec()),
                value: Some(b"x".to_vec()),
                timestamp: *ts,
                topic: "in".into(),
                offset: first + i as i64,
                ..Event::default()
            })
            .collect();
        let mut sink = weir::task::MemorySink::default();
        self.task.process(&encode_events(&events), &mut sink).unwrap();
        let header = |r: &weir::task::SentRecord, n: &str| {
            r.header(n)
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<i64>().ok())
        };
        let out = sink
            .records
            .iter()
            .filter(|r| r.topic == "out")
            .map(|r| {
                (
                    String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned(),
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
                    header(r, "weir.window.start"),
                )
            })
            .collect();
        let changelog = sink.records.iter().filter(|r| r.topic == "app-agg-changelog").count();
        (out, changelog)
    }

    fn commit(&mut self) {
        self.task.commit_state(|_| Some(1)).unwrap();
    }
}

fn owned(v: &[(&str, &str, Option<i64>)]) -> Vec<(String, String, Option<i64>)> {
    v.iter()
        .map(|(k, c, w)| ((*k).to_owned(), (*c).to_owned(), *w))
        .collect()
}

/// Emit rules without a broker: `update` emits each changed key once per
/// batch; `final` emits a window once, when stream time reaches its end plus
/// grace; a late event is dropped and counted under `fail` and
/// dead-lettered under `dead-letter`; every change goes to the changelog.
#[test]
fn aggregate_emit_modes_lateness_and_changelog() {
    let mut update = Agg::new("", "");
    let (out, changelog) = update.run(0, &[("a", 1), ("b", 2), ("a", 3)]);
    assert_eq!(out, owned(&[("b", "1", None), ("a", "2", None)]), "in event-time order");
    assert_eq!(
        changelog, 6,
        "two keys, their timestamps (the newest event folded in), stream time and the format marker"
    );
    update.commit();
    let (out, _) = update.run(3, &[("a", 4)]);
    assert_eq!(out, owned(&[("a", "3", None)]));

    let window = "window = { kind = \"tumbling\", size = \"10ms\", grace = \"5ms\" }\nemit = \"final\"";
    let mut fin = Agg::new(window, "");
    let (out, _) = fin.run(0, &[("a", 1), ("a", 2), ("b", 9), ("a", 12)]);
    assert!(out.is_empty(), "nothing closed before end + grace: {out:?}");
    let (out, _) = fin.run(4, &[("a", 15)]);
    assert_eq!(out, owned(&[("a", "2", Some(0)), ("b", "1", Some(0))]));
    // Late: window [0, 10) closed at stream time 15; dropped, counted, no error.
    let (out, _) = fin.run(5, &[("a", 3)]);
    assert!(out.is_empty());
    assert_eq!(fin.chain.metrics().snapshot().stages[0].late, 1);

    let mut dl = Agg::new(window, "on-error = \"dead-letter\"\ndead-letter-topic = \"late\"");
    dl.run(0, &[("a", 20)]);
    let events = [Event {
        key: Some(b"a".to_vec()),
        timestamp: 1,
        topic: "in".into(),
        offset: 1,
        ..Event::default()
    }];
    let mut sink = weir::task::MemorySink::default();
    dl.task.process(&encode_events(&events), &mut sink).unwrap();
    let dead: Vec<_> = sink.records.iter().filter(|r| r.topic == "late").collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header("weir.error.code"), Some(&b"late"[..]));
}

/// Sessions merge through the guest's `merge` when an event bridges them;
/// an abort (reload) forgets staged writes.
#[test]
fn sessions_merge_and_an_abort_forgets_staged_state() {
    // Grace keeps [0] open after stream time has moved past it.
    let mut s = Agg::new("window = { kind = \"session\", gap = \"10ms\", grace = \"20ms\" }", "");
    let (out, _) = s.run(0, &[("u", 0), ("u", 15)]);
    assert_eq!(
        out,
        owned(&[("u", "1", Some(0)), ("u", "1", Some(15))]),
        "15 ms apart: two sessions"
    );
    s.commit();
    let (out, _) = s.run(2, &[("u", 22)]);
    assert_eq!(
        out,
        owned(&[("u", "", Some(15)), ("u", "2", Some(15))]),
        "22 extends [15]: a tombstone (null value) for [15, 16), then [15, 23)"
    );
    // Abort: the staged extension is forgotten.
    s.task.reload().unwrap();
    let (out, _) = s.run(2, &[("u", 8)]);
    assert_eq!(
        out,
        owned(&[("u", "", Some(0)), ("u", "", Some(15)), ("u", "3", Some(0))]),
        "8 bridges [0] and [15] (not [15, 22], which was aborted): tombstones for both, one session of three"
    );
}

/// Sliding windows as Kafka Streams defines them: each event's left window
/// (`[0, size]` for an event before `size`, as its `processEarly`) and,
/// when another event falls in it, its right window; an out-of-order event
/// (inside grace) updates every window that holds it and creates the
/// windows it brings, in Kafka Streams' order; `final` emits each window
/// once, when it closes.
#[test]
fn sliding_windows_refold_what_an_event_touches() {
    let mut s = Agg::new("window = { kind = \"sliding\", size = \"10ms\", grace = \"20ms\" }", "");
    let (out, _) = s.run(0, &[("a", 8), ("a", 12)]);
    assert_eq!(
        out,
        owned(&[("a", "1", Some(0)), ("a", "1", Some(9)), ("a", "2", Some(2))]),
        "[0, 10] {{8}} (8 is before the size), then for 12: right of 8 {{12}}, left of 12 {{8, 12}}"
    );
    s.commit();
    let (out, _) = s.run(2, &[("a", 10)]);
    assert_eq!(
        out,
        owned(&[
            ("a", "2", Some(9)),
            ("a", "3", Some(2)),
            ("a", "2", Some(0)),
            ("a", "1", Some(11)),
        ]),
        "the windows holding 10 from the latest start down (right of 8 {{10, 12}}, left of 12 {{8, 10, 12}}, \
         [0, 10] {{8, 10}}), then the new right of 10 {{12}}"
    );

    let mut f = Agg::new("window = { kind = \"sliding\", size = \"10ms\" }\nemit = \"final\"", "");
    // [0, 10] opens and closes within the batch (12 moves stream time past
    // its end): emitted once, at the end of the batch.
    let (out, _) = f.run(0, &[("a", 8), ("a", 12)]);
    assert_eq!(out, owned(&[("a", "1", Some(0))]));
    // Stream time 25 closes [2, 13) and [9, 20).
    let (out, _) = f.run(2, &[("b", 25)]);
    assert_eq!(out, owned(&[("a", "2", Some(2)), ("a", "1", Some(9))]));
    let (out, _) = f.run(3, &[("a", 5)]);
    assert!(out.is_empty(), "late for every window it could be in: {out:?}");
    assert_eq!(f.chain.metrics().snapshot().stages[0].late, 1);
}

/// Hopping windows: an event goes to every window that contains it.
#[test]
fn hopping_windows_fold_an_event_into_every_window_holding_it() {
    let mut h = Agg::new(
        "window = { kind = \"hopping\", size = \"10ms\", advance = \"5ms\" }",
        "",
    );
    let (out, _) = h.run(0, &[("a", 7), ("a", 12)]);
    // 7 is in [0, 10) and [5, 15); 12 in [5, 15) and [10, 20).
    assert_eq!(
        out,
        owned(&[("a", "1", Some(0)), ("a", "2", Some(5)), ("a", "1", Some(10))])
    );
}
