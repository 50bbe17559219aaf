//! What exactly-once rests on, checked on the broker.
//!
//! - The broker's `read_committed`, as librdkafka reads it: transactional
//!   producers commit and abort on one partition, alone and interleaved, and
//!   a librdkafka `read_committed` consumer that starts at any offset (0,
//!   inside an aborted transaction, just after one) sees exactly the
//!   committed records from there. The test broker is a nisshi patched to
//!   list aborted transactions in Fetch responses (`tests/broker/`); without
//!   the patch these tests fail.
//! - Faults beyond SIGKILL: a guest that becomes very slow; the state
//!   directory's disk fills up; and a broker outage mid-stream: a stateful
//!   two-stage pipeline (the word count example: words are re-keyed through
//!   a repartition topic, then counted) runs exactly-once against a broker
//!   of its own behind a TCP proxy, input arriving at a steady pace. The
//!   proxy cuts every connection for 30 s while a transaction is open, then
//!   lets them through again. The same `weir run` process waits it out
//!   (saying what it waits for), aborts what could not commit, rejoins its
//!   group, and goes on: the committed output is exactly the reference.
//!
//! The outage needs a broker that advertises the proxy's address, so that
//! every client connection goes through the proxy: the test starts its own
//! nisshi that way even when `WEIR_TEST_BOOTSTRAP` names an external broker,
//! whose advertised address the harness cannot override (its clients would
//! bypass the proxy after the bootstrap).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};
use support::crash::{wait_assigned, wait_connected};
use support::kafka::{
    Feeder, In, WeirProcess, broker, committed, committed_on, create_topic, sentences, unique, wait_for,
};
use support::{example_body, heavy};
use weir_test_harness::broker::Broker;
use weir_test_harness::committed::CommittedRecord;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A librdkafka transactional producer with its own transactional id.
struct TxnProducer(BaseProducer);

impl TxnProducer {
    fn new() -> TxnProducer {
        TxnProducer::with_id(&unique("txn"))
    }

    /// A producer with transactional id `id`: a second one fences the first.
    fn with_id(id: &str) -> TxnProducer {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &broker().bootstrap)
            .set("transactional.id", id)
            .set("linger.ms", "0")
            .create()
            .expect("create a transactional producer");
        producer.init_transactions(TIMEOUT).expect("init transactions");
        TxnProducer(producer)
    }

    fn begin(&self) {
        self.0.begin_transaction().expect("begin a transaction");
    }

    /// Sends `value` and waits until the broker has it, so that what two
    /// producers send interleaves in the log as the test says.
    fn send(&self, topic: &str, value: &str) {
        self.0
            .send(BaseRecord::<(), str>::to(topic).partition(0).payload(value))
            .map_err(|(e, _)| e)
            .expect("send");
        self.0.flush(TIMEOUT).expect("flush");
    }

    fn commit(&self) {
        self.0.commit_transaction(TIMEOUT).expect("commit");
    }

    fn abort(&self) {
        self.0.abort_transaction(TIMEOUT).expect("abort");
    }
}

/// The records of partition 0 of `topic` from `offset` to the end, as
/// (offset, value), read by a librdkafka consumer under `isolation`.
fn read_from(topic: &str, offset: i64, isolation: &str) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", unique("reader"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("create a consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("assign");
    consumer.assign(&assignment).expect("assign");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{topic} from {offset}: no end in 30 s"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("{topic} from {offset}: {e}"),
            None => {}
        }
    }
}

/// Every start offset of `topic`'s partition 0, from 0 to its end: a
/// `read_committed` reader sees exactly the records whose value is in
/// `committed`, from there on, in offset order.
fn assert_read_committed_from_everywhere(topic: &str, committed: &[&str]) {
    let all = read_from(topic, 0, "read_uncommitted");
    let end = all.last().map_or(0, |(offset, _)| offset + 2);
    let want_from = |offset: i64| -> Vec<(i64, String)> {
        all.iter()
            .filter(|(o, v)| *o >= offset && committed.contains(&v.as_str()))
            .cloned()
            .collect()
    };
    assert_eq!(
        want_from(0).len(),
        committed.len(),
        "every committed record is in the log once: {all:?}"
    );
    for offset in 0..=end {
        assert_eq!(
            read_from(topic, offset, "read_committed"),
            want_from(offset),
            "read_committed from offset {offset}; the log without markers: {all:?}"
        );
    }
}

/// One producer: commit, abort, commit, abort, commit. Read from offset 0,
/// from inside each aborted transaction, from its ABORT marker and from just
/// after it.
#[test]
fn read_committed_skips_one_producers_aborted_transactions_from_any_offset() {
    let topic = unique("txn-one");
    create_topic(&topic, 1);
    let p = TxnProducer::new();
    let mut committed = Vec::new();
    for (t, commit) in [true, false, true, false, true].into_iter().enumerate() {
        p.begin();
        for i in 0..3 {
            p.send(&topic, &format!("t{t}-{i}"));
        }
        if commit {
            p.commit();
            committed.extend((0..3).map(|i| format!("t{t}-{i}")));
        } else {
            p.abort();
        }
    }
    let committed: Vec<&str> = committed.iter().map(String::as_str).collect();
    assert_read_committed_from_everywhere(&topic, &committed);
}

/// Two producers interleave on one partition, committing and aborting in
/// turn, their transactions overlapping in the log: from any offset, only
/// the committed records, each once.
#[test]
fn read_committed_skips_interleaved_aborted_transactions_of_two_producers() {
    let topic = unique("txn-two");
    create_topic(&topic, 1);
    let (a, b) = (TxnProducer::new(), TxnProducer::new());
    let mut committed = Vec::new();
    // (a commits?, b commits?) per round
    for (round, (a_commits, b_commits)) in [(true, false), (false, true), (false, false), (true, true)]
        .into_iter()
        .enumerate()
    {
        a.begin();
        b.begin();
        for i in 0..2 {
            a.send(&topic, &format!("a{round}-{i}"));
            b.send(&topic, &format!("b{round}-{i}"));
        }
        // the second to finish ends first in one round in two
        let ends: [(&TxnProducer, bool, char); 2] = if round % 2 == 0 {
            [(&a, a_commits, 'a'), (&b, b_commits, 'b')]
        } else {
            [(&b, b_commits, 'b'), (&a, a_commits, 'a')]
        };
        for (p, commit, name) in ends {
            if commit {
                p.commit();
                committed.extend((0..2).map(|i| format!("{name}{round}-{i}")));
            } else {
                p.abort();
            }
        }
    }
    let committed: Vec<&str> = committed.iter().map(String::as_str).collect();
    assert_read_committed_from_everywhere(&topic, &committed);
}

/// A producer that dies inside a transaction is fenced by the next one with
/// its transactional id, which aborts the open transaction: a reader never
/// sees its records, from any offset, and reads on past them.
#[test]
fn read_committed_skips_the_transaction_of_a_fenced_producer() {
    let topic = unique("txn-fenced");
    create_topic(&topic, 1);
    let id = unique("txn");
    let dead = TxnProducer::with_id(&id);
    dead.begin();
    dead.send(&topic, "before");
    dead.commit();
    dead.begin();
    dead.send(&topic, "dead-0");
    dead.send(&topic, "dead-1");
    // The successor's InitProducerId aborts the open transaction.
    let next = TxnProducer::with_id(&id);
    next.begin();
    next.send(&topic, "after");
    next.commit();
    drop(dead);
    assert_read_committed_from_everywhere(&topic, &["before", "after"]);
}

// ---------------------------------------------------------------------------
// Faults beyond SIGKILL.

/// A guest becomes very slow: 60 records in a row run into the deadline
/// (300 ms), 18 s of deadlines in all, far past `max.poll.interval.ms`
/// (8 s here). The error policy dead-letters each of them, the records
/// around them come out exactly once, and the instance stays in its group:
/// a poll round stops between batches once it has run half of the tighter
/// of `max.poll.interval.ms` and `transaction.timeout.ms`, so the loop
/// polls in time, and no rebalance happens. (One batch is what a round
/// cannot cut: this pipeline's `batch-size` keeps a batch of slow records
/// under the budget.)
/// Two transactional producers take turns on one partition for ten rounds,
/// each committing while the other's transaction is open and beginning its
/// next at once, as two instances writing one repartition topic under load
/// do. Every transaction completes when it commits: a `read_committed`
/// reader, with both producers' last transactions still open, sees exactly
/// the committed records written before the earlier of those two began.
/// (nisshi 0.7.0 kept each transaction waiting on the other's, so the last
/// stable offset stayed at the first record for good; patch 0004.)
#[test]
fn producers_taking_turns_on_a_partition_keep_committing() {
    let topic = unique("turns");
    create_topic(&topic, 1);
    let producers = [TxnProducer::new(), TxnProducer::new()];
    // Every value in the order it was sent, and the send index at which each
    // producer's open transaction began.
    let mut sent: Vec<String> = Vec::new();
    let mut open_since = [0usize; 2];
    let mut open: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut committed_values: Vec<String> = Vec::new();
    let send = |p: usize, sent: &mut Vec<String>, open: &mut [Vec<String>; 2]| {
        let value = format!("{}{}", ["a", "b"][p], sent.len());
        producers[p].send(&topic, &value);
        open[p].push(value.clone());
        sent.push(value);
    };
    for p in 0..2 {
        producers[p].begin();
        open_since[p] = sent.len();
        send(p, &mut sent, &mut open);
    }
    for round in 0..10 {
        let (ending, other) = if round % 2 == 0 { (0, 1) } else { (1, 0) };
        send(other, &mut sent, &mut open);
        send(ending, &mut sent, &mut open);
        producers[ending].commit();
        committed_values.append(&mut open[ending]);
        producers[ending].begin();
        open_since[ending] = sent.len();
        send(ending, &mut sent, &mut open);
    }
    let first_open = open_since.iter().min().copied().unwrap_or(0);
    let want: Vec<&String> = sent[..first_open]
        .iter()
        .filter(|v| committed_values.contains(v))
        .collect();
    assert!(
        want.len() >= 15,
        "the scenario commits before the open transactions: {want:?}"
    );
    let got: Vec<String> = read_from(&topic, 0, "read_committed")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        got.iter().collect::<Vec<_>>(),
        want,
        "read_committed with two transactions open"
    );
    for producer in &producers {
        producer.commit();
    }
    let got: Vec<String> = read_from(&topic, 0, "read_committed")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(got, sent, "every record, once both committed");
}

#[test]
fn a_guest_that_becomes_slow_keeps_its_instance_in_the_group() {
    let g = support::guests();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq, app) = (unique("in"), unique("out"), unique("dlq"), unique("slow"));
    create_topic(&input, 1);
    create_topic(&output, 1);
    create_topic(&dlq, 1);
    let mut commands: Vec<String> = (0..100).map(|i| format!("before-{i}")).collect();
    commands.extend((0..60).map(|_| "loop".to_owned()));
    commands.extend((0..100).map(|i| format!("after-{i}")));
    let module = g.test_guest("misbehave");
    let file = support::kafka::pipeline_file(
        dir.path(),
        &format!(
            "application-id = \"{app}\"\ninputs = [\"{input}\"]\nbatch-size = 8\n[[stage]]\nname = \"obey\"\n\
             module = \"{}\"\non-error = \"dead-letter\"\ndead-letter-topic = \"{dlq}\"\n\
             [outputs]\ndefault = \"{output}\"\n",
            module.display()
        ),
    );
    // The pipeline file's [kafka] table ends the file: add to it.
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\"session.timeout.ms\" = 6000\n\"max.poll.interval.ms\" = 8000\n");
    std::fs::write(&file, text).unwrap();
    let mut weir = WeirProcess::start(&file, "0", &["--deadline", "300ms"]);
    support::kafka::produce(
        &input,
        &commands
            .iter()
            .map(|c| In {
                partition: Some(0),
                ..In::value(c.as_str())
            })
            .collect::<Vec<_>>(),
    );
    let outs = wait_for(&output, 200, Duration::from_secs(120));
    let dead = wait_for(&dlq, 60, Duration::from_secs(30));
    // A rebalance would show once the group noticed the missed poll.
    std::thread::sleep(Duration::from_secs(10));
    let running = weir.log_text();
    let status = weir.terminate(Duration::from_secs(30));
    let log = weir.log_text();
    assert!(status.success(), "{status}: {log}");
    let want: Vec<&String> = commands.iter().filter(|c| *c != "loop").collect();
    let got: Vec<String> = outs.iter().map(|r| r.value_str().unwrap_or("").to_owned()).collect();
    assert_eq!(got.len(), want.len(), "each record once:\n{log}");
    assert!(
        got.iter().zip(&want).all(|(a, b)| a == *b),
        "in order, each once:\n{log}"
    );
    assert_eq!(committed(&output).len(), 200, "nothing more came out");
    assert_eq!(dead.len(), 60, "{log}");
    assert!(
        dead.iter()
            .all(|r| r.header("weir.error.kind").flatten() == Some(&b"deadline"[..])),
        "{dead:?}"
    );
    assert!(
        running.contains("a round ran out of time"),
        "the rounds were cut:\n{log}"
    );
    for sign in ["partitions revoked", "maximum poll interval", "MAXPOLL"] {
        assert!(!running.contains(sign), "the instance left its group ({sign}):\n{log}");
    }
}

/// A small tmpfs mounted on a directory for a test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "8m") on `dir`. Mounting needs root
    /// (CI and the development machine run as root): without it the test
    /// fails here, saying so.
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs as the state directory, which needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_owned())
    }

    /// Fills the file system with one file until it has no space left.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 << 10];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        // Small writes still fit in a partly filled block: take those too.
        while f.write_all(&[0u8; 512]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The state directory's disk fills up (a small tmpfs) while a stateful
/// pipeline runs: the instance stops with an error naming the store and
/// the cause. Kafka's transaction commits before the local store applies
/// it (the changelog, not the local store, is what state is restored
/// from), so what a failed write lost locally is in the changelog. Once
/// space returns, a restart restores the store and the counts are exact:
/// nothing lost, nothing counted twice.
#[test]
fn a_full_state_disk_stops_the_task_and_a_restart_is_exact() {
    let _turn = support::heavy();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let disk = Tmpfs::mount(&state, "16m");
    let (input, output, app) = (unique("in"), unique("counts"), unique("full-disk"));
    create_topic(&input, 2);
    create_topic(&output, 2);
    let file = support::kafka::pipeline_file(
        dir.path(),
        &format!(
            "application-id = \"{app}\"\ninputs = [\"{input}\"]\nstate-dir = \"{}\"\ncommit-interval = \"200ms\"\n\
             [[stage]]\nname = \"count\"\nkind = \"aggregate\"\nmodule = \"{}\"\nemit = \"update\"\n\
             [outputs]\ndefault = \"{output}\"\n",
            state.display(),
            support::guests().example("rust", "count").display()
        ),
    );
    let records: Vec<In> = (0..6_000)
        .map(|i| In {
            key: Some(format!("k{}", i % 500).into_bytes()),
            ..In::value(format!("e{i}"))
        })
        .collect();
    let mut want: std::collections::BTreeMap<String, u64> = Default::default();
    for r in &records {
        *want
            .entry(String::from_utf8_lossy(r.key.as_deref().unwrap()).into_owned())
            .or_default() += 1;
    }
    let feeder = support::kafka::Feeder::paced(&input, records, 20, Duration::from_millis(20), &[2_000]);
    let mut weir = WeirProcess::start(&file, "0", support::crash::CRASH_ARGS);
    let progress = support::crash::GroupProgress::of_topics(&app, &[&input]);
    support::kafka::until(&true, Duration::from_secs(60), || progress.committed() > 0);
    let filler = disk.fill();
    feeder.open(0);
    let status = weir.wait(Duration::from_secs(90));
    let log = weir.log_text();
    assert!(!status.success(), "a full disk stops the instance: {status}\n{log}");
    assert!(
        log.contains("No space left on device") && log.contains(&format!("{}/", state.display())),
        "the error names the store and the cause:\n{log}"
    );
    for line in log
        .lines()
        .filter(|l| l.contains("No space") || l.contains("left unclosed"))
    {
        eprintln!("the full disk: {line}");
    }
    std::fs::remove_file(&filler).unwrap();
    let mut weir = WeirProcess::start(&file, "0", support::crash::CRASH_ARGS);
    feeder.finish();
    let last = || {
        let mut by_key = std::collections::BTreeMap::new();
        for r in committed(&output) {
            by_key.insert(
                r.key_str().unwrap_or("").to_owned(),
                r.value_str().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0),
            );
        }
        by_key
    };
    let got = support::kafka::until(&want, Duration::from_secs(120), last);
    assert!(weir.terminate(Duration::from_secs(30)).success(), "{}", weir.log_text());
    assert_eq!(got, want, "each key's count, exactly, after the disk was full");
    drop(disk);
}

// ---------------------------------------------------------------------------
// A broker outage.

/// How long the broker is away.
const OUTAGE: Duration = Duration::from_secs(30);

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

// ---------------------------------------------------------------------------
// A soak: not run by CI.

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Two instances of the word count (two stages, state in both) under steady
/// load for `WEIR_SOAK_MINUTES` (30 by default): `b` is SIGKILLed and
/// restarted every three minutes (each time its partitions move to `a` and
/// back), `a` runs throughout. Every 10 s it records each instance's
/// resident memory and the group's lag on the input; at the end
/// it waits for the output to catch up and checks it exactly. It prints a
/// table for BENCHMARKS.md. A manual run, not CI:
/// `cargo test -p weir --test exactly_once -- --ignored --nocapture soak`.
#[test]
#[ignore = "a 30-minute soak, run by hand: cargo test -p weir --test exactly_once -- --ignored --nocapture soak"]
fn soak_two_instances_one_killed_every_three_minutes() {
    let _turn = heavy();
    let minutes: u64 = std::env::var("WEIR_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    println!("soak: logs in {}", dir.path().display());
    let app = unique("soak");
    let (input, output) = (unique("sentences"), unique("counts"));
    create_topic(&input, 4);
    create_topic(&output, 4);
    let body = example_body(
        "word-count.toml",
        &app,
        &[("sentences", &input), ("word-counts", &output)],
    );
    let write = |name: &str, state: &str| {
        let file = dir.path().join(name);
        std::fs::write(
            &file,
            format!(
                "state-dir = \"{}\"\n{body}\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\
                 \"transaction.timeout.ms\" = 10000\n\"linger.ms\" = 5\n\"session.timeout.ms\" = 6000\n",
                dir.path().join(state).display(),
                broker().bootstrap
            ),
        )
        .unwrap();
        file
    };
    let files = [write("a.toml", "state-a"), write("b.toml", "state-b")];
    // 40 sentences a second, steadily, for the whole soak.
    let n = (minutes * 60 * 40) as usize;
    let (records, want) = sentences(n);
    let feeder = Feeder::paced(&input, records, 4, Duration::from_millis(100), &[]);
    let mut instances = [
        WeirProcess::start(&files[0], "a", &[]),
        WeirProcess::start(&files[1], "b", &[]),
    ];
    let progress = support::crash::GroupProgress::of_topics(&app, &[&input]);
    let started = Instant::now();
    let every: u64 = std::env::var("WEIR_SOAK_KILL_EVERY")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(180);
    let (mut next_kill, mut next_sample, mut kills) = (Duration::from_secs(every), Duration::ZERO, 0usize);
    let mut samples: Vec<(u64, [Option<u64>; 2], i64)> = Vec::new();
    let end_offsets = |consumer: &BaseConsumer| -> i64 {
        (0..4)
            .map(|p| {
                consumer
                    .fetch_watermarks(&input, p, Duration::from_secs(10))
                    .map_or(0, |(_, high)| high)
            })
            .sum()
    };
    let watermarks: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .create()
        .unwrap();
    // A stall: the group commits nothing on the input for STALL although
    // there is lag. Diagnosed there and then, while it lasts.
    const STALL: Duration = Duration::from_secs(120);
    let (mut last_committed, mut moved_at) = (progress.committed(), Instant::now());
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        if started.elapsed() >= next_sample {
            let committed_now = progress.committed();
            if committed_now != last_committed {
                (last_committed, moved_at) = (committed_now, Instant::now());
            }
            let lag = end_offsets(&watermarks) - committed_now;
            if lag > 0 && moved_at.elapsed() > STALL {
                soak_stall_report(&app, &[&input, &output], &instances, &samples);
                panic!(
                    "stall: the group committed nothing for {:?} at minute {} (lag {lag}); logs kept in {}",
                    moved_at.elapsed(),
                    started.elapsed().as_secs() / 60,
                    dir.keep().display()
                );
            }
            let rss = [rss_kib(instances[0].pid()), rss_kib(instances[1].pid())];
            samples.push((started.elapsed().as_secs(), rss, lag));
            next_sample += Duration::from_secs(10);
        }
        if started.elapsed() >= next_kill {
            instances[1].kill();
            println!(
                "minute {}: killed b; its log was {}",
                started.elapsed().as_secs() / 60,
                instances[1].log.display()
            );
            instances[1] = WeirProcess::start(&files[1], "b", &[]);
            kills += 1;
            next_kill += Duration::from_secs(every);
        }
        for w in &mut instances {
            assert!(w.running(), "an instance exited:\n{}", w.log_text());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    feeder.finish();
    let fed = started.elapsed();
    let got = support::kafka::until(&want, Duration::from_secs(300), || {
        last_counts(&counts_by_word(&committed(&output)))
    });
    if got != want {
        for (name, w) in ["a", "b"].iter().zip(&instances) {
            let log = w.log_text();
            let tail: Vec<&str> = log.lines().filter(|l| !l.contains("CONFWARN")).collect();
            eprintln!("--- {name}:\n{}", tail[tail.len().saturating_sub(60)..].join("\n"));
        }
        eprintln!("logs kept in {}", dir.keep().display());
    }
    let caught_up = started.elapsed() - fed;
    for w in &mut instances {
        assert!(w.terminate(Duration::from_secs(60)).success(), "{}", w.log_text());
    }
    println!("| minute | a RSS (MiB) | b RSS (MiB) | most lag in the minute (records) |");
    println!("|---|---|---|---|");
    for (secs, rss, _) in samples.iter().filter(|(secs, _, _)| secs % 60 == 0) {
        let mib = |k: &Option<u64>| k.map_or("-".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0));
        let most = samples
            .iter()
            .filter(|(t, _, _)| t / 60 == secs / 60)
            .map(|(_, _, lag)| *lag)
            .max()
            .unwrap_or(0);
        println!("| {} | {} | {} | {most} |", secs / 60, mib(&rss[0]), mib(&rss[1]));
    }
    let max_lag = samples.iter().map(|(_, _, lag)| *lag).max().unwrap_or(0);
    println!(
        "soak: {minutes} min, {n} sentences, {kills} kills, max lag {max_lag} records, caught up {caught_up:.1?} after the input stopped"
    );
    assert_eq!(got, want, "each word's last count, exactly, after {kills} kills");
}

/// What a stalled soak shows: each instance's status and the tail of its
/// log, the committed offsets and open transactions of every topic of the
/// application, and the lag samples so far.
fn soak_stall_report(app: &str, topics: &[&str], instances: &[WeirProcess], samples: &[(u64, [Option<u64>; 2], i64)]) {
    for (name, w) in ["a", "b"].iter().zip(instances) {
        let log = w.log_text();
        let admin = log
            .split("admin API at http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned);
        let status = admin.map(|addr| {
            std::process::Command::new("curl")
                .args(["-s", "--max-time", "5", &format!("http://{addr}/status")])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| format!("curl: {e}"))
        });
        let tail: Vec<&str> = log.lines().filter(|l| !l.contains("CONFWARN")).collect();
        eprintln!(
            "--- {name} (pid {}, log {}):\nstatus: {}\n{}",
            w.pid(),
            w.log.display(),
            status.unwrap_or_default(),
            tail[tail.len().saturating_sub(80)..].join("\n")
        );
    }
    let mut all: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    all.extend(support::crash::internal_topics(app));
    for topic in &all {
        for (p, counts) in support::kafka::partition_log_counts(topic) {
            eprintln!("{topic}[{p}]: {counts:?}");
        }
    }
    eprintln!("lag samples (s, rss, lag): {samples:?}");
}
