//! The harness of the aggregate stage's tests.
//!
//! The stage's semantics against Kafka Streams' documented behaviour, on the
//! in-memory store with the native [`Count`]: no broker, no guest. Every
//! scenario runs at several batch sizes and must give the same windows,
//! counts, timestamps and late records (updates aside, which are per batch).

use std::time::Instant;

use crate::codec::{self, BatchEncoder};
use crate::event::Failure;
use crate::pipeline::{Aggregation, Emit};
use crate::runtime::{Folded, Group, GuestError};
use crate::stage::collector::{OutRecord, Sink, SinkError};
use crate::state::{Changelog, Store};
use crate::window::{WindowKind, Windowing};

use super::count::Count;
use super::fold::{Aggregator, Fold, Rejection};

/// Changelog records are checked elsewhere; here they only go somewhere.
pub(super) struct Discard;

impl Sink for Discard {
    fn send(&mut self, _: &OutRecord<'_>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A result: key, window as `[start, end)`, value (a count unless
/// said otherwise), timestamp.
pub(super) type Out<V = u64> = (String, Option<(i64, i64)>, V, i64);

/// What a run emitted, dropped as late (key, timestamp) and left in its
/// store (accumulators and their stamps).
#[derive(Debug, PartialEq)]
pub(super) struct Ran<V = u64> {
    pub(super) out: Vec<Out<V>>,
    pub(super) late: Vec<(String, i64)>,
    pub(super) store: Vec<crate::state::Entry>,
}

pub(super) fn spec(window: Option<(WindowKind, i64)>, emit: Emit) -> Aggregation {
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
pub(super) fn run(spec: &Aggregation, records: &[(&str, i64)], batch: usize) -> Ran {
    let records: Vec<(&str, &str, i64)> = records.iter().map(|(k, ts)| (*k, "v", *ts)).collect();
    // A tombstone counts as 0.
    drive(spec, &mut Count, &records, batch, |acc| {
        acc.map_or(Some(0), Count::read).unwrap()
    })
}

/// Feeds `records` (key, value, timestamp) to `fold` in order, `batch` at
/// a time (offsets count from 0), each batch committed before the next;
/// `read` turns an emitted accumulator (`None`: a tombstone) into a value.
pub(super) fn drive<V>(
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
pub(super) fn run_batched(spec: &Aggregation, records: &[(&str, i64)]) -> Ran {
    same_at_any_batch_size(spec, records.len(), |batch| run(spec, records, batch))
}

/// `run(batch)` at batch sizes 1, 2, 3 and all at once (`n` records):
/// the same final results, late records and store (updates aside,
/// which come once per batch); the run at batch size 1.
pub(super) fn same_at_any_batch_size<V: PartialEq + Clone + std::fmt::Debug>(
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

pub(super) fn k1(times: &[i64]) -> Vec<(&'static str, i64)> {
    times.iter().map(|t| ("k1", *t)).collect()
}

/// Kafka Streams' string aggregation in its window tests:
/// `MockInitializer.STRING_INIT` ("0"), `MockAggregator.TOSTRING_ADDER`
/// (`agg + "+" + value`) and SessionWindowedKStreamImplTest's merger
/// (`a + "+" + b`). The order of the folds shows in the result, and the
/// initial value is not neutral for the merge.
pub(super) struct Concat;

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
pub(super) fn concat(spec: &Aggregation, records: &[(&str, &str, i64)]) -> Ran<Option<String>> {
    same_at_any_batch_size(spec, records.len(), |batch| {
        drive(spec, &mut Concat, records, batch, |acc| {
            acc.map(|a| String::from_utf8(a.to_vec()).unwrap())
        })
    })
}
