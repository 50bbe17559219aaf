//! What the broker benchmarks share: loading topics, running a pipeline in
//! process until it has consumed its input, reading restore times from an
//! instance's log, and a bare consumer as a baseline.

#![allow(dead_code, reason = "each bench uses a different part")]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::producer::Producer as _;

use crate::support::kafka::{In, WeirProcess, broker, create_topic, producer, send, unique};
use weir::kafka::{Instance, RunOptions};
use weir::pipeline::Pipeline;
use weir::runtime::Runtime;
use weir::task::Chain;

/// A numeric setting from the environment (`WEIR_BENCH_…`), else `default`.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Writes a pipeline file in `dir` reading `inputs` with `stage` (TOML of
/// `[[stage]]` tables) into a new 4-partition output topic, exactly-once, on
/// the test broker, with its state under `dir`; `kafka` adds lines to its
/// `[kafka]` table.
pub fn pipeline_file(
    dir: &std::path::Path,
    prefix: &str,
    inputs: &[&str],
    stage: &str,
    kafka: &str,
) -> std::path::PathBuf {
    let app = unique(prefix);
    let output = unique(&format!("{prefix}-out"));
    create_topic(&output, 4);
    let file = dir.join(format!("{app}.toml"));
    std::fs::write(
        &file,
        format!(
            "application-id = \"{app}\"\ninputs = [{}]\nstate-dir = \"{}\"\n{stage}\
             [outputs]\ndefault = \"{output}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n{kafka}",
            inputs.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", "),
            dir.join(format!("{app}-state")).display(),
            broker().bootstrap
        ),
    )
    .expect("write the pipeline");
    file
}

/// Loads `n` records of 100 bytes into `topic`, record `i` keyed `key(i)`
/// in partition `i % partitions`, 1 ms of event time apart (10 s windows
/// of 10 000 records).
pub fn load(topic: &str, n: usize, partitions: i32, key: impl Fn(usize) -> String) {
    load_with(topic, n, |i| (key(i), (i % partitions as usize) as i32, value(i)));
}

/// A 100-byte value of lower-case letters.
pub fn value(i: usize) -> String {
    (0..100).map(|j| (b'a' + ((i + j) % 26) as u8) as char).collect()
}

/// Loads `n` records into `topic`: record `i` is `record(i)` = (key,
/// partition, value), 1 ms of event time apart.
pub fn load_with(topic: &str, n: usize, record: impl Fn(usize) -> (String, i32, String)) {
    let p = producer();
    for i in 0..n {
        let (key, partition, value) = record(i);
        send(
            &p,
            topic,
            &In {
                key: Some(key.into_bytes()),
                timestamp: Some(1_767_571_200_000 + i as i64),
                partition: Some(partition),
                ..In::value(value)
            },
        );
    }
    p.flush(Duration::from_secs(120)).expect("flush input");
}

/// Runs the pipeline of `stages` over `inputs` in process, exactly-once,
/// until it has consumed `n` records; records/s from the first consumed.
pub fn run_in_process(runtime: &Runtime, inputs: &[&str], n: usize, stage: &str) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = pipeline_file(dir.path(), "bench-state", inputs, stage, "");
    let pipeline = Pipeline::load(&file).expect("pipeline");
    let chain = Chain::load(&pipeline, runtime).expect("chain");
    let stop = weir::shutdown::Shutdown::new();
    let options = RunOptions {
        instance_id: unique("i"),
        shutdown: stop.clone(),
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
                stop.request();
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
pub fn ready(w: &mut WeirProcess) -> (f64, u64) {
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
pub fn clock(line: &str) -> f64 {
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
pub fn bare_consume(topic: &str) -> (u64, f64) {
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

/// Whether the instance has consumed `keys` records and committed since.
pub fn consumed_all(w: &WeirProcess, keys: usize) -> bool {
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

/// What a benchmarked process used: wall time from its start to its exit,
/// from its first record consumed to its exit, CPU time (user + system, all
/// threads) and peak resident memory.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Wall seconds from process start to exit.
    pub wall: f64,
    /// Wall seconds from the first record consumed to exit.
    pub processing: f64,
    /// CPU seconds spent before the first record was consumed (starting,
    /// joining the group); NaN where not measured.
    pub startup_cpu: f64,
    /// CPU seconds.
    pub cpu: f64,
    /// Peak resident set, KiB.
    pub peak_rss_kib: u64,
}

/// CPU seconds (user + system) and peak RSS (KiB) of a live process, from /proc.
pub fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) in clock ticks; after the ")" they are 12 and 13.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    // Clock ticks are 100 per second on Linux (USER_HZ).
    Some((ticks / 100.0, kib("VmHWM:")?))
}

/// CPU seconds of a live process by thread name (digits dropped, so that
/// e.g. librdkafka's broker threads add up), largest first.
pub fn proc_threads(pid: u32) -> Vec<(String, f64)> {
    let mut by: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    for t in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some((head, rest))) = (stat.find('('), stat.rsplit_once(')')) else {
            continue;
        };
        let name: String = head[open + 1..].chars().filter(|c| !c.is_ascii_digit()).collect();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        *by.entry(name).or_default() += ticks / 100.0;
    }
    let mut v: Vec<(String, f64)> = by.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// Current resident set of a live process, KiB.
pub fn proc_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Runs `weir run FILE` as a process until it has consumed `n` records, then
/// stops it (SIGTERM: a final commit); what it used, counted from its start.
pub fn run_weir_process(file: &std::path::Path, n: usize, extra: &[&str]) -> Usage {
    let started = Instant::now();
    // Weir's default, one thread per core (the tests' harness would pick two).
    let threads = weir::task::Workers::per_core().to_string();
    let mut args = vec!["--threads", &threads];
    args.extend_from_slice(extra);
    let mut w = WeirProcess::start(file, "0", &args);
    let mut first = None;
    let mut last = (0.0, 0);
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        assert!(
            w.running() && Instant::now() < deadline,
            "weir did not consume {n} records:\n{}",
            w.log_text()
        );
        if let Some(u) = proc_usage(w.pid()) {
            last = u;
        }
        let consumed = consumed(&w);
        if consumed > 0 {
            first.get_or_insert_with(|| (Instant::now(), last.0));
        }
        if consumed >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(u) = proc_usage(w.pid()) {
        last = u;
    }
    let threads: Vec<String> = proc_threads(w.pid())
        .into_iter()
        .take(8)
        .map(|(name, cpu)| format!("{name} {cpu:.2}s"))
        .collect();
    eprintln!("  CPU by thread: {}", threads.join(", "));
    assert!(w.terminate(Duration::from_secs(60)).success(), "{}", w.log_text());
    Usage {
        wall: started.elapsed().as_secs_f64(),
        processing: first.map_or(f64::NAN, |(f, _)| f.elapsed().as_secs_f64()),
        startup_cpu: first.map_or(f64::NAN, |(_, cpu)| cpu),
        cpu: last.0,
        peak_rss_kib: last.1,
    }
}

/// Records consumed so far, from the instance's /metrics (0 before it serves them).
pub fn consumed(w: &WeirProcess) -> usize {
    metric(w, "weir_records_consumed_total").unwrap_or(0.0) as usize
}

/// A metric's value from the admin API of `w`.
pub fn metric(w: &WeirProcess, name: &str) -> Option<f64> {
    let log = w.log_text();
    let addr = log
        .split("admin API at http://")
        .nth(1)
        .and_then(|r| r.split('/').next())?;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    use std::io::{Read as _, Write as _};
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
