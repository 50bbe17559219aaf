//! Exactly-once when the broker goes away and comes back.
//!
//! - A broker outage mid-stream: a stateful two-stage pipeline (the word
//!   count example: words are re-keyed through a repartition topic, then
//!   counted) runs exactly-once against a broker of its own behind a TCP
//!   proxy, input arriving at a steady pace. The proxy cuts every
//!   connection for 30 s while a transaction is open, then lets them through
//!   again. The same `weir run` process waits it out (saying what it waits
//!   for), aborts what could not commit, rejoins its group, and goes on: the
//!   committed output is exactly the reference.
//!
//! The outage needs a broker that advertises the proxy's address, so that
//! every client connection goes through the proxy: the test starts its own
//! nisshi that way even when `WEIR_TEST_BOOTSTRAP` names an external broker,
//! whose advertised address the harness cannot override (its clients would
//! bypass the proxy after the bootstrap).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::crash::{wait_assigned, wait_connected};
use support::kafka::{Feeder, In, WeirProcess, committed_on, unique};
use support::{example_body, heavy};
use weir_test_harness::broker::Broker;
use weir_test_harness::committed::CommittedRecord;

/// How long the broker is away.
const OUTAGE: Duration = Duration::from_secs(30);

const VOCABULARY: [&str; 12] = [
    "kafka", "weir", "wasm", "stream", "state", "offset", "commit", "abort", "broker", "proxy", "outage", "retry",
];

/// `n` sentences of one to four words, keyed `s0`, `s1`, …, and how often
/// each word occurs in them.
fn sentences(n: usize) -> (Vec<In>, BTreeMap<String, u64>) {
    let mut counts = BTreeMap::new();
    let records = (0..n)
        .map(|i| {
            let words: Vec<&str> = (0..1 + i % 4)
                .map(|j| VOCABULARY[(i * 7 + j * 5) % VOCABULARY.len()])
                .collect();
            for w in &words {
                *counts.entry((*w).to_owned()).or_default() += 1;
            }
            In {
                key: Some(format!("s{i}").into_bytes()),
                ..In::value(words.join(" "))
            }
        })
        .collect();
    (records, counts)
}

/// Each word's counts in the output, in log order.
fn counts_by_word(records: &[CommittedRecord]) -> BTreeMap<String, Vec<u64>> {
    let mut sorted: Vec<&CommittedRecord> = records.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in sorted {
        let word = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
        let count = r
            .value_str()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{word}: a count that is not a number: {:?}", r.value_str()));
        out.entry(word).or_default().push(count);
    }
    out
}

/// The last count of each word.
fn last_counts(by_word: &BTreeMap<String, Vec<u64>>) -> BTreeMap<String, u64> {
    by_word
        .iter()
        .filter_map(|(w, counts)| Some((w.clone(), *counts.last()?)))
        .collect()
}

/// Waits (at most `timeout`) until `ready()` holds, checking that `w` runs.
fn wait_until(w: &mut WeirProcess, what: &str, timeout: Duration, ready: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        assert!(w.running(), "weir exited while waiting for {what}:\n{}", w.log_text());
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The broker goes away for 30 s mid-stream and comes back: `weir run`
/// keeps retrying with backoff, logs what it waits for, and resumes without
/// a restart, losing and duplicating nothing.
#[test]
fn a_30_s_broker_outage_mid_stream_is_waited_out_exactly() {
    let _turn = heavy();
    let broker = Broker::start_nisshi_behind_proxy().unwrap_or_else(|e| panic!("start nisshi behind a proxy: {e}"));
    let proxy = broker.proxy().expect("the broker was started behind a proxy");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let app = unique("outage");
    let (input, output) = (unique("sentences"), unique("counts"));
    for topic in [&input, &output] {
        broker
            .create_topic(topic, 3)
            .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
    }
    // The group session (6 s) expires during the outage, so the instance
    // must rejoin too; repartition records are kept for the check below.
    let file = dir.path().join("word-count.toml");
    let body = example_body(
        "word-count.toml",
        &app,
        &[("sentences", &input), ("word-counts", &output)],
    );
    std::fs::write(
        &file,
        format!(
            "repartition-purge-interval = \"1h\"\nstate-dir = \"{}\"\n{body}\n[kafka]\n\
             \"bootstrap.servers\" = \"{}\"\n\"transaction.timeout.ms\" = 10000\n\"linger.ms\" = 5\n\
             \"session.timeout.ms\" = 6000\n",
            dir.path().join("state").display(),
            broker.bootstrap
        ),
    )
    .expect("write the pipeline");
    // 8000 sentences, 10 every 50 ms: 40 s of input, so that it flows
    // before, during (into the feeder's queue) and after the outage.
    let (records, want) = sentences(8000);
    let repartition = format!("{app}-count-repartition");

    let mut w = WeirProcess::start(&file, "0", &["--kafka", "fetch.wait.max.ms=50"]);
    let pid = w.pid();
    wait_connected(&mut w);
    wait_assigned(&mut w);
    let feeder = Feeder::paced_into(&broker, &input, records, 10, Duration::from_millis(50));
    let started = Instant::now();

    // Mid-stream: input has flowed for 5 s and output has been committed;
    // and while a transaction is open (records of it in the log), so that
    // work is in flight.
    let progressed = wait_until(&mut w, "committed output", Duration::from_secs(90), || {
        started.elapsed() >= Duration::from_secs(5) && !committed_on(&broker, &output).is_empty()
    });
    assert!(progressed, "no output committed within 90 s:\n{}", w.log_text());
    let open_now = || {
        [&output, &repartition]
            .iter()
            .any(|t| broker.log_counts(t, Duration::from_secs(10)).is_ok_and(|c| c.open > 0))
    };
    let in_flight = wait_until(&mut w, "an open transaction", Duration::from_secs(10), open_now);
    let connections = proxy.cut();
    let cut_at = Instant::now();
    eprintln!(
        "cut {:.1?} after the input began ({connections} connections closed; a transaction open: {in_flight})",
        started.elapsed()
    );
    while cut_at.elapsed() < OUTAGE {
        assert!(w.running(), "weir exited during the outage:\n{}", w.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    proxy.restore();
    eprintln!(
        "restored after {:.1?} ({} connections refused meanwhile)",
        cut_at.elapsed(),
        proxy.refused()
    );
    feeder.finish();
    eprintln!("all input acknowledged {:.1?} after it began", started.elapsed());

    let done = wait_until(&mut w, "the reference counts", Duration::from_secs(180), || {
        last_counts(&counts_by_word(&committed_on(&broker, &output))) == want
    });
    let caught_up = cut_at.elapsed();
    // Anything still in flight would show up now.
    std::thread::sleep(Duration::from_secs(2));
    let log = w.log_text();
    assert!(w.running(), "weir exited:\n{log}");
    assert_eq!(w.pid(), pid);
    assert_eq!(log.matches("weir: running ").count(), 1, "weir started once:\n{log}");

    let got = counts_by_word(&committed_on(&broker, &output));
    assert!(done, "the counts did not reach the reference in 180 s:\n{log}");
    assert_eq!(last_counts(&got), want, "the last count of each word");
    for (word, counts) in &got {
        assert!(
            counts.windows(2).all(|p| p[0] < p[1]),
            "{word}: counts go back or repeat (a record counted twice, or an aborted count committed): {counts:?}"
        );
    }
    let mut words: BTreeMap<String, u64> = BTreeMap::new();
    for r in &committed_on(&broker, &repartition) {
        *words
            .entry(String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
            .or_default() += 1;
    }
    assert_eq!(words, want, "the repartition topic commits each word exactly once");

    // What it waited for, said at warn; and that it went on, at info.
    let waits: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("waiting for Kafka to "))
        .collect();
    eprintln!("{} wait lines, e.g.:", waits.len());
    for line in waits.iter().take(6) {
        eprintln!("  {line}");
    }
    let transactional_id = format!("transactional_id={app}-0");
    assert!(
        waits
            .iter()
            .any(|l| l.contains(&transactional_id) && l.contains(" s so far: ")),
        "no warn line says what it waited for, naming {transactional_id}:\n{log}"
    );
    // The wait ends at info: the call went through ("Kafka is back"), or
    // the brokers answered that it cannot (the transaction is then aborted).
    let ended: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("INFO") && (l.contains("Kafka is back") || l.contains("stopped waiting for Kafka")))
        .collect();
    assert!(!ended.is_empty(), "no info line says a wait ended:\n{log}");
    for line in &ended {
        eprintln!("  {line}");
    }
    let lost = log.contains("partitions revoked") && log.contains("lost=true");
    eprintln!(
        "caught up {caught_up:.1?} after the cut; group session lost and rejoined: {lost}; aborts: {}",
        log.matches("aborting").count()
    );

    assert!(w.terminate(Duration::from_secs(60)).success(), "{}", w.log_text());
}
