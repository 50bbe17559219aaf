//! `weir run` against a real Kafka-protocol broker (nisshi on loopback, or
//! the broker in `WEIR_TEST_BOOTSTRAP`): stateless stages end to end, dead
//! letters, exactly-once under SIGKILL and under injected aborts,
//! at-least-once, two instances, and the errors a user meets first.
//! Assertions are on what a `read_committed` consumer sees.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use support::crash::{self, Kill};
use support::kafka::{
    Feeder, In, WeirProcess, admin_addr, committed, counts, create_topic, http_get, pipeline_file, produce, unique,
    values, wait_for,
};
use support::{guests, read_events, testdata, weir_test};
use weir_test_harness::committed::CommittedRecord;

const EXIT_WAIT: Duration = Duration::from_secs(60);

/// The long-running tests that keep input flowing take turns: run side by
/// side on two cores they would mostly measure each other.
fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn toml_path(p: &Path) -> String {
    p.display().to_string().replace('\\', "/")
}

/// A record as compared: topic, key, value, timestamp.
type Rec = (String, Option<Vec<u8>>, Option<Vec<u8>>, i64, Headers);

/// A record's headers other than `weir.module`, sorted.
type Headers = Vec<(String, Option<Vec<u8>>)>;

fn rec(topic: &str, r: &CommittedRecord) -> Rec {
    let mut headers: Headers = r.headers.iter().filter(|(n, _)| n != "weir.module").cloned().collect();
    headers.sort();
    (topic.to_owned(), r.key.clone(), r.value.clone(), r.timestamp, headers)
}

/// Headers as `weir test` prints them (an object, or a list of pairs when a
/// name repeats), other than `weir.module`, sorted.
fn json_headers(v: &serde_json::Value) -> Headers {
    let mut headers: Headers = match v {
        serde_json::Value::Object(m) => m.iter().map(|(n, v)| (n.clone(), json_bytes(v))).collect(),
        serde_json::Value::Array(pairs) => pairs
            .iter()
            .map(|p| (p[0].as_str().expect("header name").to_owned(), json_bytes(&p[1])))
            .collect(),
        other => panic!("headers as `weir test` prints them, not {other}"),
    };
    headers.retain(|(n, _)| n != "weir.module");
    // Output is read through librdkafka, which keeps every header, those
    // that repeat a name too.
    headers.sort();
    headers
}

/// Bytes as `weir test` prints them: a string, `{"base64": …}` or null.
fn json_bytes(v: &serde_json::Value) -> Option<Vec<u8>> {
    use base64::Engine as _;
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone().into_bytes()),
        other => Some(
            base64::engine::general_purpose::STANDARD
                .decode(other["base64"].as_str().expect("base64 form"))
                .expect("valid base64"),
        ),
    }
}

/// One stateless example end to end: the testdata goes in, `weir run` (on
/// three processing threads) processes it, and the committed output equals
/// what `weir test` says the module makes of the same events, topic by
/// topic, with the module's short version label in its header.
struct Case {
    module: &'static str,
    input: &'static str,
    on_error: &'static str,
    routes: &'static [&'static str],
}

/// How many processing threads (`weir-task-N`) the process runs.
fn task_threads(w: &WeirProcess) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", w.pid()))
        .map(|d| {
            d.flatten()
                .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("weir-task-")))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn map_filter_flat_map_and_route_pipelines_end_to_end() {
    let g = guests();
    let cases = [
        Case {
            module: "uppercase",
            input: "logs.jsonl",
            on_error: "fail",
            routes: &[],
        },
        Case {
            module: "errors-only",
            input: "logs.jsonl",
            on_error: "skip",
            routes: &[],
        },
        Case {
            module: "words",
            input: "sentences.jsonl",
            on_error: "skip",
            routes: &[],
        },
        Case {
            module: "route-by-type",
            input: "trades.jsonl",
            on_error: "skip",
            // "cancel" has no route on purpose.
            routes: &["trade", "quote", "unknown"],
        },
    ];
    let mut running = Vec::new();
    for case in &cases {
        let dir = tempfile::tempdir().unwrap();
        let module = g.example("rust", case.module);
        let (input, output) = (unique("in"), unique("out"));
        create_topic(&input, 1);
        create_topic(&output, 1);
        let mut routes = String::new();
        let mut route_topics = Vec::new();
        for r in case.routes {
            let t = unique(r);
            create_topic(&t, 1);
            routes.push_str(&format!("{r} = \"{t}\"\n"));
            route_topics.push((r.to_string(), t));
        }
        let events = read_events(&testdata(case.input));
        produce(
            &input,
            &events
                .iter()
                .map(|e| In {
                    key: e.key.clone(),
                    value: e.value.clone(),
                    headers: e.headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect(),
                    timestamp: Some(e.timestamp),
                    partition: Some(0),
                })
                .collect::<Vec<_>>(),
        );
        let file = pipeline_file(
            dir.path(),
            &format!(
                "application-id = \"{}\"\ninputs = [\"{input}\"]\n[[stage]]\nmodule = \"{}\"\non-error = \"{}\"\n\
                 [outputs]\ndefault = \"{output}\"\n[outputs.routes]\n{routes}",
                unique(case.module),
                toml_path(&module),
                case.on_error
            ),
        );
        // The oracle: `weir test` on the same events.
        let oracle = weir_test(&module, &testdata(case.input), &[]);
        // An output naming a route the pipeline lacks fails its event
        // (`unknown-route`), which the skip policy drops.
        let mut expected: Vec<Rec> = oracle
            .json_lines()
            .iter()
            .filter_map(|o| {
                let topic = match o.get("route").and_then(|r| r.as_str()) {
                    Some(r) => route_topics.iter().find(|(n, _)| n == r)?.1.clone(),
                    None => output.clone(),
                };
                Some((
                    topic,
                    json_bytes(&o["key"]),
                    json_bytes(&o["value"]),
                    o["timestamp"].as_i64().unwrap(),
                    json_headers(&o["headers"]),
                ))
            })
            .collect();
        expected.sort();
        assert!(!expected.is_empty(), "{}: the oracle produced nothing", case.module);
        let weir = WeirProcess::start(&file, "0", &["--threads", "3"]);
        running.push((case, dir, weir, output, route_topics, expected, module));
    }
    for (case, _dir, mut weir, output, route_topics, expected, module) in running {
        let mut topics = vec![output.clone()];
        topics.extend(route_topics.iter().map(|(_, t)| t.clone()));
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut actual: Vec<(Rec, CommittedRecord)>;
        loop {
            actual = topics
                .iter()
                .flat_map(|t| committed(t).into_iter().map(move |r| (rec(t, &r), r)))
                .collect();
            if actual.len() >= expected.len() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let pool = task_threads(&weir);
        assert_eq!(pool, 3, "{}: processing threads running: {pool}", case.module);
        let status = weir.terminate(EXIT_WAIT);
        let log = weir.log_text();
        assert!(
            status.success(),
            "{}: SIGTERM should exit 0, got {status}; log:\n{log}",
            case.module
        );
        assert!(log.contains("stopped cleanly"), "{}: {log}", case.module);
        // `name@sha256:` and the digest's first 12 hex digits.
        let digest = weir::module::digest(&std::fs::read(&module).unwrap());
        let full = format!("rust-{}@{digest}", case.module);
        let label = &full[..full.len() - 64 + 12];
        for (_, r) in &actual {
            let header = r.header("weir.module").flatten().map(String::from_utf8_lossy);
            assert_eq!(
                header.as_deref(),
                Some(label),
                "{}: output without the module's short label: {r:?}",
                case.module
            );
        }
        let mut actual: Vec<Rec> = actual.into_iter().map(|(r, _)| r).collect();
        actual.sort();
        assert_eq!(
            actual,
            expected,
            "{} ({}): committed output differs from `weir test`",
            case.module,
            module.display()
        );
    }
}

/// Every kind of guest failure reaches the dead-letter topic with headers
/// saying why and where from, and the events around it still come out.
#[test]
fn dead_letters_carry_the_cause_for_each_trap_kind() {
    let g = guests();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, dlq, app) = (unique("in"), unique("out"), unique("dlq"), unique("dlq-app"));
    create_topic(&input, 1);
    create_topic(&output, 1);
    create_topic(&dlq, 1);
    let commands = ["ok-1", "panic", "ok-2", "loop", "oom", "fail", "ok-3"];
    produce(
        &input,
        &commands
            .iter()
            .map(|c| In {
                key: Some(format!("key-{c}").into_bytes()),
                headers: vec![("origin".into(), Some(b"test".to_vec()))],
                partition: Some(0),
                ..In::value(*c)
            })
            .collect::<Vec<_>>(),
    );
    let file = pipeline_file(
        dir.path(),
        &format!(
            "application-id = \"{app}\"\ninputs = [\"{input}\"]\n[[stage]]\nname = \"obey\"\nmodule = \"{}\"\n\
             on-error = \"dead-letter\"\ndead-letter-topic = \"{dlq}\"\n[outputs]\ndefault = \"{output}\"\n",
            toml_path(&g.test_guest("misbehave"))
        ),
    );
    let mut weir = WeirProcess::start(&file, "0", &["--deadline", "300ms", "--memory-limit", "64MiB"]);
    let dead = wait_for(&dlq, 4, Duration::from_secs(90));
    let outs = wait_for(&output, 3, Duration::from_secs(30));
    // The admin API counts the same outcomes.
    let metrics = http_get(&admin_addr(&mut weir), "/metrics");
    assert!(
        metrics.contains("stage=\"obey\",outcome=\"dead_lettered\"} 4")
            && metrics.contains("stage=\"obey\",outcome=\"trapped\"} 3"),
        "{metrics}"
    );
    let status = http_get(&admin_addr(&mut weir), "/status");
    assert!(
        status.contains(&format!("\"topic\":\"{input}\"")) && status.contains("misbehave@sha256:"),
        "{status}"
    );
    let status = weir.terminate(EXIT_WAIT);
    let log = weir.log_text();
    assert!(status.success(), "{status}: {log}");
    assert_eq!(values(&outs), ["ok-1", "ok-2", "ok-3"], "{log}");
    assert_eq!(dead.len(), 4, "{dead:?}\n{log}");
    let h = |r: &CommittedRecord, name: &str| {
        String::from_utf8_lossy(
            r.header(name)
                .flatten()
                .unwrap_or_else(|| panic!("no header {name} on {r:?}")),
        )
        .into_owned()
    };
    let mut seen = Vec::new();
    for r in &dead {
        let value = r.value_str().unwrap().to_owned();
        let offset = commands.iter().position(|c| *c == value).unwrap();
        assert_eq!(r.key_str(), Some(format!("key-{value}").as_str()));
        assert_eq!(h(r, "origin"), "test", "input headers are kept");
        assert_eq!(h(r, "weir.pipeline"), app);
        assert_eq!(h(r, "weir.stage"), "obey");
        assert!(h(r, "weir.module").starts_with("misbehave@sha256:"), "{r:?}");
        assert_eq!(h(r, "weir.source.topic"), input);
        assert_eq!(h(r, "weir.source.partition"), "0");
        assert_eq!(h(r, "weir.source.offset"), offset.to_string());
        assert!(!h(r, "weir.error").is_empty());
        seen.push((value, h(r, "weir.error.kind"), h(r, "weir.error.code")));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("fail".into(), "failure".into(), "asked-to-fail".into()),
            ("loop".into(), "deadline".into(), "deadline".into()),
            ("oom".into(), "memory".into(), "memory".into()),
            ("panic".into(), "panic".into(), "panic".into()),
        ]
    );
}

/// The first SIGTERM finishes the batch and commits; while that batch is
/// held (a guest loops within its deadline), a second one exits at once,
/// with status 128 + SIGTERM and a line saying what it abandoned, and
/// nothing of the open transaction is committed.
#[test]
fn a_second_signal_exits_at_once_naming_what_it_abandons() {
    let g = guests();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, app) = (unique("in"), unique("out"), unique("signals"));
    create_topic(&input, 1);
    create_topic(&output, 1);
    produce(&input, &[In::value("before")]);
    let file = pipeline_file(
        dir.path(),
        &format!(
            "application-id = \"{app}\"\ninputs = [\"{input}\"]\n[[stage]]\nname = \"obey\"\nmodule = \"{}\"\n\
             [outputs]\ndefault = \"{output}\"\n",
            toml_path(&g.test_guest("misbehave"))
        ),
    );
    let mut weir = WeirProcess::start(&file, "0", &["--deadline", "120s"]);
    // Once "before" is committed, the instance polls every 100 ms: "loop"
    // is in its guest two seconds after it is produced.
    assert_eq!(values(&wait_for(&output, 1, Duration::from_secs(60))), ["before"]);
    produce(&input, &[In::value("loop"), In::value("after")]);
    std::thread::sleep(Duration::from_secs(2));
    weir.signal("TERM");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        weir.running(),
        "the first signal waits for the batch; log:\n{}",
        weir.log_text()
    );
    let asked = Instant::now();
    weir.signal("TERM");
    let status = weir.wait(Duration::from_secs(20));
    let log = weir.log_text();
    assert!(asked.elapsed() < Duration::from_secs(10), "{log}");
    assert_eq!(status.code(), Some(128 + 15), "{status}; log:\n{log}");
    assert!(
        log.contains("SIGTERM: finishing the batch, committing and stopping; a second signal exits at once"),
        "{log}"
    );
    assert!(
        log.contains("second signal (SIGTERM): exiting at once, abandoning the open transaction"),
        "{log}"
    );
    assert!(!log.contains("stopped cleanly"), "{log}");
    assert_eq!(
        values(&committed(&output)),
        ["before"],
        "nothing of the open transaction is committed"
    );
}

/// `on-error = "fail"` stops the pipeline with a message naming the event,
/// and nothing of the failed transaction is committed.
#[test]
fn fail_policy_stops_with_the_event_named() {
    let g = guests();
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (unique("in"), unique("out"));
    create_topic(&input, 1);
    create_topic(&output, 1);
    produce(
        &input,
        &["a", "b", "fail", "c"]
            .iter()
            .map(|v| In {
                partition: Some(0),
                ..In::value(*v)
            })
            .collect::<Vec<_>>(),
    );
    let file = pipeline_file(
        dir.path(),
        &format!(
            "application-id = \"{}\"\ninputs = [\"{input}\"]\n[[stage]]\nname = \"strict\"\nmodule = \"{}\"\n\
             [outputs]\ndefault = \"{output}\"\n",
            unique("fail-app"),
            toml_path(&g.test_guest("misbehave"))
        ),
    );
    let mut weir = WeirProcess::start(&file, "0", &[]);
    let status = weir.wait(EXIT_WAIT);
    let log = weir.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("stage strict") && log.contains(&format!("{input}[0]@2")) && log.contains("asked-to-fail"),
        "{log}"
    );
    // The transaction with the failure was aborted: nothing from the failed
    // event on is committed ("a" and "b" only if an earlier transaction had them).
    let out = values(&committed(&output));
    assert!(out.iter().all(|v| v == "a" || v == "b"), "{out:?}");
}

/// Tasks open when their partitions are assigned, stateless ones too, not
/// when the first records come: the instance catches up with the module
/// registry once per rebalance, before records flow, instead of ending the
/// open transaction early for each partition's first records.
#[test]
fn stateless_tasks_open_at_assignment() {
    let (_dir, _input, _output, file) = uppercase(3, "exactly-once");
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    // No record was produced: only the assignment can have opened them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = http_get(&addr, "/status");
        let status: serde_json::Value =
            serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or("{}")).unwrap_or_default();
        if status["tasks"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "tasks did not open at assignment: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// `n` input records `r-<i>`, keyed over 97 keys (so over every partition).
fn upper_input(n: usize) -> Vec<In> {
    (0..n)
        .map(|i| In {
            key: Some(format!("k-{}", i % 97).into_bytes()),
            ..In::value(format!("r-{i}"))
        })
        .collect()
}

/// Feeds `n` records `r-<i>` (see [`upper_input`]) at about 2500/s.
fn feed(topic: &str, n: usize) -> Feeder {
    Feeder::start(topic, upper_input(n), Duration::from_millis(40), &[])
}

/// An uppercase pipeline with `guarantee` between two new topics of
/// `partitions` partitions each: (its directory, deleted on drop; input;
/// output; the pipeline file).
fn uppercase(partitions: i32, guarantee: &str) -> (tempfile::TempDir, String, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (unique("in"), unique("out"));
    create_topic(&input, partitions);
    create_topic(&output, partitions);
    let file = uppercase_pipeline(dir.path(), &input, &output, guarantee);
    (dir, input, output, file)
}

fn uppercase_pipeline(dir: &Path, input: &str, output: &str, guarantee: &str) -> std::path::PathBuf {
    pipeline_file(
        dir,
        &format!(
            "application-id = \"{}\"\ninputs = [\"{input}\"]\nguarantee = \"{guarantee}\"\ncommit-interval = \"100ms\"\n\
             [[stage]]\nmodule = \"{}\"\n[outputs]\ndefault = \"{output}\"\n",
            unique("upper"),
            toml_path(&guests().example("rust", "uppercase"))
        ),
    )
}

fn expected_upper(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|i| format!("R-{i}")).collect();
    v.sort();
    v
}

/// Panics with what differs between two sorted multisets of values.
#[track_caller]
fn assert_same_values(got: &[String], want: &[String], what: &str) {
    if got == want {
        return;
    }
    let (g, w) = (counts(got), counts(want));
    let dup: Vec<_> = g
        .iter()
        .filter(|(k, c)| **c > w.get(*k).copied().unwrap_or(0))
        .take(10)
        .collect();
    let lost: Vec<_> = w
        .iter()
        .filter(|(k, c)| g.get(*k).copied().unwrap_or(0) < **c)
        .take(10)
        .collect();
    panic!(
        "{what}: {} records, want {}; in excess (duplicated or never sent) e.g. {dup:?}; missing e.g. {lost:?}",
        got.len(),
        want.len()
    );
}

/// What a crash run of the uppercase pipeline left.
struct CrashRun {
    /// The committed output values once every input had come out.
    complete: Vec<String>,
    /// The same two seconds later, while the last life still ran.
    settled: Vec<String>,
    /// The same after the last life stopped cleanly.
    after_stop: Vec<String>,
    /// The output topic.
    output: String,
    /// The kills, each after committed progress in its life.
    kills: Vec<Kill>,
}

/// Feeds `n` records into a 4-partition topic while an uppercase pipeline
/// with `guarantee` runs and is SIGKILLed `kills` times, each after it has
/// committed progress in that life plus a seeded random 0.7–2.5 s (every
/// life gets its share of the input, fed at one batch of 100 per `pause`);
/// then waits until every input has come out and stops the last life.
fn crash_run(n: usize, guarantee: &str, kills: usize, pause: Duration) -> CrashRun {
    let (_dir, input, output, file) = uppercase(4, guarantee);
    let feeder = Feeder::for_lives(&input, upper_input(n), pause, kills + 1);
    let (mut weir, kill_log) = crash::run_with_kills(&file, crash::CRASH_ARGS, kills, &feeder, (700, 2500), &[&output]);
    feeder.finish();
    let want: BTreeSet<String> = expected_upper(n).into_iter().collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let complete = loop {
        let got = values(&committed(&output));
        let seen: BTreeSet<&String> = got.iter().collect();
        if want.iter().all(|w| seen.contains(w)) || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    // Anything still in flight would show up as extra records now.
    std::thread::sleep(Duration::from_secs(2));
    let settled = values(&committed(&output));
    let status = weir.terminate(EXIT_WAIT);
    let log = weir.log_text();
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    CrashRun {
        complete,
        settled,
        after_stop: values(&committed(&output)),
        output,
        kills: kill_log,
    }
}

/// Exactly-once under failure: SIGKILL `weir run` six times while input
/// flows, each time after it committed progress in that life; the committed
/// output is exactly one output per input, before and after the last life
/// stops, and the log shows that kills hit open transactions (their records,
/// aborted, are in the raw log but not in the committed view).
#[test]
fn exactly_once_survives_sigkill_at_random_moments() {
    let _turn = heavy();
    let n = 21_000;
    let run = crash_run(n, "exactly-once", 6, Duration::from_millis(150));
    let want = expected_upper(n);
    assert_same_values(&run.complete, &want, "committed output once complete");
    assert_same_values(&run.settled, &want, "committed output two seconds later");
    assert_same_values(&run.after_stop, &want, "committed output after the last life stopped");
    let counts = crash::assert_kills_left_open_transactions(std::slice::from_ref(&run.output), &run.kills);
    assert_eq!(counts[0].1.committed, n, "committed records in the raw log");
}

/// At-least-once under failure, SIGKILLed five times after committed
/// progress in each life: no input is lost and nothing appears that no input
/// made; duplicates are allowed. That is its whole promise. There are no
/// transactions: the raw log holds no markers and nothing aborted.
#[test]
fn at_least_once_loses_nothing_across_sigkill() {
    let _turn = heavy();
    let n = 15_000;
    let run = crash_run(n, "at-least-once", 5, Duration::from_millis(180));
    let want = expected_upper(n);
    for (got, when) in [
        (&run.settled, "while running"),
        (&run.after_stop, "after the last life stopped"),
    ] {
        let g = counts(got);
        let lost: Vec<_> = want.iter().filter(|w| !g.contains_key(w.as_str())).take(10).collect();
        assert!(lost.is_empty(), "lost records {when}, e.g. {lost:?}");
        let unexpected: Vec<_> = g
            .keys()
            .filter(|k| want.binary_search(&k.to_string()).is_err())
            .take(10)
            .collect();
        assert!(unexpected.is_empty(), "records nobody sent {when}: {unexpected:?}");
    }
    eprintln!(
        "{} duplicates after {} kills",
        run.after_stop.len() - n,
        run.kills.len()
    );
    let counts = support::kafka::log_counts(&run.output);
    assert_eq!(
        (counts.commit_markers, counts.abort_markers, counts.aborted, counts.open),
        (0, 0, 0, 0),
        "at-least-once writes no transactions: {counts}"
    );
    assert_eq!(counts.committed, run.after_stop.len(), "{counts}");
}

/// The number after `field ` in the `stopped cleanly:` summary line.
fn summary_count(log: &str, field: &str) -> u64 {
    log.lines()
        .find_map(|l| l.split("stopped cleanly: ").nth(1))
        .and_then(|summary| summary.split(&format!("{field} ")).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{field}` in the summary in log:\n{log}"))
}

fn consumed_from_summary(log: &str) -> u64 {
    summary_count(log, "consumed")
}

/// Two instances of one pipeline share the partitions (a rebalance happens
/// while input flows) and the output is still exact.
#[test]
fn two_instances_share_partitions_and_stay_exact() {
    let _turn = heavy();
    let (_dir, input, output, file) = uppercase(4, "exactly-once");
    let n = 12_000;
    let feeding = feed(&input, n);
    let mut a = WeirProcess::start(&file, "a", &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut b = WeirProcess::start(&file, "b", &[]);
    feeding.finish();
    let records = values(&wait_for(&output, n, Duration::from_secs(120)));
    std::thread::sleep(Duration::from_secs(2));
    assert!(b.terminate(EXIT_WAIT).success(), "{}", b.log_text());
    assert!(a.terminate(EXIT_WAIT).success(), "{}", a.log_text());
    let (ca, cb) = (
        consumed_from_summary(&a.log_text()),
        consumed_from_summary(&b.log_text()),
    );
    assert!(ca > 0 && cb > 0, "both instances should have worked: a {ca}, b {cb}");
    let want = expected_upper(n);
    if records != want {
        // Say whether a transaction stayed open (the broker) or records
        // were lost (Weir), with both logs.
        let tail = |log: String| {
            log.chars()
                .rev()
                .take(4000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<String>()
        };
        eprintln!(
            "output log per partition: {:?}\n--- a:\n{}\n--- b:\n{}",
            support::kafka::partition_log_counts(&output),
            tail(a.log_text()),
            tail(b.log_text())
        );
    }
    assert_same_values(
        &records,
        &want,
        &format!("while running (a consumed {ca}, b consumed {cb})"),
    );
    assert_same_values(&values(&committed(&output)), &want, "after both stopped");
}

/// The value of the first sample `name{…} value` of metric `name` in `/metrics`.
fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{metrics}"))
}

/// What a run with injected aborts showed about them.
struct Aborts {
    /// `weir_aborts_total` while running.
    metric: u64,
    /// `aborts` in the summary line.
    summary: u64,
    /// "injected abort" lines in the log.
    injected: usize,
}

/// Stops an instance run with `--fault-abort-every`, checks that it stopped
/// cleanly, and collects the evidence of its aborts.
fn stop_after_injected_aborts(w: &mut WeirProcess, addr: &str) -> Aborts {
    let metrics = http_get(addr, "/metrics");
    let metric = |name: &str| metric(&metrics, name);
    let seconds: f64 = metrics
        .lines()
        .find(|l| l.starts_with("weir_commit_seconds_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    eprintln!(
        "{} commits and {} aborts; {seconds:.1} s spent committing",
        metric("weir_commits_total"),
        metric("weir_aborts_total")
    );
    let metric = metric("weir_aborts_total");
    let status = w.terminate(EXIT_WAIT);
    let log = w.log_text();
    assert!(status.success(), "SIGTERM should exit 0, got {status}; log:\n{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    let aborts = Aborts {
        metric,
        summary: summary_count(&log, "aborts"),
        injected: log.matches("injected abort").count(),
    };
    assert!(
        aborts.metric > 0 && aborts.summary >= aborts.metric && aborts.injected > 0,
        "aborts were injected: weir_aborts_total {} while running, {} in the summary, {} logged; log:\n{log}",
        aborts.metric,
        aborts.summary,
        aborts.injected
    );
    assert_eq!(
        aborts.summary, aborts.injected as u64,
        "every abort is an injected one (no other abortable error): log:\n{log}"
    );
    aborts
}

/// The abort-and-rewind path, driven on purpose rather than by a crash:
/// `--fault-abort-every 3` aborts every third transaction that has work in
/// it, as an abortable broker error would (abort, rewind every partition to
/// its last committed offset, redo). The committed output of an uppercase
/// pipeline is still exactly one output per input, the aborted records are
/// in the raw log, and the instance stops cleanly.
#[test]
fn injected_aborts_rewind_a_stateless_pipeline_exactly() {
    let _turn = heavy();
    let (_dir, input, output, file) = uppercase(4, "exactly-once");
    let n = 8_000;
    let mut w = WeirProcess::start(&file, "0", &["--fault-abort-every", "3"]);
    let addr = admin_addr(&mut w);
    let feeder = Feeder::start(&input, upper_input(n), Duration::from_millis(100), &[]);
    feeder.finish();
    let want = expected_upper(n);
    let got = values(&wait_for(&output, n, Duration::from_secs(120)));
    std::thread::sleep(Duration::from_secs(2));
    let settled = values(&committed(&output));
    let aborts = stop_after_injected_aborts(&mut w, &addr);
    assert_same_values(&got, &want, "committed output once complete");
    assert_same_values(&settled, &want, "committed output two seconds later");
    assert_same_values(&values(&committed(&output)), &want, "committed output after the stop");
    let counts = crash::settled_log_counts(std::slice::from_ref(&output));
    let counts = counts[0].1;
    assert!(
        counts.aborted > 0 && counts.abort_markers > 0 && counts.open == 0,
        "the {} injected aborts left aborted records in the raw log: {counts}",
        aborts.summary
    );
    assert_eq!(counts.committed, n, "{counts}");
}

/// `weir query --admin ADDR STAGE KEY` against a running instance.
fn query(addr: &str, stage: &str, key: &str) -> serde_json::Value {
    let out = support::weir()
        .args(["query", "--admin", addr, stage, key])
        .output()
        .expect("run weir query");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("weir query printed no JSON ({e}): {text}"))
}

/// The count a `weir query` answer for an unwindowed count shows.
fn queried_count(answer: &serde_json::Value) -> Option<u64> {
    answer["value"]["outputs"][0]["value"].as_str()?.parse().ok()
}

/// Waits until every key's queried count is `want`; returns the last answers.
fn wait_counts(addr: &str, keys: &[String], want: u64) -> BTreeMap<String, Option<u64>> {
    let all = keys.iter().map(|k| (k.clone(), Some(want))).collect();
    support::kafka::until(&all, Duration::from_secs(90), || {
        keys.iter()
            .map(|k| (k.clone(), queried_count(&query(addr, "count", k))))
            .collect()
    })
}

/// The same path in a stateful pipeline: a single-stage running count per
/// key (`rust-count`, emit on update) under `--fault-abort-every 3`. An
/// abort must also throw away the state the aborted transaction staged:
/// every key's committed counts rise strictly and end exactly at the
/// number of its inputs, the stores (queried) hold exactly that, and so does
/// a full restore from the changelog, whose aborted records are in the raw
/// log and must not count.
#[test]
fn injected_aborts_rewind_a_stateful_pipeline_exactly() {
    let _turn = heavy();
    let dir = tempfile::tempdir().unwrap();
    let (input, output, app) = (unique("in"), unique("counts"), unique("count"));
    create_topic(&input, 2);
    create_topic(&output, 2);
    let file = pipeline_file(
        dir.path(),
        &format!(
            "application-id = \"{app}\"\ninputs = [\"{input}\"]\ncommit-interval = \"100ms\"\nstate-dir = \"{}\"\n\
             [[stage]]\nname = \"count\"\nkind = \"aggregate\"\nmodule = \"{}\"\nemit = \"update\"\n\
             [outputs]\ndefault = \"{output}\"\n",
            toml_path(&dir.path().join("state")),
            toml_path(&guests().example("rust", "count"))
        ),
    );
    const KEYS: usize = 20;
    const PER_KEY: u64 = 300;
    let keys: Vec<String> = (0..KEYS).map(|k| format!("key-{k:02}")).collect();
    let records: Vec<In> = (0..KEYS * PER_KEY as usize)
        .map(|i| In {
            key: Some(keys[i % KEYS].clone().into_bytes()),
            ..In::value(format!("e-{i}"))
        })
        .collect();
    let mut w = WeirProcess::start(&file, "0", &["--fault-abort-every", "3"]);
    let addr = admin_addr(&mut w);
    let feeder = Feeder::start(&input, records, Duration::from_millis(100), &[]);
    feeder.finish();
    let want: BTreeMap<String, Option<u64>> = keys.iter().map(|k| (k.clone(), Some(PER_KEY))).collect();
    assert_eq!(wait_counts(&addr, &keys, PER_KEY), want, "queried state");
    let aborts = stop_after_injected_aborts(&mut w, &addr);

    // Committed output: per key, in log order, strictly rising to exactly PER_KEY.
    let mut out = committed(&output);
    out.sort_by_key(|r| (r.partition, r.offset));
    let mut series: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &out {
        let count = r
            .value_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("not a count: {r:?}"));
        series
            .entry(r.key_str().unwrap_or("<none>").to_owned())
            .or_default()
            .push(count);
    }
    assert_eq!(series.keys().collect::<Vec<_>>(), keys.iter().collect::<Vec<_>>());
    for (key, counts) in &series {
        assert!(
            counts.windows(2).all(|p| p[0] < p[1]) && counts.last() == Some(&PER_KEY),
            "{key}: committed counts must rise strictly to {PER_KEY}: {counts:?}"
        );
    }
    let changelog = format!("{app}-count-changelog");
    let logs = crash::settled_log_counts(&[output.clone(), changelog.clone()]);
    for (topic, counts) in &logs {
        assert!(
            counts.aborted > 0 && counts.open == 0,
            "{topic}: the {} injected aborts left aborted records in the raw log: {counts}",
            aborts.summary
        );
    }

    // A full restore from the changelog (no local state) gives the same state.
    std::fs::remove_dir_all(dir.path().join("state")).expect("wipe the state directory");
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    assert_eq!(
        wait_counts(&addr, &keys, PER_KEY),
        want,
        "state restored from the changelog; log:\n{}",
        w.log_text()
    );
    let log = w.log_text();
    assert!(log.contains("restored state"), "a full restore: {log}");
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
}

/// Static membership: an instance SIGKILLed and started again with the same
/// `--instance-id` takes its partitions back at once (KIP-345: the broker
/// hands the dead member's assignment to its successor), instead of waiting
/// for its dead self's session to expire. The session timeout here is
/// librdkafka's default, 45 s; with dynamic membership the restarted
/// instance would get no partition before it has passed.
#[test]
fn a_restarted_instance_takes_its_partitions_back_at_once() {
    let _turn = heavy();
    let (_dir, input, output, file) = uppercase(4, "exactly-once");
    assert!(
        !std::fs::read_to_string(&file).unwrap().contains("session.timeout.ms"),
        "this test relies on the default session timeout"
    );
    let records = upper_input(2000);
    produce(&input, &records[..1000]);
    let mut w = WeirProcess::start(&file, "0", &[]);
    wait_for(&output, 1000, Duration::from_secs(60));
    w.kill();
    produce(&input, &records[1000..]);
    let restarted = Instant::now();
    let mut w = WeirProcess::start(&file, "0", &[]);
    let got = wait_for(&output, 2000, Duration::from_secs(90));
    let resumed = restarted.elapsed();
    assert!(w.terminate(EXIT_WAIT).success(), "{}", w.log_text());
    assert_eq!(got.len(), 2000, "{}", w.log_text());
    assert!(
        resumed < Duration::from_secs(15),
        "the restarted instance processed the new records {resumed:?} after it started; with static \
         membership it should not wait for the 45 s session timeout:\n{}",
        w.log_text()
    );
    assert_same_values(&values(&committed(&output)), &expected_upper(2000), "committed output");
}

/// A record without a valid timestamp stops the pipeline by default,
/// naming the record and the setting; `log-and-skip` skips it (its offset
/// is committed with the others) and `wall-clock` gives it the wall
/// clock's time, as Kafka Streams' timestamp extractors do.
#[test]
fn invalid_timestamps_follow_the_pipeline_timestamp_policy() {
    let records = [
        In {
            timestamp: Some(1_000),
            partition: Some(0),
            ..In::value("a")
        },
        In {
            timestamp: Some(-1),
            partition: Some(0),
            ..In::value("b")
        },
        In {
            timestamp: Some(2_000),
            partition: Some(0),
            ..In::value("c")
        },
    ];
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for policy in ["", "fail", "log-and-skip", "wall-clock"] {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (unique("in"), unique("out"));
        create_topic(&input, 1);
        create_topic(&output, 1);
        produce(&input, &records);
        let file = uppercase_pipeline(dir.path(), &input, &output, "exactly-once");
        if !policy.is_empty() {
            let text = std::fs::read_to_string(&file).unwrap();
            std::fs::write(&file, format!("timestamp-policy = \"{policy}\"\n{text}")).unwrap();
        }
        let mut weir = WeirProcess::start(&file, "0", &[]);
        match policy {
            "" | "fail" => {
                let status = weir.wait(Duration::from_secs(60));
                let log = weir.log_text();
                assert!(!status.success(), "{policy:?}: {log}");
                assert!(
                    log.contains(&format!(
                        "{input}[0] offset 1: the record's timestamp is absent, not a valid time; \
                         set timestamp-policy = \"log-and-skip\""
                    )),
                    "{policy:?}: {log}"
                );
                assert_eq!(
                    committed(&output).len(),
                    0,
                    "{policy:?}: nothing of the failed batch is committed"
                );
            }
            "log-and-skip" => {
                let got = wait_for(&output, 2, Duration::from_secs(60));
                let status = weir.terminate(EXIT_WAIT);
                let log = weir.log_text();
                assert!(status.success(), "{log}");
                assert_eq!(values(&got), ["A", "C"], "{log}");
                assert_eq!(got.iter().map(|r| r.timestamp).collect::<Vec<_>>(), [1_000, 2_000]);
                assert!(log.contains("skipped a record without a valid timestamp"), "{log}");
                assert_eq!(values(&committed(&output)), ["A", "C"]);
            }
            _ => {
                let got = wait_for(&output, 3, Duration::from_secs(60));
                assert!(weir.terminate(EXIT_WAIT).success(), "{}", weir.log_text());
                assert_eq!(values(&got), ["A", "B", "C"]);
                assert_eq!((got[0].timestamp, got[2].timestamp), (1_000, 2_000));
                assert!(
                    got[1].timestamp >= started,
                    "the wall clock's time: {}",
                    got[1].timestamp
                );
            }
        }
    }
}

fn weir_run_fails(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .args(args)
        .env("WEIR_LOG", "error")
        .output()
        .expect("run weir");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "weir run {args:?} should fail:\n{stderr}");
    stderr
}

/// What a user gets wrong first: bad pipeline files, unreachable brokers,
/// missing topics, modules of the wrong kind or no module at all.
#[test]
fn bad_pipelines_and_unreachable_brokers_give_clear_errors() {
    let g = guests();
    let dir = tempfile::tempdir().unwrap();
    let upper = toml_path(&g.example("rust", "uppercase"));
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let good = |extra_stage: &str, module: &str, kafka: &str| {
        format!(
            "application-id = \"x\"\ninputs = [\"in\"]\n[[stage]]\nmodule = \"{module}\"\n{extra_stage}\n\
             [outputs]\ndefault = \"out\"\n[kafka]\n{kafka}\n"
        )
    };

    let p = write("typo.toml", &good("on-eror = \"skip\"", &upper, ""));
    let e = weir_run_fails(&[p.to_str().unwrap()]);
    assert!(e.contains("typo.toml") && e.contains("on-eror"), "{e}");

    let p = write("policy.toml", &good("on-error = \"retry\"", &upper, ""));
    let e = weir_run_fails(&[p.to_str().unwrap()]);
    assert!(e.contains("stage[0].on-error") && e.contains("\"retry\""), "{e}");

    let p = write("missing-module.toml", &good("", "nope.wasm", ""));
    let e = weir_run_fails(&[p.to_str().unwrap()]);
    assert!(e.contains("nope.wasm"), "{e}");

    let garbage = write("garbage.wasm", "this is not wasm");
    let p = write("garbage.toml", &good("", &toml_path(&garbage), ""));
    let e = weir_run_fails(&[p.to_str().unwrap()]);
    assert!(e.contains("garbage"), "{e}");

    let p = write(
        "threads.toml",
        &good("", &upper, "").replace("inputs = [\"in\"]", "inputs = [\"in\"]\nthreads = 0"),
    );
    let e = weir_run_fails(&[p.to_str().unwrap()]);
    assert!(
        e.contains("threads.toml") && e.contains("threads") && e.contains("at least 1"),
        "{e}"
    );
    let p = write("ok.toml", &good("", &upper, ""));
    let e = weir_run_fails(&[p.to_str().unwrap(), "--threads", "0"]);
    assert!(e.contains("--threads"), "{e}");

    let count = toml_path(&g.example("rust", "count"));
    let p = write("kind.toml", &good("", &count, ""));
    let e = weir_run_fails(&[p.to_str().unwrap()]);
    assert!(e.contains("rust-count") && e.contains("process"), "{e}");

    let p = write(
        "unreachable.toml",
        &good("", &upper, "\"bootstrap.servers\" = \"127.0.0.1:1\""),
    );
    let started = Instant::now();
    let e = weir_run_fails(&[p.to_str().unwrap(), "--kafka-timeout", "3s"]);
    assert!(e.contains("cannot reach Kafka at 127.0.0.1:1"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );

    let bootstrap = support::kafka::broker().bootstrap.clone();
    let missing = unique("missing");
    let p = write(
        "missing-topic.toml",
        &good("", &upper, &format!("\"bootstrap.servers\" = \"{bootstrap}\""))
            .replace("inputs = [\"in\"]", &format!("inputs = [\"{missing}\"]")),
    );
    let e = weir_run_fails(&[p.to_str().unwrap(), "--kafka-timeout", "10s"]);
    assert!(e.contains(&missing) && e.contains("do not exist"), "{e}");
}

/// `weir dev` — the README's first command — starts its embedded broker,
/// feeds samples, runs the pipeline and shows counts and outputs.
#[test]
fn weir_dev_runs_an_example_pipeline_on_its_embedded_broker() {
    guests().for_pipeline_file(&support::repo().join("guest-examples/pipelines/route-by-type.toml"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .current_dir(support::repo())
        .args([
            "dev",
            "guest-examples/pipelines/route-by-type.toml",
            "--for",
            "10s",
            "--every",
            "1s",
        ])
        .env("WEIR_LOG", "error")
        .output()
        .expect("run weir dev");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("embedded Kafka") && stdout.contains("kcat -b 127.0.0.1:"),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    let consumed: u64 = summary
        .split("consumed ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(consumed > 1000, "{stdout}");
    assert!(stdout.contains("operations-payment"), "{stdout}");
    assert!(
        summary.contains("dead-lettered") && !summary.contains("dead-lettered 0)"),
        "{summary}"
    );
}

/// Two instances started with the same --instance-id: the second fences the
/// first, which stops with a message saying what to do, and the output stays
/// exact.
#[test]
fn a_fenced_instance_stops_with_a_clear_message() {
    let _turn = heavy();
    let (_dir, input, output, file) = uppercase(2, "exactly-once");
    let n = 6_000;
    let feeding = Feeder::start(&input, upper_input(n), Duration::from_millis(50), &[]);
    let mut first = WeirProcess::start(&file, "same", &[]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut second = WeirProcess::start(&file, "same", &[]);
    let status = first.wait(Duration::from_secs(60));
    let log = first.log_text();
    assert!(!status.success(), "{log}");
    assert!(log.contains("fenced") && log.contains("--instance-id"), "{log}");
    feeding.finish();
    wait_for(&output, n, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(1));
    assert!(second.terminate(EXIT_WAIT).success(), "{}", second.log_text());
    assert_eq!(values(&committed(&output)), expected_upper(n));
}

/// Every stateless example pipeline through the broker-free driver
/// (`weir test PIPELINE.toml`), against the oracle of the stateless broker
/// test: what `weir test MODULE` makes of the same events, stage after
/// stage, routed as the pipeline routes. An event that fails, or whose
/// output names a route the pipeline lacks, is dead-lettered or skipped as
/// its stage says. (The stateful examples run through the driver in
/// `stateful.rs`, against their broker tests' references.)
#[test]
fn stateless_example_pipelines_run_through_the_driver() {
    let scratch = tempfile::tempdir().unwrap();
    // Operations for route-by-type: its four routes, a type it has no route
    // for, and a value that is not JSON.
    let operations = scratch.path().join("operations.jsonl");
    let kinds = ["payment", "refund", "login", "logout", "chargeback"];
    let mut lines: Vec<String> = (0..20)
        .map(|i| {
            format!(
                r#"{{"key": "u{i}", "value": {{"type": "{}", "n": {i}}}, "timestamp": {}}}"#,
                kinds[i % 5],
                100 + i
            )
        })
        .collect();
    lines.push(r#"{"key": "u99", "value": "not json", "timestamp": 200}"#.to_owned());
    std::fs::write(&operations, lines.join("\n")).unwrap();
    let examples = [
        ("errors-only.toml", "logs", testdata("logs.jsonl")),
        ("isin-key.toml", "trades", testdata("trades.jsonl")),
        ("route-by-type.toml", "operations", operations),
        ("words.toml", "sentences", testdata("sentences.jsonl")),
    ];
    for (example, topic, data) in examples {
        let path = support::repo().join("guest-examples/pipelines").join(example);
        guests().for_pipeline_file(&path);
        let pipeline = weir::pipeline::Pipeline::load(&path).unwrap();
        let run = support::run_weir([
            "test".to_owned(),
            path.display().to_string(),
            "--input".to_owned(),
            format!("{topic}={}", data.display()),
        ]);
        assert!(run.ok, "{example}: {}", run.stderr);
        let mut got: Vec<Rec> = run
            .json_lines()
            .iter()
            .map(|o| {
                (
                    o["topic"].as_str().unwrap().to_owned(),
                    json_bytes(&o["key"]),
                    json_bytes(&o["value"]),
                    o["timestamp"].as_i64().unwrap(),
                    json_headers(&o["headers"]),
                )
            })
            .collect();
        got.sort();

        // The oracle, stage by stage: each stage's outputs are the next one's events.
        let dir = tempfile::tempdir().unwrap();
        let mut input = data.clone();
        let mut expected: Vec<Rec> = Vec::new();
        let mut dead = 0usize;
        let last = pipeline.stages.len() - 1;
        for (i, stage) in pipeline.stages.iter().enumerate() {
            let oracle = weir_test(
                stage.module.as_deref().expect("a stateless stage runs a module"),
                &input,
                &[],
            );
            assert!(oracle.ok, "{example}/{}: {}", stage.name, oracle.stderr);
            let failed = oracle.failures().len();
            let outputs = oracle.json_lines();
            let mut next = String::new();
            let mut unrouted: BTreeSet<i64> = BTreeSet::new();
            for o in &outputs {
                let topic = match o.get("route").and_then(|r| r.as_str()) {
                    Some(r) => match pipeline.outputs.routes.get(r) {
                        Some(t) => t.clone(),
                        None => {
                            // unknown-route: the event (by its timestamp) fails.
                            unrouted.insert(o["timestamp"].as_i64().unwrap());
                            continue;
                        }
                    },
                    None => pipeline.outputs.default.clone().expect("a default output"),
                };
                if i == last {
                    expected.push((
                        topic,
                        json_bytes(&o["key"]),
                        json_bytes(&o["value"]),
                        o["timestamp"].as_i64().unwrap(),
                        json_headers(&o["headers"]),
                    ));
                } else {
                    let mut e = o.clone();
                    e.as_object_mut().unwrap().remove("route");
                    next.push_str(&format!("{e}\n"));
                }
            }
            if let weir::pipeline::ErrorPolicy::DeadLetter(_) = stage.on_error {
                dead += failed + unrouted.len();
            }
            input = dir.path().join(format!("stage-{i}.jsonl"));
            std::fs::write(&input, next).unwrap();
        }
        expected.sort();
        let dead_letter_topics: BTreeSet<String> = pipeline
            .stages
            .iter()
            .filter_map(|s| match &s.on_error {
                weir::pipeline::ErrorPolicy::DeadLetter(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        let (dead_got, out_got): (Vec<Rec>, Vec<Rec>) =
            got.into_iter().partition(|r| dead_letter_topics.contains(&r.0));
        assert_eq!(out_got, expected, "{example}: outputs differ from the modules' oracle");
        assert_eq!(dead_got.len(), dead, "{example}: dead letters");
        assert!(!expected.is_empty(), "{example}: a test that proves something");
    }
}
