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
//! Run: `cargo bench -p weir --bench engine` (it builds the guests first).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weir::codec::BatchEncoder;
use weir::pipeline::Pipeline;
use weir::runtime::{Runtime, RuntimeConfig};
use weir::task::{Chain, CountingSink, OutRecord, Sink as _};

const RECORDS: usize = 10_000;
const BATCH: usize = 500;

struct Source {
    keys: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
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
    let label = chain.module_labels().remove(0);
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
                    enc.clear();
                    for i in start..start + BATCH {
                        enc.push(
                            i as i64,
                            "in",
                            0,
                            i as i64,
                            Some(&src.keys[i]),
                            Some(&src.values[i]),
                            [("source", Some(&b"bench"[..]))],
                        );
                    }
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
