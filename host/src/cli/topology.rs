//! `weir topology`: print a pipeline's topology.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::pipeline::Pipeline;
use crate::topology::Topology;

/// Print a pipeline's topology: sources, stages, stores, sinks, the
/// sub-topologies its repartition topics cut it into, and the internal
/// topics Weir creates — like Kafka Streams' `Topology.describe()`. Reads
/// only the pipeline file (no broker, no module is loaded).
#[derive(Debug, Args)]
pub struct TopologyCmd {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
}

impl TopologyCmd {
    /// Prints the topology.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let pipeline = Pipeline::load(&self.pipeline)?;
        print!("{}", Topology::from_pipeline(&pipeline).describe());
        Ok(ExitCode::SUCCESS)
    }
}
