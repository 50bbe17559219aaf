//! Weir side by side with Quix Streams, the Python library with the same
//! model (Kafka in, state in RocksDB, changelogs, exactly-once), in one run on
//! the same broker and the same preloaded data:
//!
//! - **stateless**: the value upper-cased, key kept;
//! - **windowed**: a count per key in tumbling 10 s windows, final results.
//!
//! Contenders, each a process of its own started cold (a fresh consumer
//! group, reading from the earliest offset, exactly-once, 100 ms commits):
//! `weir run` with the Rust operators (`rust-uppercase`, `rust-count`),
//! `weir run` with the Python ones (`python-uppercase`, `python-count`), and
//! Quix Streams (`host/benches/quix/app.py`, `quixstreams` 3.28.1). Each is
//! timed from its process start to its exit after it consumed every record
//! (its final commit included); CPU seconds are its own (all threads), read
//! from `/proc` (Weir) and `getrusage` (Quix).
//!
//! Run: `cargo bench -p weir --bench quix`. It needs the Quix venv:
//! `python3 -m venv ~/.cache/weir-ci/quix-venv && ~/.cache/weir-ci/quix-venv/bin/pip
//! install -r host/benches/quix/requirements.txt` (or `WEIR_QUIX_PYTHON`
//! naming a Python that has it). `WEIR_BENCH_RECORDS` (default 200000),
//! `WEIR_BENCH_REPS` (default 3, medians), `WEIR_BENCH_PARTS=stateless|windowed`.

#[path = "common/mod.rs"]
mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{Usage, load, run_weir_process};
use support::kafka::{broker, create_topic, unique};
use weir::runtime::{Runtime, RuntimeConfig};

const PARTITIONS: i32 = 4;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let env = common::setting;
    let n = env("WEIR_BENCH_RECORDS", 200_000);
    let reps = env("WEIR_BENCH_REPS", 3);
    let parts = std::env::var("WEIR_BENCH_PARTS").unwrap_or_else(|_| "stateless,windowed".into());
    let python = quix_python();
    let g = support::guests();
    // Compiled once into the module cache that `weir run` reads, so that no
    // contender's time includes compiling its component.
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    for (language, name) in [
        ("rust", "uppercase"),
        ("rust", "count"),
        ("python", "uppercase"),
        ("python", "count"),
    ] {
        runtime
            .load_file(&g.example(language, name))
            .expect("compile into the cache");
    }
    let input = unique("bench-quix-in");
    create_topic(&input, PARTITIONS);
    eprintln!("loading {n} records of 100 bytes (1 000 keys, 1 ms apart) into {input}");
    load(&input, n, PARTITIONS, |i| format!("key-{}", i % 1000));
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in ["stateless", "windowed"].into_iter().filter(|m| parts.contains(m)) {
        let stage = |language: &str| match mode {
            "stateless" => format!(
                "[[stage]]\nmodule = \"{}\"\n",
                g.example(language, "uppercase").display()
            ),
            _ => format!(
                "[[stage]]\nname = \"count\"\nkind = \"aggregate\"\nmodule = \"{}\"\n\
                 window = {{ kind = \"tumbling\", size = \"10s\" }}\nemit = \"final\"\n",
                g.example(language, "count").display()
            ),
        };
        let mut runs: Vec<(&str, Vec<Usage>)> = vec![
            ("weir, Rust operator", vec![]),
            ("weir, Python operator", vec![]),
            ("Quix Streams", vec![]),
        ];
        for rep in 0..reps {
            eprintln!("{mode}, run {}/{reps}", rep + 1);
            for (i, language) in ["rust", "python"].into_iter().enumerate() {
                let file = pipeline(dir.path(), &input, &stage(language));
                let u = run_weir_process(&file, n, &[]);
                eprintln!("  weir {language}: {u:?}");
                runs[i].1.push(u);
            }
            let u = quix(&python, &input, mode, n, dir.path());
            eprintln!("  quix: {u:?}");
            runs[2].1.push(u);
        }
        print_table(mode, n, &runs);
    }
}

/// A pipeline file over `input` with `stage`, exactly-once.
fn pipeline(dir: &Path, input: &str, stage: &str) -> PathBuf {
    common::pipeline_file(
        dir,
        "bench-quix",
        &[input],
        stage,
        &std::env::var("WEIR_BENCH_KAFKA").unwrap_or_default().replace(';', "\n"),
    )
}

/// The Python with `quixstreams` installed.
fn quix_python() -> PathBuf {
    let python = std::env::var_os("WEIR_QUIX_PYTHON").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/weir-ci/quix-venv/bin/python")
        },
        PathBuf::from,
    );
    let ok = Command::new(&python)
        .args(["-c", "import quixstreams"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import quixstreams; set it up with:\n  python3 -m venv ~/.cache/weir-ci/quix-venv && \
         ~/.cache/weir-ci/quix-venv/bin/pip install -r host/benches/quix/requirements.txt\n\
         (or set WEIR_QUIX_PYTHON to a Python that has it)",
        python.display()
    );
    python
}

/// Runs the Quix Streams app over `input` until it has processed `n` records.
fn quix(python: &Path, input: &str, mode: &str, n: usize, dir: &Path) -> Usage {
    let output = unique("bench-quix-out");
    create_topic(&output, PARTITIONS);
    let group = unique("bench-quix-group");
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/quix/app.py");
    let started = Instant::now();
    let out = Command::new(python)
        .arg(&app)
        .args([
            "--bootstrap",
            &broker().bootstrap,
            "--input",
            input,
            "--output",
            &output,
        ])
        .args(["--mode", mode, "--expect", &n.to_string(), "--group", &group])
        .arg("--state-dir")
        .arg(dir.join(&group))
        .output()
        .expect("run the Quix app");
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Quix app failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(v["records"].as_u64(), Some(n as u64), "{line}");
    let num = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("no {k} in {line}"));
    Usage {
        wall,
        processing: num("processing_seconds"),
        startup_cpu: f64::NAN,
        cpu: num("cpu"),
        peak_rss_kib: num("max_rss_kb") as u64,
    }
}

fn print_table(mode: &str, n: usize, runs: &[(&str, Vec<Usage>)]) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let of = |runs: &[Usage], f: &dyn Fn(&Usage) -> f64| median(runs.iter().map(f).collect());
    let quix = &runs[runs.len() - 1].1;
    let quix_per_cpu = n as f64 / of(quix, &|u| u.cpu);
    let quix_rate = n as f64 / of(quix, &|u| u.wall);
    println!("\n{mode}, exactly-once, {n} records, {PARTITIONS} partitions (medians):\n");
    println!(
        "| contender | records/s from process start | from first record | CPU s per 1M records | records per CPU s | ÷ Quix (records/s) | ÷ Quix (per CPU s) | start-up CPU | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, us) in runs {
        let rate = n as f64 / of(us, &|u| u.wall);
        let processing = n as f64 / of(us, &|u| u.processing);
        let cpu = of(us, &|u| u.cpu);
        let per_cpu = n as f64 / cpu;
        println!(
            "| {name} | {rate:.0} | {processing:.0} | {:.1} | {per_cpu:.0} | {:.1}× | {:.1}× | {} | {} MiB |",
            cpu * 1e6 / n as f64,
            rate / quix_rate,
            per_cpu / quix_per_cpu,
            match of(us, &|u| u.startup_cpu) {
                s if s.is_nan() => "—".to_owned(),
                s => format!("{s:.2} s"),
            },
            of(us, &|u| u.peak_rss_kib as f64) as u64 / 1024
        );
    }
}
