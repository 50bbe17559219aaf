//! The cost of the component boundary, per record.
//!
//! `uppercase` several ways, each from host-owned events to host-owned outputs:
//! - `native`: the same logic compiled into the host (the baseline);
//! - `wasm-flat`: the Rust example component (`#[map_value]`) through Weir's
//!   flat batch ABI (encode the batch, one call, check the results);
//! - `wasm-flat-map`: the same logic as a `#[map]` returning an `Output`
//!   (a new value allocated per record), through the same ABI;
//! - `wasm-typed`: the same logic over a `list<record>` ABI (`typed.wit`), the
//!   design the contract did not choose;
//! - `python` and `js`: the Python and JavaScript examples through the flat
//!   ABI (batches of 64 and 1024 only);
//! - `go`: the Go example (stock Go, wasip1, `sdk/go`) through the flat ABI.
//!
//! Plus instantiation of a precompiled module, on demand and pooled.
//!
//! Run: `cargo bench -p weir --bench boundary` (it builds the guests first).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use weir::codec::{BatchEncoder, ResultBatch, ResultRef, encode_events};
use weir::event::{Event, EventResult, Header, Output};
use weir::runtime::{Runtime, RuntimeConfig};

mod typed {
    wasmtime::component::bindgen!({ path: "benches/typed.wit", world: "typed" });
}
use typed::exports::bench::typed::processor as tp;

const BATCHES: [usize; 3] = [1, 64, 1024];
const VALUE_SIZES: [usize; 2] = [100, 1024];

fn events(n: usize, value_size: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(
                (0..value_size)
                    .map(|j| b"abcdefghij klmnopqrstuvwxyz"[(i + j) % 27])
                    .collect(),
            ),
            headers: vec![Header::new("source", "bench")],
            timestamp: 1_700_000_000_000 + i as i64,
            topic: "bench-input".into(),
            partition: 0,
            offset: i as i64,
        })
        .collect()
}

/// An output as the best native operator would hand it to a producer: the
/// new value owned, the key and headers borrowed from the input.
struct NativeOutput<'a> {
    key: Option<&'a [u8]>,
    value: Option<Vec<u8>>,
    headers: &'a [Header],
}

fn native_uppercase(events: &[Event]) -> Vec<NativeOutput<'_>> {
    events
        .iter()
        .map(|e| NativeOutput {
            key: e.key.as_deref(),
            value: e.value.as_ref().map(|v| v.to_ascii_uppercase()),
            headers: &e.headers,
        })
        .collect()
}

/// What a producer reads from the outputs: every key, value and header. All
/// paths end with it, so none is credited with output it never looked at.
fn consume_native(outs: &[NativeOutput<'_>]) -> usize {
    outs.iter()
        .map(|o| {
            o.key.map_or(0, <[u8]>::len)
                + o.value.as_ref().map_or(0, Vec::len)
                + o.headers
                    .iter()
                    .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len))
                    .sum::<usize>()
        })
        .sum()
}

fn consume_wasm(results: &ResultBatch) -> usize {
    results
        .iter()
        .map(|r| match r {
            ResultRef::Outputs(outs) => outs
                .iter()
                .map(|o| {
                    o.key().map_or(0, <[u8]>::len)
                        + o.value().map_or(0, <[u8]>::len)
                        + o.headers()
                            .iter()
                            .map(|(n, v)| n.len() + v.map_or(0, <[u8]>::len))
                            .sum::<usize>()
                })
                .sum(),
            ResultRef::Failed { .. } => 0,
        })
        .sum()
}

struct TypedHost {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for TypedHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn to_typed(e: &Event) -> tp::Event {
    tp::Event {
        key: e.key.clone(),
        value: e.value.clone(),
        headers: e
            .headers
            .iter()
            .map(|h| tp::Header {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect(),
        timestamp: e.timestamp,
        topic: e.topic.clone(),
        partition: e.partition,
        offset: e.offset,
    }
}

fn boundary(c: &mut Criterion) {
    let g = support::guests();
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = runtime
        .load_file(&g.example("rust", "uppercase"))
        .expect("load uppercase");
    let mut op = runtime.operator(module, BTreeMap::new());
    let flat = |language: &str, name: &str| {
        let path = match language {
            "test" => g.test_guest(name),
            _ => g.example(language, name),
        };
        let module = runtime
            .load_file(&path)
            .unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
        runtime.operator(module, BTreeMap::new())
    };
    let mut others = [
        ("wasm-flat-map", flat("test", "map-uppercase"), false),
        ("python", flat("python", "uppercase"), true),
        ("js", flat("js", "uppercase"), true),
        ("go", flat("go", "uppercase"), false),
    ];

    // The typed design, on an engine configured like Weir's.
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    let engine = Engine::new(&config).expect("engine");
    let component = Component::from_file(&engine, g.test_guest("typed-uppercase")).expect("typed guest");
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
    let mut store = Store::new(
        &engine,
        TypedHost {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    store.set_epoch_deadline(u64::MAX);
    let typed = typed::Typed::instantiate(&mut store, &component, &linker).expect("instantiate typed");

    let mut group = c.benchmark_group("uppercase");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for value_size in VALUE_SIZES {
        for batch in BATCHES {
            let evs = events(batch, value_size);
            let want: Vec<EventResult> = native_uppercase(&evs)
                .into_iter()
                .map(|o| {
                    EventResult::Outputs(vec![Output {
                        key: o.key.map(<[u8]>::to_vec),
                        value: o.value,
                        headers: o.headers.to_vec(),
                        ..Output::default()
                    }])
                })
                .collect();
            assert_eq!(op.process(&encode_events(&evs)).expect("wasm").into_owned(), want);
            group.throughput(Throughput::Elements(batch as u64));
            let id = format!("batch={batch}/value={value_size}B");
            group.bench_function(BenchmarkId::new("native", &id), |b| {
                b.iter(|| consume_native(&native_uppercase(black_box(&evs))))
            });
            // One encoder, cleared per batch, as a task keeps one.
            let mut enc = BatchEncoder::new();
            group.bench_function(BenchmarkId::new("wasm-flat", &id), |b| {
                b.iter(|| {
                    enc.clear();
                    black_box(&evs).iter().for_each(|e| enc.push_event(e));
                    consume_wasm(&op.process(&enc).expect("process"))
                })
            });
            for (name, other, slow) in &mut others {
                assert_eq!(
                    other.process(&encode_events(&evs)).expect(name).into_owned(),
                    want,
                    "{name}"
                );
                if *slow && batch == 1 {
                    continue;
                }
                if *name == "python" && value_size == 1024 {
                    // The Python guest's memory grows with every call until
                    // it passes its 256 MiB cap: within ~100 calls of 1 MiB
                    // batches, a few thousand of 64 KiB ones (BENCHMARKS.md:
                    // found, open).
                    eprintln!("python, {batch} × 1 KiB: not measured (the guest runs out of memory)");
                    continue;
                }
                group.bench_function(BenchmarkId::new(*name, &id), |b| {
                    b.iter(|| {
                        enc.clear();
                        black_box(&evs).iter().for_each(|e| enc.push_event(e));
                        consume_wasm(&other.process(&enc).expect("process"))
                    })
                });
            }
            group.bench_function(BenchmarkId::new("wasm-typed", &id), |b| {
                b.iter(|| {
                    let input: Vec<tp::Event> = black_box(&evs).iter().map(to_typed).collect();
                    let out = typed
                        .bench_typed_processor()
                        .call_process(&mut store, &input)
                        .expect("typed");
                    out.iter()
                        .map(|o| {
                            o.key.as_ref().map_or(0, Vec::len)
                                + o.value.as_ref().map_or(0, Vec::len)
                                + o.headers
                                    .iter()
                                    .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len))
                                    .sum::<usize>()
                        })
                        .sum::<usize>()
                })
            });
        }
    }
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let g = support::guests();
    let mut group = c.benchmark_group("instantiate");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for pooling in [false, true] {
        let runtime = Runtime::new(RuntimeConfig {
            pooling,
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let module = runtime.load_file(&g.example("rust", "uppercase")).expect("load");
        let name = if pooling { "pooling" } else { "on-demand" };
        group.bench_function(BenchmarkId::new("rust-uppercase", name), |b| {
            b.iter(|| {
                let mut op = runtime.operator(module.clone(), BTreeMap::new());
                op.warm_up().expect("instantiate");
                op
            })
        });
    }
    group.finish();
}

criterion_group!(benches, boundary, instantiate);
criterion_main!(benches);
