//! The foundation, as a user meets it: build operators in four languages,
//! `weir validate` them, `weir test` them on JSON lines, and watch the sandbox
//! contain the ones that misbehave. Expected outputs come from plain
//! reference implementations in this file.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::*;
use weir::event::{Event, Output};
use weir::jsonl::output_json;

/// The JSON line `weir test` prints for an output of an event.
fn line(o: Output, input: &Event) -> Value {
    let ts = o.timestamp.unwrap_or(input.timestamp);
    output_json(&o, ts)
}

fn forward(e: &Event) -> Output {
    Output {
        key: e.key.clone(),
        value: e.value.clone(),
        headers: e.headers.clone(),
        ..Output::default()
    }
}

/// Runs a processor example over a test file and checks it against a
/// reference: `Ok(outputs)` or `Err(failure code)` per event.
fn check_processor(module: &str, input: &str, reference: impl Fn(&Event) -> Result<Vec<Output>, &'static str>) {
    let g = guests();
    let path = testdata(input);
    let events = read_events(&path);
    let mut want_lines = Vec::new();
    let mut want_failures = Vec::new();
    for (i, e) in events.iter().enumerate() {
        match reference(e) {
            Ok(outs) => want_lines.extend(outs.into_iter().map(|o| line(o, e))),
            Err(code) => want_failures.push((i + 1, code.to_owned())),
        }
    }
    let run = weir_test(&g.example("rust", module), &path, &[]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.json_lines(), want_lines, "outputs of {module} on {input}");
    assert_eq!(
        run.failures(),
        want_failures,
        "failures of {module} on {input}:\n{}",
        run.stderr
    );
}

fn json_value(e: &Event) -> Result<Value, &'static str> {
    serde_json::from_slice(e.value.as_deref().ok_or("invalid-json")?).map_err(|_| "invalid-json")
}

#[test]
fn uppercase_upper_cases_values_and_keeps_the_rest() {
    // logs.jsonl has headers (one name twice) and keyless records: the
    // outputs keep them by flag, and the host reads them from the batch.
    for input in ["sentences.jsonl", "logs.jsonl"] {
        check_processor("uppercase", input, |e| {
            Ok(vec![Output {
                value: e.value.as_ref().map(|v| v.to_ascii_uppercase()),
                ..forward(e)
            }])
        });
    }
}

#[test]
fn errors_only_keeps_json_errors_and_fails_non_json() {
    check_processor("errors-only", "logs.jsonl", |e| {
        let json = json_value(e)?;
        let is_error = json.get("level").and_then(Value::as_str) == Some("ERROR");
        Ok(if is_error { vec![forward(e)] } else { vec![] })
    });
}

fn reference_words(e: &Event) -> Result<Vec<Output>, &'static str> {
    let Some(v) = &e.value else { return Ok(vec![]) };
    let text = std::str::from_utf8(v).map_err(|_| "invalid-utf8")?;
    Ok(text
        .split_whitespace()
        .map(|w| {
            w.to_lowercase()
                .trim_matches(|c: char| c.is_ascii_punctuation())
                .to_owned()
        })
        .filter(|w| !w.is_empty())
        .map(|w| Output {
            key: Some(w.clone().into_bytes()),
            value: Some(w.into_bytes()),
            ..Output::default()
        })
        .collect())
}

#[test]
fn words_splits_lowercases_and_trims() {
    check_processor("words", "sentences.jsonl", reference_words);
}

#[test]
fn route_by_type_routes_on_the_type_field() {
    check_processor("route-by-type", "trades.jsonl", |e| {
        let json = json_value(e)?;
        let route = match json.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(other) => other.to_string(),
            None => "unknown".into(),
        };
        Ok(vec![Output {
            route: Some(route),
            ..forward(e)
        }])
    });
}

#[test]
fn isin_key_rekeys_trades() {
    check_processor("isin-key", "trades.jsonl", |e| {
        let json = json_value(e)?;
        let isin = json
            .get("isinStockCode")
            .and_then(Value::as_str)
            .ok_or("missing-isin")?;
        Ok(vec![Output {
            key: Some(isin.as_bytes().to_vec()),
            ..forward(e)
        }])
    });
}

/// Folds a test file per key (keys in order of first appearance) with a
/// reference; the output timestamp is the key's greatest event time.
fn check_aggregator(module: &str, input: &str, fold: impl Fn(&[&Event]) -> Option<Output>) {
    let g = guests();
    let path = testdata(input);
    let events = read_events(&path);
    let mut keys: Vec<Option<Vec<u8>>> = Vec::new();
    for e in &events {
        if !keys.contains(&e.key) {
            keys.push(e.key.clone());
        }
    }
    let want: Vec<Value> = keys
        .iter()
        .filter_map(|k| {
            let of_key: Vec<&Event> = events.iter().filter(|e| e.key == *k).collect();
            let ts = of_key.iter().map(|e| e.timestamp).max().unwrap_or_default();
            let mut o = fold(&of_key)?;
            o.key = k.clone();
            Some(output_json(&o, o.timestamp.unwrap_or(ts)))
        })
        .collect();
    let run = weir_test(&g.example("rust", module), &path, &[]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.json_lines(), want, "outputs of {module} on {input}");
}

#[test]
fn count_counts_per_key() {
    check_aggregator("count", "keys.jsonl", |evs| {
        Some(Output {
            value: Some(evs.len().to_string().into_bytes()),
            ..Output::default()
        })
    });
}

#[test]
fn latest_keeps_the_greatest_timestamp_and_later_arrival_wins_ties() {
    check_aggregator("latest", "keys-latest.jsonl", |evs| {
        let best = evs.iter().fold(None::<&&Event>, |best, e| match best {
            Some(b) if b.timestamp > e.timestamp => Some(b),
            _ => Some(e),
        })?;
        Some(Output {
            value: best.value.clone(),
            timestamp: Some(best.timestamp),
            ..Output::default()
        })
    });
}

/// The same input through every language's build of an example gives the
/// same outputs and fails on the same lines with the same codes.
#[test]
fn every_language_agrees() {
    let g = guests();
    let cases: &[(&str, &str, &[&str])] = &[
        ("uppercase", "logs.jsonl", &["rust", "python", "js", "go"]),
        ("errors-only", "logs.jsonl", &["rust", "python", "js", "c", "go"]),
        ("words", "sentences.jsonl", &["rust", "python", "js", "go"]),
        ("count", "keys.jsonl", &["rust", "python", "js", "go"]),
        ("pair", "pairs.jsonl", &["rust", "python", "js", "go"]),
    ];
    for (example, input, languages) in cases {
        let runs: BTreeMap<&str, Run> = languages
            .iter()
            .map(|l| (*l, weir_test(&g.example(l, example), &testdata(input), &[])))
            .collect();
        let rust = &runs["rust"];
        assert!(!rust.stdout.is_empty(), "{example}: the Rust build printed nothing");
        for (language, run) in &runs {
            assert!(run.ok, "{language}-{example}: {}", run.stderr);
            assert_eq!(
                run.json_lines(),
                rust.json_lines(),
                "{language}-{example} outputs differ from rust"
            );
            assert_eq!(
                run.failures(),
                rust.failures(),
                "{language}-{example} failures differ:\n{}",
                run.stderr
            );
        }
    }
}

#[test]
fn validate_describes_every_example() {
    let g = guests();
    let expected = [
        ("rust", "uppercase", "processor"),
        ("rust", "errors-only", "processor"),
        ("rust", "words", "processor"),
        ("rust", "route-by-type", "processor"),
        ("rust", "isin-key", "processor"),
        ("rust", "count", "aggregator"),
        ("rust", "latest", "aggregator"),
        ("python", "uppercase", "processor"),
        ("python", "errors-only", "processor"),
        ("python", "words", "processor"),
        ("python", "count", "aggregator"),
        ("js", "uppercase", "processor"),
        ("js", "errors-only", "processor"),
        ("js", "words", "processor"),
        ("js", "count", "aggregator"),
        ("c", "errors-only", "processor"),
        ("rust", "pair", "joiner"),
        ("python", "pair", "joiner"),
        ("js", "pair", "joiner"),
        ("go", "uppercase", "processor"),
        ("go", "errors-only", "processor"),
        ("go", "words", "processor"),
        ("go", "count", "aggregator"),
        ("go", "pair", "joiner"),
    ];
    for (language, name, kind) in expected {
        let path = g.example(language, name);
        let run = run_weir(["validate".as_ref(), "--json".as_ref(), path.as_os_str()]);
        assert!(run.ok, "{language}-{name}: {}", run.stderr);
        let info: Value = serde_json::from_str(&run.stdout).expect("validate --json prints JSON");
        assert_eq!(info["kind"], kind, "{language}-{name}");
        let size = std::fs::metadata(&path).expect("built").len();
        assert_eq!(info["size"], size, "{language}-{name}");
        assert!(
            info["digest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:") && d.len() == 71)
        );
        let sdk = info["sdk"].as_str().unwrap_or_default();
        let sdk_hint = match language {
            "rust" => "weir-sdk-rust",
            "python" => "componentize-py",
            "js" => "ComponentizeJS",
            "go" => "weir-sdk-go",
            _ => "weir-sdk-c",
        };
        assert!(sdk.contains(sdk_hint), "{language}-{name}: sdk {sdk:?}");
    }
}

#[test]
fn validate_refuses_bad_modules_with_one_line_naming_the_problem() {
    let g = guests();
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"this is not wasm at all").expect("write");
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let empty_component = dir.path().join("empty.wasm");
    std::fs::write(&empty_component, b"\0asm\x0d\0\x01\0").expect("write");
    let cases = [
        (garbage, "not a WebAssembly component"),
        (core, "core WebAssembly module, not a component"),
        (empty_component, "is not a Weir operator"),
        (g.test_guest("wrong-types"), "expected `list` found `string`"),
        (dir.path().join("missing.wasm"), "cannot read module"),
    ];
    for (path, problem) in cases {
        let run = run_weir(["validate".as_ref(), path.as_os_str()]);
        assert!(!run.ok, "{} was accepted", path.display());
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line for {}: {:?}", path.display(), lines);
        assert!(lines[0].contains(problem), "{}: {}", path.display(), lines[0]);
    }
}

/// Runs the `misbehave` test guest on one event per value (each value is a
/// command to it: `panic`, `loop`, `oom`, `fail`, `config`, `clock`, …).
fn run_misbehave(values: &[&str], extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.jsonl");
    let lines: String = values.iter().map(|v| format!("{{\"value\":\"{v}\"}}\n")).collect();
    std::fs::write(&input, lines).expect("write");
    weir_test(&guests().test_guest("misbehave"), &input, extra)
}

#[test]
fn a_panic_fails_only_its_event_and_the_next_batch_runs_clean() {
    let run = run_misbehave(&["a", "panic", "b", "c"], &["--batch-size", "3"]);
    assert!(run.ok, "{}", run.stderr);
    let values: Vec<Value> = run.json_lines().iter().map(|v| v["value"].clone()).collect();
    assert_eq!(values, ["a", "b", "c"]);
    let problems = run.problem_lines();
    assert_eq!(problems.len(), 1, "{}", run.stderr);
    assert!(
        problems[0].starts_with("line 2: module misbehave@sha256:"),
        "{}",
        problems[0]
    );
    assert!(problems[0].contains("process panicked"), "{}", problems[0]);
    assert!(
        run.stderr.contains("asked to panic at offset 1"),
        "the panic message reaches the error: {}",
        run.stderr
    );
}

#[test]
fn a_runaway_guest_hits_its_deadline_and_the_rest_still_runs() {
    let run = run_misbehave(&["loop", "after"], &["--deadline", "100ms"]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.json_lines().len(), 1);
    let problems = run.problem_lines();
    assert_eq!(problems.len(), 1, "{}", run.stderr);
    assert!(
        problems[0].starts_with("line 1:") && problems[0].contains("exceeded its deadline of 100ms"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_memory_hog_hits_its_cap_and_the_rest_still_runs() {
    let run = run_misbehave(&["before", "oom", "after"], &["--memory-limit", "16MiB"]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.json_lines().len(), 2);
    let problems = run.problem_lines();
    assert_eq!(problems.len(), 1, "{}", run.stderr);
    assert!(
        problems[0].starts_with("line 2:") && problems[0].contains("ran out of memory (cap 16777216 bytes"),
        "{}",
        problems[0]
    );
}

#[test]
fn typed_failures_config_and_counters_reach_the_user() {
    // The panic makes the host replay parts of the batch: counters of calls
    // that trapped must not count.
    let run = run_misbehave(&["config", "fail", "panic", "config"], &["--config", "greeting=hello"]);
    assert!(run.ok, "{}", run.stderr);
    let values: Vec<Value> = run.json_lines().iter().map(|v| v["value"].clone()).collect();
    assert_eq!(values, ["hello", "hello"]);
    assert_eq!(run.failures(), [(2, "asked-to-fail".to_owned())]);
    assert!(run.stderr.contains("counters: config-reads=2\n"), "{}", run.stderr);
}

#[test]
fn guests_see_a_frozen_clock_no_files_and_no_environment() {
    let run = run_misbehave(&["clock", "file", "env", "monotonic"], &[]);
    assert!(run.ok, "{}", run.stderr);
    let values: Vec<String> = run
        .json_lines()
        .iter()
        .map(|v| v["value"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(values[0], "0", "the wall clock reads zero");
    assert!(values[1].starts_with("denied:"), "no filesystem: {}", values[1]);
    assert_eq!(values[2], "0", "no environment variables");
    assert_eq!(
        values[3], "600000",
        "a 600 s sleep moves the monotonic clock by 600 s, at once"
    );
}

/// A guest's sleep happens in a host call, where epoch deadlines cannot
/// interrupt it; on Weir's virtual clock it must return at once instead.
#[test]
fn a_sleeping_guest_cannot_hold_the_host() {
    let g = guests();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"value\":\"sleep\"}\n").expect("write");
    let mut child = weir()
        .arg("test")
        .arg(g.test_guest("misbehave"))
        .arg("--input")
        .arg(&input)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn weir");
    // The guest asks for 600 s; a generous watchdog tells "returned" from "blocked".
    let started = std::time::Instant::now();
    while child.try_wait().expect("poll").is_none() {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("weir test is still blocked in the guest's sleep");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"slept\""));
}

#[test]
fn guest_randomness_is_the_same_in_every_run() {
    let first = run_misbehave(&["random"], &[]);
    let second = run_misbehave(&["random"], &[]);
    assert!(first.ok && second.ok, "{}{}", first.stderr, second.stderr);
    assert_eq!(first.json_lines().len(), 1);
    assert_eq!(
        first.stdout, second.stdout,
        "a seeded hasher hashes alike in two processes"
    );
}

#[test]
fn malformed_input_lines_are_reported_and_the_run_goes_on() {
    let g = guests();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        b"{\"value\":\"ok\"}\nnot json\n{\"vaule\":\"typo\"}\n{\"value\":\"\xff\"}\n{\"value\":\"fine\"}\n",
    )
    .expect("write");
    let run = weir_test(&g.example("rust", "uppercase"), &input, &[]);
    assert!(run.ok, "{}", run.stderr);
    let values: Vec<Value> = run.json_lines().iter().map(|v| v["value"].clone()).collect();
    assert_eq!(values, ["OK", "FINE"]);
    let problems = run.problem_lines();
    assert!(problems[0].starts_with("line 2: not JSON"), "{problems:?}");
    assert!(problems[1].starts_with("line 3: vaule: unknown field"), "{problems:?}");
    assert_eq!(problems[2], "line 4: not UTF-8");
}

#[test]
fn componentize_refuses_what_is_not_a_core_module() {
    let g = guests();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.wasm");
    let run = run_weir([
        "componentize".as_ref(),
        g.example("rust", "uppercase").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert!(!run.ok);
    assert!(run.stderr.contains("already a component"), "{}", run.stderr);
    assert!(!out.exists());
}

#[test]
fn precompiled_modules_are_cached_by_digest() {
    let g = guests();
    let cache = tempfile::tempdir().expect("temp dir");
    let module = g.example("rust", "words");
    for _ in 0..2 {
        let out = weir()
            .env("WEIR_CACHE_DIR", cache.path())
            .arg("validate")
            .arg(&module)
            .output()
            .expect("run");
        assert!(out.status.success());
    }
    let entries: Vec<String> = std::fs::read_dir(cache.path())
        .expect("cache dir exists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let digest = weir::module::digest(&std::fs::read(&module).expect("read"));
    assert!(
        entries[0].starts_with(digest.trim_start_matches("sha256:")),
        "{entries:?}"
    );
}

/// `weir topology` prints every example pipeline's topology from the file
/// alone (no broker, no module): the sub-topologies that repartition topics
/// cut a chain into, the stores with their changelogs, and the internal
/// topics. A malformed file is refused with the key named.
#[test]
fn weir_topology_describes_every_example_pipeline() {
    let dir = repo().join("guest-examples/pipelines");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the example pipelines") {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let run = run_weir([std::ffi::OsStr::new("topology"), path.as_os_str()]);
        assert!(run.ok, "{}: {}", path.display(), run.stderr);
        let pipeline = weir::pipeline::Pipeline::load(&path).expect("an example pipeline loads");
        let topology = weir::topology::Topology::from_pipeline(&pipeline);
        // Stores of tasks (a global table is printed on its own line).
        let stateful = (0..pipeline.stages.len())
            .filter(|&i| topology.store(i).is_some_and(|s| s.scope == weir::state::Scope::Task))
            .count();
        assert_eq!(
            run.stdout.matches("      store: ").count(),
            stateful,
            "{}: one store per stage that keeps state:\n{}",
            path.display(),
            run.stdout
        );
        for s in &pipeline.stages {
            let line = match s.kind {
                weir::pipeline::StageKind::GlobalTable => format!("  Global table: {} (", s.name),
                _ => format!("    Stage: {} (", s.name),
            };
            assert!(
                run.stdout.contains(&line),
                "{}: stage {} missing:\n{}",
                path.display(),
                s.name,
                run.stdout
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 15, "the example pipelines in guest-examples/pipelines");
    let two = run_weir(["topology", &dir.join("trades-latest.toml").display().to_string()]);
    assert!(
        two.stdout.starts_with("Topology of trades-latest (2 sub-topologies)")
            && two
                .stdout
                .contains("Source: trades-latest-latest-repartition (repartition topic)"),
        "{}",
        two.stdout
    );
    let bad = tempfile::tempdir().unwrap();
    let file = bad.path().join("p.toml");
    std::fs::write(&file, "application-id = \"a\"\ninputs = [\"i\"]\nstages = []\n").unwrap();
    let run = run_weir([std::ffi::OsStr::new("topology"), file.as_os_str()]);
    assert!(!run.ok && run.stderr.contains("stages"), "{}", run.stderr);
}

/// `weir test PIPELINE.toml` takes a record's timestamp under the
/// pipeline's `timestamp-policy`, as `weir run` does: a negative one stops
/// the run by default, naming the setting; `log-and-skip` skips it and
/// `wall-clock` gives it the wall clock's time.
#[test]
fn weir_test_applies_the_timestamp_policy() {
    let g = guests();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"value\": \"a\", \"timestamp\": 5}\n{\"value\": \"b\", \"timestamp\": -3}\n{\"value\": \"c\", \"timestamp\": 7}\n",
    )
    .unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let run = |policy: &str| {
        let file = dir.path().join(format!("p{}.toml", policy.len()));
        std::fs::write(
            &file,
            format!(
                "application-id = \"ts\"\ninputs = [\"in\"]\n{policy}\n[[stage]]\nmodule = {:?}\n[outputs]\ndefault = \"out\"\n",
                g.example("rust", "uppercase").display().to_string()
            ),
        )
        .unwrap();
        run_weir([
            "test".as_ref(),
            file.as_os_str(),
            "--input".as_ref(),
            format!("in={}", input.display()).as_ref(),
        ])
    };
    let failed = run("");
    assert!(!failed.ok, "{}", failed.stdout);
    assert!(
        failed.stderr.contains(
            "a record piped into in has timestamp -3, not a valid time; set timestamp-policy = \"log-and-skip\""
        ),
        "{}",
        failed.stderr
    );
    let skipped = run("timestamp-policy = \"log-and-skip\"");
    assert!(skipped.ok, "{}", skipped.stderr);
    let out = skipped.json_lines();
    let got: Vec<(&str, i64)> = out
        .iter()
        .map(|v| (v["value"].as_str().unwrap(), v["timestamp"].as_i64().unwrap()))
        .collect();
    assert_eq!(got, [("A", 5), ("C", 7)], "{}", skipped.stdout);
    let clock = run("timestamp-policy = \"wall-clock\"");
    assert!(clock.ok, "{}", clock.stderr);
    let out = clock.json_lines();
    assert_eq!(out.len(), 3, "{}", clock.stdout);
    assert_eq!(out[1]["value"], "B");
    assert!(out[1]["timestamp"].as_i64().unwrap() >= started, "{}", clock.stdout);
}

/// `weir test PIPELINE.toml` runs an example pipeline without a broker:
/// daily-stats emits per record (update), dead-letters a trade that comes
/// after its day closed, and `--state` shows the open days; trades-latest
/// (two sub-topologies through a repartition topic) emits its final windows
/// once the wall clock moves past `idle-close`.
#[test]
fn weir_test_runs_a_whole_pipeline_without_a_broker() {
    let dir = tempfile::tempdir().unwrap();
    let examples = repo().join("guest-examples/pipelines");
    guests()
        .for_pipeline_file(&examples.join("daily-stats.toml"))
        .for_pipeline_file(&examples.join("trades-latest.toml"));
    const DAY: i64 = 86_400_000;
    let trade = |symbol: &str, price: &str, ts: i64| {
        format!(r#"{{"key": "{symbol}", "value": {{"symbol": "{symbol}", "price": {price}}}, "timestamp": {ts}}}"#)
    };
    let lines = [
        trade("SAP", "10.0", 1000),
        trade("SAP", "12.0", 2000),
        trade("ACME", "5.0", 3000),
        // The next day, past the 1 h grace: day 0 closes.
        trade("SAP", "11.0", DAY + 3_600_001),
        // Day 0 again: late.
        trade("SAP", "1.0", 4000),
    ];
    let input = dir.path().join("trades.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let file = examples.join("daily-stats.toml");
    let run = run_weir([
        "test".as_ref(),
        file.as_os_str(),
        "--input".as_ref(),
        format!("trades={}", input.display()).as_ref(),
        "--state".as_ref(),
    ]);
    assert!(run.ok, "{}", run.stderr);
    let out: Vec<serde_json::Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let on = |topic: &str| -> Vec<&serde_json::Value> { out.iter().filter(|v| v["topic"] == topic).collect() };
    let stats = on("daily-stats");
    assert_eq!(stats.len(), 4, "one update per on-time trade:\n{}", run.stdout);
    assert_eq!(stats[1]["window"], serde_json::json!({"start": 0, "end": DAY}));
    assert_eq!(stats[1]["timestamp"], 2000, "the newest trade in the window");
    let stats1: serde_json::Value = serde_json::from_str(stats[1]["value"].as_str().unwrap()).unwrap();
    assert_eq!(stats1["count"], 2, "{stats1}");
    let late = on("trades-late");
    assert_eq!(late.len(), 1, "{}", run.stdout);
    assert_eq!(late[0]["timestamp"], 4000);
    let state: Vec<&serde_json::Value> = out.iter().filter_map(|v| v.get("state")).collect();
    assert_eq!(state.len(), 1, "only day 1 is open:\n{}", run.stdout);
    assert_eq!(state[0]["key"], "SAP");
    assert_eq!(state[0]["window"]["start"], DAY);
    assert!(run.stderr.contains("1 late"), "{}", run.stderr);

    // trades-latest: 2 s windows, final, idle-close 1s.
    let t = |isin: &str, ts: i64| {
        format!(r#"{{"key": "S", "value": {{"isinStockCode": "{isin}", "price": 1, "seq": {ts}}}, "timestamp": {ts}}}"#)
    };
    let lines = [t("X1", 100), t("X1", 900), t("X2", 1500), t("X1", 2500)];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let latest = examples.join("trades-latest.toml");
    let arg = format!("trades={}", input.display());
    let run = run_weir(["test", &latest.display().to_string(), "--input", &arg]);
    assert!(run.ok, "{}", run.stderr);
    let windows: Vec<serde_json::Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        windows.len(),
        2,
        "[0, 2000) of X1 and X2 closed at 2500:\n{}",
        run.stdout
    );
    assert!(windows.iter().all(|w| w["window"]["start"] == 0));
    let x1 = windows.iter().find(|w| w["key"] == "X1").expect("X1's window");
    assert_eq!(x1["timestamp"], 900, "the latest trade of the window");
    std::fs::write(
        &input,
        format!("{}\n{{\"advance-wall-clock\": \"3s\"}}\n", lines.join("\n")),
    )
    .unwrap();
    let run = run_weir(["test", &latest.display().to_string(), "--input", &arg]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        run.stdout.lines().count(),
        3,
        "the wall clock closes [2000, 4000):\n{}",
        run.stdout
    );
    let closed = run.stdout.clone();
    let run = run_weir(["test", &latest.display().to_string(), "--input", "nope=x.jsonl"]);
    assert!(!run.ok && run.stderr.contains("nope is not an input"), "{}", run.stderr);

    // The same records through --records, each naming its topic: the same
    // outputs, the wall-clock line included.
    let records: Vec<String> = lines
        .iter()
        .map(|l| l.replacen('{', r#"{"topic": "trades", "#, 1))
        .chain(["{\"advance-wall-clock\": \"3s\"}".to_owned()])
        .collect();
    std::fs::write(&input, records.join("\n")).unwrap();
    let by_records = run_weir([
        "test",
        &latest.display().to_string(),
        "--records",
        &input.display().to_string(),
    ]);
    assert!(by_records.ok, "{}", by_records.stderr);
    assert_eq!(by_records.stdout, closed, "--records and --input agree");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = run_weir([
        "test",
        &latest.display().to_string(),
        "--records",
        &input.display().to_string(),
    ]);
    assert!(
        !run.ok && run.stderr.contains("names its topic"),
        "a --records line without its topic: {}",
        run.stderr
    );
}

/// `weir test --records` takes every input's records in pipe order, as
/// Kafka Streams' `TopologyTestDriver.pipeInput` calls: a customer's change
/// piped before an order with an older timestamp is seen by that order
/// (merged by time, the order would come first and miss it).
#[test]
fn weir_test_takes_records_in_pipe_order() {
    guests().for_pipeline_file(&repo().join("guest-examples/pipelines/orders-enriched.toml"));
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.jsonl");
    std::fs::write(
        &records,
        [
            r#"{"topic": "customers", "key": "c1", "value": {"name": "Ann"}, "timestamp": 2000}"#,
            r#"{"topic": "orders", "key": "c1", "value": {"order": 1}, "timestamp": 1000}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let pipeline = repo().join("guest-examples/pipelines/orders-enriched.toml");
    let run = run_weir([
        "test",
        &pipeline.display().to_string(),
        "--records",
        &records.display().to_string(),
    ]);
    assert!(run.ok, "{}", run.stderr);
    let out: Vec<serde_json::Value> = run.json_lines();
    assert_eq!(out.len(), 1, "{}", run.stdout);
    assert_eq!(out[0]["value"], r#"{"left":{"order":1},"right":{"name":"Ann"}}"#);
    assert_eq!(out[0]["timestamp"], 1000);
    let run = run_weir([
        "test",
        &pipeline.display().to_string(),
        "--records",
        &records.display().to_string(),
        "--input",
        "orders=x.jsonl",
    ]);
    assert!(!run.ok && run.stderr.contains("cannot be combined"), "{}", run.stderr);
}
