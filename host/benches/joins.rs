//! Joins on a broker, each against its baseline in the same run:
//!
//! 1. **Stream-table join vs stateless**: the same preloaded orders (100 B,
//!    10 000 customers, 4 partitions) through a stateless `uppercase`
//!    pipeline and through a left join with a table of the 10 000 customers
//!    (`orders-enriched`'s shape, the `pair` joiner) — exactly-once, in
//!    process, orders/s from the first record consumed to the last.
//! 2. **Stream-stream join vs windowed aggregate**: the same searches and
//!    clicks (1 000 users, 1 ms apart) through a windowed `count` over both
//!    topics (tumbling 10 s, final) and through a left join within 1 s —
//!    records/s.
//! 3. **Table restore from its source topic vs a bare consumer**: a table
//!    of 500 000 keys is built by `weir run`, its state directory deleted,
//!    and a new `weir run` restores it from the topic itself; records/s from
//!    the instance's log, against a bare librdkafka consumer reading the same
//!    topic in the same run.
//!
//! Run: `cargo bench -p weir --bench joins` (nisshi on loopback, or
//! `WEIR_TEST_BOOTSTRAP=host:port`). `WEIR_BENCH_RECORDS` (default 200000),
//! `WEIR_BENCH_KEYS` (default 500000), `WEIR_BENCH_REPS` (default 3),
//! `WEIR_BENCH_PARTS=table,stream,restore` (default all).

#[path = "common/mod.rs"]
mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::{bare_consume, consumed_all, load_with, ready, run_in_process, value};
use support::kafka::{WeirProcess, broker, create_topic, unique};
use weir::runtime::{Runtime, RuntimeConfig};

const PARTITIONS: i32 = 4;
const CUSTOMERS: usize = 10_000;
const USERS: usize = 1_000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let env = common::setting;
    let n = env("WEIR_BENCH_RECORDS", 200_000);
    let keys = env("WEIR_BENCH_KEYS", 500_000);
    let reps = env("WEIR_BENCH_REPS", 3);
    let parts = std::env::var("WEIR_BENCH_PARTS").unwrap_or_else(|_| "table,stream,restore".into());
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    if parts.contains("table") {
        stream_table_vs_stateless(&runtime, n, reps);
    }
    if parts.contains("stream") {
        stream_stream_vs_windowed(&runtime, n, reps);
    }
    if parts.contains("restore") {
        table_restore(keys);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn stream_table_vs_stateless(runtime: &Runtime, n: usize, reps: usize) {
    let (orders, customers) = (unique("bench-orders"), unique("bench-customers"));
    create_topic(&orders, PARTITIONS);
    create_topic(&customers, PARTITIONS);
    // A customer's records, and its orders, in partition `id % 4`.
    let part = |id: usize| (id % PARTITIONS as usize) as i32;
    eprintln!("loading {CUSTOMERS} customers and {n} orders");
    load_with(&customers, CUSTOMERS, |i| {
        (
            format!("c{i}"),
            part(i),
            format!(r#"{{"id":"c{i}","tier":"gold","since":{i}}}"#),
        )
    });
    load_with(&orders, n, |i| {
        let c = (i * 7919) % CUSTOMERS;
        (
            format!("c{c}"),
            part(c),
            format!(r#"{{"order":{i},"note":"{}"}}"#, &value(i)[..60]),
        )
    });
    let upper = support::guests().example("rust", "uppercase");
    let pair = support::guests().example("rust", "pair");
    let (mut stateless, mut joined) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        stateless.push(run_in_process(
            runtime,
            &[&orders],
            n,
            &format!("[[stage]]\nmodule = \"{}\"\n", upper.display()),
        ));
        // Customers and orders: orders/s counts the orders only.
        let all = run_in_process(
            runtime,
            &[&orders, &customers],
            n + CUSTOMERS,
            &format!(
                "[[stage]]\nname = \"customer-table\"\nkind = \"table\"\ninputs = [\"{customers}\"]\n\
                 [[stage]]\nname = \"enrich\"\nkind = \"join\"\njoin = \"left\"\n\
                 inputs = [\"{orders}\", \"customer-table\"]\nmodule = \"{}\"\n",
                pair.display()
            ),
        );
        joined.push(all * n as f64 / (n + CUSTOMERS) as f64);
    }
    let (s, j) = (median(stateless), median(joined));
    println!("\n| exactly-once, {n} orders, {CUSTOMERS} customers, 4 partitions | orders/s |");
    println!("|---|---|");
    println!("| stateless (wasm uppercase) | {s:.0} |");
    println!("| stream-table left join (table of customers, wasm pair joiner) | {j:.0} |");
    println!("| stream-table join ÷ stateless | {:.0}% |", 100.0 * j / s);
}

fn stream_stream_vs_windowed(runtime: &Runtime, n: usize, reps: usize) {
    let (searches, clicks) = (unique("bench-searches"), unique("bench-clicks"));
    create_topic(&searches, PARTITIONS);
    create_topic(&clicks, PARTITIONS);
    let part = |u: usize| (u % PARTITIONS as usize) as i32;
    eprintln!("loading {n} searches and clicks");
    // Record i goes to searches when even, clicks when odd: event time
    // rises 1 ms per record across both.
    for (topic, odd) in [(&searches, 0), (&clicks, 1)] {
        load_with(topic, n / 2, |i| {
            let k = 2 * i + odd;
            let u = (k * 7919) % USERS;
            (format!("u{u}"), part(u), format!(r#"{{"n":{k},"user":"u{u}"}}"#))
        });
    }
    let count = support::guests().example("rust", "count");
    let pair = support::guests().example("rust", "pair");
    let (mut windowed, mut joined) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        windowed.push(run_in_process(
            runtime,
            &[&searches, &clicks],
            n,
            &format!(
                "[[stage]]\nname = \"count\"\nkind = \"aggregate\"\ninputs = [\"{searches}\", \"{clicks}\"]\n\
                 module = \"{}\"\nwindow = {{ kind = \"tumbling\", size = \"10s\" }}\nemit = \"final\"\n",
                count.display()
            ),
        ));
        joined.push(run_in_process(
            runtime,
            &[&searches, &clicks],
            n,
            &format!(
                "[[stage]]\nname = \"clicked\"\nkind = \"join\"\njoin = \"left\"\ninputs = [\"{searches}\", \"{clicks}\"]\n\
                 window = {{ within = \"1s\" }}\nmodule = \"{}\"\n",
                pair.display()
            ),
        ));
    }
    let (w, j) = (median(windowed), median(joined));
    println!("\n| exactly-once, {n} searches and clicks, {USERS} users, 4 partitions | records/s |");
    println!("|---|---|");
    println!("| windowed count over both topics (tumbling 10 s, final) | {w:.0} |");
    println!("| stream-stream left join within 1 s (wasm pair joiner) | {j:.0} |");
    println!("| stream-stream join ÷ windowed aggregate | {:.0}% |", 100.0 * j / w);
}

fn table_restore(keys: usize) {
    let (table, orders, output) = (unique("bench-table"), unique("bench-none"), unique("bench-out"));
    for t in [&table, &orders, &output] {
        create_topic(t, 1);
    }
    eprintln!("loading {keys} records with distinct keys into {table}");
    load_with(&table, keys, |i| (format!("key-{i:08}"), 0, value(i)));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("table.toml");
    let app = unique("bench-table");
    std::fs::write(
        &file,
        format!(
            "application-id = \"{}\"\ninputs = [\"{orders}\", \"{table}\"]\nstate-dir = \"{}\"\n\
             [[stage]]\nname = \"rows\"\nkind = \"table\"\ninputs = [\"{table}\"]\nto = \"{output}\"\n\
             [[stage]]\nname = \"lookup\"\nkind = \"join\"\ninputs = [\"{orders}\", \"rows\"]\nmodule = \"{}\"\n\
             [outputs]\ndefault = \"{output}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\"session.timeout.ms\" = 6000\n",
            app,
            dir.path().join("state").display(),
            support::guests().example("rust", "pair").display(),
            broker().bootstrap
        ),
    )
    .expect("write the pipeline");
    // Build the table: every key read and committed. The table also writes
    // its changes to a topic: the test broker (nisshi) was seen to keep the
    // group's offsets of transactions that wrote no record at the first
    // ones only (see BENCHMARKS.md).
    let mut w = WeirProcess::start(&file, "0", &[]);
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(1800);
    // Until the group has committed the whole topic: the restore reads up
    // to the committed offset.
    let progress = support::crash::GroupProgress::of_topics(&app, &[&table]);
    while !consumed_all(&w, keys) || progress.committed() < keys as i64 {
        assert!(
            w.running() && Instant::now() < deadline,
            "weir did not finish:\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("table of {keys} keys built in {:.1} s", started.elapsed().as_secs_f64());
    w.kill();
    // A new machine: no state directory; the table comes back from its topic.
    std::fs::remove_dir_all(dir.path().join("state")).expect("remove the state directory");
    let mut w = WeirProcess::start(&file, "0", &[]);
    let (full, applied) = ready(&mut w);
    assert!(w.terminate(Duration::from_secs(60)).success(), "{}", w.log_text());
    let (read, bare) = bare_consume(&table);
    println!("\n| table of {keys} keys | assigned → ready | records applied | records/s |");
    println!("|---|---|---|---|");
    println!(
        "| restore from its source topic (no local state) | {full:.2} s | {applied} | {:.0} |",
        applied as f64 / full
    );
    println!("| bare librdkafka consumer, same topic | — | {read} read | {bare:.0} |");
    println!(
        "\ntable restore ÷ bare consumer: {:.0}%",
        100.0 * (applied as f64 / full) / bare
    );
}
