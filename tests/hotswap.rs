//! Hot swap against a real broker: `weir module push|activate|rollback` and
//! `weir deploy` while pipelines run, checked on what a `read_committed`
//! consumer sees.
//!
//! Every output carries `weir.module` (`name@sha256:…`), so the tests can
//! tell which version processed which input: per input partition, the
//! versions must form one run per activation (v1 up to a boundary, v2 after
//! it), and every input must be processed exactly once.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::crash::{self, GroupProgress, KillRng, Life};
use support::kafka::{
    Feeder, In, WeirProcess, admin_addr, broker, committed, create_topic, http_get, produce, unique, wait_for,
};
use support::{guests, heavy, weir};
use weir_test_harness::committed::CommittedRecord;

const MODULE: &str = "weir.module";
const PATIENCE: Duration = Duration::from_secs(120);

fn toml_path(p: &Path) -> String {
    p.display().to_string().replace('\\', "/")
}

/// A pipeline file with one stage (`stage` is the body of its `[[stage]]`).
fn pipeline(dir: &Path, app: &str, input: &str, output: &str, stage: &str) -> PathBuf {
    let path = dir.join(format!("{app}.toml"));
    let text = format!(
        "application-id = \"{app}\"\ninputs = [\"{input}\"]\ncommit-interval = \"100ms\"\nstate-dir = \"{}\"\n\
         [[stage]]\n{stage}\n[outputs]\ndefault = \"{output}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\
         \"transaction.timeout.ms\" = 10000\n\"linger.ms\" = 5\n\"session.timeout.ms\" = 6000\n",
        toml_path(&dir.join("state")),
        broker().bootstrap
    );
    std::fs::write(&path, text).expect("write the pipeline");
    path
}

/// A test's own topics (`partitions` each) and a one-stage pipeline file
/// over them (`stage` is the body of its `[[stage]]`).
struct Setup {
    dir: tempfile::TempDir,
    input: String,
    output: String,
    app: String,
    file: PathBuf,
}

fn setup(tag: &str, partitions: i32, stage: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (input, output, app) = (unique(&format!("{tag}-in")), unique(&format!("{tag}-out")), unique(tag));
    create_topic(&input, partitions);
    create_topic(&output, partitions);
    let file = pipeline(dir.path(), &app, &input, &output, stage);
    Setup {
        dir,
        input,
        output,
        app,
        file,
    }
}

/// Runs `weir ARGS…`; returns (success, stdout, stderr).
fn weir_cli(args: &[&str]) -> (bool, String, String) {
    let out = weir().args(args).output().expect("run weir");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn weir_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = weir_cli(args);
    assert!(ok, "weir {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// `/status` of an instance.
fn status(addr: &str) -> Value {
    let text = http_get(addr, "/status");
    let body = text.split_once("\r\n\r\n").map_or(text.as_str(), |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {text}"))
}

/// The stage's entry in `/status` → `modules`.
fn module_view(addr: &str, stage: &str) -> Value {
    status(addr)["modules"]
        .as_array()
        .and_then(|m| m.iter().find(|v| v["stage"] == stage).cloned())
        .unwrap_or(Value::Null)
}

/// Waits until the instance runs a version of module `name` in `stage`.
fn wait_active(w: &mut WeirProcess, addr: &str, stage: &str, name: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(w.running(), "weir exited:\n{}", w.log_text());
        let v = module_view(addr, stage);
        if v["active"].as_str().is_some_and(|a| a.starts_with(&format!("{name}@"))) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{stage} never ran {name}: {v}\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The module name (before `@`) that produced a record.
fn made_by(r: &CommittedRecord) -> String {
    let label = r
        .header(MODULE)
        .flatten()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let label = label.unwrap_or_else(|| panic!("an output without {MODULE}: {r:?}"));
    label.split('@').next().unwrap_or_default().to_owned()
}

/// Consecutive runs of equal items: `[a, a, b, a]` → `[a, b, a]`.
fn runs<T: PartialEq + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for i in items {
        if out.last() != Some(&i) {
            out.push(i);
        }
    }
    out
}

/// Two instances, continuous input on four partitions: `weir deploy` swaps
/// `uppercase` for `exclaim`, then `weir module rollback` swaps it back. The
/// committed output holds every input exactly once, and per input partition
/// the versions run uppercase → exclaim → uppercase, each change at one boundary.
#[test]
fn swap_and_rollback_mid_stream_across_two_instances_are_exact() {
    let _heavy = heavy();
    let g = guests();
    let uppercase = g.example("rust", "uppercase");
    let Setup {
        dir: _dir,
        input,
        output,
        app,
        file,
    } = setup(
        "hs-swap",
        4,
        &format!("name = \"shout\"\nmodule = \"{}\"", toml_path(&uppercase)),
    );
    let file_arg = file.to_str().unwrap();
    let mut a = WeirProcess::start(&file, "0", &[]);
    let mut b = WeirProcess::start(&file, "1", &[]);
    let (aa, ba) = (admin_addr(&mut a), admin_addr(&mut b));

    const N: usize = 6000;
    let records: Vec<In> = (0..N)
        .map(|i| In {
            key: Some(format!("k{}", i % 40).into_bytes()),
            value: Some(format!("v{i:05}").into_bytes()),
            partition: Some((i % 4) as i32),
            ..In::default()
        })
        .collect();
    let feeder = Feeder::start(&input, records, Duration::from_millis(150), &[3000, 4800]);

    wait_for(&output, 800, PATIENCE);
    let out = weir_ok(&[
        "deploy",
        file_arg,
        "shout",
        g.example("rust", "exclaim").to_str().unwrap(),
    ]);
    assert!(out.contains("activated rust-exclaim@"), "{out}");
    for (w, addr) in [(&mut a, &aa), (&mut b, &ba)] {
        let v = wait_active(w, addr, "shout", "rust-exclaim");
        assert_eq!(v["seq"], 1, "{v}");
    }
    feeder.open(0);

    wait_for(&output, 3400, PATIENCE);
    let out = weir_ok(&["module", "rollback", file_arg, "shout"]);
    assert!(out.contains("back from rust-exclaim@"), "{out}");
    for (w, addr) in [(&mut a, &aa), (&mut b, &ba)] {
        let v = wait_active(w, addr, "shout", "rust-uppercase");
        assert!(v["last"].as_str().unwrap_or_default().starts_with("rollback"), "{v}");
    }
    feeder.open(1);
    feeder.finish();

    let got = wait_for(&output, N, PATIENCE);
    // Every input exactly once, by the version its header names.
    let mut seen: BTreeMap<usize, String> = BTreeMap::new();
    for r in &got {
        let by = made_by(r);
        let v = r.value_str().unwrap_or_default();
        let index: usize = match by.as_str() {
            "rust-uppercase" => v.strip_prefix('V').and_then(|n| n.parse().ok()),
            "rust-exclaim" => v
                .strip_prefix('v')
                .and_then(|n| n.strip_suffix('!'))
                .and_then(|n| n.parse().ok()),
            other => panic!("an output by {other}: {r:?}"),
        }
        .unwrap_or_else(|| panic!("{by} made {v:?}"));
        assert!(seen.insert(index, by).is_none(), "input {index} processed twice");
    }
    assert_eq!(seen.len(), N, "every input once (got {} outputs)", got.len());
    // Per input partition, in input order: v1, then v2, then v1 again.
    for p in 0..4 {
        let versions = runs(seen.iter().filter(|(i, _)| *i % 4 == p).map(|(_, by)| by.clone()));
        assert_eq!(
            versions,
            ["rust-uppercase", "rust-exclaim", "rust-uppercase"],
            "partition {p}: one boundary per activation"
        );
    }
    // The registry says where each version is active; `weir status` shows
    // the version of every task in both instances.
    let list = weir_ok(&["module", "list", "--pipeline", file_arg]);
    let line = |name: &str| {
        list.lines()
            .filter(|l| l.starts_with(name))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(line("rust-uppercase ").contains(&format!("{app}/shout")), "{list}");
    assert!(!line("rust-exclaim ").contains(&format!("{app}/shout")), "{list}");
    let table = weir_ok(&["status", "--versions", "--admin", &aa, "--admin", &ba]);
    let tasks: Vec<&str> = table.lines().filter(|l| l.contains(&input)).collect();
    assert_eq!(tasks.len(), 4, "four tasks over two instances:\n{table}");
    assert!(tasks.iter().all(|l| l.contains("rust-uppercase@sha256:")), "{table}");
    assert!(
        table.contains(&format!("{app}/0")) && table.contains(&format!("{app}/1")),
        "{table}"
    );
}

/// A windowed count carries its state across a swap from the Rust `count`
/// to the Python one (both keep a little-endian u64): the window open at the
/// swap closes with the events of both versions in it.
#[test]
fn windowed_state_survives_a_swap_from_rust_to_python() {
    windowed_state_survives_a_swap_from_rust_to("python");
}

/// The same swap to the Go `count` (stock Go, `sdk/go`).
#[test]
fn windowed_state_survives_a_swap_from_rust_to_go() {
    windowed_state_survives_a_swap_from_rust_to("go");
}

fn windowed_state_survives_a_swap_from_rust_to(language: &str) {
    let _heavy = heavy();
    let g = guests();
    let Setup {
        dir,
        input,
        output,
        file,
        ..
    } = setup(
        "hs-window",
        2,
        &format!(
            "name = \"count\"\nkind = \"aggregate\"\nmodule = \"{}\"\n\
         window = {{ kind = \"tumbling\", size = \"10s\", grace = \"0s\" }}\nemit = \"final\"",
            toml_path(&g.example("rust", "count"))
        ),
    );
    let file_arg = file.to_str().unwrap();
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    // 2000 events 50 ms apart over 5 keys (key k on partition k % 2): 10
    // windows of 10 s, each with 40 events per key. The last stays open.
    const T0: i64 = 1_767_571_200_000;
    let records: Vec<In> = (0..2000)
        .map(|i: i64| In {
            key: Some(format!("k{}", i % 5).into_bytes()),
            value: Some(b"x".to_vec()),
            timestamp: Some(T0 + i * 50),
            partition: Some((i % 5 % 2) as i32),
            ..In::default()
        })
        .collect();
    // Up to 55 s of event time: windows 0–4 close under v1, window 5 is open.
    produce(&input, &records[..1100]);
    let before = wait_for(&output, 25, PATIENCE);
    assert_eq!(before.len(), 25, "windows 0-4 closed before the swap");
    let swapped = g.example(language, "count");
    let out = weir_ok(&[
        "deploy",
        file_arg,
        "count",
        swapped.to_str().unwrap(),
        "--name",
        &unique(&format!("{language}-count")),
    ]);
    assert!(out.contains("activated"), "{out}");
    let name = out
        .split("activated ")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .unwrap()
        .to_owned();
    // The registry holds the component (Python's is 19 MB) in chunks;
    // pulling it back reassembles the same bytes.
    let pulled = dir.path().join("pulled.wasm");
    let (ok, out, err) = weir_cli(&[
        "module",
        "pull",
        &format!("{name}@1"),
        "-o",
        pulled.to_str().unwrap(),
        "--pipeline",
        file_arg,
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        std::fs::read(&pulled).unwrap() == std::fs::read(&swapped).unwrap(),
        "pulled bytes differ"
    );
    wait_active(&mut w, &addr, "count", &name);
    produce(&input, &records[1100..]);
    let got = wait_for(&output, 45, PATIENCE);
    let mut windows: BTreeMap<(String, i64), (String, String)> = BTreeMap::new();
    for r in &got {
        let start: i64 = String::from_utf8_lossy(r.header("weir.window.start").flatten().unwrap())
            .parse()
            .unwrap();
        let key = r.key_str().unwrap().to_owned();
        let slot = ((start - T0) / 10_000, made_by(r));
        assert!(
            windows
                .insert(
                    (key.clone(), slot.0),
                    (r.value_str().unwrap().to_owned(), slot.1.clone())
                )
                .is_none(),
            "window {slot:?} of {key} emitted twice"
        );
    }
    assert_eq!(windows.len(), 45, "9 closed windows × 5 keys: {windows:?}");
    for ((key, window), (count, by)) in &windows {
        assert_eq!(count, "40", "{key} window {window}: state kept across the swap");
        let want = if *window < 5 { "rust-count" } else { name.as_str() };
        assert_eq!(by, want, "{key} window {window}");
    }
}

/// `count` (u64 state) replaced by `count-v2` (decimal text state) that
/// exports `migrate`: accumulators pass through it in the first transaction
/// after the swap. A SIGKILL while input flows after the swap (once v2 has
/// committed progress, with a transaction open), and a restart that reads
/// the active version from the registry, change nothing: every key's
/// committed counts rise strictly, v1's then v2's, to exactly its number of
/// inputs, and the store holds exactly that.
#[test]
fn migrate_carries_state_into_the_new_format_across_a_crash() {
    let _heavy = heavy();
    let g = guests();
    let Setup {
        dir,
        input,
        output,
        app,
        file,
    } = setup(
        "hs-migrate",
        2,
        &format!(
            "name = \"count\"\nkind = \"aggregate\"\nmodule = \"{}\"",
            toml_path(&g.example("rust", "count"))
        ),
    );
    let file_arg = file.to_str().unwrap();
    const KEYS: usize = 10;
    let records = |range: std::ops::Range<usize>| -> Vec<In> {
        range
            .map(|i| In {
                key: Some(format!("k{}", i % KEYS).into_bytes()),
                value: Some(b"x".to_vec()),
                ..In::default()
            })
            .collect()
    };
    let last = |got: &[CommittedRecord]| -> BTreeMap<String, (String, String)> {
        got.iter()
            .map(|r| {
                (
                    r.key_str().unwrap().to_owned(),
                    (r.value_str().unwrap().to_owned(), made_by(r)),
                )
            })
            .collect()
    };
    let mut w = WeirProcess::start(&file, "0", crash::CRASH_ARGS);
    let addr = admin_addr(&mut w);
    produce(&input, &records(0..500));
    let deadline = Instant::now() + PATIENCE;
    while last(&committed(&output)).values().filter(|(v, _)| v == "50").count() < KEYS {
        assert!(Instant::now() < deadline, "v1 never counted 50 per key");
        std::thread::sleep(Duration::from_millis(300));
    }
    let v2 = g.example("rust", "count-v2");
    // The dry run also folds the sample with the running version and
    // carries that state over through the new version's migrate.
    let sample = dir.path().join("sample.jsonl");
    std::fs::write(
        &sample,
        "{\"key\": \"a\", \"value\": \"x\"}\n{\"key\": \"a\", \"value\": \"y\"}\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = weir_cli(&[
        "deploy",
        file_arg,
        "count",
        v2.to_str().unwrap(),
        "--sample",
        sample.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stderr.contains("(1 key(s)) carries over to the new version"),
        "{stderr}"
    );
    wait_active(&mut w, &addr, "count", "rust-count-v2");
    // Input flows again (smoothly, so that a transaction is open most of the
    // time); the rest waits for the restarted instance.
    const TOTAL: usize = 2500;
    let feeder = Feeder::paced(&input, records(500..TOTAL), 10, Duration::from_millis(25), &[1500]);
    let progress = GroupProgress::of_topics(&app, &[input.as_str()]);
    let changelog = format!("{app}-count-changelog");
    let evidence = [output.clone(), changelog];
    let open_now = || evidence.iter().any(|t| support::kafka::log_counts(t).open > 0);
    let kill = Life::begin(0, &progress).kill_after_progress(
        &mut w,
        &progress,
        KillRng::seeded().millis(100, 600),
        Some(&open_now),
    );
    let first_life = w.log_text();
    let mut w = WeirProcess::start(&file, "0", crash::CRASH_ARGS);
    let addr = admin_addr(&mut w);
    // The restarted instance runs the active version from the start.
    let v = wait_active(&mut w, &addr, "count", "rust-count-v2");
    assert_eq!(v["seq"], 1, "{v}");
    feeder.finish();
    let per_key = (TOTAL / KEYS) as u64;
    let deadline = Instant::now() + PATIENCE;
    let want = format!("n={per_key}");
    while last(&committed(&output)).values().filter(|(v, _)| *v == want).count() < KEYS {
        assert!(
            Instant::now() < deadline,
            "no final counts: {:?}\n{}",
            last(&committed(&output)),
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Queries read the migrated state through the new version's emit.
    for k in 0..KEYS {
        let answer = http_get(&addr, &format!("/stores/count/k{k}"));
        assert!(answer.contains(&format!("\"{want}\"")), "k{k}: {answer}");
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(w.terminate(Duration::from_secs(60)).success(), "{}", w.log_text());
    // Per key: v1's counts as numbers, then v2's as n=…, strictly increasing
    // (no event counted twice) up to exactly its inputs (none lost).
    let got = committed(&output);
    let mut per_key_counts: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for r in &got {
        let v = r.value_str().unwrap();
        let n = v.strip_prefix("n=").unwrap_or(v).parse().unwrap();
        per_key_counts
            .entry(r.key_str().unwrap().to_owned())
            .or_default()
            .push((n, made_by(r)));
    }
    assert_eq!(per_key_counts.len(), KEYS, "{per_key_counts:?}");
    for (key, seq) in per_key_counts {
        assert!(seq.windows(2).all(|p| p[0].0 < p[1].0), "{key}: {seq:?}");
        assert_eq!(seq.last().map(|(n, _)| *n), Some(per_key), "{key}: {seq:?}");
        assert_eq!(
            runs(seq.iter().map(|(_, by)| by.clone())),
            ["rust-count", "rust-count-v2"],
            "{key}"
        );
    }
    // The migration ran at the swap, or (if the kill came before its
    // transaction committed) again in the restarted instance.
    let logs = format!("{first_life}{}", w.log_text());
    assert!(logs.contains("migrated the stage's accumulators"), "{logs}");
    crash::assert_kills_left_open_transactions(&evidence, &[kill]);
}

/// Pushes that cannot run are refused in one line and change nothing; the
/// running version keeps going.
#[test]
fn invalid_pushes_are_refused_and_change_nothing() {
    let _heavy = heavy();
    let g = guests();
    let Setup {
        dir,
        input,
        output,
        file,
        ..
    } = setup(
        "hs-invalid",
        1,
        &format!(
            "name = \"shout\"\nmodule = \"{}\"",
            toml_path(&g.example("rust", "uppercase"))
        ),
    );
    let file_arg = file.to_str().unwrap();
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    produce(&input, &(0..50).map(|i| In::value(format!("a{i}"))).collect::<Vec<_>>());
    wait_for(&output, 50, PATIENCE);

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\x00asx not really a module").unwrap();
    let sample = dir.path().join("sample.jsonl");
    std::fs::write(&sample, "{\"value\": \"fine\"}\n{\"value\": \"panic\"}\n").unwrap();
    let names = [unique("junk"), unique("kind"), unique("trap")];
    let misbehave = g.test_guest("misbehave");
    let count = g.example("rust", "count");
    let attempts: [(Vec<&str>, &str); 3] = [
        (
            vec!["deploy", file_arg, "shout", junk.to_str().unwrap(), "--name", &names[0]],
            "not a WebAssembly component",
        ),
        (
            vec![
                "deploy",
                file_arg,
                "shout",
                count.to_str().unwrap(),
                "--name",
                &names[1],
            ],
            "it is an aggregator, but stage shout needs a processor",
        ),
        (
            vec![
                "deploy",
                file_arg,
                "shout",
                misbehave.to_str().unwrap(),
                "--name",
                &names[2],
                "--sample",
                sample.to_str().unwrap(),
            ],
            "trapped on line 2 of the sample",
        ),
    ];
    for (args, why) in &attempts {
        let (ok, stdout, stderr) = weir_cli(args);
        assert!(!ok, "{args:?} succeeded: {stdout}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "one line says why: {stderr}");
        assert!(
            errors[0].contains("refused, nothing changed") && errors[0].contains(why),
            "{stderr}"
        );
    }
    // A state the running version builds from the sample that the new
    // version's migrate cannot read is refused too (the stage need not run).
    let stats = pipeline(
        dir.path(),
        &unique("hs-stats"),
        &input,
        &output,
        &format!(
            "name = \"stats\"\nkind = \"aggregate\"\nmodule = \"{}\"",
            toml_path(&g.example("rust", "price-stats"))
        ),
    );
    let trades = dir.path().join("trades.jsonl");
    std::fs::write(
        &trades,
        "{\"key\": \"SAP\", \"value\": {\"symbol\": \"SAP\", \"price\": 120.5}}\n",
    )
    .unwrap();
    let v2_name = unique("v2");
    let (ok, _, stderr) = weir_cli(&[
        "deploy",
        stats.to_str().unwrap(),
        "stats",
        g.example("rust", "count-v2").to_str().unwrap(),
        "--name",
        &v2_name,
        "--sample",
        trades.to_str().unwrap(),
    ]);
    assert!(!ok, "an unreadable state is refused");
    assert!(
        stderr.contains("refused, nothing changed") && stderr.contains("fails for key \"SAP\""),
        "{stderr}"
    );
    // Activating what does not exist, or what does not fit, is refused too.
    let (ok, _, stderr) = weir_cli(&["module", "activate", file_arg, "shout", &format!("{}@1", names[0])]);
    assert!(!ok && stderr.contains("no module named"), "{stderr}");
    let counter = unique("counter");
    weir_ok(&[
        "module",
        "push",
        count.to_str().unwrap(),
        "--name",
        &counter,
        "--bootstrap",
        &broker().bootstrap,
    ]);
    let (ok, _, stderr) = weir_cli(&["module", "activate", file_arg, "shout", &format!("{counter}@1")]);
    assert!(
        !ok && stderr.contains("it is an aggregator, but the stage needs a processor"),
        "{stderr}"
    );

    let list = weir_ok(&["module", "list", "--json", "--pipeline", file_arg]);
    for n in names.iter().chain([&v2_name]) {
        assert!(
            !list.contains(&format!("\"{n}\"")),
            "{n} is not in the registry:\n{list}"
        );
    }
    // v1 never stopped: more input, all of it by v1.
    produce(
        &input,
        &(50..100).map(|i| In::value(format!("a{i}"))).collect::<Vec<_>>(),
    );
    let got = wait_for(&output, 100, PATIENCE);
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|r| made_by(r) == "rust-uppercase"));
    let v = module_view(&addr, "shout");
    assert_eq!((v["seq"].clone(), v["swaps"].clone()), (0.into(), 0.into()), "{v}");
    assert!(w.running());
}

/// An activation with a guard rolls itself back when the new version fails
/// on more than its share of its first records; the rollback shows in
/// `/status`, and every input is either output by v1 or counted as v2's failure.
#[test]
fn a_failing_version_rolls_back_automatically() {
    let _heavy = heavy();
    let g = guests();
    let Setup {
        dir: _dir,
        input,
        output,
        file,
        ..
    } = setup(
        "hs-auto",
        2,
        &format!(
            "name = \"shout\"\nmodule = \"{}\"\non-error = \"skip\"",
            toml_path(&g.example("rust", "uppercase"))
        ),
    );
    let file_arg = file.to_str().unwrap();
    let mut w = WeirProcess::start(&file, "0", &[]);
    let addr = admin_addr(&mut w);
    const N: usize = 3000;
    let records: Vec<In> = (0..N)
        .map(|i| In {
            value: Some(format!("v{i:05}").into_bytes()),
            partition: Some((i % 2) as i32),
            ..In::default()
        })
        .collect();
    let feeder = Feeder::start(&input, records, Duration::from_millis(100), &[1000, 2500]);
    wait_for(&output, 500, PATIENCE);
    // errors-only fails on every non-JSON value.
    let out = weir_ok(&[
        "deploy",
        file_arg,
        "shout",
        g.example("rust", "errors-only").to_str().unwrap(),
        "--guard-first",
        "40",
        "--max-failure-share",
        "0.25",
    ]);
    assert!(out.contains("activated"), "{out}");
    wait_active(&mut w, &addr, "shout", "rust-errors-only");
    feeder.open(0);
    let deadline = Instant::now() + PATIENCE;
    let v = loop {
        let v = module_view(&addr, "shout");
        let last = v["last"].as_str().unwrap_or_default();
        if last.starts_with("auto-rollback to")
            && v["active"].as_str().unwrap_or_default().starts_with("rust-uppercase@")
        {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no automatic rollback: {v}\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(v["last"].as_str().unwrap().contains("failed (limit 25%)"), "{v}");
    assert_eq!(v["seq"], 2, "activation 1, then its rollback: {v}");
    feeder.finish();
    // Everything after the rollback is v1's again.
    let deadline = Instant::now() + PATIENCE;
    let (got, skipped) = loop {
        let st = status(&addr);
        let skipped = st["stages"][0]["counters"]["skipped"].as_u64().unwrap_or(0);
        let got = committed(&output);
        if got.len() as u64 + skipped >= N as u64 {
            break (got, skipped);
        }
        assert!(
            Instant::now() < deadline,
            "{} outputs + {skipped} skipped < {N}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        skipped > 10,
        "the guard trips after more than 10 of 40 failures: {skipped}"
    );
    let mut seen = vec![false; N];
    for r in &got {
        assert_eq!(made_by(r), "rust-uppercase", "errors-only output nothing here");
        let i: usize = r.value_str().unwrap()[1..].parse().unwrap();
        assert!(!std::mem::replace(&mut seen[i], true), "input {i} twice");
    }
    assert_eq!(
        got.len() + skipped as usize,
        N,
        "each input once: output by v1 or failed in v2"
    );
    // Per partition, v2's failures are one run between two runs of v1. The
    // guard counts the activation's first records over both tasks, so on a
    // loaded machine one task may reach 40 before the other ran v2 at all:
    // that partition is v1's throughout. At least one partition ran v2.
    let patterns: Vec<Vec<bool>> = (0..2)
        .map(|p| runs((0..N).filter(|i| i % 2 == p).map(|i| seen[i])))
        .collect();
    for (p, pattern) in patterns.iter().enumerate() {
        assert!(
            pattern == &[true, false, true] || pattern == &[true],
            "partition {p}: {pattern:?}"
        );
    }
    assert!(
        patterns.iter().any(|p| p == &[true, false, true]),
        "v2 failed somewhere: {patterns:?}"
    );
    assert!(w.log_text().contains("automatic rollback"), "{}", w.log_text());
}
