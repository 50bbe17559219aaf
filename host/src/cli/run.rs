//! `weir run`: run a pipeline against Kafka until SIGINT/SIGTERM.

use crate::shutdown::Shutdown;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::SandboxArgs;
use crate::admin::Admin;
use crate::kafka::{Instance, RunOptions};
use crate::pipeline::Pipeline;
use crate::task::Chain;
use crate::units;

/// Run a pipeline: consume its inputs, run its stages, produce its outputs
/// with its guarantee. SIGINT or SIGTERM finishes the current batch,
/// commits and exits 0 (a static member, the default, stays in the group
/// until its session times out, so that a restart causes no rebalance); a
/// second signal exits at once, saying what it abandoned.
#[derive(Debug, Args)]
pub struct Run {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// Stable id of this instance, part of its transactional.id: keep it
    /// across restarts, and give each instance running at the same time its own.
    #[arg(long, default_value = "0")]
    pub instance_id: String,
    /// How long to wait for the brokers at start-up. While running, Weir
    /// waits for unreachable brokers as long as it takes, retrying (and
    /// logging what it waits for); a stop ends a wait this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = units::parse_duration)]
    pub kafka_timeout: Duration,
    /// Serve the admin API (/metrics, /status) here; `127.0.0.1:0` picks a
    /// free port (printed at start), `off` disables it.
    #[arg(long, value_name = "HOST:PORT|off", default_value = "127.0.0.1:0")]
    pub admin: String,
    /// Set a librdkafka property over the pipeline's [kafka] table
    /// (repeatable), e.g. `--kafka bootstrap.servers=host:9092`.
    #[arg(long = "kafka", value_name = "KEY=VALUE")]
    pub kafka: Vec<String>,
    /// Where state stores live (default: the pipeline's `state-dir`, else
    /// `weir-state` in the temp directory). Keep it across restarts: a task
    /// with local state restores only the changelog tail.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Processing threads: tasks (partitions) run on this many threads at
    /// once (default: the pipeline's `threads`, else one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Sandbox limits for the stages' modules.
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// Fault injection for tests: abort every Nth commit that has work in
    /// it, as on an abortable broker error (the work is redone).
    #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(u64).range(2..))]
    pub fault_abort_every: Option<u64>,
}

impl Run {
    /// Runs the pipeline.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let mut pipeline = Pipeline::load(&self.pipeline)?;
        pipeline
            .kafka
            .extend(super::config_map(&self.kafka).context("--kafka")?);
        if let Some(dir) = self.state_dir {
            pipeline.state_dir = dir;
        }
        let runtime = self.sandbox.runtime()?;
        let chain = Chain::load(&pipeline, &runtime)?;
        let shutdown = Shutdown::new();
        shutdown.on_signals("finishing the batch, committing and stopping")?;
        let options = RunOptions {
            instance_id: self.instance_id,
            kafka_timeout: self.kafka_timeout,
            shutdown,
            fault_abort_every: self.fault_abort_every,
            threads: self.threads.map(usize::from),
        };
        let instance = Instance::connect(&pipeline, chain, options)?;
        let admin = start_admin(&self.admin, &instance)?;
        eprintln!(
            "weir: running {} ({}, {} stage(s), {} thread(s)){}; Ctrl-C stops after a final commit",
            pipeline.application_id,
            pipeline.guarantee,
            pipeline.stages.len(),
            instance.threads(),
            admin
                .as_ref()
                .map(|a| format!("; admin API at http://{}/ (/metrics, /status, /stores)", a.addr()))
                .unwrap_or_default()
        );
        let summary = instance.run()?;
        eprintln!("weir: stopped cleanly: {summary}");
        Ok(ExitCode::SUCCESS)
    }
}

/// Starts the admin API unless `addr` is `off`.
pub(crate) fn start_admin(addr: &str, instance: &Instance) -> anyhow::Result<Option<Admin>> {
    if addr == "off" {
        return Ok(None);
    }
    Ok(Some(Admin::start(addr, instance.status())?))
}
