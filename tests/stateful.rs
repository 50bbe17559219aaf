//! Stateful pipelines against a real Kafka-protocol broker: the example
//! pipelines of `guest-examples/pipelines/` (windows, emit modes, late
//! events, sessions, repartitioning, a two-stage top 10), each compared with
//! a plain reference implementation in this file; SIGKILL crash tests with
//! exact output and state; scale-out with takeover; interactive queries.
//!
//! Every SIGKILL lands after the instance committed progress in that life,
//! and every crash test checks that its kills left an open transaction
//! behind, which the broker aborted (see `support/crash.rs`).
//!
//! The test broker (nisshi) has no aborted-transaction index: consumers —
//! Weir's own consumer of a repartition topic included — also see records of
//! aborted transactions. Single-segment pipelines are unaffected (Weir's
//! restore skips aborted changelog records by their input offset; outputs are
//! checked with the raw committed reader). For the multi-stage crash test the
//! broker can only prove what the first segment committed; see
//! `word_count_across_sigkill`. With `WEIR_TEST_BOOTSTRAP` set to a real
//! Kafka broker the same test asserts exact counts. The multi-stage
//! `trades-latest` and `top10` crash tests are exact on both, because their
//! second stages keep the latest value per key: an aborted record is an exact
//! copy of one committed later, and folding it twice changes nothing.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::crash::{self, GroupProgress, Kill, KillRng, Life};
use support::kafka::{
    Feeder, In, WeirProcess, admin_addr, broker, committed, create_topic, http_get, produce, sentences, unique, until,
    wait_for,
};
use support::{example_body, guests, heavy, weir};
use weir::units::now_ms;
use weir_test_harness::committed::CommittedRecord;

const EXIT_WAIT: Duration = Duration::from_secs(60);
const DAY: i64 = 86_400_000;
/// 2026-01-05T00:00:00Z: event times start at a day boundary.
const T0: i64 = 1_767_571_200_000;

/// An example pipeline from `guest-examples/pipelines/`, made to run on the
/// test broker: the application id is `app`, quoted topic names are
/// replaced (`"trades"` → a unique topic), module paths point at the built
/// components, `[kafka]` and `[dev]` are replaced, and `extra` top-level keys
/// are added.
fn example(dir: &Path, name: &str, app: &str, names: &[(&str, &str)], extra: &str) -> PathBuf {
    let body = example_body(name, app, names);
    let path = dir.join(name);
    let state = dir.join("state");
    let text = format!(
        "{extra}\nstate-dir = \"{}\"\n{body}\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\"transaction.timeout.ms\" = 10000\n\"linger.ms\" = 5\n\
         \"session.timeout.ms\" = 6000\n",
        state.display(),
        broker().bootstrap
    );
    std::fs::write(&path, text).expect("write the pipeline");
    path
}

/// A top-level pipeline key for tests that read a repartition topic from its
/// start: Weir deletes the records its group has committed past (as Kafka
/// Streams purges repartition topics), by default every 30 s.
const KEEP_REPARTITION_RECORDS: &str = "repartition-purge-interval = \"1h\"";

/// `weir query` against a running instance.
fn query(addr: &str, stage: &str, key: &str) -> Value {
    let out = weir()
        .args(["query", "--admin", addr, stage, key])
        .output()
        .expect("run weir query");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("weir query printed no JSON ({e}): {text}"))
}

/// The last value of each (key, window start) in output records, in log order.
fn last_by_key_window(records: &[CommittedRecord]) -> BTreeMap<(String, i64), Value> {
    let mut sorted: Vec<&CommittedRecord> = records.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut out = BTreeMap::new();
    for r in sorted {
        let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
        let start = header_i64(r, "weir.window.start").unwrap_or(i64::MIN);
        let value = serde_json::from_str(r.value_str().unwrap_or("null")).unwrap_or(Value::Null);
        out.insert((key, start), norm(value));
    }
    out
}

/// JSON with every float rounded to 1e-6: serde_json's default parser may
/// read the guest's shortest float text one ulp away from the reference.
fn norm(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => json!((n.as_f64().unwrap_or(0.0) * 1e6).round() / 1e6),
        Value::Array(a) => Value::Array(a.into_iter().map(norm).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, norm(v))).collect()),
        other => other,
    }
}

fn header_i64(r: &CommittedRecord, name: &str) -> Option<i64> {
    r.header(name)
        .flatten()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
}

/// A seeded xorshift, for test data.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Feeds `records` into `input` (100 per `pause`, one segment per life)
/// while `weir run FILE` is SIGKILLed `kills` times, each time once it has
/// committed progress in that life and a seeded random 0.3–1.8 s later, and
/// restarted at once, with short fetches (see [`crash::run_with_kills`] and
/// [`crash::CRASH_ARGS`]; `output` is where the
/// last kill looks for open transactions if it must). Returns the last life,
/// still running, and the kills.
fn run_with_kills(
    file: &Path,
    (input, output): (&str, &str),
    records: Vec<In>,
    pause: Duration,
    kills: usize,
) -> (WeirProcess, Vec<Kill>) {
    let feeder = Feeder::for_lives(input, records, pause, kills + 1);
    let (w, done) = crash::run_with_kills(file, crash::CRASH_ARGS, kills, &feeder, (300, 1800), &[output]);
    feeder.finish();
    (w, done)
}

/// Asserts that the kills of application `app` left open transactions
/// behind (see [`crash::assert_kills_left_open_transactions`]), looking in
/// its `outputs` and its changelog and repartition topics.
#[track_caller]
fn assert_kills_left_open_transactions(app: &str, outputs: &[&str], kills: &[Kill]) {
    let mut topics: Vec<String> = outputs.iter().map(|t| (*t).to_owned()).collect();
    topics.extend(crash::internal_topics(app));
    crash::assert_kills_left_open_transactions(&topics, kills);
}

// ---------------------------------------------------------------------------
// Daily statistics: tumbling days with grace, out-of-order and late events.

const SYMBOLS: &[&str] = &["AAPL", "MSFT", "SAP", "ASML", "NVDA"];

struct Trade {
    symbol: &'static str,
    partition: i32,
    ts: i64,
    cents: i64,
    seq: usize,
}

impl Trade {
    fn json(&self) -> String {
        format!(
            r#"{{"symbol":"{}","price":{}.{:02},"seq":{}}}"#,
            self.symbol,
            self.cents / 100,
            self.cents % 100,
            self.seq
        )
    }
}

/// Three days of trades: mostly in order, every 7th up to 50 min early
/// (inside the 1 h grace), every 23rd 5 h early (late once its day has
/// closed).
fn daily_trades(n: usize) -> Vec<Trade> {
    let mut rng = Rng(99);
    (0..n)
        .map(|seq| {
            let s = rng.below(SYMBOLS.len() as u64) as usize;
            let mut ts = T0 + (seq as i64) * (3 * DAY / n as i64);
            if seq % 7 == 3 {
                ts -= 50 * 60_000;
            }
            if seq % 23 == 5 {
                ts -= 5 * 3_600_000;
            }
            Trade {
                symbol: SYMBOLS[s],
                partition: (s % 2) as i32,
                ts,
                cents: 10_000 + rng.below(5_000) as i64,
                seq,
            }
        })
        .collect()
}

/// The word-count example as `app` on fresh topics of `partitions`
/// partitions, with `extra` top-level keys: the file, input and output.
fn word_count_pipeline(dir: &Path, app: &str, partitions: i32, extra: &str) -> (PathBuf, String, String) {
    let (input, output) = (unique("sentences"), unique("counts"));
    create_topic(&input, partitions);
    create_topic(&output, partitions);
    let file = example(
        dir,
        "word-count.toml",
        app,
        &[("sentences", &input), ("word-counts", &output)],
        extra,
    );
    (file, input, output)
}

/// The daily-stats example on fresh topics (`partitions` each for input and
/// output): the file, input, output and dead-letter topic.
fn daily_stats_pipeline(dir: &Path, app: &str, partitions: i32) -> (PathBuf, String, String, String) {
    let (input, output, late_topic) = (unique("trades"), unique("daily"), unique("late"));
    create_topic(&input, partitions);
    create_topic(&output, partitions);
    create_topic(&late_topic, 1);
    let file = example(
        dir,
        "daily-stats.toml",
        app,
        &[
            ("trades", &input),
            ("daily-stats", &output),
            ("trades-late", &late_topic),
        ],
        "",
    );
    (file, input, output, late_topic)
}

/// Trades as input records, keyed by symbol, on their partition.
fn trade_records(trades: &[Trade]) -> Vec<In> {
    trades
        .iter()
        .map(|t| In {
            key: Some(t.symbol.as_bytes().to_vec()),
            timestamp: Some(t.ts),
            partition: Some(t.partition),
            ..In::value(t.json())
        })
        .collect()
}

/// What Kafka Streams semantics give: per partition in order, stream time is
/// the largest timestamp seen (this event included); an event whose day
/// ended more than the grace before stream time is late.
fn daily_reference(trades: &[Trade], grace: i64) -> (BTreeMap<(String, i64), Value>, Vec<usize>) {
    let mut st: HashMap<i32, i64> = HashMap::new();
    let mut acc: BTreeMap<(String, i64), (i64, i64, u64)> = BTreeMap::new();
    let mut late = Vec::new();
    for t in trades {
        let s = st.entry(t.partition).or_insert(i64::MIN);
        *s = (*s).max(t.ts);
        let start = t.ts - t.ts.rem_euclid(DAY);
        if start + DAY + grace <= *s {
            late.push(t.seq);
            continue;
        }
        let a = acc.entry((t.symbol.to_owned(), start)).or_insert((i64::MAX, 0, 0));
        a.0 = a.0.min(t.cents);
        a.1 += t.cents;
        a.2 += 1;
    }
    let stats = acc
        .into_iter()
        .map(|(k, (min, sum, count))| {
            (
                k,
                norm(json!({"min": min as f64 / 100.0, "avg": sum as f64 / count as f64 / 100.0, "count": count})),
            )
        })
        .collect();
    (stats, late)
}

/// The `seq` of every dead-lettered trade, sorted; each must say it was late.
fn late_seqs(dead: &[CommittedRecord]) -> Vec<usize> {
    dead_seqs(dead, "late")
}

/// The `seq` of every dead letter, sorted; each must carry failure `code`.
fn dead_seqs(dead: &[CommittedRecord], code: &str) -> Vec<usize> {
    let mut seqs: Vec<usize> = dead
        .iter()
        .map(|r| {
            assert_eq!(r.header("weir.error.code"), Some(Some(code.as_bytes())), "{r:?}");
            let v: Value = serde_json::from_str(r.value_str().unwrap()).unwrap();
            v["seq"].as_u64().unwrap() as usize
        })
        .collect();
    seqs.sort_unstable();
    seqs
}

/// The daily-stats example: the last update of every (symbol, day) equals
/// the reference; late trades are dead-lettered with the reason, counted in
/// /metrics, and change nothing; the open days can be queried.
#[test]
fn daily_stats_with_out_of_order_and_late_trades() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (file, input, output, late_topic) = daily_stats_pipeline(dir.path(), &unique("daily-stats"), 2);
    let trades = daily_trades(3000);
    let (want, late) = daily_reference(&trades, 3_600_000);
    assert!(late.len() > 20, "the data must have late trades: {}", late.len());
    let records = trade_records(&trades);
    produce(&input, &records);
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    let dead = wait_for(&late_topic, late.len(), Duration::from_secs(120));
    let got_late = late_seqs(&dead);
    assert_eq!(got_late, late, "dead-lettered trades are exactly the late ones");
    // Updates keep coming until every window has its final value.
    let got = until(&want, Duration::from_secs(60), || {
        last_by_key_window(&committed(&output))
    });
    assert_eq!(got.len(), want.len(), "one series per symbol and day");
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "stats of {k:?}");
    }
    // Open windows (the last day, not yet past end + grace) are queryable.
    let q = query(&addr, "stats", "SAP");
    let windows = q["windows"].as_array().unwrap_or_else(|| panic!("{q}"));
    assert!(!windows.is_empty(), "{q}");
    for win in windows {
        let start = win["window"]["start"].as_i64().unwrap();
        let shown: Value = norm(serde_json::from_str(win["outputs"][0]["value"].as_str().unwrap()).unwrap());
        assert_eq!(Some(&shown), want.get(&("SAP".to_owned(), start)), "{q}");
    }
    let metrics = http_get(&addr, "/metrics");
    assert!(
        metrics.contains(&format!("stage=\"stats\"}} {}", late.len())) && metrics.contains("weir_stage_late_total"),
        "{metrics}"
    );
    // Lag per partition, from librdkafka's statistics (every 5 s): all read.
    let lag = until(&true, Duration::from_secs(15), || {
        let m = http_get(&addr, "/metrics");
        m.lines()
            .filter(|l| l.starts_with("weir_consumer_lag_records{"))
            .count()
            == 2
    });
    assert!(
        lag,
        "no lag per partition in /metrics:\n{}",
        http_get(&addr, "/metrics")
    );
    let metrics = http_get(&addr, "/metrics");
    for l in metrics.lines().filter(|l| l.starts_with("weir_consumer_lag_records{")) {
        assert!(l.ends_with(" 0"), "all input was read: {l}");
    }
    // `weir status` prints /status: tasks, stores and restores (the task and
    // store views are refreshed every second).
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let out = weir().args(["status", "--admin", &addr]).output().expect("weir status");
        let status: Value = serde_json::from_slice(&out.stdout).expect("weir status prints JSON");
        if status["stores"].as_array().map(Vec::len) == Some(2) || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status["tasks"].as_array().map(Vec::len), Some(2), "{status}");
    assert_eq!(status["tasks"][0]["stages"], json!(["stats"]), "{status}");
    assert_eq!(status["stores"].as_array().map(Vec::len), Some(2), "{status}");
    assert_eq!(status["restores"].as_array().map(Vec::len), Some(2), "{status}");
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// Trades as `trade-desk` reads them: keyed by symbol, with an ISIN
/// (`ISIN-<symbol>`), except every 11th, a quote without one.
fn desk_records(trades: &[Trade]) -> Vec<In> {
    trades
        .iter()
        .map(|t| {
            let json = if has_isin(t) {
                t.json()
                    .replacen('{', &format!("{{\"isinStockCode\":\"ISIN-{}\",", t.symbol), 1)
            } else {
                t.json()
            };
            In {
                key: Some(t.symbol.as_bytes().to_vec()),
                timestamp: Some(t.ts),
                partition: Some(t.partition),
                ..In::value(json)
            }
        })
        .collect()
}

fn has_isin(t: &Trade) -> bool {
    t.seq % 11 != 4
}

/// What `by-isin` must give: every trade with an ISIN, keyed by it, value
/// and timestamp unchanged (sorted by key, value, timestamp); and the `seq`
/// of the quotes it dead-letters as `missing-isin`.
fn by_isin_reference(trades: &[Trade], records: &[In]) -> (Vec<(String, String, i64)>, Vec<usize>) {
    let mut keyed: Vec<(String, String, i64)> = trades
        .iter()
        .zip(records)
        .filter(|(t, _)| has_isin(t))
        .map(|(t, r)| {
            (
                format!("ISIN-{}", t.symbol),
                String::from_utf8(r.value.clone().unwrap()).unwrap(),
                t.ts,
            )
        })
        .collect();
    keyed.sort();
    let quotes = trades.iter().filter(|t| !has_isin(t)).map(|t| t.seq).collect();
    (keyed, quotes)
}

/// What `by-isin` gave, in the reference's shape.
fn by_isin_got(keyed: &[CommittedRecord], dead: &[CommittedRecord]) -> (Vec<(String, String, i64)>, Vec<usize>) {
    let mut got: Vec<(String, String, i64)> = keyed
        .iter()
        .map(|r| {
            (
                r.key_str().unwrap().to_owned(),
                r.value_str().unwrap().to_owned(),
                r.timestamp,
            )
        })
        .collect();
    got.sort();
    (got, dead_seqs(dead, "missing-isin"))
}

/// The graph example `trade-desk` on the broker: both stages read the input
/// (a fan-out in one task per partition), one writes to its own `to`
/// topic; each result is exactly its reference, late trades and quotes are
/// dead-lettered by the stage they fail in.
#[test]
fn trade_desk_fans_one_input_out_to_two_stages() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (input, by_isin, quotes, daily, late_topic) = (
        unique("trades"),
        unique("by-isin"),
        unique("quotes"),
        unique("daily"),
        unique("late"),
    );
    for (t, n) in [(&input, 2), (&by_isin, 2), (&quotes, 1), (&daily, 2), (&late_topic, 1)] {
        create_topic(t, n);
    }
    let file = example(
        dir.path(),
        "trade-desk.toml",
        &unique("trade-desk"),
        &[
            ("trades", &input),
            ("trades-by-isin", &by_isin),
            ("trades-dlq", &quotes),
            ("daily-stats", &daily),
            ("trades-late", &late_topic),
        ],
        "",
    );
    let trades = daily_trades(2000);
    let records = desk_records(&trades);
    let (want_stats, want_late) = daily_reference(&trades, 3_600_000);
    let (want_keyed, want_quotes) = by_isin_reference(&trades, &records);
    assert!(!want_late.is_empty() && !want_quotes.is_empty());
    produce(&input, &records);
    let mut w = WeirProcess::start(&file, "0", &[]);
    let keyed = wait_for(&by_isin, want_keyed.len(), Duration::from_secs(120));
    let dead = wait_for(&quotes, want_quotes.len(), Duration::from_secs(60));
    assert_eq!(by_isin_got(&keyed, &dead), (want_keyed, want_quotes));
    let got_late = late_seqs(&wait_for(&late_topic, want_late.len(), Duration::from_secs(60)));
    assert_eq!(got_late, want_late, "dead-lettered trades are exactly the late ones");
    let got = until(&want_stats, Duration::from_secs(60), || {
        last_by_key_window(&committed(&daily))
    });
    assert_eq!(got, want_stats);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// Waits until the instance has opened (and restored) the stores of `n` tasks.
fn wait_restored(w: &WeirProcess, addr: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let text = http_get(addr, "/status");
        let status: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or("{}")).unwrap_or(Value::Null);
        let restores = status["restores"].as_array().cloned().unwrap_or_default();
        if restores.len() >= n && restores.iter().all(|r| r["restore"]["state"] == json!("done")) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "stores not restored: {status}\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A changelog record that Weir did not write (no input position) is
/// corrupt state: the restore stops the instance, naming the topic,
/// partition and offset, rather than take it as committed.
#[test]
fn a_changelog_record_without_its_position_stops_the_restore() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let app = unique("corrupt-changelog");
    let (file, _, _) = word_count_pipeline(dir.path(), &app, 1, "");
    let changelog = format!("{app}-count-changelog");
    create_topic(&changelog, 1);
    let mut key = vec![1u8, 1u8];
    key.extend_from_slice(&2u32.to_be_bytes());
    key.extend_from_slice(b"w0");
    produce(
        &changelog,
        &[In {
            key: Some(key),
            partition: Some(0),
            value: Some(1u64.to_le_bytes().to_vec()),
            ..In::default()
        }],
    );
    let mut w = WeirProcess::start(&file, "0", &[]);
    let status = w.wait(Duration::from_secs(90));
    let log = w.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "restoring {changelog}[0]: corrupt changelog: the record at offset 0 is without its input position \
             (header weir.input.next)"
        )),
        "{log}"
    );
}

/// A stop (SIGTERM) reaches a restore: the instance ends at once and
/// cleanly, before the store is whole; the next life restores it all.
#[test]
fn a_stop_during_a_restore_ends_the_instance_cleanly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let app = unique("stop-restore");
    let (file, _, _) = word_count_pipeline(dir.path(), &app, 1, "");
    // A changelog of 400 000 counts of 1, as the count stage writes them:
    // each with the task's input position (here `0`: a position that read
    // nothing, which every committed offset covers).
    let changelog = format!("{app}-count-changelog");
    create_topic(&changelog, 1);
    let n = 400_000;
    let records: Vec<In> = (0..n)
        .map(|i| {
            let word = format!("w{i}");
            let mut key = vec![1u8, 1u8];
            key.extend_from_slice(&(word.len() as u32).to_be_bytes());
            key.extend_from_slice(word.as_bytes());
            In {
                key: Some(key),
                partition: Some(0),
                value: Some(1u64.to_le_bytes().to_vec()),
                headers: vec![(weir::state::changelog::INPUT_NEXT.to_owned(), Some(b"0".to_vec()))],
                ..In::default()
            }
        })
        .collect();
    produce(&changelog, &records);
    let mut w = WeirProcess::start(&file, "0", &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.log_text().contains("restoring state from") {
        assert!(
            w.running() && Instant::now() < deadline,
            "no restore began:\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = w.terminate(EXIT_WAIT);
    let log = w.log_text();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("stopped while restoring state") && log.contains("stopped cleanly"),
        "{log}"
    );
    assert!(
        !log.contains("restored state from"),
        "the restore finished before the stop:\n{log}"
    );
    // The next life restores the whole store: every count is there.
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    wait_restored(&w, &addr, 1);
    for word in ["w0", "w199999", &format!("w{}", n - 1)] {
        let q = query(&addr, "count", word);
        assert_eq!(q["value"]["outputs"][0]["value"], json!("1"), "{word}: {q}");
    }
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

// ---------------------------------------------------------------------------
// Sessions under SIGKILL.

struct Click {
    user: String,
    partition: i32,
    ts: i64,
}

/// One click per second of event time by a random one of 40 users: a user's
/// sessions end after 30 s without a click.
fn clicks(n: usize) -> Vec<Click> {
    let mut rng = Rng(7);
    (0..n)
        .map(|i| {
            let u = rng.below(40);
            Click {
                user: format!("user-{u:02}"),
                partition: (u % 3) as i32,
                ts: T0 + i as i64 * 1000,
            }
        })
        .collect()
}

/// Sessions per user (gap 30 s, grace 0) and which have closed at the end:
/// those whose last click + gap is at or before their partition's stream
/// time (Kafka Streams' suppression of session windows: end + gap + grace).
fn session_reference(clicks: &[Click], gap: i64) -> (Vec<Value>, BTreeMap<String, Value>) {
    let mut sessions: BTreeMap<String, Vec<(i64, i64, u64)>> = BTreeMap::new();
    let mut st: HashMap<i32, i64> = HashMap::new();
    for c in clicks {
        let s = st.entry(c.partition).or_insert(i64::MIN);
        *s = (*s).max(c.ts);
        let list = sessions.entry(c.user.clone()).or_default();
        match list.last_mut() {
            Some(last) if c.ts - last.1 <= gap => {
                last.1 = c.ts;
                last.2 += 1;
            }
            _ => list.push((c.ts, c.ts, 1)),
        }
    }
    let mut closed = Vec::new();
    let mut open = BTreeMap::new();
    for (user, list) in sessions {
        let p = clicks.iter().find(|c| c.user == user).map_or(0, |c| c.partition);
        for (first, last, n) in list {
            let v = json!({"user": user, "start": first, "end": last + 1, "events": n});
            if last + gap <= st[&p] {
                closed.push(v);
            } else {
                open.insert(user.clone(), v);
            }
        }
    }
    closed.sort_by_key(session_order);
    (closed, open)
}

fn session_order(v: &Value) -> (String, i64) {
    (
        v["user"].as_str().unwrap_or("").to_owned(),
        v["start"].as_i64().unwrap_or(0),
    )
}

/// Session outputs, sorted by user and start.
fn sessions_out(records: &[CommittedRecord]) -> Vec<Value> {
    let mut v: Vec<Value> = records
        .iter()
        .map(|r| serde_json::from_str(r.value_str().unwrap_or("null")).unwrap_or(Value::Null))
        .collect();
    v.sort_by_key(session_order);
    v
}

/// Asserts two sorted session lists are equal, showing only the differences.
#[track_caller]
fn assert_sessions(got: &[Value], want: &[Value], what: &str) {
    if got == want {
        return;
    }
    let missing: Vec<&Value> = want.iter().filter(|w| !got.contains(w)).take(5).collect();
    let extra: Vec<&Value> = got.iter().filter(|g| !want.contains(g)).take(5).collect();
    panic!(
        "{what}: {} sessions, want {}; missing e.g. {missing:?}; unexpected or duplicated e.g. {extra:?}",
        got.len(),
        want.len()
    );
}

/// The sessions example under five random SIGKILLs while clicks flow: every
/// closed session is emitted exactly once and equals the reference, and the
/// open sessions in the stores (queried) are exact too. Then the state
/// directory is deleted and the instance restarted: it restores everything
/// from the changelog, and the state is still exact.
#[test]
fn sessions_survive_sigkill_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, app) = (unique("clicks"), unique("sessions"), unique("sessions"));
    create_topic(&input, 3);
    create_topic(&output, 3);
    let file = example(
        dir.path(),
        "sessions.toml",
        &app,
        &[("clicks", &input), ("user-sessions", &output)],
        "",
    );
    let data = clicks(12_000);
    let (want_closed, want_open) = session_reference(&data, 30_000);
    let records: Vec<In> = data
        .iter()
        .map(|c| In {
            key: Some(c.user.as_bytes().to_vec()),
            timestamp: Some(c.ts),
            partition: Some(c.partition),
            ..In::value(format!(r#"{{"user":"{}"}}"#, c.user))
        })
        .collect();
    let (mut w, kills) = run_with_kills(&file, (&input, &output), records, Duration::from_millis(400), 5);
    let got = sessions_out(&wait_for(&output, want_closed.len(), Duration::from_secs(120)));
    std::thread::sleep(Duration::from_secs(2));
    assert_sessions(
        &sessions_out(&committed(&output)),
        &got,
        "more output arrived after it was complete",
    );
    assert_sessions(&got, &want_closed, "closed sessions");
    let addr = admin_addr(&mut w);
    let log_file = w.log.clone();
    let log = move || std::fs::read_to_string(&log_file).unwrap_or_default();
    let check_open = |addr: &str| {
        for (user, want) in &want_open {
            let q = query(addr, "sessions", user);
            let windows = q["windows"].as_array().unwrap_or_else(|| panic!("{q}"));
            assert_eq!(windows.len(), 1, "one open session for {user}: {q}\n{}", log());
            let shown: Value = serde_json::from_str(windows[0]["outputs"][0]["value"].as_str().unwrap()).unwrap();
            assert_eq!(&shown, want, "open session of {user}");
        }
    };
    // The restart after the last kill resumed from local state (plus the
    // changelog tail, if any), not from an empty store.
    let status = wait_restored(&w, &addr, 3);
    check_open(&addr);
    let restores = status["restores"].as_array().cloned().unwrap_or_default();
    assert!(
        !restores.is_empty() && restores.iter().all(|r| r["restore"]["from_local"] == json!(true)),
        "{status}"
    );
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    assert_sessions(
        &sessions_out(&committed(&output)),
        &want_closed,
        "after the last life stopped",
    );
    assert_kills_left_open_transactions(&app, &[&output], &kills);
    // Wipe local state: a full restore from the changelog gives the same state.
    std::fs::remove_dir_all(dir.path().join("state")).expect("wipe the state dir");
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    let status = wait_restored(&w, &addr, 3);
    let restores = status["restores"].as_array().cloned().unwrap_or_default();
    assert!(
        restores.iter().all(|r| r["restore"]["from_local"] == json!(false)),
        "a full restore: {status}"
    );
    check_open(&addr);
    assert_sessions(&sessions_out(&committed(&output)), &want_closed, "after a full restore");
}

// ---------------------------------------------------------------------------
// Word count: repartitioned, update mode.

fn last_counts(records: &[CommittedRecord]) -> BTreeMap<String, u64> {
    last_by_key_window(records)
        .into_iter()
        .map(|((k, _), v)| (k, v.as_u64().unwrap_or_else(|| panic!("count of {v}"))))
        .collect()
}

/// The word-count example: words are re-keyed and go through the internal
/// repartition topic (created by Weir with the input's partition count);
/// the last count of each word equals the reference.
#[test]
fn word_count_through_a_repartition_topic() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let app = unique("word-count");
    let (file, input, output) = word_count_pipeline(dir.path(), &app, 3, KEEP_REPARTITION_RECORDS);
    let (records, want) = sentences(2000);
    produce(&input, &records);
    let mut w = WeirProcess::start(&file, "0", &[]);
    let got = until(&want, Duration::from_secs(120), || last_counts(&committed(&output)));
    assert_eq!(got, want);
    let repartition = format!("{app}-count-repartition");
    let words: usize = want.values().sum::<u64>() as usize;
    assert_eq!(
        committed(&repartition).len(),
        words,
        "one repartitioned record per word"
    );
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// Word count under five SIGKILLs while sentences flow, each after committed
/// progress in its life.
///
/// Two stages (split, then count through `<app>-count-repartition`) killed
/// five times: the repartition topic commits each word exactly once, and
/// the counts are exact. Stage two reads the repartition topic with
/// librdkafka under `read_committed`, so this holds only on a broker that
/// lists aborted transactions in its Fetch responses, as Kafka and the
/// patched test broker do: an aborted repartition record of a killed life
/// would otherwise be counted like a committed one.
#[test]
fn word_count_across_sigkill() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let app = unique("word-count");
    let (file, input, output) = word_count_pipeline(dir.path(), &app, 3, KEEP_REPARTITION_RECORDS);
    let (records, want) = sentences(8000);
    let (mut w, kills) = run_with_kills(&file, (&input, &output), records, Duration::from_millis(500), 5);
    let words = want.values().sum::<u64>() as usize;
    let repartition = format!("{app}-count-repartition");
    let committed_words = wait_for(&repartition, words, Duration::from_secs(120));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = last_counts(&committed(&output));
        if want.iter().all(|(k, v)| now.get(k).is_some_and(|g| g >= v)) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Anything still in flight would show up now.
    std::thread::sleep(Duration::from_secs(2));
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    let got = last_counts(&committed(&output));
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for r in &committed(&repartition) {
        *counted
            .entry(String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
            .or_default() += 1;
    }
    assert_eq!(
        committed_words.len(),
        words,
        "the repartition topic's committed records once complete"
    );
    assert_eq!(counted, want, "the repartition topic commits each word exactly once");
    assert_kills_left_open_transactions(&app, &[&output], &kills);
    let aborted = support::kafka::log_counts(&repartition).aborted;
    assert!(aborted > 0, "no kill left aborted records in the repartition topic");
    assert_eq!(got, want, "exact counts across {aborted} aborted repartition records");
}

// ---------------------------------------------------------------------------
// Latest trade per ISIN per 2-second window, emitted once when it closes.

const ISINS: &[(&str, &str)] = &[
    ("AAPL", "US0378331005"),
    ("MSFT", "US5949181045"),
    ("SAP", "DE0007164600"),
    ("ASML", "NL0010273215"),
];

/// The trades-latest example: trades are re-keyed by ISIN (through a
/// repartition topic) and the latest trade of each ISIN is emitted once per
/// 2-second window, when the window closes — nothing before, nothing twice;
/// the last windows close on the wall clock once the input is quiet.
/// All trades are produced to one input partition in time order, so that
/// stream time in every repartition partition only moves forward.
#[test]
fn latest_trade_per_isin_once_per_window() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq) = (unique("trades"), unique("latest"), unique("dlq"));
    create_topic(&input, 3);
    create_topic(&output, 3);
    create_topic(&dlq, 1);
    let file = example(
        dir.path(),
        "trades-latest.toml",
        &unique("trades-latest"),
        &[("trades", &input), ("latest-trades", &output), ("trades-dlq", &dlq)],
        "",
    );
    let (records, want) = latest_trades(1500, true);
    produce(&input, &records);
    let mut w = WeirProcess::start(&file, "0", &["--kafka", "linger.ms=1"]);
    let got = wait_for(&output, want.len(), Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(3));
    let got_after = committed(&output);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    assert_eq!(got.len(), got_after.len(), "nothing emitted twice or early");
    check_latest(&got_after, &want);
}

type Latest = BTreeMap<(String, i64), (i64, String)>;

/// Checks latest-trade outputs: one per (ISIN, window), with window headers,
/// equal to the reference.
#[track_caller]
fn check_latest(got: &[CommittedRecord], want: &Latest) {
    let mut seen: Latest = BTreeMap::new();
    for r in got {
        let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
        let start = header_i64(r, "weir.window.start").expect("window start header");
        assert_eq!(header_i64(r, "weir.window.end"), Some(start + 2000));
        let prev = seen.insert((key, start), (r.timestamp, r.value_str().unwrap_or("").to_owned()));
        assert!(prev.is_none(), "window emitted twice: {r:?}");
    }
    let wrong: Vec<_> = want.iter().filter(|(k, v)| seen.get(*k) != Some(*v)).take(3).collect();
    assert!(
        wrong.is_empty() && seen.len() == want.len(),
        "{} windows, want {}; e.g. {wrong:?}",
        seen.len(),
        want.len()
    );
}

/// `n` trades of four instruments, all on input partition 0 in time order,
/// and the latest trade of each (ISIN, 2 s window). With `closers`, a last
/// trade of every ISIN a minute later, which only the wall clock closes.
fn latest_trades(n: i64, closers: bool) -> (Vec<In>, Latest) {
    let mut rng = Rng(11);
    let mut trades: Vec<(&str, &str, i64, String)> = Vec::new();
    for i in 0..n {
        let (symbol, isin) = ISINS[rng.below(ISINS.len() as u64) as usize];
        // 20 trades per second of event time, a few out of order by < 100 ms
        // (never across a window boundary: that trade could be late in its
        // repartition partition, which this reference does not model).
        let early = i % 9 == 4 && (i * 50) % 2000 >= 100;
        let ts = T0 + i * 50 - if early { 80 } else { 0 };
        let value = format!(
            r#"{{"isinStockCode":"{isin}","symbol":"{symbol}","price":{},"seq":{i}}}"#,
            100 + i % 7
        );
        trades.push((symbol, isin, ts, value));
    }
    // A last trade of every ISIN a minute later. The example closes windows
    // on the wall clock too (idle-close = 1s), so these are emitted as well
    // once the input has been quiet for a while.
    for (symbol, isin) in ISINS.iter().filter(|_| closers) {
        trades.push((
            symbol,
            isin,
            T0 + n * 50 + 60_000,
            format!(r#"{{"isinStockCode":"{isin}","price":1}}"#),
        ));
    }
    let mut want: BTreeMap<(String, i64), (i64, String)> = BTreeMap::new();
    let mut records = Vec::new();
    for (symbol, isin, ts, value) in trades {
        let start = ts - ts.rem_euclid(2000);
        let e = want
            .entry((isin.to_owned(), start))
            .or_insert((i64::MIN, String::new()));
        if ts >= e.0 {
            *e = (ts, value.clone());
        }
        records.push(In {
            key: Some(symbol.as_bytes().to_vec()),
            timestamp: Some(ts),
            partition: Some(0),
            ..In::value(value)
        });
    }
    (records, want)
}

/// The trades-latest example (repartitioned, 2 s windows, `final`) under
/// five random SIGKILLs while trades flow: every window is emitted exactly
/// once with the latest trade. Without idle-close here (wall-clock closing
/// depends on when the instance happens to be down): the closing trades a
/// minute later close every window before them. On the test broker the
/// second segment may also read aborted repartition records; they are exact
/// copies of records committed later, which the latest-trade fold absorbs,
/// so this is exact there as well.
#[test]
fn latest_trade_survives_sigkill_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq, app) = (
        unique("trades"),
        unique("latest"),
        unique("dlq"),
        unique("trades-latest"),
    );
    create_topic(&input, 3);
    create_topic(&output, 3);
    create_topic(&dlq, 1);
    let file = example(
        dir.path(),
        "trades-latest.toml",
        &app,
        &[("trades", &input), ("latest-trades", &output), ("trades-dlq", &dlq)],
        "",
    );
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("idle-close = \"1s\"", "");
    std::fs::write(&file, text).unwrap();
    let n = 6000;
    let (records, mut want) = latest_trades(n, true);
    // The closing trades' own windows stay open: nothing comes after them.
    want.retain(|(_, start), _| *start < T0 + n * 50);
    let (mut w, kills) = run_with_kills(&file, (&input, &output), records, Duration::from_millis(700), 5);
    let got = wait_for(&output, want.len(), Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(3));
    let got_after = committed(&output);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    assert_eq!(got.len(), got_after.len(), "nothing emitted twice");
    check_latest(&got_after, &want);
    check_latest(&committed(&output), &want);
    assert_kills_left_open_transactions(&app, &[&output], &kills);
}

// ---------------------------------------------------------------------------
// Reprocessing history: internal topics keep what they hold.

/// Reprocessing history (seed 000 §3.8): the trades-latest pipeline
/// (re-keyed through a repartition topic, 2 s windows, `final`) over trades
/// a year old. Every window comes out exactly once, and the internal topics
/// are made as Kafka Streams makes them: the repartition topic keeps records
/// whatever their timestamps (`retention.ms = -1`, `cleanup.policy =
/// delete`) and is purged of what the group has committed (its log start
/// reaches its end); the windowed changelog is `compact,delete` with a
/// retention of size + grace + one day, its records stamped with the wall
/// clock (not the year-old stream time, which a real broker's retention
/// would delete at once).
///
/// The test broker does not enforce retention (its memory engine never
/// deletes by time), so the loss this prevents shows only on a real Kafka
/// (`WEIR_TEST_BOOTSTRAP`); here the configuration, the purge and the
/// timestamps are what can fail.
#[test]
fn year_old_trades_pass_both_stages_and_internal_topics_keep_them() {
    const YEAR: i64 = 365 * DAY;
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq) = (unique("trades"), unique("latest"), unique("dlq"));
    // Topics of old records keep them too (a real broker's default
    // retention would delete year-old input before the pipeline reads it).
    for (topic, partitions) in [(&input, 3), (&output, 3), (&dlq, 1)] {
        broker()
            .create_topic_with_config(topic, partitions, &[("retention.ms", "-1")])
            .unwrap_or_else(|e| panic!("create {topic}: {e}"));
    }
    let app = unique("history");
    let file = example(
        dir.path(),
        "trades-latest.toml",
        &app,
        &[("trades", &input), ("latest-trades", &output), ("trades-dlq", &dlq)],
        "repartition-purge-interval = \"500ms\"",
    );
    let (mut records, want) = latest_trades(1500, true);
    for r in &mut records {
        r.timestamp = r.timestamp.map(|t| t - YEAR);
    }
    let want: Latest = want
        .into_iter()
        .map(|((isin, start), (ts, value))| ((isin, start - YEAR), (ts - YEAR, value)))
        .collect();
    let started = now_ms();
    produce(&input, &records);
    let mut w = WeirProcess::start(&file, "0", &["--kafka", "linger.ms=1"]);
    let got = wait_for(&output, want.len(), Duration::from_secs(120));

    // The purge: every repartition record the group committed is deleted,
    // so each partition's log start reaches the group's committed offset
    // (not always the end: a transaction's commit marker may follow).
    let repartition = format!("{app}-latest-repartition");
    let committed_at = |p: usize| GroupProgress::of_partitions(&app, &[(repartition.clone(), p as i32)]).committed();
    let marks = until(&true, Duration::from_secs(30), || {
        let m = support::kafka::watermarks(&repartition);
        m.iter().map(|(low, _)| low).sum::<i64>() > 0
            && m.iter().enumerate().all(|(p, (low, _))| *low == committed_at(p))
    });
    std::thread::sleep(Duration::from_secs(2));
    let got_after = committed(&output);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    assert!(
        marks,
        "committed repartition records are purged: (log start, end) per partition {:?}, committed {:?}",
        support::kafka::watermarks(&repartition),
        (0..3).map(committed_at).collect::<Vec<_>>()
    );
    assert_eq!(got.len(), got_after.len(), "nothing emitted twice or early");
    check_latest(&got_after, &want);

    let config = support::kafka::topic_config(&repartition);
    assert_eq!(config.get("retention.ms").map(String::as_str), Some("-1"), "{config:?}");
    assert_eq!(
        config.get("cleanup.policy").map(String::as_str),
        Some("delete"),
        "{config:?}"
    );
    let changelog = format!("{app}-latest-changelog");
    let config = support::kafka::topic_config(&changelog);
    assert_eq!(
        config.get("cleanup.policy").map(String::as_str),
        Some("compact,delete"),
        "{config:?}"
    );
    assert_eq!(
        config.get("retention.ms").map(String::as_str),
        Some((2000 + DAY).to_string().as_str()),
        "a 2 s window with no grace, plus a day: {config:?}"
    );
    let stamps: Vec<i64> = committed(&changelog).iter().map(|r| r.timestamp).collect();
    let finished = now_ms();
    assert!(!stamps.is_empty(), "the changelog has records");
    assert!(
        stamps.iter().all(|t| (started..=finished).contains(t)),
        "changelog records carry the wall clock of their writing ({started}..={finished}), e.g. {:?}",
        stamps.iter().find(|t| !(started..=finished).contains(t))
    );
}

/// A windowed changelog is deleted by time as well as compacted, so a task
/// whose local checkpoint lies before the changelog's start cannot catch up
/// from it (the changes in between, tombstones included, are gone): it
/// wipes its store and restores whole. Here instance `a` counts ten events
/// and stops; instance `b` (another state dir) takes over and counts five
/// more; the changelog is then deleted up to its end, as retention would;
/// `a` comes back with its old local store. Its count starts again from
/// what the changelog holds — nothing — instead of from its stale ten.
#[test]
fn a_store_older_than_its_changelog_restores_whole() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, app) = (unique("in"), unique("counts"), unique("wipe"));
    create_topic(&input, 1);
    create_topic(&output, 1);
    let file = support::kafka::pipeline_file(
        dir.path(),
        &format!(
            "application-id = \"{app}\"\ninputs = [\"{input}\"]\nstatic-membership = false\n\
             [[stage]]\nname = \"count\"\nkind = \"aggregate\"\nmodule = \"{}\"\nemit = \"update\"\n\
             window = {{ kind = \"tumbling\", size = \"1d\" }}\n[outputs]\ndefault = \"{output}\"\n",
            guests().example("rust", "count").display()
        ),
    );
    let t = T0 + 1000;
    let events = |n: usize| -> Vec<In> {
        (0..n)
            .map(|i| In {
                key: Some(b"k".to_vec()),
                timestamp: Some(t + i as i64),
                ..In::value(format!("e{i}"))
            })
            .collect()
    };
    let last_count = || {
        let mut out = committed(&output);
        out.sort_by_key(|r| r.offset);
        out.last().and_then(|r| r.value_str().map(str::to_owned))
    };
    let life = |instance: &str, state: &str, n: usize, want: &str| -> String {
        produce(&input, &events(n));
        let state = dir.path().join(state);
        let state = state.to_str().expect("a UTF-8 temp path");
        let mut w = WeirProcess::start(&file, instance, &["--state-dir", state]);
        let got = until(&Some(want.to_owned()), Duration::from_secs(60), last_count);
        assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
        assert_eq!(got.as_deref(), Some(want), "{}", w.log_text());
        w.log_text()
    };
    life("a", "state-a", 10, "10");
    life("b", "state-b", 5, "15");
    let changelog = format!("{app}-count-changelog");
    support::kafka::delete_records_to_end(&changelog);
    let log = life("a", "state-a", 3, "3");
    assert!(
        log.contains("restoring it whole"),
        "the stale store says why it restores whole:\n{log}"
    );
}

// ---------------------------------------------------------------------------
// Two-stage top 10.

/// The top10 example: each symbol's daily change (stage one), then all
/// changes re-keyed to one key and repartitioned into a single-partition
/// topic where the day's ten biggest changes are kept (stage two). The last
/// top 10 of each day equals the reference.
#[test]
fn top10_over_a_single_partition_topic() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let app = unique("top10");
    let (input, output) = (unique("trades"), unique("top10"));
    create_topic(&input, 2);
    create_topic(&output, 1);
    let file = example(
        dir.path(),
        "top10.toml",
        &app,
        &[("trades", &input), ("top10", &output)],
        "",
    );
    let (records, want) = top10_trades(2000);
    produce(&input, &records);
    let mut w = WeirProcess::start(&file, "0", &[]);
    let got = await_top10(&output, &want);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    assert_eq!(got, want);
}

/// The last top 10 of each day in `output`, once it equals `want` (or after
/// two minutes).
fn await_top10(output: &str, want: &BTreeMap<i64, Value>) -> BTreeMap<i64, Value> {
    until(want, Duration::from_secs(120), || {
        last_by_key_window(&committed(output))
            .into_iter()
            .map(|((_, day), v)| (day, v))
            .collect()
    })
}

/// `n` trades of 14 symbols over two days, on one partition in time order
/// (stage two's stream time then only moves forward), and each day's top 10
/// of changes (last price − first price).
fn top10_trades(n: i64) -> (Vec<In>, BTreeMap<i64, Value>) {
    let symbols: Vec<String> = (0..14).map(|i| format!("S{i:02}")).collect();
    let mut rng = Rng(5);
    let mut first_last: BTreeMap<(i64, String), (i64, i64)> = BTreeMap::new();
    let mut records = Vec::new();
    for i in 0..n {
        let s = rng.below(symbols.len() as u64) as usize;
        let ts = T0 + i * (2 * DAY / n);
        let cents = 5_000 + rng.below(10_000) as i64;
        let day = ts - ts.rem_euclid(DAY);
        let e = first_last.entry((day, symbols[s].clone())).or_insert((cents, cents));
        e.1 = cents;
        records.push(In {
            key: Some(symbols[s].as_bytes().to_vec()),
            timestamp: Some(ts),
            // One partition in time order: stage two's stream time then only
            // moves forward (across partitions a change could arrive late).
            partition: Some(0),
            ..In::value(format!(
                r#"{{"symbol":"{}","price":{}.{:02}}}"#,
                symbols[s],
                cents / 100,
                cents % 100
            ))
        });
    }
    let mut want: BTreeMap<i64, Value> = BTreeMap::new();
    for day in [T0, T0 + DAY] {
        let mut changes: Vec<(String, f64)> = first_last
            .iter()
            .filter(|((d, _), _)| *d == day)
            .map(|((_, s), (open, close))| (s.clone(), (close - open) as f64 / 100.0))
            .collect();
        changes.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        changes.truncate(10);
        want.insert(
            day,
            norm(Value::Array(
                changes
                    .into_iter()
                    .map(|(s, c)| json!({"symbol": s, "change": c}))
                    .collect(),
            )),
        );
    }
    (records, want)
}

/// The top10 example under five random SIGKILLs while trades flow: each
/// day's last top 10 is exact. (Stage two keeps the latest change per
/// symbol, so aborted repartition records that the test broker lets through
/// are absorbed; see the module docs.)
#[test]
fn top10_survives_sigkill_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, app) = (unique("trades"), unique("top10"), unique("top10"));
    create_topic(&input, 2);
    create_topic(&output, 1);
    let file = example(
        dir.path(),
        "top10.toml",
        &app,
        &[("trades", &input), ("top10", &output)],
        "",
    );
    let (records, want) = top10_trades(6000);
    let (mut w, kills) = run_with_kills(&file, (&input, &output), records, Duration::from_millis(700), 5);
    let got = await_top10(&output, &want);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    assert_eq!(got, want);
    assert_eq!(await_top10(&output, &want), want, "after the last life stopped");
    assert_kills_left_open_transactions(&app, &[&output], &kills);
}

// ---------------------------------------------------------------------------
// Scale-out.

/// Two instances of the daily-stats example split four partitions. One is
/// SIGKILLed with a transaction open, after it committed progress on its
/// share; the other takes its partitions over, restores their stores from
/// the changelogs (it has no local state for them), and the final
/// statistics are exact.
///
/// A real broker aborts the dead instance's open transaction when its
/// transaction timeout passes; the test broker never times transactions out,
/// so the test does what the timeout would: it fences the dead instance's
/// transactional.id.
#[test]
fn scale_out_and_takeover_keep_state_exact() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let app = unique("daily-stats");
    let (file, input, output, _late) = daily_stats_pipeline(dir.path(), &app, 4);
    let mut trades = daily_trades(6000);
    for t in &mut trades {
        t.partition = SYMBOLS.iter().position(|s| *s == t.symbol).unwrap_or(0) as i32 % 4;
    }
    let (want, _) = daily_reference(&trades, 3_600_000);
    let records = trade_records(&trades);
    // A quarter is fed at once; the next part once the two instances have
    // split the partitions; the last third once b has committed progress on
    // its share, so that it flows while b is killed, however slow the split
    // and b's first commits were on a slow machine.
    let feeder = Feeder::paced(&input, records, 10, Duration::from_millis(40), &[1500, 4000]);
    // Kill b mid-stream, once it has committed progress on its share (after
    // the split, so that a commits none of it), a random moment later, when
    // one of its transactions is open.
    let Pair {
        mut a,
        mut b,
        b_partitions,
        ..
    } = Pair::split(dir.path(), &file, &input, 4);
    feeder.open(0);
    let progress = GroupProgress::of_partitions(&app, &b_partitions);
    let changelog = format!("{app}-stats-changelog");
    let b_open = || {
        support::kafka::partition_log_counts(&changelog)
            .iter()
            .any(|(p, c)| c.open > 0 && b_partitions.iter().any(|(_, bp)| bp == p))
    };
    let deadline = Instant::now() + crash::PROGRESS_WAIT;
    while progress.committed() <= 0 {
        assert!(
            b.running() && Instant::now() < deadline,
            "b committed nothing on its share:\n{}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    feeder.open(1);
    let kill = Life::begin(0, &progress).kill_after_progress(
        &mut b,
        &progress,
        KillRng::seeded().millis(300, 2000),
        Some(&b_open),
    );
    let assignments = a.log_text().matches("partitions assigned").count();
    fence(&format!("{app}-b"));
    // a takes b's partitions over once b's session times out.
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.log_text().matches("partitions assigned").count() <= assignments {
        assert!(Instant::now() < deadline, "a never took over:\n{}", a.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    feeder.finish();
    let got = until(&want, Duration::from_secs(120), || {
        last_by_key_window(&committed(&output))
    });
    let log = a.log_text();
    assert!(a.terminate(EXIT_WAIT).success(), "{log}");
    assert_eq!(got, want, "log of the survivor:\n{log}");
    assert_eq!(
        last_by_key_window(&committed(&output)),
        want,
        "after the survivor stopped"
    );
    assert!(
        log.contains("restored state"),
        "the survivor restored the taken-over stores:\n{log}"
    );
    assert_kills_left_open_transactions(&app, &[&output], &[kill]);
}

/// Two instances share daily-stats; one is paused (SIGSTOP) inside a
/// transaction, past its session timeout, so the group gives its partitions
/// to the other, which redoes the paused one's uncommitted work. Resumed
/// (SIGCONT), the zombie tries to commit: its transactional offset commit
/// carries a generation the group has left behind, and is refused (KIP-447:
/// the test broker's patch 0002 checks it as Kafka does), so its transaction
/// aborts, and it rejoins the group without a restart. Nothing is written
/// twice: every (symbol, day)'s last update is exact.
///
/// On nisshi one window stays open: a pause between the zombie's
/// transactional offset commit and its EndTxn would still commit its work
/// twice. Kafka closes it with stable offset fetches
/// (`UNSTABLE_OFFSET_COMMIT`) and transaction timeouts, which nisshi lacks
/// (TESTING.md). The pause here is aimed at an open transaction with
/// records in flight, almost never at that millisecond.
#[test]
fn a_paused_instance_is_fenced_rejoins_and_writes_nothing_twice() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let app = unique("zombie");
    let (file, input, output, _late) = daily_stats_pipeline(dir.path(), &app, 4);
    let mut trades = daily_trades(6000);
    for t in &mut trades {
        t.partition = SYMBOLS.iter().position(|s| *s == t.symbol).unwrap_or(0) as i32 % 4;
    }
    let (want, _) = daily_reference(&trades, 3_600_000);
    let feeder = Feeder::paced(&input, trade_records(&trades), 10, Duration::from_millis(40), &[1500]);
    let Pair {
        mut a,
        mut b,
        b_admin,
        b_partitions,
    } = Pair::split(dir.path(), &file, &input, 4);
    feeder.open(0);
    let progress = GroupProgress::of_partitions(&app, &b_partitions);
    let deadline = Instant::now() + crash::PROGRESS_WAIT;
    while progress.committed() <= 0 {
        assert!(Instant::now() < deadline, "b committed nothing:\n{}", b.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Paused inside a transaction with records in flight on b's share.
    let changelog = format!("{app}-stats-changelog");
    let deadline = Instant::now() + crash::AIM_WAIT;
    while !support::kafka::partition_log_counts(&changelog)
        .iter()
        .any(|(p, c)| c.open > 0 && b_partitions.iter().any(|(_, bp)| bp == p))
    {
        assert!(Instant::now() < deadline, "b never had a transaction open");
        std::thread::sleep(Duration::from_millis(20));
    }
    let assignments = a.log_text().matches("partitions assigned").count();
    b.signal("STOP");
    // a takes b's partitions once b's session (6 s) times out.
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.log_text().matches("partitions assigned").count() <= assignments {
        assert!(Instant::now() < deadline, "a never took over:\n{}", a.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    b.signal("CONT");
    feeder.finish();
    let got = until(&want, Duration::from_secs(120), || {
        last_by_key_window(&committed(&output))
    });
    // The zombie rejoined: the group splits the partitions again.
    let deadline = Instant::now() + Duration::from_secs(60);
    while assigned(&b_admin, &input).is_empty() {
        assert!(
            b.running() && Instant::now() < deadline,
            "b never rejoined:\n{}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (a_log, b_log) = (a.log_text(), b.log_text());
    assert!(b.terminate(EXIT_WAIT).success(), "b: {b_log}");
    assert!(a.terminate(EXIT_WAIT).success(), "a: {a_log}");
    assert_eq!(got, want, "log of the zombie:\n{b_log}\nlog of the other:\n{a_log}");
    assert_eq!(last_by_key_window(&committed(&output)), want, "after both stopped");
    assert!(
        b_log.contains("lost=true") || b_log.contains("aborting") || b_log.contains("aborted"),
        "the zombie's transaction was refused and aborted:\n{b_log}"
    );
    assert!(
        support::kafka::log_counts(&changelog).aborted > 0,
        "the zombie's open transaction was aborted"
    );
}

/// Two instances of one pipeline, each with its own state directory (as on
/// separate machines), once they have split the partitions of `input`.
struct Pair {
    a: WeirProcess,
    b: WeirProcess,
    b_admin: String,
    /// The partitions of `input` that `b` took.
    b_partitions: Vec<(String, i32)>,
}

impl Pair {
    /// Starts `a` with `file` and `b` with a copy whose state directory is
    /// `state-b`, and waits until each holds some of the `partitions`
    /// partitions of `input` and none is held twice.
    fn split(dir: &Path, file: &Path, input: &str, partitions: usize) -> Pair {
        let other = dir.join("b.toml");
        std::fs::write(
            &other,
            std::fs::read_to_string(file).unwrap().replace("/state\"", "/state-b\""),
        )
        .unwrap();
        let mut a = WeirProcess::start(file, "a", crash::CRASH_ARGS);
        let mut b = WeirProcess::start(&other, "b", crash::CRASH_ARGS);
        let (a_admin, b_admin) = (admin_addr(&mut a), admin_addr(&mut b));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (of_a, of_b) = (assigned(&a_admin, input), assigned(&b_admin, input));
            if !of_a.is_empty()
                && !of_b.is_empty()
                && of_a.len() + of_b.len() == partitions
                && of_a.iter().all(|p| !of_b.contains(p))
            {
                return Pair {
                    a,
                    b,
                    b_admin,
                    b_partitions: of_b,
                };
            }
            assert!(
                b.running() && a.running() && Instant::now() < deadline,
                "a and b never split the partitions (a {of_a:?}, b {of_b:?}):\n{}",
                b.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The partitions of `topic` assigned to the instance whose admin API is at
/// `addr`, from its `/status`.
fn assigned(addr: &str, topic: &str) -> Vec<(String, i32)> {
    let text = http_get(addr, "/status");
    let status: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or("{}")).unwrap_or(Value::Null);
    status["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p["topic"].as_str()?.to_owned(),
                i32::try_from(p["partition"].as_i64()?).ok()?,
            ))
        })
        .filter(|(t, _)| t == topic)
        .collect()
}

/// Does what a broker's transaction timeout does for a dead instance:
/// initialising a producer with its transactional.id aborts its open transaction.
fn fence(transactional_id: &str) {
    use rdkafka::producer::{BaseProducer, Producer as _};
    let p: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("transactional.id", transactional_id)
        .create()
        .expect("create a fencing producer");
    p.init_transactions(Duration::from_secs(30))
        .expect("fence the dead instance");
}

/// The daily-stats example (windowed, with late trades) under five random
/// SIGKILLs while trades flow: the last update of every (symbol, day) and
/// the dead-lettered late trades are exactly the reference's.
#[test]
fn daily_stats_survive_sigkill_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let app = unique("daily-stats");
    let (file, input, output, late_topic) = daily_stats_pipeline(dir.path(), &app, 2);
    let trades = daily_trades(12_000);
    let (want, late) = daily_reference(&trades, 3_600_000);
    let records = trade_records(&trades);
    let (mut w, kills) = run_with_kills(&file, (&input, &output), records, Duration::from_millis(400), 5);
    let dead = wait_for(&late_topic, late.len(), Duration::from_secs(120));
    let got = until(&want, Duration::from_secs(120), || {
        last_by_key_window(&committed(&output))
    });
    std::thread::sleep(Duration::from_secs(2));
    let dead_after = committed(&late_topic);
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    let mut got_late: Vec<usize> = dead_after
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_str(r.value_str().unwrap()).unwrap();
            v["seq"].as_u64().unwrap() as usize
        })
        .collect();
    got_late.sort_unstable();
    assert_eq!(dead.len(), dead_after.len(), "late trades dead-lettered more than once");
    assert_eq!(got_late, late, "dead-lettered trades are exactly the late ones");
    assert_eq!(got.len(), want.len(), "one series per symbol and day");
    let wrong: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(*v)).take(3).collect();
    assert!(wrong.is_empty(), "wrong final stats, e.g. {wrong:?}");
    assert_eq!(
        last_by_key_window(&committed(&output)),
        want,
        "final stats after the last life stopped"
    );
    assert_eq!(committed(&late_topic).len(), late.len(), "dead letters after the stop");
    assert_kills_left_open_transactions(&app, &[&output, &late_topic], &kills);
}

/// Bad stateful setups stop `weir run` at once with a message naming the
/// cause: an aggregate stage given a processor module, an internal topic
/// that exists with another partition count, and a state directory that
/// cannot be created.
#[test]
fn bad_stateful_setups_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let run = |file: &Path| {
        let out = weir()
            .args([
                "run",
                &file.display().to_string(),
                "--kafka-timeout",
                "20s",
                "--admin",
                "off",
            ])
            .output()
            .expect("run weir");
        assert!(
            !out.status.success(),
            "weir ran: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let app = unique("word-count");
    let (file, input, output) = word_count_pipeline(dir.path(), &app, 3, "");

    let wrong_kind = dir.path().join("wrong-kind.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("rust-count.wasm", "rust-uppercase.wasm");
    std::fs::write(&wrong_kind, text).unwrap();
    let e = run(&wrong_kind);
    assert!(
        e.contains("stage count") && e.contains("is a processor") && e.contains("aggregate"),
        "{e}"
    );

    create_topic(&format!("{app}-count-changelog"), 1);
    let e = run(&file);
    assert!(
        e.contains(&format!(
            "internal topic {app}-count-changelog has 1 partition(s) but the pipeline needs 3"
        )),
        "{e}"
    );

    let app2 = unique("word-count");
    let blocked = dir.path().join("not-a-dir");
    std::fs::write(&blocked, "a file where the state directory would go").unwrap();
    let file2 = example(
        dir.path(),
        "word-count.toml",
        &app2,
        &[("sentences", &input), ("word-counts", &output)],
        "",
    );
    let text = std::fs::read_to_string(&file2).unwrap().replace(
        &format!("state-dir = \"{}\"", dir.path().join("state").display()),
        &format!("state-dir = \"{}\"", blocked.display()),
    );
    std::fs::write(&file2, text).unwrap();
    produce(&input, &[In::value("one two")]);
    let e = run(&file2);
    assert!(
        e.contains("cannot open the state store") && e.contains("not-a-dir"),
        "{e}"
    );

    // A count over two inputs read directly (no repartition) with 2 and 3
    // partitions: one task per partition number reads both, so a key's
    // records would meet in different tasks. The start fails naming both
    // topics and their partition counts.
    let (a, b) = (unique("left"), unique("right"));
    create_topic(&a, 2);
    create_topic(&b, 3);
    let copart = dir.path().join("copart.toml");
    std::fs::write(
        &copart,
        format!(
            "application-id = \"{}\"\ninputs = [\"{a}\", \"{b}\"]\nstate-dir = \"{}\"\n[[stage]]\nname = \"count\"\n\
             kind = \"aggregate\"\nmodule = \"{}\"\nrepartition = false\n[outputs]\ndefault = \"{output}\"\n\
             [kafka]\n\"bootstrap.servers\" = \"{}\"\n",
            unique("copart"),
            dir.path().join("state").display(),
            guests().example("rust", "count").display(),
            broker().bootstrap
        ),
    )
    .unwrap();
    let e = run(&copart);
    assert!(
        e.contains("stage count")
            && e.contains("not co-partitioned")
            && e.contains(&format!("{a} (2 partitions), {b} (3 partitions)")),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// The same examples through the broker-free driver (`weir::testing`), against
// the same references: one partition per topic, so every reference runs with
// all records on partition 0.

/// Runs example `name` through the broker-free driver, record by record, on
/// the same engine as `weir run` (every topic and store in memory): one
/// input's records in their order, then `idle` of wall-clock time. Returns
/// what each topic received, as records of partition 0.
fn drive(name: &str, input: (&str, Vec<In>), idle: Duration) -> BTreeMap<String, Vec<CommittedRecord>> {
    let body = example_body(name, &format!("drive-{name}"), &[]);
    drive_text(&body, &[input], idle)
}

/// Runs the pipeline `body` (a pipeline file without `[kafka]`) through the
/// driver: the inputs' records one at a time, taking turns between the
/// inputs, then `idle` of wall-clock time.
fn drive_text(body: &str, inputs: &[(&str, Vec<In>)], idle: Duration) -> BTreeMap<String, Vec<CommittedRecord>> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.toml");
    std::fs::write(
        &file,
        format!("{body}\n[kafka]\n\"bootstrap.servers\" = \"127.0.0.1:9\"\n"),
    )
    .unwrap();
    let pipeline = weir::pipeline::Pipeline::load(&file).unwrap();
    let runtime = weir::runtime::Runtime::new(weir::runtime::RuntimeConfig::default()).unwrap();
    let mut driver = weir::testing::Driver::new(&pipeline, &runtime, 1).unwrap();
    let longest = inputs.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    for i in 0..longest {
        for (topic, records) in inputs {
            let Some(r) = records.get(i) else { continue };
            let event = weir::event::Event {
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r
                    .headers
                    .iter()
                    .map(|(name, value)| weir::event::Header {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                timestamp: r.timestamp.unwrap_or(0),
                ..weir::event::Event::default()
            };
            driver.pipe(topic, vec![event]).unwrap();
        }
    }
    if !idle.is_zero() {
        driver.advance_wall_clock(idle).unwrap();
    }
    driver
        .outputs()
        .iter()
        .map(|(topic, records)| {
            let records = records
                .iter()
                .enumerate()
                .map(|(i, r)| CommittedRecord {
                    partition: 0,
                    offset: i as i64,
                    key: r.key.clone(),
                    value: r.value.clone(),
                    headers: r.headers.clone(),
                    timestamp: r.timestamp,
                })
                .collect();
            (topic.to_string(), records)
        })
        .collect()
}

/// What `topic` received in a driven run.
fn received<'a>(out: &'a BTreeMap<String, Vec<CommittedRecord>>, topic: &str) -> &'a [CommittedRecord] {
    out.get(topic).map_or(&[], Vec::as_slice)
}

#[test]
fn daily_stats_through_the_driver() {
    let mut trades = daily_trades(3000);
    trades.iter_mut().for_each(|t| t.partition = 0);
    let (want, late) = daily_reference(&trades, 3_600_000);
    assert!(late.len() > 20, "the data must have late trades: {}", late.len());
    let out = drive("daily-stats.toml", ("trades", trade_records(&trades)), Duration::ZERO);
    assert_eq!(last_by_key_window(received(&out, "daily-stats")), want);
    let got_late = late_seqs(received(&out, "trades-late"));
    assert_eq!(got_late, late, "dead-lettered trades are exactly the late ones");
}

#[test]
fn sessions_through_the_driver() {
    let mut data = clicks(3000);
    data.iter_mut().for_each(|c| c.partition = 0);
    let (want_closed, _) = session_reference(&data, 30_000);
    let records: Vec<In> = data
        .iter()
        .map(|c| In {
            key: Some(c.user.as_bytes().to_vec()),
            timestamp: Some(c.ts),
            ..In::value(format!(r#"{{"user":"{}"}}"#, c.user))
        })
        .collect();
    let out = drive("sessions.toml", ("clicks", records), Duration::ZERO);
    assert_sessions(
        &sessions_out(received(&out, "user-sessions")),
        &want_closed,
        "closed sessions",
    );
}

#[test]
fn word_count_through_the_driver() {
    let (records, want) = sentences(2000);
    let out = drive("word-count.toml", ("sentences", records), Duration::ZERO);
    assert_eq!(last_counts(received(&out, "word-counts")), want);
}

#[test]
fn trades_latest_through_the_driver_closes_the_last_windows_on_the_wall_clock() {
    let (records, want) = latest_trades(1500, true);
    let out = drive("trades-latest.toml", ("trades", records.clone()), Duration::ZERO);
    let quiet = received(&out, "latest-trades").len();
    assert!(quiet < want.len(), "the closers' windows wait for the wall clock");
    let out = drive("trades-latest.toml", ("trades", records), Duration::from_secs(5));
    check_latest(received(&out, "latest-trades"), &want);
}

#[test]
fn top10_through_the_driver() {
    let (records, want) = top10_trades(2000);
    let out = drive("top10.toml", ("trades", records), Duration::ZERO);
    let got: BTreeMap<i64, Value> = last_by_key_window(received(&out, "top10"))
        .into_iter()
        .map(|((_, day), v)| (day, v))
        .collect();
    assert_eq!(got, want);
}

/// `trade-desk` through the driver: each result equals its reference, and
/// record for record what the two chain examples it combines
/// (`isin-key`, `daily-stats`) give on the same input.
#[test]
fn trade_desk_through_the_driver_is_its_two_chains_at_once() {
    let mut trades = daily_trades(2000);
    trades.iter_mut().for_each(|t| t.partition = 0);
    let records = desk_records(&trades);
    let out = drive("trade-desk.toml", ("trades", records.clone()), Duration::ZERO);
    let (want_stats, want_late) = daily_reference(&trades, 3_600_000);
    assert_eq!(last_by_key_window(received(&out, "daily-stats")), want_stats);
    assert_eq!(late_seqs(received(&out, "trades-late")), want_late);
    assert_eq!(
        by_isin_got(received(&out, "trades-by-isin"), received(&out, "trades-dlq")),
        by_isin_reference(&trades, &records)
    );
    let stats = drive("daily-stats.toml", ("trades", records.clone()), Duration::ZERO);
    assert_eq!(received(&out, "daily-stats"), received(&stats, "daily-stats"));
    let keyed = drive("isin-key.toml", ("trades", records), Duration::ZERO);
    assert_eq!(received(&out, "trades-by-isin"), received(&keyed, "trades-by-isin"));
}

// ---------------------------------------------------------------------------
// A graph over two inputs: merges into a stateless and a stateful stage.

/// Topics of [`merge_body`].
struct MergeTopics {
    left: String,
    right: String,
    marked: String,
    counts: String,
}

/// A graph pipeline over two inputs: `up` (uppercase) reads `left`; `mark`
/// (exclaim) reads `up` and `right` — a merge — and writes to its own
/// topic; `count` counts per key what `up` and `right` send it, through its
/// repartition topic — or, `co_located`, reads `left` and `right` directly
/// (`repartition = false`): one task per partition number then reads both
/// inputs and keeps the count, and the instances of the group get partition
/// `p` of both together.
fn merge_body(app: &str, t: &MergeTopics, co_located: bool) -> String {
    let count_inputs = if co_located {
        format!("inputs = [\"{}\", \"{}\"]\nrepartition = false", t.left, t.right)
    } else {
        format!("inputs = [\"up\", \"{}\"]", t.right)
    };
    format!(
        "application-id = \"{app}\"\ninputs = [\"{left}\", \"{right}\"]\n\
         [[stage]]\nname = \"up\"\nmodule = \"{up}\"\ninputs = [\"{left}\"]\n\
         [[stage]]\nname = \"mark\"\nmodule = \"{mark}\"\ninputs = [\"up\", \"{right}\"]\nto = \"{marked}\"\n\
         [[stage]]\nname = \"count\"\nkind = \"aggregate\"\nmodule = \"{count}\"\n{count_inputs}\n\
         [outputs]\ndefault = \"{counts}\"\n",
        left = t.left,
        right = t.right,
        marked = t.marked,
        counts = t.counts,
        up = guests().example("rust", "uppercase").display(),
        mark = guests().example("rust", "exclaim").display(),
        count = guests().example("rust", "count").display(),
    )
}

/// `n` records per side, keyed over 13 keys: `l-<i>` and `r-<i>`.
fn merge_inputs(n: usize) -> (Vec<In>, Vec<In>) {
    let side = |prefix: &str| -> Vec<In> {
        (0..n)
            .map(|i| In {
                key: Some(format!("k-{}", i % 13).into_bytes()),
                timestamp: Some(T0 + i as i64),
                ..In::value(format!("{prefix}-{i}"))
            })
            .collect()
    };
    (side("l"), side("r"))
}

/// The reference: `L-<i>!` and `r-<i>!` for `mark` (sorted), and per key
/// the number of records of both sides.
fn merge_reference(left: &[In], right: &[In]) -> (Vec<String>, BTreeMap<String, u64>) {
    let text = |r: &In| String::from_utf8(r.value.clone().unwrap()).unwrap();
    let mut marked: Vec<String> = left
        .iter()
        .map(|r| format!("{}!", text(r).to_uppercase()))
        .chain(right.iter().map(|r| format!("{}!", text(r))))
        .collect();
    marked.sort();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for r in left.iter().chain(right) {
        *counts
            .entry(String::from_utf8(r.key.clone().unwrap()).unwrap())
            .or_default() += 1;
    }
    (marked, counts)
}

fn sorted_values(records: &[CommittedRecord]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.value_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_graph_merges_two_inputs_through_the_driver() {
    let (left, right) = merge_inputs(200);
    let (want_marked, want_counts) = merge_reference(&left, &right);
    for co_located in [false, true] {
        let t = MergeTopics {
            left: "left".into(),
            right: "right".into(),
            marked: "marked".into(),
            counts: "counts".into(),
        };
        let out = drive_text(
            &merge_body("merge", &t, co_located),
            &[("left", left.clone()), ("right", right.clone())],
            Duration::ZERO,
        );
        assert_eq!(
            sorted_values(received(&out, "marked")),
            want_marked,
            "co-located: {co_located}"
        );
        assert_eq!(
            last_counts(received(&out, "counts")),
            want_counts,
            "co-located: {co_located}"
        );
        // Record by record, a count grows by one with each record of its key.
        assert_eq!(received(&out, "counts").len(), left.len() + right.len());
    }
}

/// The merge graph on the broker: with a repartition topic (one instance),
/// and co-located (three instances: the range assignor gives partition `p`
/// of both inputs to one of them; the co-partitioning check passed at
/// start).
#[test]
fn a_graph_merges_two_inputs_on_the_broker() {
    let _turn = heavy();
    let (left, right) = merge_inputs(1500);
    let spread = |records: Vec<In>| -> Vec<In> {
        records
            .into_iter()
            .enumerate()
            .map(|(i, r)| In {
                partition: Some((i % 13 % 2) as i32),
                ..r
            })
            .collect()
    };
    let (left, right) = (spread(left), spread(right));
    let (want_marked, want_counts) = merge_reference(&left, &right);
    // Three instances for two partitions: an assignor that balances
    // partitions one by one (cooperative-sticky) would split a partition
    // number's two topics between instances.
    for (co_located, instances) in [(false, 1), (true, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let t = MergeTopics {
            left: unique("left"),
            right: unique("right"),
            marked: unique("marked"),
            counts: unique("counts"),
        };
        for topic in [&t.left, &t.right, &t.marked, &t.counts] {
            create_topic(topic, 2);
        }
        let body = merge_body(&unique("merge"), &t, co_located);
        let file = dir.path().join("merge.toml");
        std::fs::write(
            &file,
            format!(
                "state-dir = \"{}\"\n{body}\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\"session.timeout.ms\" = 6000\n",
                dir.path().join("state").display(),
                broker().bootstrap
            ),
        )
        .unwrap();
        produce(&t.left, &left);
        produce(&t.right, &right);
        let mut ws: Vec<WeirProcess> = (0..instances)
            .map(|i| WeirProcess::start(&file, &i.to_string(), &[]))
            .collect();
        let marked = wait_for(&t.marked, want_marked.len(), Duration::from_secs(120));
        assert_eq!(sorted_values(&marked), want_marked, "co-located: {co_located}");
        let got = until(&want_counts, Duration::from_secs(60), || {
            last_counts(&committed(&t.counts))
        });
        assert_eq!(got, want_counts, "co-located: {co_located}");
        for w in &mut ws {
            assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
        }
    }
}
