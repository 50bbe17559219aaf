use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::{SandboxArgs, config_map};
use crate::codec::BatchEncoder;
use crate::contract::OperatorKind;
use crate::event::{Event, EventResult};
use crate::jsonl;
use crate::runtime::{EmitRequest, Group, GuestError, Operator};

/// Runs an operator locally on events given as JSON lines and prints each
/// output as a JSON line. Failures go to stderr with the input's 1-based line
/// number and do not stop the run. An aggregator folds the events per key and
/// prints what `emit` returns for each key, keys in order of first appearance.
#[derive(Debug, Args)]
#[command(after_help = "\
Input lines: {\"key\": …, \"value\": …, \"headers\": {…}, \"timestamp\": ms}
  a bytes field is a string (UTF-8), {\"base64\": \"…\"}, null, or any other JSON
  value standing for its JSON text.

Examples:
  weir test guest-examples/dist/rust-uppercase.wasm --input events.jsonl
  echo '{\"value\": \"Hello world\"}' | weir test words.wasm --input -
  weir test count.wasm --input keys.jsonl --config greeting=hi")]
pub struct Test {
    /// The operator module (.wasm component).
    pub module: PathBuf,
    /// JSON-lines events; `-` reads standard input.
    #[arg(short, long, value_name = "EVENTS.jsonl")]
    pub input: PathBuf,
    /// Deploy-time configuration for the operator, repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Events per call into the operator.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    #[command(flatten)]
    sandbox: SandboxArgs,
}

/// An input event and its 1-based line number.
struct Line {
    number: usize,
    event: Event,
}

struct Report {
    failures: usize,
    outputs: usize,
}

impl Test {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let runtime = self.sandbox.runtime()?;
        let module = runtime.load_file(&self.module)?;
        let mut op = runtime.operator(module.clone(), config_map(&self.config)?);
        let mut report = Report {
            failures: 0,
            outputs: 0,
        };
        let lines = self.read_input(&mut report)?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match module.kind() {
            OperatorKind::Processor => self.run_processor(&mut op, &lines, &mut out, &mut report)?,
            OperatorKind::Aggregator => run_aggregator(&mut op, &lines, &mut out, &mut report)?,
        }
        out.flush()?;
        let counters = op.context().counters();
        if !counters.is_empty() {
            let text: Vec<String> = counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            eprintln!("counters: {}", text.join(" "));
        }
        eprintln!(
            "{} events, {} outputs, {} failed",
            lines.len(),
            report.outputs,
            report.failures
        );
        Ok(ExitCode::SUCCESS)
    }

    fn read_input(&self, report: &mut Report) -> anyhow::Result<Vec<Line>> {
        let reader: Box<dyn Read> = if self.input.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(&self.input).with_context(|| format!("cannot open {}", self.input.display()))?)
        };
        let mut lines = Vec::new();
        let mut reader = BufReader::new(reader);
        let mut raw = Vec::new();
        for number in 1.. {
            raw.clear();
            let read = reader
                .read_until(b'\n', &mut raw)
                .with_context(|| format!("reading {}", self.input.display()))?;
            if read == 0 {
                break;
            }
            let Ok(text) = std::str::from_utf8(&raw) else {
                eprintln!("line {number}: not UTF-8");
                report.failures += 1;
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            match jsonl::parse_event(text, number) {
                Ok(event) => lines.push(Line { number, event }),
                Err(e) => {
                    eprintln!("{e}");
                    report.failures += 1;
                }
            }
        }
        Ok(lines)
    }

    fn run_processor(
        &self,
        op: &mut Operator,
        lines: &[Line],
        out: &mut impl Write,
        report: &mut Report,
    ) -> anyhow::Result<()> {
        for chunk in lines.chunks(self.batch_size.max(1)) {
            let events: Vec<Event> = chunk.iter().map(|l| l.event.clone()).collect();
            for (line, result) in chunk.iter().zip(op.process_events(&events)) {
                match result {
                    Ok(EventResult::Outputs(outputs)) => {
                        for o in &outputs {
                            let ts = o.timestamp.unwrap_or(line.event.timestamp);
                            writeln!(out, "{}", jsonl::output_json(o, ts))?;
                        }
                        report.outputs += outputs.len();
                    }
                    Ok(EventResult::Failed(f)) => {
                        eprintln!("line {}: failure {f}", line.number);
                        report.failures += 1;
                    }
                    Err(e) => {
                        eprintln!("line {}: {e}", line.number);
                        report.failures += 1;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Folds every key's events in one `add` call; when that traps, folds each
/// key event by event to find the culprits. Then emits every key in one call;
/// when that traps, emits key by key.
fn run_aggregator(op: &mut Operator, lines: &[Line], out: &mut impl Write, report: &mut Report) -> anyhow::Result<()> {
    let mut keys: Vec<Option<Vec<u8>>> = Vec::new();
    let mut by_key: Vec<Vec<&Line>> = Vec::new();
    let mut index: HashMap<Option<Vec<u8>>, usize> = HashMap::new();
    for line in lines {
        let i = *index.entry(line.event.key.clone()).or_insert_with(|| {
            keys.push(line.event.key.clone());
            by_key.push(Vec::new());
            keys.len() - 1
        });
        by_key[i].push(line);
    }
    let groups: Vec<Group> = keys.iter().zip(&by_key).map(|(k, ls)| group(k, None, ls)).collect();
    let accs: Vec<Option<Vec<u8>>> = match op.add(groups) {
        Ok(folded) => folded
            .into_iter()
            .zip(&by_key)
            .map(|(f, ls)| {
                for (i, failure) in f.failures {
                    let number = ls.get(i as usize).map_or(0, |l| l.number);
                    eprintln!("line {number}: failure {failure}");
                    report.failures += 1;
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
                ls.iter().map(|l| l.event.timestamp).max().unwrap_or_default(),
            ));
        }
    }
    let results: Vec<Result<EventResult, GuestError>> = match op.emit(requests.clone()) {
        Ok(results) => results.into_iter().map(Ok).collect(),
        Err(_) => requests
            .into_iter()
            .map(|r| op.emit(vec![r]).map(|mut one| one.remove(0)))
            .collect(),
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
            Ok(EventResult::Failed(f)) => {
                eprintln!("key {key_text}: emit failure {f}");
                report.failures += 1;
            }
            Err(e) => {
                eprintln!("key {key_text}: {e}");
                report.failures += 1;
            }
        }
    }
    Ok(())
}

fn group(key: &Option<Vec<u8>>, acc: Option<Vec<u8>>, lines: &[&Line]) -> Group {
    let mut enc = BatchEncoder::new();
    for l in lines {
        enc.push_event(&l.event);
    }
    Group {
        key: key.clone(),
        window: None,
        acc,
        events: enc.as_bytes().to_vec(),
    }
}

fn fold_one_by_one(op: &mut Operator, key: &Option<Vec<u8>>, lines: &[&Line], report: &mut Report) -> Option<Vec<u8>> {
    let mut acc = None;
    for line in lines {
        match op.add(vec![group(key, acc.clone(), &[line])]).map(|mut f| f.pop()) {
            Ok(Some(f)) => {
                for (_, failure) in f.failures {
                    eprintln!("line {}: failure {failure}", line.number);
                    report.failures += 1;
                }
                acc = Some(f.acc);
            }
            Ok(None) => {}
            Err(e) => {
                report_trap(line.number, &e);
                report.failures += 1;
            }
        }
    }
    acc
}

fn report_trap(line: usize, e: &GuestError) {
    eprintln!("line {line}: {e}");
}
