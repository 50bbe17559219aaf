//! `weir deploy`: push a module and activate it in a pipeline stage, in
//! one step (`module push`, then `module activate`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::activate::{GuardArgs, activate};
use super::brokers::Brokers;
use super::push::{Checks, push, report};
use super::stage::{current_version, module_name, stage_kind};
use crate::pipeline::Pipeline;

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
