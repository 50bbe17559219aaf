//! `weir module pull`: a version's bytes, reassembled and digest-checked,
//! written to a file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::brokers::Brokers;
use crate::pipeline::Pipeline;

/// Write a version's bytes to a file.
#[derive(Debug, Args)]
pub(super) struct Pull {
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
    pub(super) fn execute(self) -> anyhow::Result<ExitCode> {
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
