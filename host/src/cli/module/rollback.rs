//! `weir module rollback`: go back to the version a stage ran before its
//! last activation.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::brokers::Brokers;
use super::stage::stage_kind;
use crate::pipeline::Pipeline;
use crate::units::now_ms;

/// Go back to the version a stage ran before its last activation.
#[derive(Debug, Args)]
pub(super) struct Rollback {
    /// The pipeline file.
    pipeline: PathBuf,
    /// The stage.
    stage: String,
    #[command(flatten)]
    brokers: Brokers,
}

impl Rollback {
    pub(super) fn execute(self) -> anyhow::Result<ExitCode> {
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
