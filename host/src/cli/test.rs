use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::sample::{self, Accs, Tally};
use super::{SandboxArgs, config_map};
use crate::contract::OperatorKind;
use crate::event::{Event, EventResult, Pair};
use crate::jsonl;
use crate::pipeline::Pipeline;
use crate::runtime::{EmitRequest, GuestError, Operator};
use crate::testing::{self, Driver, Piped};
use crate::units;

/// Runs an operator, or a whole pipeline, locally on events given as JSON
/// lines, with no broker.
///
/// An operator (`.wasm`): each output prints as a JSON line; failures go to
/// stderr with the input's 1-based line number and do not stop the run. An
/// aggregator folds the events per key and prints what `emit` returns for
/// each key, keys in order of first appearance.
///
/// A pipeline (`.toml`): the same engine as `weir run`, with every topic and
/// store in memory (one partition each), like Kafka Streams'
/// `TopologyTestDriver`. With `--records`, one file holds every input's
/// records, each naming its topic, and they go through in file order, as
/// `pipeInput` calls would. With `--input TOPIC=FILE`, each input's records
/// go through in the order of its file (out-of-order and late records stay
/// so); across inputs, next is always the input whose next record has the
/// smallest timestamp (ties: the order of the `--input` options), as a
/// Kafka Streams task picks from its partitions. One record at a time
/// unless `--batch-size` says otherwise, each through the whole pipeline
/// before the next. Outputs print as JSON lines with their topic
/// (dead letters included, windows with their bounds); `--state` then
/// prints every store.
#[derive(Debug, Args)]
#[command(after_help = "\
Input lines: {\"key\": …, \"value\": …, \"headers\": {…}, \"timestamp\": ms}
  (a joiner's: {\"key\": …, \"left\": …, \"right\": …, \"timestamp\": ms})
  a bytes field is a string (UTF-8), {\"base64\": \"…\"}, null, or any other JSON
  value standing for its JSON text. In a pipeline's inputs, a line
  {\"advance-wall-clock\": \"5s\"} moves the wall clock (for idle-close).
  A --records line names its topic: {\"topic\": \"orders\", \"key\": …, …}.

Examples:
  weir test guest-examples/dist/rust-uppercase.wasm --input events.jsonl
  echo '{\"value\": \"Hello world\"}' | weir test words.wasm --input -
  weir test count.wasm --input keys.jsonl --config greeting=hi
  weir test guest-examples/pipelines/sessions.toml --input clicks=clicks.jsonl --state
  weir test guest-examples/pipelines/orders-enriched.toml --records records.jsonl")]
pub struct Test {
    /// The operator module (.wasm component), or a pipeline file (.toml).
    pub module: PathBuf,
    /// JSON-lines events; `-` reads standard input. For a pipeline,
    /// TOPIC=FILE, once per input topic.
    #[arg(short, long, value_name = "EVENTS.jsonl")]
    pub input: Vec<String>,
    /// Deploy-time configuration for the operator, repeatable (an
    /// operator only; a pipeline's stages have theirs in the file).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// A pipeline's records of every input in one JSON-lines file, each
    /// line naming its `"topic"`, processed in file order (as Kafka
    /// Streams' `TopologyTestDriver.pipeInput` calls); `-` reads standard
    /// input. Instead of `--input`.
    #[arg(long, value_name = "RECORDS.jsonl")]
    pub records: Option<PathBuf>,
    /// Events per call into the operator (default 256), or per batch through
    /// a pipeline (default 1: record by record).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// After a pipeline ran, print the content of every store.
    #[arg(long)]
    pub state: bool,
    #[command(flatten)]
    sandbox: SandboxArgs,
}

impl Test {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        if self.module.extension().is_some_and(|e| e == "toml") {
            return self.run_pipeline();
        }
        anyhow::ensure!(
            self.records.is_none(),
            "--records is for a pipeline (records of several topics); an operator reads --input"
        );
        anyhow::ensure!(
            self.input.len() == 1,
            "an operator reads one --input (a file, or - for standard input); got {}",
            self.input.len()
        );
        anyhow::ensure!(
            !self.state,
            "--state is for pipelines; an aggregator prints what it folded"
        );
        let runtime = self.sandbox.runtime()?;
        let module = runtime.load_file(&self.module)?;
        let mut op = runtime.operator(module.clone(), config_map(&self.config)?);
        let mut report = Tally::default();
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let read = match module.kind() {
            OperatorKind::Joiner => {
                let pairs = self.read_input(&mut report, jsonl::parse_pair)?;
                self.run_joiner(&mut op, &pairs, &mut out, &mut report)?;
                pairs.len()
            }
            kind => {
                let lines = self.read_input(&mut report, jsonl::parse_event)?;
                match kind {
                    OperatorKind::Aggregator => run_aggregator(&mut op, &lines, &mut out, &mut report)?,
                    _ => self.run_processor(&mut op, &lines, &mut out, &mut report)?,
                }
                lines.len()
            }
        };
        out.flush()?;
        let counters = op.context().counters();
        if !counters.is_empty() {
            let text: Vec<String> = counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            eprintln!("counters: {}", text.join(" "));
        }
        eprintln!(
            "{} {}, {} outputs, {} failed",
            read,
            if module.kind() == OperatorKind::Joiner {
                "pairs"
            } else {
                "events"
            },
            report.outputs,
            report.failures
        );
        Ok(ExitCode::SUCCESS)
    }

    /// The input's lines that parse (with their 1-based numbers); the
    /// others are reported as failures.
    fn read_input<T>(
        &self,
        report: &mut Tally,
        parse: fn(&str, usize) -> Result<T, jsonl::JsonlError>,
    ) -> anyhow::Result<Vec<(usize, T)>> {
        let input = PathBuf::from(&self.input[0]);
        let reader: Box<dyn Read> = if input.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(&input).with_context(|| format!("cannot open {}", input.display()))?)
        };
        let mut lines = Vec::new();
        let mut reader = BufReader::new(reader);
        let mut raw = Vec::new();
        for number in 1.. {
            raw.clear();
            let read = reader
                .read_until(b'\n', &mut raw)
                .with_context(|| format!("reading {}", input.display()))?;
            if read == 0 {
                break;
            }
            let Ok(text) = std::str::from_utf8(&raw) else {
                failed(report, format_args!("line {number}: not UTF-8"));
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            match parse(text, number) {
                Ok(item) => lines.push((number, item)),
                Err(e) => failed(report, format_args!("{e}")),
            }
        }
        Ok(lines)
    }

    fn run_processor(
        &self,
        op: &mut Operator,
        lines: &[(usize, Event)],
        out: &mut impl Write,
        report: &mut Tally,
    ) -> anyhow::Result<()> {
        for (number, event, result) in sample::results(op, lines, self.batch_size.unwrap_or(256)) {
            print_result(out, report, number, result, &None, event.timestamp)?;
        }
        Ok(())
    }
}

impl Test {
    /// A joiner: one call per batch of pairs; each output prints with the
    /// pair's key when it sets none, and the pair's timestamp when it sets none.
    fn run_joiner(
        &self,
        op: &mut Operator,
        pairs: &[(usize, Pair)],
        out: &mut impl Write,
        report: &mut Tally,
    ) -> anyhow::Result<()> {
        for (number, pair, result) in sample::results(op, pairs, self.batch_size.unwrap_or(256)) {
            print_result(out, report, number, result, &pair.key, pair.timestamp)?;
        }
        Ok(())
    }
}

/// Prints an item's outputs (with `key` and `timestamp` where an output
/// sets none), or reports its typed failure or trap.
fn print_result(
    out: &mut impl Write,
    report: &mut Tally,
    number: usize,
    result: Result<EventResult, GuestError>,
    key: &Option<Vec<u8>>,
    timestamp: i64,
) -> anyhow::Result<()> {
    match result {
        Ok(EventResult::Outputs(outputs)) => {
            let n = outputs.len();
            for mut o in outputs {
                if o.key.is_none() {
                    o.key.clone_from(key);
                }
                let ts = o.timestamp.unwrap_or(timestamp);
                writeln!(out, "{}", jsonl::output_json(&o, ts))?;
            }
            report.outputs += n;
        }
        Ok(EventResult::Failed(f)) => failed(report, format_args!("line {number}: failure {f}")),
        Err(e) => failed(report, format_args!("line {number}: {e}")),
    }
    Ok(())
}

impl Test {
    /// `weir test PIPELINE.toml`: the records through the driver in pipe
    /// order (`--records`) or merged by time (`--input`), outputs in the
    /// order they were written, then the stores.
    fn run_pipeline(&self) -> anyhow::Result<ExitCode> {
        anyhow::ensure!(
            self.config.is_empty(),
            "--config is for an operator; a pipeline's stages take theirs from the pipeline file"
        );
        let pipeline = Pipeline::load(&self.module)?;
        let readable: Vec<&String> = pipeline.inputs.iter().chain(&pipeline.globals).collect();
        let is_input = |topic: &str| readable.iter().any(|i| *i == topic);
        let inputs_list = || readable.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        let steps: Vec<Piped> = match &self.records {
            Some(file) => {
                anyhow::ensure!(
                    self.input.is_empty(),
                    "--records holds every input's records in pipe order: it cannot be combined with --input"
                );
                let steps = read_steps(file, None)?;
                for step in &steps {
                    if let Piped::Record { topic, .. } = step {
                        anyhow::ensure!(
                            is_input(topic),
                            "{}: a record of {topic}, which is not an input of {} (its inputs: {})",
                            file.display(),
                            self.module.display(),
                            inputs_list()
                        );
                    }
                }
                steps
            }
            None => {
                let mut files = Vec::new();
                for spec in &self.input {
                    let (topic, file) = spec
                        .split_once('=')
                        .with_context(|| format!("--input {spec}: a pipeline takes TOPIC=FILE.jsonl"))?;
                    anyhow::ensure!(
                        is_input(topic),
                        "--input {spec}: {topic} is not an input of {} (its inputs: {})",
                        self.module.display(),
                        inputs_list()
                    );
                    files.push(read_steps(Path::new(file), Some(topic))?);
                }
                merge_by_time(files)
            }
        };
        let records = steps.iter().filter(|s| matches!(s, Piped::Record { .. })).count();
        let runtime = self.sandbox.runtime()?;
        let mut driver = Driver::new(&pipeline, &runtime, self.batch_size.unwrap_or(1))?;
        let ran = driver.pipe_in_order(steps);
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        // What was written before a failure is printed too.
        for r in driver.take_outputs() {
            writeln!(out, "{}", testing::record_json(&r))?;
        }
        ran?;
        if self.state {
            for entry in driver.state()? {
                writeln!(out, "{}", serde_json::json!({"state": entry}))?;
            }
        }
        out.flush()?;
        let snapshot = driver.chain().metrics().snapshot();
        let stages: Vec<String> = snapshot
            .stages
            .iter()
            .map(|s| {
                format!(
                    "{}: {} in, {} failed, {} late, {} dropped",
                    s.name, s.events, s.failed, s.late, s.dropped
                )
            })
            .collect();
        eprintln!("{records} records; {}", stages.join("; "));
        Ok(ExitCode::SUCCESS)
    }
}

/// The steps of every input in one sequence, as a Kafka Streams task
/// picks records from its partitions: each input in its own order, and
/// next always the input whose next record has the smallest timestamp
/// (ties: the input given first). A wall-clock advance keeps the place of
/// the record before it in its file.
fn merge_by_time(files: Vec<Vec<Piped>>) -> Vec<Piped> {
    let mut files: Vec<VecDeque<(i64, Piped)>> = files
        .into_iter()
        .map(|steps| {
            let mut last = i64::MIN;
            steps
                .into_iter()
                .map(|step| {
                    if let Piped::Record { event, .. } = &step {
                        last = event.timestamp;
                    }
                    (last, step)
                })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    while let Some((_, next)) = files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.front().map(|(ts, _)| (*ts, i)))
        .min()
        .and_then(|(_, i)| files[i].pop_front())
    {
        out.push(next);
    }
    out
}

/// Reads `file`'s lines as steps: records of `topic` (`--input`), or of
/// the topic each line names (`--records`), and wall-clock advances.
fn read_steps(file: &Path, topic: Option<&str>) -> anyhow::Result<Vec<Piped>> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.contains("advance-wall-clock") {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{}:{number}: not JSON", file.display()))?;
            if let Some(by) = v.get("advance-wall-clock") {
                let by = by.as_str().with_context(|| {
                    format!(
                        "{}:{number}: advance-wall-clock takes a duration like \"5s\"",
                        file.display()
                    )
                })?;
                let by = units::parse_duration(by).map_err(|e| anyhow::anyhow!("{}:{number}: {e}", file.display()))?;
                steps.push(Piped::AdvanceWallClock(by));
                continue;
            }
        }
        let event = jsonl::parse_event(line, number).with_context(|| format!("in {}", file.display()))?;
        let topic = match topic {
            Some(t) => t.to_owned(),
            None => {
                let named = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .is_some_and(|v| v.get("topic").is_some());
                anyhow::ensure!(
                    named,
                    "{}:{number}: a --records line names its topic (\"topic\": \"…\")",
                    file.display()
                );
                event.topic.clone()
            }
        };
        steps.push(Piped::Record { topic, event });
    }
    Ok(steps)
}

/// Folds every key's events in one `add` call; when that traps, folds each
/// key event by event to find the culprits. Then emits every key in one call;
/// when that traps, emits key by key.
fn run_aggregator(
    op: &mut Operator,
    lines: &[(usize, Event)],
    out: &mut impl Write,
    report: &mut Tally,
) -> anyhow::Result<()> {
    let mut keys: Vec<Option<Vec<u8>>> = Vec::new();
    let mut by_key: Vec<Vec<&(usize, Event)>> = Vec::new();
    let mut index: HashMap<Option<Vec<u8>>, usize> = HashMap::new();
    for line in lines {
        let (_, event) = line;
        let i = *index.entry(event.key.clone()).or_insert_with(|| {
            keys.push(event.key.clone());
            by_key.push(Vec::new());
            keys.len() - 1
        });
        by_key[i].push(line);
    }
    let groups: Vec<_> = keys
        .iter()
        .zip(&by_key)
        .map(|(k, ls)| sample::group(k, None, ls.iter().map(|(_, e)| e)))
        .collect();
    let accs: Vec<Option<Vec<u8>>> = match op.add(groups) {
        Ok(folded) => folded
            .into_iter()
            .zip(&by_key)
            .map(|(f, ls)| {
                for (i, failure) in f.failures {
                    let number = ls.get(i as usize).map_or(0, |(number, _)| *number);
                    failed(report, format_args!("line {number}: failure {failure}"));
                }
                Some(f.acc)
            })
            .collect(),
        Err(_) => keys
            .iter()
            .zip(&by_key)
            .map(|(k, ls)| fold_one_by_one(op, k, ls, report))
            .collect(),
    };
    let mut requests = Vec::new();
    let mut stamps = Vec::new();
    for ((key, ls), acc) in keys.iter().zip(&by_key).zip(accs) {
        if let Some(acc) = acc {
            requests.push(EmitRequest {
                key: key.clone(),
                window: None,
                acc,
            });
            stamps.push((
                key.clone(),
                ls.iter().map(|(_, e)| e.timestamp).max().unwrap_or_default(),
            ));
        }
    }
    let results: Vec<Result<EventResult, GuestError>> = match op.emit(requests.clone()) {
        Ok(results) => results.into_iter().map(Ok).collect(),
        Err(_) => sample::emit_each(op, requests).collect(),
    };
    for (result, (key, ts)) in results.into_iter().zip(stamps) {
        let key_text = jsonl::bytes_json(key.as_deref());
        match result {
            Ok(EventResult::Outputs(outputs)) => {
                for o in outputs {
                    writeln!(out, "{}", jsonl::output_json(&o, o.timestamp.unwrap_or(ts)))?;
                    report.outputs += 1;
                }
            }
            Ok(EventResult::Failed(f)) => failed(report, format_args!("key {key_text}: emit failure {f}")),
            Err(e) => failed(report, format_args!("key {key_text}: {e}")),
        }
    }
    Ok(())
}

/// Folds one key's events one at a time, reporting typed failures and
/// traps by line; returns the accumulator they leave.
fn fold_one_by_one(
    op: &mut Operator,
    key: &Option<Vec<u8>>,
    lines: &[&(usize, Event)],
    report: &mut Tally,
) -> Option<Vec<u8>> {
    let mut accs = Accs::new();
    let Ok(()) = sample::fold_each(op, lines.iter().copied(), &mut accs, |line, result| {
        match result {
            Ok(failures) => {
                for (_, failure) in failures {
                    failed(report, format_args!("line {line}: failure {failure}"));
                }
            }
            Err(e) => failed(report, format_args!("line {line}: {e}")),
        }
        Ok::<(), std::convert::Infallible>(())
    });
    accs.remove(key)
}

/// Reports an item that failed (a line that does not parse, a typed
/// failure, a trap) on stderr, and counts it.
fn failed(report: &mut Tally, what: std::fmt::Arguments<'_>) {
    eprintln!("{what}");
    report.failures += 1;
}
