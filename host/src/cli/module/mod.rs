//! `weir module push|list|pull|activate|rollback` and `weir deploy`: the module
//! registry from the command line.
//!
//! One file per subcommand (`push`, `list`, `pull`, `activate`,
//! `rollback`, and `deploy`, which is `push` then `activate`), with what
//! they share: where the registry is (`brokers`), what a stage needs and
//! runs (`stage`), and the dry run of a push (`dry_run`, on the engine
//! `weir test` uses too).

mod activate;
mod brokers;
mod deploy;
mod dry_run;
mod list;
mod pull;
mod push;
mod rollback;
mod stage;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use deploy::Deploy;

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
    Push(push::Push),
    /// Show the versions in the registry and where each is active.
    List(list::List),
    /// Make every instance of a pipeline run a version in a stage, swapped
    /// at each task's next transaction boundary.
    Activate(activate::Activate),
    /// Go back to the version a stage ran before its last activation.
    Rollback(rollback::Rollback),
    /// Write a version's bytes to a file (reassembled and digest-checked).
    Pull(pull::Pull),
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
