//! `weir module list`: the versions in the registry and where each is
//! active.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::brokers::Brokers;
use crate::pipeline::Pipeline;
use crate::registry::{ModuleRecord, short};

/// Show the versions in the registry and where each is active.
#[derive(Debug, Args)]
pub(super) struct List {
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
    pub(super) fn execute(self) -> anyhow::Result<ExitCode> {
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
