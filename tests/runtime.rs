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

/// `count` folds, merges and emits the same way in Rust, Python and JavaScript,
/// and their accumulators are interchangeable (all are little-endian u64).
#[test]
fn count_folds_merges_and_emits_alike_in_every_language() {
    let g = guests();
    let rt = runtime();
    for language in ["rust", "python", "js"] {
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
