//! The dry run of a push: the module on its sample (on the engine of
//! [`crate::cli::sample`], which `weir test` runs too), refused at the first
//! trap; and for an aggregator that replaces another, the check that the
//! state the running version builds carries over to the new one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::cli::sample::{self, Accs, Tally};
use crate::contract::OperatorKind;
use crate::event::{Event, EventResult, Pair};
use crate::jsonl;
use crate::runtime::{EmitRequest, GuestError, LoadedModule, Operator, Runtime};

/// Reads a JSON-lines sample: (1-based line, event).
pub(super) fn read_sample<T>(
    sample: &Path,
    parse: fn(&str, usize) -> Result<T, jsonl::JsonlError>,
) -> Result<Vec<(usize, T)>, String> {
    let text =
        std::fs::read_to_string(sample).map_err(|e| format!("cannot read the sample {}: {e}", sample.display()))?;
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if !line.trim().is_empty() {
            items.push((i + 1, parse(line, i + 1).map_err(|e| e.to_string())?));
        }
    }
    Ok(items)
}

/// Runs a joiner on sample pairs, one at a time, so that a trap names its
/// line. Returns (outputs, typed failures), or the first trap.
pub(super) fn dry_run_join(
    runtime: &Runtime,
    module: &Arc<LoadedModule>,
    pairs: &[(usize, Pair)],
    config: BTreeMap<String, String>,
) -> Result<(usize, usize), String> {
    let mut op = runtime.operator(module.clone(), config);
    // The whole sample in one call: the engine isolates a trap to its pair.
    let tally = count(sample::results(&mut op, pairs, usize::MAX), "the dry run")?;
    Ok((tally.outputs, tally.failures))
}

/// Counts the results of a run on the sample; the first trap refuses,
/// naming its line.
fn count<T>(
    results: impl Iterator<Item = (usize, T, Result<EventResult, GuestError>)>,
    who: &str,
) -> Result<Tally, String> {
    let mut tally = Tally::default();
    for (line, _, r) in results {
        tally.count(&r.map_err(|e| trapped(who, line, &e))?);
    }
    Ok(tally)
}

fn trapped(who: &str, line: usize, e: &dyn std::fmt::Display) -> String {
    format!("{who} trapped on line {line} of the sample: {e}")
}

/// Folds sample events one at a time (so that a trap names its line), from
/// `start` accumulators. Returns the accumulators and the typed failures.
fn fold_sample(
    op: &mut Operator,
    events: &[(usize, Event)],
    mut accs: Accs,
    who: &str,
) -> Result<(Accs, usize), String> {
    let mut failures = 0;
    sample::fold_each(op, events, &mut accs, |line, r| {
        failures += r.map_err(|e| trapped(who, line, &e))?.len();
        Ok::<(), String>(())
    })?;
    Ok((accs, failures))
}

/// Emits every accumulator; returns (outputs, typed failures).
fn emit_all(op: &mut Operator, accs: Accs, who: &str) -> Result<(usize, usize), String> {
    let requests = accs
        .into_iter()
        .map(|(key, acc)| EmitRequest { key, window: None, acc });
    let mut tally = Tally::default();
    for r in sample::emit_each(op, requests) {
        tally.count(&r.map_err(|e| format!("{who}'s emit trapped: {e}"))?);
    }
    Ok((tally.outputs, tally.failures))
}

/// Runs a module on sample events, one event at a time, so that a trap
/// names its line. Returns (events, outputs, typed failures), or the first trap.
pub(super) fn dry_run(
    runtime: &Runtime,
    module: &Arc<LoadedModule>,
    events: &[(usize, Event)],
    config: BTreeMap<String, String>,
) -> Result<(usize, usize, usize), String> {
    let mut op = runtime.operator(module.clone(), config);
    let who = "the dry run";
    match module.kind() {
        OperatorKind::Processor => {
            // The whole sample in one call: the engine isolates a trap to its event.
            let tally = count(sample::results(&mut op, events, usize::MAX), who)?;
            Ok((events.len(), tally.outputs, tally.failures))
        }
        OperatorKind::Aggregator => {
            let (accs, failed) = fold_sample(&mut op, events, Accs::new(), who)?;
            let (outputs, emit_failed) = emit_all(&mut op, accs, who)?;
            Ok((events.len(), outputs, failed + emit_failed))
        }
        OperatorKind::Joiner => Err("a joiner's sample holds pairs, not events (this is a bug in weir)".into()),
    }
}

/// The state check of a swap between aggregators: the sample folded by the
/// version the stage runs now, then carried over to the new one (through its
/// `migrate`, or as it is), then folded and emitted by the new one. A trap,
/// or a failed `migrate`, refuses. Returns the number of keys carried.
pub(super) fn dry_run_carry(
    runtime: &Runtime,
    current: &Arc<LoadedModule>,
    module: &Arc<LoadedModule>,
    events: &[(usize, Event)],
    config: BTreeMap<String, String>,
) -> Result<usize, String> {
    let from = current.info().version_label();
    let mut old = runtime.operator(current.clone(), config.clone());
    let (accs, _) = fold_sample(&mut old, events, Accs::new(), &format!("the running version {from}"))?;
    let mut new = runtime.operator(module.clone(), config);
    let mut carried = Accs::new();
    for (key, acc) in accs {
        let shown = String::from_utf8_lossy(key.as_deref().unwrap_or_default()).into_owned();
        let acc = match new.migrate(&from, key.as_deref(), &acc) {
            Ok(None) => acc,
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(f))) => return Err(format!("migrate from {from} fails for key {shown:?}: {f}")),
            Err(e) => return Err(format!("migrate from {from} trapped for key {shown:?}: {e}")),
        };
        carried.insert(key, acc);
    }
    let n = carried.len();
    let who = "the new version, on the carried state,";
    let (carried, _) = fold_sample(&mut new, events, carried, who)?;
    emit_all(&mut new, carried, who)?;
    Ok(n)
}
