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

#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::producer::Producer as _;
use support::kafka::{In, WeirProcess, broker, create_topic, producer, send, unique};
use weir::kafka::{Instance, RunOptions};
use weir::pipeline::Pipeline;
use weir::runtime::{Runtime, RuntimeConfig};
use weir::task::Chain;

const PARTITIONS: i32 = 4;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
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

fn load(topic: &str, n: usize, partitions: i32, key: impl Fn(usize) -> String) {
    let p = producer();
    for i in 0..n {
        let value: String = (0..100).map(|j| (b'a' + ((i + j) % 26) as u8) as char).collect();
        send(
            &p,
            topic,
            &In {
                key: Some(key(i).into_bytes()),
                // 1 ms of event time per record: 10 s windows of 10 000 records.
                timestamp: Some(1_767_571_200_000 + i as i64),
                partition: Some((i % partitions as usize) as i32),
                ..In::value(value)
            },
        );
    }
    p.flush(Duration::from_secs(120)).expect("flush input");
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
            &input,
            n,
            &format!("[[stage]]\nmodule = \"{}\"\n", upper.display()),
        ));
        windowed.push(run_in_process(
            &runtime,
            &input,
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

fn run_in_process(runtime: &Runtime, input: &str, n: usize, stage: &str) -> f64 {
    let output = unique("bench-state-out");
    create_topic(&output, PARTITIONS);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bench.toml");
    std::fs::write(
        &file,
        format!(
            "application-id = \"{}\"\ninputs = [\"{input}\"]\nstate-dir = \"{}\"\n{stage}\
             [outputs]\ndefault = \"{output}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n",
            unique("bench-state"),
            dir.path().join("state").display(),
            broker().bootstrap
        ),
    )
    .expect("write the pipeline");
    let pipeline = Pipeline::load(&file).expect("pipeline");
    let chain = Chain::load(&pipeline, runtime).expect("chain");
    let stop = Arc::new(AtomicBool::new(false));
    let options = RunOptions {
        instance_id: unique("i"),
        stop: stop.clone(),
        ..RunOptions::default()
    };
    let instance = Instance::connect(&pipeline, chain, options).expect("connect");
    let metrics = instance.metrics().clone();
    let watch = std::thread::spawn(move || {
        let mut start = None;
        loop {
            let consumed = metrics.consumed.load(Ordering::Relaxed) as usize;
            if consumed > 0 {
                start.get_or_insert_with(Instant::now);
            }
            if consumed >= n {
                stop.store(true, Ordering::Relaxed);
                return start;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    instance.run().expect("run");
    let start = watch.join().expect("watcher");
    n as f64 / start.map_or(f64::NAN, |s| s.elapsed().as_secs_f64())
}

/// Seconds of the log's clock from "partitions assigned" to the last store
/// ready, and the records the restores applied.
fn ready(w: &mut WeirProcess) -> (f64, u64) {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let log = w.log_text();
        let done = log
            .lines()
            .rfind(|l| l.contains("restored state") || l.contains("state is up to date"));
        let assigned = log.lines().find(|l| l.contains("partitions assigned"));
        if let (Some(done), Some(assigned)) = (done, assigned) {
            let applied: u64 = log
                .lines()
                .filter(|l| l.contains("restored state"))
                .filter_map(|l| {
                    l.split("applied=")
                        .nth(1)?
                        .split_whitespace()
                        .next()?
                        .parse::<u64>()
                        .ok()
                })
                .sum();
            return (clock(done) - clock(assigned), applied);
        }
        assert!(
            w.running() && Instant::now() < deadline,
            "no store became ready:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Seconds since midnight of a log line's RFC 3339 timestamp (`…THH:MM:SS.ffffffZ`).
fn clock(line: &str) -> f64 {
    let t = line
        .split('T')
        .nth(1)
        .unwrap_or("")
        .trim_end_matches(|c: char| c != 'Z');
    let t = t.split('Z').next().unwrap_or("");
    let mut parts = t.split(':').map(|p| p.parse::<f64>().unwrap_or(0.0));
    let (h, m, s) = (
        parts.next().unwrap_or(0.0),
        parts.next().unwrap_or(0.0),
        parts.next().unwrap_or(0.0),
    );
    h * 3600.0 + m * 60.0 + s
}

/// Records/s of a bare consumer reading `topic`[0] from the start to its end.
fn bare_consume(topic: &str) -> (u64, f64) {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", unique("bench-bare"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "50")
        .set("max.partition.fetch.bytes", "16777216")
        .create()
        .expect("bare consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .expect("offset");
    consumer.assign(&tpl).expect("assign");
    let (mut n, start) = (0u64, Instant::now());
    loop {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                use rdkafka::message::{Headers as _, Message as _};
                // The same per-record work a restore starts with: read the key,
                // value and headers.
                std::hint::black_box((m.key(), m.payload(), m.headers().map(|h| h.count())));
                n += 1;
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => break,
            Some(Err(e)) => panic!("bare consume: {e}"),
        }
    }
    (n, n as f64 / start.elapsed().as_secs_f64())
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

fn consumed_all(w: &WeirProcess, keys: usize) -> bool {
    // The admin API's /metrics says how far the instance is.
    let log = w.log_text();
    let Some(addr) = log
        .split("admin API at http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
    else {
        return false;
    };
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    use std::io::{Read as _, Write as _};
    let _ = write!(s, "GET /metrics HTTP/1.0\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    let consumed = body
        .lines()
        .find(|l| l.starts_with("weir_records_consumed_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let commits_after = body
        .lines()
        .find(|l| l.starts_with("weir_commits_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    consumed >= keys && commits_after > 0
}

fn remove(p: &Path) {
    std::fs::remove_dir_all(p).expect("remove the state directory");
}
