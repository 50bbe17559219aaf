use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::componentize::componentize;

/// Wraps a core WebAssembly module (a wasm32-wasip1 reactor, e.g. from clang
/// and wasi-libc) as a component of a Weir world, with the WASI preview1
/// adapter linked in.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  weir componentize errors-only.core.wasm --world process -o errors-only.wasm")]
pub struct Componentize {
    /// The core module.
    pub core: PathBuf,
    /// The world it implements: process, join, aggregate,
    /// aggregate-with-migrate, aggregate-with-subtract or
    /// aggregate-with-migrate-and-subtract.
    #[arg(long, default_value = "process")]
    pub world: String,
    /// The SDK that built the module, e.g. "weir-sdk-go 0.1.0", written to
    /// a `weir-sdk` custom section that `weir validate` reports (for SDK
    /// build scripts whose compiler cannot write one).
    #[arg(long)]
    pub sdk: Option<String>,
    /// Where to write the component.
    #[arg(short, long)]
    pub output: PathBuf,
}

impl Componentize {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let core = std::fs::read(&self.core).with_context(|| format!("cannot read {}", self.core.display()))?;
        let component = componentize(&core, &self.world, self.sdk.as_deref())
            .with_context(|| format!("{}", self.core.display()))?;
        std::fs::write(&self.output, component).with_context(|| format!("cannot write {}", self.output.display()))?;
        Ok(ExitCode::SUCCESS)
    }
}
