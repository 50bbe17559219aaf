//! The pipeline engine alone: records from memory through a task (encode,
//! guest call, results read in place, output headers) into a counting sink —
//! no broker, so the broker's speed cannot hide ours. One thread: the
//! throughput is records/s per core.
//!
//! - `task/wasm-uppercase`: a one-stage pipeline running the `uppercase`
//!   example through [`weir::task::Task`].
//! - `task/native-uppercase`: the same per-record work done natively (upper-case
//!   the value, add the module header, hand the record to the sink) — the
//!   baseline.
//!
//! - `threads/N`: eight tasks (partitions) of the same pipeline, each given
//!   2 500 records per round, run on N processing threads by
//!   [`weir::task::Workers`] as an instance runs them (each task encodes its
//!   batches and calls its guest on its thread), N = 1, 2 and the number of
//!   cores if larger: records/s against N.
//!
//! Run: `cargo bench -p weir --bench engine` (it builds the guests first).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weir::codec::BatchEncoder;
use weir::pipeline::Pipeline;
use weir::runtime::{Runtime, RuntimeConfig};
use weir::task::{Chain, CountingSink, OutRecord, Sink as _, Task, Workers};

const RECORDS: usize = 10_000;
const BATCH: usize = 500;

struct Source {
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
}

impl Source {
    /// Records `range` as one batch, as a task's batch arrives.
    fn encode(&self, enc: &mut BatchEncoder, range: std::ops::Range<usize>) {
        enc.clear();
        for i in range {
            enc.push(
                i as i64,
                "in",
                0,
                i as i64,
                Some(&self.keys[i]),
                Some(&self.values[i]),
                [("source", Some(&b"bench"[..]))],
            );
        }
    }
}

fn source(value_size: usize) -> Source {
    Source {
        keys: (0..RECORDS).map(|i| format!("key-{i}").into_bytes()).collect(),
        values: (0..RECORDS)
            .map(|i| {
                (0..value_size)
                    .map(|j| b"abcdefghij klmnopqrstuvwxyz"[(i + j) % 27])
                    .collect()
            })
            .collect(),
    }
}

fn bench(c: &mut Criterion) {
    let module = support::guests().example("rust", "uppercase");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bench.toml");
    std::fs::write(
        &file,
        format!(
            "application-id = \"bench\"\ninputs = [\"in\"]\nbatch-size = {BATCH}\n[[stage]]\nmodule = \"{}\"\n\
             [outputs]\ndefault = \"out\"\n",
            module.display()
        ),
    )
    .expect("write the pipeline");
    let pipeline = Pipeline::load(&file).expect("pipeline");
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let chain = Chain::load(&pipeline, &runtime).expect("chain");
    let label = weir::task::header_label(&chain.module_labels().remove(0)).to_owned();
    let mut group = c.benchmark_group("task");
    group.measurement_time(Duration::from_secs(8));
    for value_size in [100usize, 1024] {
        let src = source(value_size);
        group.throughput(Throughput::Elements(RECORDS as u64));
        let mut task = chain.task().expect("task");
        let mut enc = BatchEncoder::new();
        group.bench_function(BenchmarkId::new("wasm-uppercase", value_size), |b| {
            b.iter(|| {
                let mut sink = CountingSink::default();
                for start in (0..RECORDS).step_by(BATCH) {
                    src.encode(&mut enc, start..start + BATCH);
                    task.process(&enc, &mut sink).expect("process");
                }
                black_box(sink.bytes)
            })
        });
        group.bench_function(BenchmarkId::new("native-uppercase", value_size), |b| {
            b.iter(|| {
                let mut sink = CountingSink::default();
                for i in 0..RECORDS {
                    let value = src.values[i].to_ascii_uppercase();
                    let headers = [("source", Some(&b"bench"[..])), ("weir.module", Some(label.as_bytes()))];
                    sink.send(&OutRecord {
                        topic: "out",
                        partition: None,
                        key: Some(&src.keys[i]),
                        value: Some(&value),
                        headers: &headers,
                        timestamp: i as i64,
                        changelog: false,
                    })
                    .expect("send");
                }
                black_box(sink.bytes)
            })
        });
    }
    group.finish();
    threads(c, &chain);
}

/// Tasks of one round and what each one runs.
struct Share {
    task: Task,
    encoder: BatchEncoder,
    sink: CountingSink,
    first: usize,
}

const TASKS: usize = 8;
const PER_TASK: usize = 2_500;

/// The same round of eight tasks on 1, 2, … processing threads.
fn threads(c: &mut Criterion, chain: &std::sync::Arc<Chain>) {
    let src = source(100);
    let mut counts = vec![1, 2];
    if Workers::per_core() > 2 {
        counts.push(Workers::per_core());
    }
    let mut group = c.benchmark_group("threads");
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements((TASKS * PER_TASK) as u64));
    for n in counts {
        let workers = Workers::new(n).expect("processing threads");
        let mut shares: Vec<Share> = (0..TASKS)
            .map(|t| Share {
                task: chain.task().expect("task"),
                encoder: BatchEncoder::new(),
                sink: CountingSink::default(),
                first: (t * PER_TASK) % RECORDS,
            })
            .collect();
        group.bench_function(BenchmarkId::new("wasm-uppercase-100", n), |b| {
            b.iter(|| {
                workers
                    .for_each(&mut shares, |s| {
                        for start in (s.first..s.first + PER_TASK).step_by(BATCH) {
                            src.encode(&mut s.encoder, start..start + BATCH);
                            s.task.process(&s.encoder, &mut s.sink)?;
                        }
                        Ok::<(), weir::task::TaskError>(())
                    })
                    .expect("process");
                black_box(shares.iter().map(|s| s.sink.bytes).sum::<u64>())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
