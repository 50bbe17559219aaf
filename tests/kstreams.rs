//! Kafka Streams' own test scenarios (`tests/kstreams/*/`, see its README):
//! every one runs through `weir test PIPELINE.toml --records` and must give
//! the results Kafka Streams' test asserts, in its order — at batch size 1,
//! and for those whose results cannot depend on batching also at 1000.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// What a scenario's `scenario.toml` says.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    /// `Class#method` of the Kafka Streams test.
    source: String,
    /// The apache/kafka commit it was read from.
    #[expect(dead_code, reason = "provenance for readers, not used by the run")]
    kafka: String,
    /// `any` or `one`.
    batching: String,
    #[expect(dead_code, reason = "a note for readers")]
    note: Option<String>,
}

fn scenarios() -> Vec<PathBuf> {
    let root = support::repo().join("tests/kstreams");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/kstreams")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.join("scenario.toml").exists())
        .collect();
    dirs.sort();
    dirs
}

/// The fields compared: topic, key, value, timestamp and window.
fn compared(line: &Value) -> Value {
    let mut m = Map::new();
    for field in ["topic", "key", "value", "timestamp", "window"] {
        if let Some(v) = line.get(field) {
            m.insert(field.into(), v.clone());
        }
    }
    Value::Object(m)
}

fn expected(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("expected.jsonl"))
        .expect("expected.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| compared(&serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {l}: {e}", dir.display()))))
        .collect()
}

/// Runs one scenario at `batch`; a description of the difference, if any.
fn run(dir: &Path, scenario: &Scenario, batch: usize) -> Option<String> {
    let run = support::run_weir([
        "test".as_ref(),
        dir.join("pipeline.toml").as_os_str(),
        "--records".as_ref(),
        dir.join("records.jsonl").as_os_str(),
        "--batch-size".as_ref(),
        batch.to_string().as_ref(),
    ]);
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !run.ok {
        return Some(format!(
            "{name} ({}), batch {batch}: weir test failed:\n{}",
            scenario.source, run.stderr
        ));
    }
    let got: Vec<Value> = run.json_lines().iter().map(compared).collect();
    let want = expected(dir);
    if got == want {
        return None;
    }
    let show = |v: &[Value]| v.iter().map(|l| format!("    {l}\n")).collect::<String>();
    Some(format!(
        "{name} ({}), batch {batch}:\n  Kafka Streams:\n{}  Weir:\n{}  ({})",
        scenario.source,
        show(&want),
        show(&got),
        run.stderr.trim()
    ))
}

#[test]
fn every_kafka_streams_scenario_gives_kafka_streams_results() {
    let dirs = scenarios();
    for dir in &dirs {
        support::guests().for_pipeline_file(&dir.join("pipeline.toml"));
    }
    assert!(!dirs.is_empty(), "no scenarios in tests/kstreams");
    let mut failures = Vec::new();
    for dir in &dirs {
        let text = std::fs::read_to_string(dir.join("scenario.toml")).expect("scenario.toml");
        let scenario: Scenario =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.join("scenario.toml").display()));
        let batches: &[usize] = match scenario.batching.as_str() {
            "any" => &[1, 1000],
            "one" => &[1],
            other => panic!("{}: batching is \"any\" or \"one\", not {other:?}", dir.display()),
        };
        for &batch in batches {
            failures.extend(run(dir, &scenario, batch));
        }
    }
    assert!(
        failures.is_empty(),
        "{} runs of {} scenarios differ from Kafka Streams:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}
