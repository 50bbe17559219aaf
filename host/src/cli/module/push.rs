//! `weir module push`: validate a module (contract, stage kind, dry run)
//! and store it in the registry as a new version.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::brokers::Brokers;
use super::dry_run::{dry_run, dry_run_carry, dry_run_join, read_sample};
use super::stage::{Target, current_version, module_name, stage_kind};
use crate::cli::{SandboxArgs, config_map};
use crate::contract::OperatorKind;
use crate::jsonl;
use crate::module;
use crate::pipeline::Pipeline;
use crate::registry::{ModuleRecord, Pushed, Registry};

/// What a push checks the module against, beyond the contract.
#[derive(Debug, Clone, Args)]
pub(super) struct Checks {
    /// Dry-run the module on these JSON-lines events (as `weir test` reads
    /// them): the push is refused if any event traps.
    #[arg(long, value_name = "EVENTS.jsonl")]
    pub(super) sample: Option<PathBuf>,
    /// Deploy-time configuration for the dry run (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub(super) config: Vec<String>,
    #[command(flatten)]
    pub(super) sandbox: SandboxArgs,
}

/// Validate a module and store it in the registry as a new version.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  weir module push dist/rust-count.wasm --name count --bootstrap localhost:9092\n  \
weir module push count.wasm --name count --sample events.jsonl --pipeline word-count.toml --stage count"
)]
pub(super) struct Push {
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
    pub(super) fn execute(self) -> anyhow::Result<ExitCode> {
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
pub(super) fn push(
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
pub(super) fn report(pushed: Pushed) -> ModuleRecord {
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
