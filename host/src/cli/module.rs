//! `weir module push|list|activate|rollback` and `weir deploy`: the module
//! registry from the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::sample::{self, Accs, Tally};
use super::{SandboxArgs, config_map};
use crate::clients;
use crate::contract::OperatorKind;
use crate::event::{Event, Pair};
use crate::jsonl;
use crate::module;
use crate::pipeline::{Pipeline, StageKind};
use crate::registry::{Activation, Guard, ModuleRecord, Pushed, Registry, Snapshot, now_ms, short};
use crate::runtime::{EmitRequest, LoadedModule, Operator, Runtime};
use crate::units;

/// Manage the module registry: versions pushed to Kafka, and which version
/// each pipeline stage runs.
#[derive(Debug, Args)]
pub struct Module {
    #[command(subcommand)]
    command: ModuleCommand,
}

#[derive(Debug, Subcommand)]
enum ModuleCommand {
    /// Validate a module and store it as a new version (a no-op for bytes already there).
    Push(Push),
    /// Show the versions in the registry and where each is active.
    List(List),
    /// Make every instance of a pipeline run a version in a stage, swapped
    /// at each task's next transaction boundary.
    Activate(Activate),
    /// Go back to the version a stage ran before its last activation.
    Rollback(Rollback),
    /// Write a version's bytes to a file (reassembled and digest-checked).
    Pull(Pull),
}

impl Module {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        match self.command {
            ModuleCommand::Push(c) => c.execute(),
            ModuleCommand::List(c) => c.execute(),
            ModuleCommand::Activate(c) => c.execute(),
            ModuleCommand::Rollback(c) => c.execute(),
            ModuleCommand::Pull(c) => c.execute(),
        }
    }
}

/// Where the registry is: a pipeline's `[kafka]`, or a bootstrap address.
#[derive(Debug, Clone, Args)]
struct Brokers {
    /// Kafka bootstrap servers (default: the pipeline's [kafka], else $WEIR_BOOTSTRAP).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Option<String>,
    /// Set a librdkafka property (repeatable), e.g. `--kafka security.protocol=ssl`.
    #[arg(long = "kafka", value_name = "KEY=VALUE")]
    kafka: Vec<String>,
    /// How long to wait for the brokers.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = units::parse_duration)]
    kafka_timeout: Duration,
}

impl Brokers {
    /// The registry, its topics created if need be.
    fn registry(&self, pipeline: Option<&Pipeline>) -> anyhow::Result<Registry> {
        let registry = self.client(pipeline)?;
        registry.ensure_topics()?;
        Ok(registry)
    }

    /// The registry for reading: an error if it was never written to.
    fn existing(&self, pipeline: Option<&Pipeline>) -> anyhow::Result<Registry> {
        let registry = self.client(pipeline)?;
        if !registry.exists()? {
            bail!("the registry is empty: nothing was pushed to these brokers yet (weir module push)");
        }
        Ok(registry)
    }

    fn client(&self, pipeline: Option<&Pipeline>) -> anyhow::Result<Registry> {
        let mut config = pipeline.map(clients::base_config).unwrap_or_default();
        if let Some(b) = &self.bootstrap {
            config.set("bootstrap.servers", b);
        } else if config.get("bootstrap.servers").is_none()
            && let Ok(b) = std::env::var("WEIR_BOOTSTRAP")
        {
            config.set("bootstrap.servers", b);
        }
        for (k, v) in config_map(&self.kafka).context("--kafka")? {
            config.set(k, v);
        }
        if config.get("bootstrap.servers").is_none() {
            bail!("no brokers: give --bootstrap HOST:PORT (or set WEIR_BOOTSTRAP, or name a pipeline file)");
        }
        Ok(Registry::new(config, self.kafka_timeout))
    }
}

/// What a push checks the module against, beyond the contract.
#[derive(Debug, Clone, Args)]
struct Checks {
    /// Dry-run the module on these JSON-lines events (as `weir test` reads
    /// them): the push is refused if any event traps.
    #[arg(long, value_name = "EVENTS.jsonl")]
    sample: Option<PathBuf>,
    /// Deploy-time configuration for the dry run (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    #[command(flatten)]
    sandbox: SandboxArgs,
}

/// Validate a module and store it in the registry as a new version.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  weir module push dist/rust-count.wasm --name count --bootstrap localhost:9092\n  \
weir module push count.wasm --name count --sample events.jsonl --pipeline word-count.toml --stage count"
)]
struct Push {
    /// The module (.wasm component).
    file: PathBuf,
    /// Registry name (default: the file name without `.wasm`).
    #[arg(long)]
    name: Option<String>,
    /// Check that it fits this pipeline's `--stage`, and use its [kafka].
    #[arg(long, value_name = "PIPELINE.toml", requires = "stage")]
    pipeline: Option<PathBuf>,
    /// The stage of `--pipeline` it is for.
    #[arg(long, requires = "pipeline")]
    stage: Option<String>,
    #[command(flatten)]
    checks: Checks,
    #[command(flatten)]
    brokers: Brokers,
}

impl Push {
    fn execute(self) -> anyhow::Result<ExitCode> {
        let pipeline = self.pipeline.as_deref().map(Pipeline::load).transpose()?;
        let target = match (&pipeline, &self.stage) {
            (Some(p), Some(s)) => Some(stage_kind(p, s)?),
            _ => None,
        };
        let name = module_name(&self.file, self.name.as_deref());
        let registry = self.brokers.registry(pipeline.as_ref())?;
        let current = match (&pipeline, &self.stage, &self.checks.sample) {
            (Some(p), Some(stage), Some(_)) => Some(current_version(&registry, p, stage)?),
            _ => None,
        };
        report(push(
            &registry,
            &self.file,
            &name,
            target,
            &self.checks,
            current.as_ref(),
        )?);
        Ok(ExitCode::SUCCESS)
    }
}

/// Validates a module file (contract, stage kind, dry run) and pushes it.
fn push(
    registry: &Registry,
    file: &Path,
    name: &str,
    target: Option<Target>,
    checks: &Checks,
    current: Option<&(String, Vec<u8>)>,
) -> anyhow::Result<Pushed> {
    let refused = |why: String| anyhow::anyhow!("push of {} refused, nothing changed: {why}", file.display());
    let runtime = checks.sandbox.runtime()?;
    let bytes = std::fs::read(file).map_err(|e| refused(format!("cannot read it: {e}")))?;
    let module = runtime.load(name, &bytes).map_err(|e| refused(e.to_string()))?;
    if let Some((stage, kind, subtract)) = &target {
        if module.kind() != *kind {
            return Err(refused(format!(
                "it is {}, but stage {stage} needs {}",
                module.kind().with_article(),
                kind.with_article()
            )));
        }
        if *subtract && !module.info().subtract {
            return Err(refused(format!(
                "stage {stage} aggregates a grouped table and needs `subtract`, which it does not export (world {})",
                module.info().world
            )));
        }
    }
    if let Some(sample) = &checks.sample
        && module.kind() == OperatorKind::Joiner
    {
        let pairs = read_sample(sample, jsonl::parse_pair).map_err(&refused)?;
        let (outputs, failures) =
            dry_run_join(&runtime, &module, &pairs, config_map(&checks.config)?).map_err(&refused)?;
        eprintln!(
            "dry run on {}: {} pair(s), {outputs} output(s), {failures} typed failure(s), no trap",
            sample.display(),
            pairs.len()
        );
    } else if let Some(sample) = &checks.sample {
        let sample_events = read_sample(sample, jsonl::parse_event).map_err(&refused)?;
        let config = config_map(&checks.config)?;
        let (events, outputs, failures) =
            dry_run(&runtime, &module, &sample_events, config.clone()).map_err(&refused)?;
        if let Some((current_name, current_bytes)) = current
            && module.kind() == OperatorKind::Aggregator
            && module::digest(current_bytes) != module.info().digest
        {
            let current = runtime
                .load(current_name, current_bytes)
                .map_err(|e| refused(format!("the version the stage runs now does not load: {e}")))?;
            let keys = dry_run_carry(&runtime, &current, &module, &sample_events, config).map_err(&refused)?;
            eprintln!(
                "dry run: the state {} builds from the sample ({keys} key(s)) carries over to the new version",
                current.info().version_label()
            );
        }
        eprintln!(
            "dry run on {}: {events} event(s), {outputs} output(s), {failures} typed failure(s), no trap",
            sample.display()
        );
    }
    Ok(registry.push(name, &bytes, module.info())?)
}

/// Says what a push did; returns the version.
fn report(pushed: Pushed) -> ModuleRecord {
    match pushed {
        Pushed::New(m) => {
            println!(
                "pushed {}@{} ({}, {} bytes, {} bytes compressed in {} chunk(s), {}{})",
                m.name,
                m.version,
                m.digest,
                m.size,
                m.compressed,
                m.chunks,
                m.kind,
                m.sdk.as_deref().map(|s| format!(", {s}")).unwrap_or_default()
            );
            m
        }
        Pushed::Existing(m) => {
            println!(
                "{}@{} already has these bytes ({}); nothing changed",
                m.name, m.version, m.digest
            );
            m
        }
    }
}

/// Reads a JSON-lines sample: (1-based line, event).
fn read_sample<T>(
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
fn dry_run_join(
    runtime: &Runtime,
    module: &Arc<LoadedModule>,
    pairs: &[(usize, Pair)],
    config: BTreeMap<String, String>,
) -> Result<(usize, usize), String> {
    let mut op = runtime.operator(module.clone(), config);
    let mut tally = Tally::default();
    for (line, _, r) in sample::join(&mut op, pairs, usize::MAX) {
        tally.count(&r.map_err(|e| trapped("the dry run", line, &e))?);
    }
    Ok((tally.outputs, tally.failures))
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
fn dry_run(
    runtime: &Runtime,
    module: &Arc<LoadedModule>,
    events: &[(usize, Event)],
    config: BTreeMap<String, String>,
) -> Result<(usize, usize, usize), String> {
    let mut op = runtime.operator(module.clone(), config);
    let who = "the dry run";
    match module.kind() {
        OperatorKind::Processor => {
            let mut tally = Tally::default();
            for (line, _, r) in sample::process(&mut op, events, usize::MAX) {
                tally.count(&r.map_err(|e| trapped(who, line, &e))?);
            }
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
fn dry_run_carry(
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

/// The name and bytes of the version a stage runs now: its activation's,
/// else its pipeline file's module.
fn current_version(registry: &Registry, pipeline: &Pipeline, stage: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let snap = registry.snapshot()?;
    if let Some(a) = snap.active.get(&(pipeline.application_id.clone(), stage.to_owned()))
        && let Some(record) = snap.get(&a.module)
    {
        return Ok((record.name.clone(), registry.fetch(record)?));
    }
    let file = pipeline
        .stages
        .iter()
        .find(|s| s.name == stage)
        .and_then(|s| s.module.clone())
        .unwrap_or_default();
    let bytes = std::fs::read(&file)
        .with_context(|| format!("cannot read {}, the module stage {stage} runs", file.display()))?;
    Ok((module_name(&file, None), bytes))
}

fn module_name(file: &Path, name: Option<&str>) -> String {
    name.map(str::to_owned).unwrap_or_else(|| {
        file.file_stem()
            .map_or_else(|| "module".to_owned(), |s| s.to_string_lossy().into_owned())
    })
}

/// What a stage needs of a module: the stage's name, its kind, and whether
/// it must export `subtract` (a table aggregation).
type Target = (String, OperatorKind, bool);

/// The kind a pipeline's stage needs.
fn stage_kind(pipeline: &Pipeline, stage: &str) -> anyhow::Result<Target> {
    let s = pipeline.stages.iter().find(|s| s.name == stage).with_context(|| {
        format!(
            "{} has no stage {stage:?} (stages: {})",
            pipeline.file.display(),
            pipeline
                .stages
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let kind = match s.kind {
        StageKind::Process => OperatorKind::Processor,
        StageKind::Aggregate(_) => OperatorKind::Aggregator,
        StageKind::Join(_) => OperatorKind::Joiner,
        StageKind::Table(_) | StageKind::GlobalTable => bail!(
            "stage {stage} of {} is a table: it runs no module, so there is nothing to push or activate",
            pipeline.file.display()
        ),
    };
    let subtract = matches!(&s.kind, StageKind::Aggregate(a) if a.table);
    Ok((stage.to_owned(), kind, subtract))
}

/// Show the versions in the registry and where each is active.
#[derive(Debug, Args)]
struct List {
    /// Only this module.
    name: Option<String>,
    /// Use this pipeline's [kafka] to find the brokers.
    #[arg(long, value_name = "PIPELINE.toml")]
    pipeline: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    brokers: Brokers,
}

impl List {
    fn execute(self) -> anyhow::Result<ExitCode> {
        let pipeline = self.pipeline.as_deref().map(Pipeline::load).transpose()?;
        let snap = self.brokers.existing(pipeline.as_ref())?.snapshot()?;
        let versions: Vec<&ModuleRecord> = snap
            .modules
            .iter()
            .filter(|(n, _)| self.name.as_ref().is_none_or(|want| want == *n))
            .flat_map(|(_, v)| v.values())
            .collect();
        if let Some(name) = &self.name
            && versions.is_empty()
        {
            bail!("no module named {name:?} in the registry");
        }
        if self.json {
            let rows: Vec<_> = versions
                .iter()
                .map(|m| serde_json::json!({"module": m, "active_in": snap.active_in(&m.digest)}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{:<24} {:>4}  {:<12}  {:>10}  {:<10}  {:<26}  ACTIVE IN",
            "NAME", "VER", "DIGEST", "SIZE", "KIND", "SDK"
        );
        for m in versions {
            println!(
                "{:<24} {:>4}  {:<12}  {:>10}  {:<10}  {:<26}  {}",
                m.name,
                m.version,
                short(&m.digest),
                m.size,
                m.kind.to_string(),
                m.sdk.as_deref().unwrap_or("-"),
                snap.active_in(&m.digest).join(", ")
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Write a version's bytes to a file.
#[derive(Debug, Args)]
struct Pull {
    /// NAME@VERSION (or NAME for the latest).
    module: String,
    /// Where to write it.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Use this pipeline's [kafka] to find the brokers.
    #[arg(long, value_name = "PIPELINE.toml")]
    pipeline: Option<PathBuf>,
    #[command(flatten)]
    brokers: Brokers,
}

impl Pull {
    fn execute(self) -> anyhow::Result<ExitCode> {
        let pipeline = self.pipeline.as_deref().map(Pipeline::load).transpose()?;
        let registry = self.brokers.existing(pipeline.as_ref())?;
        let snap = registry.snapshot()?;
        let record = snap.resolve(&self.module)?;
        let bytes = registry.fetch(record)?;
        std::fs::write(&self.output, &bytes).with_context(|| format!("cannot write {}", self.output.display()))?;
        println!(
            "wrote {}@{} ({}, {} bytes) to {}",
            record.name,
            record.version,
            record.digest,
            bytes.len(),
            self.output.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Automatic rollback options of an activation.
#[derive(Debug, Clone, Args)]
struct GuardArgs {
    /// Roll back automatically if the new version fails on more than
    /// `--max-failure-share` of its first N records (in any instance).
    #[arg(long, value_name = "N")]
    guard_first: Option<u64>,
    /// The failure share (0–1) that triggers the automatic rollback.
    #[arg(long, value_name = "SHARE", default_value_t = 0.1, requires = "guard_first")]
    max_failure_share: f64,
}

impl GuardArgs {
    fn guard(&self) -> anyhow::Result<Option<Guard>> {
        if !(0.0..=1.0).contains(&self.max_failure_share) {
            bail!(
                "--max-failure-share must be between 0 and 1, not {}",
                self.max_failure_share
            );
        }
        Ok(self.guard_first.map(|first| Guard {
            first: first.max(1),
            max_failure_share: self.max_failure_share,
        }))
    }
}

/// Make every instance of a pipeline run a version in one stage.
#[derive(Debug, Args)]
#[command(
    after_help = "VERSION is a number (3, v3), a digest prefix (6+ hex digits) or `latest`.\n\n\
Examples:\n  weir module activate word-count.toml count count@2\n  \
weir module activate word-count.toml count count@latest --guard-first 1000 --max-failure-share 0.05"
)]
struct Activate {
    /// The pipeline file (its application id and [kafka]).
    pipeline: PathBuf,
    /// The stage.
    stage: String,
    /// NAME@VERSION.
    module: String,
    #[command(flatten)]
    guard: GuardArgs,
    #[command(flatten)]
    sandbox: SandboxArgs,
    #[command(flatten)]
    brokers: Brokers,
}

impl Activate {
    fn execute(self) -> anyhow::Result<ExitCode> {
        let pipeline = Pipeline::load(&self.pipeline)?;
        let registry = self.brokers.registry(Some(&pipeline))?;
        let snap = registry.snapshot()?;
        let record = snap.resolve(&self.module)?.clone();
        activate(
            &registry,
            &snap,
            &pipeline,
            &self.stage,
            &record,
            self.guard.guard()?,
            &self.sandbox,
        )?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Writes the activation of `record` for a stage, after checking it fits.
fn activate(
    registry: &Registry,
    snap: &Snapshot,
    pipeline: &Pipeline,
    stage: &str,
    record: &ModuleRecord,
    guard: Option<Guard>,
    sandbox: &SandboxArgs,
) -> anyhow::Result<()> {
    let (stage, kind, subtract) = stage_kind(pipeline, stage)?;
    if record.kind != kind {
        bail!(
            "cannot activate {}@{} in stage {stage}: it is {}, but the stage needs {}",
            record.name,
            record.version,
            record.kind.with_article(),
            kind.with_article()
        );
    }
    if subtract && !record.exports.iter().any(|e| e == crate::contract::SUBTRACTOR) {
        bail!(
            "cannot activate {}@{} in stage {stage}: the stage aggregates a grouped table and needs `subtract`, \
             which it does not export (world {})",
            record.name,
            record.version,
            record.world
        );
    }
    let app = &pipeline.application_id;
    let current = snap.active.get(&(app.clone(), stage.clone()));
    if current.is_some_and(|c| c.module.digest == record.digest) {
        println!(
            "{app}/{stage} already runs {}@{}; nothing changed",
            record.name, record.version
        );
        return Ok(());
    }
    // Before the first activation the stage runs the pipeline file's module:
    // push it, so that a rollback can go back to it.
    let initial = match current {
        Some(_) => None,
        None => {
            let file = &pipeline
                .stages
                .iter()
                .find(|s| s.name == stage)
                .and_then(|s| s.module.clone())
                .unwrap_or_default();
            let checks = Checks {
                sample: None,
                config: Vec::new(),
                sandbox: sandbox.clone(),
            };
            let (Pushed::New(m) | Pushed::Existing(m)) = push(
                registry,
                file,
                &module_name(file, None),
                Some((stage.clone(), kind, subtract)),
                &checks,
                None,
            )
            .with_context(|| format!("cannot record {stage}'s module for rollbacks before its first activation"))?;
            if m.digest == record.digest {
                println!("{app}/{stage} already runs these bytes (its pipeline file's module); nothing changed");
                return Ok(());
            }
            Some(m.reference())
        }
    };
    let a = Activation::next(current, initial, record.reference(), guard, now_ms());
    registry.write_activation(app, &stage, &a)?;
    println!(
        "activated {} in {app}/{stage} (activation {}; replaces {}); running instances swap at their next \
         transaction boundary",
        a.module,
        a.seq,
        a.previous.first().map_or_else(|| "-".to_owned(), ToString::to_string)
    );
    Ok(())
}

/// Go back to the version a stage ran before its last activation.
#[derive(Debug, Args)]
struct Rollback {
    /// The pipeline file.
    pipeline: PathBuf,
    /// The stage.
    stage: String,
    #[command(flatten)]
    brokers: Brokers,
}

impl Rollback {
    fn execute(self) -> anyhow::Result<ExitCode> {
        let pipeline = Pipeline::load(&self.pipeline)?;
        stage_kind(&pipeline, &self.stage)?;
        let registry = self.brokers.registry(Some(&pipeline))?;
        let snap = registry.snapshot()?;
        let app = &pipeline.application_id;
        let Some(current) = snap.active.get(&(app.clone(), self.stage.clone())) else {
            bail!(
                "{app}/{} has never been activated: it runs its pipeline file's module, and there is nothing to roll back to",
                self.stage
            );
        };
        let Some(back) = current.rollback("rollback", None, now_ms()) else {
            bail!(
                "{app}/{} runs {}, and no earlier version is recorded",
                self.stage,
                current.module
            );
        };
        registry.write_activation(app, &self.stage, &back)?;
        println!(
            "rolled {app}/{} back from {} to {}; running instances swap at their next transaction boundary",
            self.stage, current.module, back.module
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Push a module and activate it in a pipeline stage, in one step.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  weir deploy word-count.toml count dist/python-count.wasm --sample events.jsonl")]
pub struct Deploy {
    /// The pipeline file.
    pipeline: PathBuf,
    /// The stage.
    stage: String,
    /// The module (.wasm component).
    file: PathBuf,
    /// Registry name (default: the file name without `.wasm`).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    checks: Checks,
    #[command(flatten)]
    guard: GuardArgs,
    #[command(flatten)]
    brokers: Brokers,
}

impl Deploy {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let pipeline = Pipeline::load(&self.pipeline)?;
        let target = stage_kind(&pipeline, &self.stage)?;
        let guard = self.guard.guard()?;
        let registry = self.brokers.registry(Some(&pipeline))?;
        let name = module_name(&self.file, self.name.as_deref());
        let current = match &self.checks.sample {
            Some(_) => Some(current_version(&registry, &pipeline, &self.stage)?),
            None => None,
        };
        let record = report(push(
            &registry,
            &self.file,
            &name,
            Some(target),
            &self.checks,
            current.as_ref(),
        )?);
        let snap = registry.snapshot()?;
        activate(
            &registry,
            &snap,
            &pipeline,
            &self.stage,
            &record,
            guard,
            &self.checks.sandbox,
        )?;
        Ok(ExitCode::SUCCESS)
    }
}
