//! Stateful processing on a broker, in one run:
//!
//! 1. **Windowed aggregation vs stateless**: the same preloaded input through
//!    a stateless `uppercase` pipeline and through a windowed `count`
//!    (tumbling 10 s, `final`) — both exactly-once, in process, records/s
//!    from the first record consumed to the last commit.
//! 2. **Restore speed**: `weir run` counts 1M distinct keys (a store of 1M
//!    entries, its changelog 1M records plus bookkeeping); then its state
//!    directory is deleted and a new `weir run` restores the whole store from
//!    the changelog. Records/s as the restore logs them.
//! 3. **Resume after SIGKILL vs full restore**: the same instance is
//!    SIGKILLed and restarted with its state directory: the time from its
//!    assignment to "store ready" (local state plus the changelog tail),
//!    against the time the full restore took.
//!
//! Run: `cargo bench -p weir --bench state` (nisshi on loopback, as the
//! tests use; or `WEIR_TEST_BOOTSTRAP=host:port`). `WEIR_BENCH_RECORDS` sizes
//! part 1 (default 200000), `WEIR_BENCH_KEYS` parts 2 and 3 (default 1000000);
//! `WEIR_BENCH_PARTS=windowed` or `=restore` runs one half.
//!
//! Times to ready are measured inside the instance, from the moment its
//! partitions are assigned to the moment its stores are ready (from its log's
//! timestamps): the consumer group's own wait for a dead member's session to
//! expire is Kafka's and the same either way. The baseline for the restore
//! rate is a bare librdkafka consumer reading the same changelog in the same
//! run.

#[path = "common/mod.rs"]
mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{bare_consume, consumed_all, load, ready, run_in_process};
use support::kafka::{WeirProcess, broker, create_topic, unique};
use weir::runtime::{Runtime, RuntimeConfig};

const PARTITIONS: i32 = 4;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let env = common::setting;
    let n = env("WEIR_BENCH_RECORDS", 200_000);
    let keys = env("WEIR_BENCH_KEYS", 1_000_000);
    let reps = env("WEIR_BENCH_REPS", 3);
    let parts = std::env::var("WEIR_BENCH_PARTS").unwrap_or_else(|_| "windowed,restore".into());
    if parts.contains("windowed") {
        windowed_vs_stateless(n, reps);
    }
    if parts.contains("restore") {
        restore_and_resume(keys);
    }
}

fn windowed_vs_stateless(n: usize, reps: usize) {
    let input = unique("bench-state-in");
    create_topic(&input, PARTITIONS);
    eprintln!("loading {n} records of 100 bytes into {input}");
    load(&input, n, PARTITIONS, |i| format!("key-{}", i % 1000));
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let upper = support::guests().example("rust", "uppercase");
    let count = support::guests().example("rust", "count");
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut stateless, mut windowed) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        stateless.push(run_in_process(
            &runtime,
            &[&input],
            n,
            &format!("[[stage]]\nmodule = \"{}\"\n", upper.display()),
        ));
        windowed.push(run_in_process(
            &runtime,
            &[&input],
            n,
            &format!(
                "[[stage]]\nname = \"count\"\nkind = \"aggregate\"\nmodule = \"{}\"\n\
                 window = {{ kind = \"tumbling\", size = \"10s\" }}\nemit = \"final\"\n",
                count.display()
            ),
        ));
    }
    let (s, w) = (median(stateless), median(windowed));
    println!("| exactly-once, {n} records, 4 partitions | records/s |");
    println!("|---|---|");
    println!("| stateless (wasm uppercase) | {s:.0} |");
    println!("| windowed count (tumbling 10 s, final; RocksDB + changelog) | {w:.0} |");
    println!("| windowed ÷ stateless | {:.0}% |", 100.0 * w / s);
}

fn restore_and_resume(keys: usize) {
    let input = unique("bench-keys-in");
    let output = unique("bench-keys-out");
    create_topic(&input, 1);
    create_topic(&output, 1);
    eprintln!("loading {keys} records with distinct keys into {input}");
    load(&input, keys, 1, |i| format!("key-{i:08}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("count.toml");
    let app = unique("bench-keys");
    std::fs::write(
        &file,
        format!(
            "application-id = \"{}\"\ninputs = [\"{input}\"]\nstate-dir = \"{}\"\n\
             [[stage]]\nname = \"count\"\nkind = \"aggregate\"\nmodule = \"{}\"\n\
             [outputs]\ndefault = \"{output}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\"session.timeout.ms\" = 6000\n",
            app,
            dir.path().join("state").display(),
            support::guests().example("rust", "count").display(),
            broker().bootstrap
        ),
    )
    .expect("write the pipeline");
    // Build the store: every key counted once.
    let mut w = WeirProcess::start(&file, "0", &[]);
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while !consumed_all(&w, keys) {
        assert!(
            w.running() && Instant::now() < deadline,
            "weir did not finish:\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Past the commit interval: the last records are committed too.
    std::thread::sleep(Duration::from_secs(1));
    eprintln!("store of {keys} keys built in {:.1} s", started.elapsed().as_secs_f64());
    // A crash: SIGKILL, then restart with the state directory.
    w.kill();
    let mut w = WeirProcess::start(&file, "0", &[]);
    let (resume, tail) = ready(&mut w);
    w.kill();
    // A new machine: no state directory.
    remove(&dir.path().join("state"));
    let mut w = WeirProcess::start(&file, "0", &[]);
    let (full, applied) = ready(&mut w);
    assert!(w.terminate(Duration::from_secs(60)).success(), "{}", w.log_text());
    let (read, bare) = bare_consume(&format!("{app}-count-changelog"));
    println!("\n| store of {keys} keys | assigned → ready | changelog records applied | records/s |");
    println!("|---|---|---|---|");
    println!("| resume after SIGKILL (local state + tail) | {resume:.3} s | {tail} | — |");
    println!(
        "| full restore (no local state) | {full:.2} s | {applied} | {:.0} |",
        applied as f64 / full
    );
    println!("| bare librdkafka consumer, same changelog | — | {read} read | {bare:.0} |");
    println!(
        "\nresume ÷ full restore: {:.2}%; restore rate ÷ bare consumer: {:.0}%",
        100.0 * resume / full,
        100.0 * (applied as f64 / full) / bare
    );
}

fn remove(p: &Path) {
    std::fs::remove_dir_all(p).expect("remove the state directory");
}
