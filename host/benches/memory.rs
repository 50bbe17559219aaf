//! Resident memory of a `weir run` instance, against what it holds:
//!
//! 1. **partitions**: a stateless `uppercase` over 1, 4 and 16 partitions;
//! 2. **keys**: a `count` (no window) over 10 000, 100 000 and 1 000 000
//!    distinct keys (a store of that many entries);
//! 3. **windows**: a `count` in 1 s tumbling windows with an hour's grace,
//!    so that every window stays open: 10 000, 100 000 and 1 000 000 open
//!    key-windows (1 000 keys);
//! 4. **back-pressure**: a stateless `uppercase` whose outputs cannot leave
//!    (the broker is stopped with SIGSTOP for 15 s while the instance has
//!    input queued): memory during the stall against the configured queues.
//!
//! Each figure is the peak resident set (`VmHWM`) of a fresh `weir run`
//! process that consumed all its input, next to the baseline measured in the
//! same run: the same instance idle (assigned an empty topic). Run:
//! `cargo bench -p weir --bench memory` (nisshi on loopback; part 4 needs it,
//! not an external broker). `WEIR_BENCH_PARTS=partitions,keys,windows,pressure`.

#[path = "common/mod.rs"]
mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{consumed, load, load_with, proc_rss, proc_usage, run_weir_process, value};
use support::kafka::{WeirProcess, broker, create_topic, unique};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let parts = std::env::var("WEIR_BENCH_PARTS").unwrap_or_else(|_| "partitions,keys,windows,pressure".into());
    let g = support::guests();
    let upper = format!("[[stage]]\nmodule = \"{}\"\n", g.example("rust", "uppercase").display());
    let count = |window: &str| {
        format!(
            "[[stage]]\nname = \"count\"\nkind = \"aggregate\"\nmodule = \"{}\"\n{window}",
            g.example("rust", "count").display()
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let base = idle(dir.path(), &upper);
    println!(
        "\nbaseline: an idle instance (assigned one empty partition): {} MiB\n",
        base / 1024
    );
    let row = |what: &str, records: usize, kib: u64| {
        println!(
            "| {what} | {records} | {} MiB | {:.2}× |",
            kib / 1024,
            kib as f64 / base as f64
        );
    };
    println!("| instance | records | peak RSS | ÷ idle |");
    println!("|---|---|---|---|");
    if parts.contains("partitions") {
        for p in [1, 4, 16] {
            let n = 200_000;
            let input = unique("bench-mem-in");
            create_topic(&input, p);
            load(&input, n, p, |i| format!("key-{}", i % 1000));
            let u = run_weir_process(&pipeline(dir.path(), &input, &upper), n, &[]);
            row(&format!("stateless, {p} partition(s)"), n, u.peak_rss_kib);
        }
    }
    if parts.contains("keys") {
        for keys in [10_000, 100_000, 1_000_000] {
            let input = unique("bench-mem-in");
            create_topic(&input, 4);
            load(&input, keys, 4, |i| format!("key-{i:08}"));
            let u = run_weir_process(&pipeline(dir.path(), &input, &count("")), keys, &[]);
            row(&format!("count, {keys} keys (4 partitions)"), keys, u.peak_rss_kib);
        }
    }
    if parts.contains("windows") {
        for windows in [10_000, 100_000, 1_000_000] {
            // 1 000 keys, one record per key and 1 s window, all windows open.
            let input = unique("bench-mem-in");
            create_topic(&input, 4);
            load_with(&input, windows, |i| {
                let key = i % 1000;
                (format!("key-{key:04}"), (key % 4) as i32, value(i))
            });
            let spec = count("window = { kind = \"tumbling\", size = \"1s\", grace = \"1h\" }\nemit = \"final\"\n");
            let u = run_weir_process(&pipeline(dir.path(), &input, &spec), windows, &[]);
            row(
                &format!("count, {windows} open 1 s windows (1 000 keys)"),
                windows,
                u.peak_rss_kib,
            );
        }
    }
    if parts.contains("pressure") {
        pressure(dir.path(), &upper, base);
    }
}

/// The RSS of an instance assigned one empty partition, once it is running.
fn idle(dir: &Path, stage: &str) -> u64 {
    let input = unique("bench-mem-idle");
    create_topic(&input, 1);
    let mut w = WeirProcess::start(&pipeline(dir, &input, stage), "0", &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.log_text().contains("partitions assigned") {
        assert!(w.running() && Instant::now() < deadline, "{}", w.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let rss = proc_rss(w.pid()).expect("the idle instance's RSS");
    assert!(w.terminate(Duration::from_secs(60)).success(), "{}", w.log_text());
    rss
}

/// Outputs that cannot leave: the broker is frozen while the instance has
/// input queued, and the instance's memory sampled during the stall.
fn pressure(dir: &Path, stage: &str, base: u64) {
    let Some(pid) = broker().pid() else {
        println!("\nback-pressure: skipped (an external broker cannot be frozen)");
        return;
    };
    let n = 1_000_000;
    let input = unique("bench-mem-in");
    create_topic(&input, 4);
    load(&input, n, 4, |i| format!("key-{}", i % 1000));
    let file = pipeline(dir, &input, stage);
    let mut w = WeirProcess::start(&file, "0", &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while consumed(&w) < 50_000 {
        assert!(w.running() && Instant::now() < deadline, "{}", w.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = proc_rss(w.pid()).unwrap_or(0);
    let signal = |s: &str| {
        Command::new("kill")
            .args([format!("-{s}"), pid.to_string()])
            .status()
            .expect("signal the broker");
    };
    signal("STOP");
    let stalled = Instant::now();
    let mut max = 0;
    while stalled.elapsed() < Duration::from_secs(15) {
        max = max.max(proc_rss(w.pid()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
    }
    signal("CONT");
    let deadline = Instant::now() + Duration::from_secs(300);
    while consumed(&w) < n {
        assert!(w.running() && Instant::now() < deadline, "{}", w.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let peak = proc_usage(w.pid()).map_or(0, |(_, peak)| peak);
    assert!(w.terminate(Duration::from_secs(60)).success(), "{}", w.log_text());
    println!("\nback-pressure: {n} records of 100 bytes, 4 partitions; the broker frozen for 15 s after 50 000");
    println!("\n| moment | RSS | ÷ idle |");
    println!("|---|---|---|");
    for (what, kib) in [
        ("before the stall", before),
        ("largest during the stall", max),
        ("peak over the whole run", peak),
    ] {
        println!("| {what} | {} MiB | {:.2}× |", kib / 1024, kib as f64 / base as f64);
    }
}

/// A pipeline file over `input` with `stage`, exactly-once.
fn pipeline(dir: &Path, input: &str, stage: &str) -> PathBuf {
    common::pipeline_file(dir, "bench-mem", &[input], stage, "")
}
