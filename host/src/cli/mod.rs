//! The `weir` command line: one file per subcommand, each a clap struct with
//! `execute(self)`.

mod componentize;
mod dev;
mod module;
mod query;
mod run;
mod sample;
mod test;
mod topology;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::runtime::{Runtime, RuntimeConfig};
use crate::units;

/// Weir: a Kafka stream processor whose per-record logic is WebAssembly.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline against Kafka.
    Run(run::Run),
    /// Try a pipeline on an embedded broker with sample data (not durable).
    Dev(dev::Dev),
    /// Print a pipeline's topology: sub-topologies, stages, stores, internal topics.
    Topology(topology::TopologyCmd),
    /// Check that a module is a valid Weir operator and print what it is.
    Validate(validate::Validate),
    /// Run an operator locally on JSON-lines events and print its outputs.
    Test(test::Test),
    /// Wrap a core WebAssembly module (C, …) as a Weir operator component.
    Componentize(componentize::Componentize),
    /// Ask a running instance for a key's value in a stateful stage.
    Query(query::Query),
    /// Show running instances' tasks, stores, lag and module versions.
    Status(query::StatusCmd),
    /// Push, list, activate and roll back module versions (hot swap).
    Module(module::Module),
    /// Push a module and activate it in a pipeline stage (`module push` + `module activate`).
    Deploy(module::Deploy),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub fn execute(self) -> anyhow::Result<std::process::ExitCode> {
        match self.command {
            Command::Run(c) => c.execute(),
            Command::Dev(c) => c.execute(),
            Command::Topology(c) => c.execute(),
            Command::Validate(c) => c.execute(),
            Command::Test(c) => c.execute(),
            Command::Componentize(c) => c.execute(),
            Command::Query(c) => c.execute(),
            Command::Status(c) => c.execute(),
            Command::Module(c) => c.execute(),
            Command::Deploy(c) => c.execute(),
        }
    }
}

/// Sandbox limits, shared by the subcommands that run guests.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Memory cap per operator instance (e.g. "256MiB").
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub memory_limit: Option<usize>,
    /// CPU deadline per call into the operator (e.g. "2s", "100ms").
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    pub deadline: Option<Duration>,
    /// Meter guest instructions: this much fuel per call (slower).
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,
    /// Do not read or write the precompiled-module cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl SandboxArgs {
    /// A runtime with these limits over the defaults.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        let mut cfg = RuntimeConfig::default();
        if let Some(m) = self.memory_limit {
            cfg.memory_limit = m;
        }
        if let Some(d) = self.deadline {
            cfg.call_deadline = d;
        }
        cfg.fuel = self.fuel;
        if self.no_cache {
            cfg.cache_dir = None;
        }
        Ok(Runtime::new(cfg)?)
    }
}

/// Parses repeated `--config key=value` into a map.
pub(crate) fn config_map(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("--config {p:?}: expected key=value"))
        })
        .collect()
}
