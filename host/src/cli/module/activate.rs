//! `weir module activate`: make every instance of a pipeline run a version
//! in a stage, with an optional guard that rolls it back automatically.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;

use super::brokers::Brokers;
use super::push::{Checks, push};
use super::stage::{module_name, stage_kind};
use crate::cli::SandboxArgs;
use crate::pipeline::Pipeline;
use crate::registry::{Activation, Guard, ModuleRecord, Pushed, Registry, Snapshot};
use crate::units::now_ms;

/// Automatic rollback options of an activation.
#[derive(Debug, Clone, Args)]
pub(super) struct GuardArgs {
    /// Roll back automatically if the new version fails on more than
    /// `--max-failure-share` of its first N records (in any instance).
    #[arg(long, value_name = "N")]
    guard_first: Option<u64>,
    /// The failure share (0–1) that triggers the automatic rollback.
    #[arg(long, value_name = "SHARE", default_value_t = 0.1, requires = "guard_first")]
    max_failure_share: f64,
}

impl GuardArgs {
    pub(super) fn guard(&self) -> anyhow::Result<Option<Guard>> {
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
pub(super) struct Activate {
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
    pub(super) fn execute(self) -> anyhow::Result<ExitCode> {
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
pub(super) fn activate(
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
