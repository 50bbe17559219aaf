use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::SandboxArgs;

/// Checks that a module is a Weir operator: it must be a component, compile,
/// and implement one operator world of the contract. Prints what it is.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  weir validate guest-examples/dist/rust-uppercase.wasm\n  weir validate --json my-operator.wasm"
)]
pub struct Validate {
    /// The module (.wasm component).
    pub module: PathBuf,
    /// Print the facts as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    sandbox: SandboxArgs,
}

impl Validate {
    /// Runs the subcommand.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let runtime = self.sandbox.runtime()?;
        let module = runtime.load_file(&self.module)?;
        let info = module.info();
        if self.json {
            println!("{}", serde_json::to_string_pretty(info)?);
        } else {
            println!(
                "{}: {} operator, world {}",
                self.module.display(),
                info.kind,
                info.world
            );
            println!("  digest   {}", info.digest);
            println!("  size     {} bytes", info.size);
            println!("  sdk      {}", info.sdk.as_deref().unwrap_or("unknown"));
            println!("  migrate  {}", if info.migrate { "yes" } else { "no" });
            println!("  exports  {}", info.exports.join(", "));
            println!("  imports  {}", info.imports.join(", "));
        }
        Ok(ExitCode::SUCCESS)
    }
}
