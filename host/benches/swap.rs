//! The pause a hot swap causes, on a broker, with input flowing.
//!
//! A `weir run` process (release build) upper-cases a steady stream (4
//! partitions, exactly-once, 100 ms commit interval). A consumer reading the
//! output with `read_uncommitted` notes when each output arrives and which
//! version made it (`weir.module`). Mid-stream the bench writes an activation
//! to the registry and measures:
//!
//! - **activation seen → swapped**: inside the instance, from noticing the
//!   activation to having swapped it in (fetch, compile or cache load, the
//!   transaction boundary, the swap), as it logs it;
//! - **write → first v2 output**: from starting to write the activation (a
//!   new producer, ~100 ms of it) to the first output of the new version
//!   reaching the reader;
//! - **swap pause**: how long the processing loop stopped to swap (the new
//!   version instantiated in every task), as the instance reports it;
//! - **largest output gap**: the longest time without any output between the
//!   activation and one second after the first v2 output, against the same
//!   measure over the two seconds before the activation (the baseline: what
//!   commits and fetches cause anyway).
//!
//! Each case runs `WEIR_BENCH_REPS` times (default 3); the table shows medians.
//! Cases: a precompiled module (pushed from this machine, so the compiled
//! code is in the module cache), the same module cold (`--no-cache`), and a
//! cold 19 MB Python component.
//!
//! Run: `cargo bench -p weir --bench swap` (nisshi on loopback, as the tests
//! use; or `WEIR_TEST_BOOTSTRAP=host:port`).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers as _, Message as _};
use support::kafka::{In, WeirProcess, admin_addr, broker, create_topic, http_get, producer, send, unique};
use weir::registry::{Activation, Pushed, Registry};
use weir::runtime::{Runtime, RuntimeConfig};
use weir::units::now_ms;

const PARTITIONS: i32 = 4;
/// Input records per second.
const RATE: u64 = 4000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let g = support::guests();
    let cases = [
        ("precompiled (Rust, 60 KB)", g.example("rust", "exclaim"), false),
        ("cold (Rust, 60 KB)", g.example("rust", "exclaim"), true),
        ("cold (Python, 19 MB)", g.example("python", "words"), true),
    ];
    println!(
        "| case | activation seen → swapped | swap pause | write → first v2 output | largest output gap (swap) | \
         largest output gap (baseline) |"
    );
    println!("|---|---|---|---|---|---|");
    let reps: usize = std::env::var("WEIR_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for (name, module, cold) in cases {
        let runs: Vec<Result> = (0..reps).map(|_| run_case(&module, cold)).collect();
        let median = |f: fn(&Result) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "| {name} | {:.0} ms | {:.2} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            median(|r| r.seen_to_swap_ms),
            median(|r| r.pause_ms),
            median(|r| r.first_v2_ms),
            median(|r| r.gap_swap_ms),
            median(|r| r.gap_base_ms)
        );
    }
}

struct Result {
    seen_to_swap_ms: f64,
    first_v2_ms: f64,
    pause_ms: f64,
    gap_swap_ms: f64,
    gap_base_ms: f64,
}

fn run_case(module: &std::path::Path, cold: bool) -> Result {
    let g = support::guests();
    let dir = tempfile::tempdir().expect("temp dir");
    let (input, output, app) = (unique("bs-in"), unique("bs-out"), unique("bench-swap"));
    create_topic(&input, PARTITIONS);
    create_topic(&output, PARTITIONS);
    let file = dir.path().join("swap.toml");
    std::fs::write(
        &file,
        format!(
            "application-id = \"{app}\"\ninputs = [\"{input}\"]\ncommit-interval = \"100ms\"\n[[stage]]\nname = \"shout\"\n\
             module = \"{}\"\n[outputs]\ndefault = \"{output}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n",
            g.example("rust", "uppercase").display(),
            broker().bootstrap
        ),
    )
    .expect("write the pipeline");
    let mut w = WeirProcess::start(&file, "0", if cold { &["--no-cache"] } else { &[] });
    let addr = admin_addr(&mut w);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.log_text().contains("partitions assigned") {
        assert!(
            Instant::now() < deadline && w.running(),
            "no assignment:\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (stop, input) = (stop.clone(), input.clone());
        std::thread::spawn(move || {
            let p = producer();
            let start = Instant::now();
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                // Steady: record i goes out at i / RATE seconds.
                let due = Duration::from_micros(i * 1_000_000 / RATE);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
                send(
                    &p,
                    &input,
                    &In {
                        key: Some(format!("k{}", i % 64).into_bytes()),
                        partition: Some((i % PARTITIONS as u64) as i32),
                        ..In::value(format!("record {i}"))
                    },
                );
                i += 1;
            }
        })
    };
    let arrivals: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
    let reader = {
        let (stop, output, arrivals) = (stop.clone(), output.clone(), arrivals.clone());
        std::thread::spawn(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &broker().bootstrap)
                .set("group.id", unique("bench-swap-reader"))
                .set("auto.offset.reset", "earliest")
                .set("isolation.level", "read_uncommitted")
                .set("fetch.wait.max.ms", "5")
                .create()
                .expect("a reader");
            consumer.subscribe(&[&output]).expect("subscribe");
            while !stop.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(20)) {
                    let label = m
                        .headers()
                        .and_then(|h| h.iter().find(|h| h.key == "weir.module").and_then(|h| h.value))
                        .map(|v| {
                            String::from_utf8_lossy(v)
                                .split('@')
                                .next()
                                .unwrap_or_default()
                                .to_owned()
                        })
                        .unwrap_or_default();
                    if let Ok(mut a) = arrivals.lock() {
                        a.push((now_ms(), label));
                    }
                }
            }
        })
    };
    // Steady state first.
    std::thread::sleep(Duration::from_secs(4));

    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &broker().bootstrap);
    let registry = Registry::new(config, Duration::from_secs(30));
    registry.ensure_topics().expect("registry topics");
    let runtime = Runtime::new(RuntimeConfig {
        // Precompiled: validating the push leaves the compiled code in the
        // cache that `weir run` reads. Cold: nothing is cached.
        cache_dir: if cold { None } else { RuntimeConfig::default().cache_dir },
        ..RuntimeConfig::default()
    })
    .expect("a runtime");
    let bytes = std::fs::read(module).expect("the module");
    let name = unique("bench-v2");
    let loaded = runtime.load(&name, &bytes).expect("a valid module");
    let (Pushed::New(record) | Pushed::Existing(record)) = registry.push(&name, &bytes, loaded.info()).expect("push");
    let activation = Activation::next(None, None, record.reference(), None, now_ms());
    let writing = now_ms();
    registry.write_activation(&app, "shout", &activation).expect("activate");
    // The activation is in Kafka (acknowledged) from here on.
    let activated = now_ms();
    eprintln!(
        "  writing the activation took {} ms (a new producer)",
        activated - writing
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    let first_v2 = loop {
        let found = arrivals
            .lock()
            .ok()
            .and_then(|a| a.iter().find(|(_, l)| *l == name).map(|(t, _)| *t));
        if let Some(t) = found {
            break t;
        }
        assert!(
            Instant::now() < deadline && w.running(),
            "no v2 output:\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_secs(1));
    let status: serde_json::Value = {
        let text = http_get(&addr, "/status");
        serde_json::from_str(text.split_once("\r\n\r\n").map_or("", |(_, b)| b)).expect("status JSON")
    };
    let pause_us = status["modules"][0]["last_pause_micros"].as_u64().unwrap_or(0);
    stop.store(true, Ordering::Relaxed);
    feeder.join().expect("feeder");
    reader.join().expect("reader");
    w.terminate(Duration::from_secs(60));
    // The instance logs how long after it saw the activation it swapped.
    let seen_to_swap = w
        .log_text()
        .lines()
        .find(|l| l.contains("swapped at"))
        .and_then(|l| l.split("since_activation_ms=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    for line in w.log_text().lines().filter(|l| {
        ["activation received", "new version ready", "swapped at"]
            .iter()
            .any(|m| l.contains(m))
    }) {
        eprintln!("  {line}");
    }
    eprintln!("  activation written at {activated} ms, first v2 output at {first_v2} ms");

    let times: Vec<i64> = arrivals
        .lock()
        .map(|a| a.iter().map(|(t, _)| *t).collect())
        .unwrap_or_default();
    let largest_gap = |from: i64, to: i64| -> f64 {
        let inside: Vec<i64> = times.iter().copied().filter(|t| *t >= from && *t <= to).collect();
        let mut edges = vec![from];
        edges.extend(inside);
        edges.push(to);
        edges.windows(2).map(|p| p[1] - p[0]).max().unwrap_or(0) as f64
    };
    Result {
        seen_to_swap_ms: seen_to_swap,
        first_v2_ms: (first_v2 - writing) as f64,
        pause_ms: pause_us as f64 / 1000.0,
        gap_swap_ms: largest_gap(activated, first_v2 + 1000),
        gap_base_ms: largest_gap(activated - 2000, activated),
    }
}
