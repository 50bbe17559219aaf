//! End to end on a broker: a Weir pipeline running the `uppercase` example
//! against a plain rdkafka consume → upper-case → produce loop with the same
//! settings, on the same broker, in the same run, for both guarantees.
//!
//! Each run starts from a fresh consumer group and output topic and reads the
//! same preloaded input; the clock runs from the first record consumed to the
//! last commit (and the consumer leaving the group). Records/s and the ratios
//! are printed as a Markdown table.
//!
//! Run: `cargo bench -p weir --bench kafka` (nisshi on loopback, as the tests
//! use; or `WEIR_TEST_BOOTSTRAP=host:port` for another broker).
//! `WEIR_BENCH_RECORDS` sets the input size (default 200000).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use support::kafka::{In, broker, create_topic, producer, send, unique};
use weir::kafka::{Instance, RunOptions};
use weir::pipeline::{Guarantee, Pipeline};
use weir::runtime::{Runtime, RuntimeConfig};
use weir::task::Chain;

const PARTITIONS: i32 = 4;
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // and expects a quick exit.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("WEIR_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let input = unique("bench-in");
    create_topic(&input, PARTITIONS);
    eprintln!(
        "loading {n} records of 100 bytes into {input} on {}",
        broker().bootstrap
    );
    let p = producer();
    for i in 0..n {
        let value: String = (0..100).map(|j| (b'a' + ((i + j) % 26) as u8) as char).collect();
        send(
            &p,
            &input,
            &In {
                key: Some(format!("key-{}", i % 1000).into_bytes()),
                ..In::value(value)
            },
        );
    }
    p.flush(Duration::from_secs(60)).expect("flush input");
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let label = {
        let m = runtime
            .load_file(&support::guests().example("rust", "uppercase"))
            .expect("load uppercase");
        weir::task::header_label(&m.info().version_label()).to_owned()
    };
    let reps: usize = std::env::var("WEIR_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "| guarantee | native loop | native loop + Weir's module header | weir pipeline (wasm uppercase) | weir ÷ native | weir ÷ native with header |"
    );
    println!("|---|---|---|---|---|---|");
    let mut weir_rates = Vec::new();
    for guarantee in [Guarantee::AtLeastOnce, Guarantee::ExactlyOnce] {
        let (mut native, mut with_header, mut weir) = (Vec::new(), Vec::new(), Vec::new());
        // Interleaved, so that a slow phase of the broker hits all three.
        for _ in 0..reps {
            native.push(native_loop(&input, n, guarantee, None));
            with_header.push(native_loop(&input, n, guarantee, Some(&label)));
            weir.push(weir_pipeline(&runtime, &input, n, guarantee));
        }
        let (native, with_header, weir) = (median(native), median(with_header), median(weir));
        println!(
            "| {guarantee} | {native:.0} rec/s | {with_header:.0} rec/s | {weir:.0} rec/s | {:.0}% | {:.0}% |",
            100.0 * weir / native,
            100.0 * weir / with_header
        );
        weir_rates.push(weir);
    }
    println!(
        "\nweir exactly-once ÷ weir at-least-once: {:.0}% (medians of {reps} runs of {n} records)",
        100.0 * weir_rates[1] / weir_rates[0]
    );
}

fn client(group: &str, guarantee: Guarantee) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("queued.max.messages.kbytes", "16384")
        .set(
            "isolation.level",
            if guarantee == Guarantee::ExactlyOnce {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        );
    c
}

/// The baseline: what a careful hand-written rdkafka service does, with the
/// settings Weir uses.
fn native_loop(input: &str, n: usize, guarantee: Guarantee, header: Option<&str>) -> f64 {
    let output = unique("bench-native-out");
    create_topic(&output, PARTITIONS);
    let group = unique("bench-native");
    let consumer: BaseConsumer = client(&group, guarantee).create().expect("consumer");
    let mut pc = ClientConfig::new();
    pc.set("bootstrap.servers", &broker().bootstrap)
        .set("linger.ms", "100")
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.kbytes", "65536")
        .set("enable.idempotence", "true");
    if guarantee == Guarantee::ExactlyOnce {
        pc.set("transactional.id", unique("bench-native-txn"));
    }
    let producer: ThreadedProducer<DefaultProducerContext> = pc.create().expect("producer");
    let timeout = Duration::from_secs(30);
    if guarantee == Guarantee::ExactlyOnce {
        producer.init_transactions(timeout).expect("init_transactions");
    }
    consumer.subscribe(&[input]).expect("subscribe");
    let mut next: std::collections::BTreeMap<i32, i64> = Default::default();
    let (mut count, mut start, mut last_commit, mut open) = (0usize, None, Instant::now(), false);
    let (mut commits, mut committing) = (0u32, Duration::ZERO);
    let commit = |next: &std::collections::BTreeMap<i32, i64>, open: &mut bool| {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in next {
            tpl.add_partition_offset(input, *p, Offset::Offset(*o)).expect("offset");
        }
        if guarantee == Guarantee::ExactlyOnce {
            if *open {
                let meta = consumer.group_metadata().expect("group metadata");
                producer
                    .send_offsets_to_transaction(&tpl, &meta, timeout)
                    .expect("send offsets");
                producer.commit_transaction(timeout).expect("commit");
                *open = false;
            }
        } else {
            producer.flush(timeout).expect("flush");
            if tpl.count() > 0 {
                consumer.commit(&tpl, CommitMode::Sync).expect("commit offsets");
            }
        }
    };
    while count < n {
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.expect("consume");
        start.get_or_insert_with(Instant::now);
        if guarantee == Guarantee::ExactlyOnce && !open {
            producer.begin_transaction().expect("begin");
            open = true;
        }
        let value = m.payload().unwrap_or_default().to_ascii_uppercase();
        let mut rec = BaseRecord::<[u8], [u8]>::to(&output).payload(&value);
        if let Some(k) = m.key() {
            rec = rec.key(k);
        }
        if let Some(t) = m.timestamp().to_millis() {
            rec = rec.timestamp(t);
        }
        if let Some(h) = header {
            rec = rec.headers(
                rdkafka::message::OwnedHeaders::new_with_capacity(1).insert(rdkafka::message::Header {
                    key: "weir.module",
                    value: Some(h),
                }),
            );
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        next.insert(m.partition(), m.offset() + 1);
        count += 1;
        if last_commit.elapsed() >= COMMIT_INTERVAL {
            let t = Instant::now();
            commit(&next, &mut open);
            committing += t.elapsed();
            commits += 1;
            last_commit = Instant::now();
        }
    }
    commit(&next, &mut open);
    eprintln!(
        "native{} {guarantee}: {commits} commits, {:.0} ms committing in all",
        if header.is_some() { " + header" } else { "" },
        committing.as_secs_f64() * 1000.0
    );
    consumer.unsubscribe();
    drop(consumer);
    let secs = start.map_or(f64::NAN, |s| s.elapsed().as_secs_f64());
    n as f64 / secs
}

fn weir_pipeline(runtime: &Runtime, input: &str, n: usize, guarantee: Guarantee) -> f64 {
    let output = unique("bench-weir-out");
    create_topic(&output, PARTITIONS);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bench.toml");
    std::fs::write(
        &file,
        format!(
            "application-id = \"{}\"\ninputs = [\"{input}\"]\nguarantee = \"{guarantee}\"\ncommit-interval = \"100ms\"\n\
             [[stage]]\nmodule = \"{}\"\n[outputs]\ndefault = \"{output}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n",
            unique("bench-weir"),
            support::guests().example("rust", "uppercase").display(),
            broker().bootstrap
        ),
    )
    .expect("write the pipeline");
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
    let snapshot_metrics = metrics.clone();
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
    let snapshot = instance.run().expect("run");
    let start = watch.join().expect("watcher");
    let commit_ms = metrics_commit_ms(&snapshot_metrics);
    eprintln!(
        "weir {guarantee}: {} commits, {commit_ms:.0} ms committing in all",
        snapshot.commits
    );
    let secs = start.map_or(f64::NAN, |s| s.elapsed().as_secs_f64());
    n as f64 / secs
}

fn metrics_commit_ms(m: &weir::metrics::Metrics) -> f64 {
    m.commit_micros.load(Ordering::Relaxed) as f64 / 1000.0
}
