//! Where the registry is, for every subcommand: a pipeline's `[kafka]`,
//! or a bootstrap address.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::cli::config_map;
use crate::clients;
use crate::pipeline::Pipeline;
use crate::registry::Registry;
use crate::units;

/// Where the registry is: a pipeline's `[kafka]`, or a bootstrap address.
#[derive(Debug, Clone, Args)]
pub(super) struct Brokers {
    /// Kafka bootstrap servers (default: the pipeline's [kafka], else $WEIR_BOOTSTRAP).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Option<String>,
    /// Set a librdkafka property (repeatable), e.g. `--kafka security.protocol=ssl`.
    #[arg(long = "kafka", value_name = "KEY=VALUE")]
    kafka: Vec<String>,
    /// How long to wait for the brokers.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = units::parse_duration)]
    kafka_timeout: Duration,
}

impl Brokers {
    /// The registry, its topics created if need be.
    pub(super) fn registry(&self, pipeline: Option<&Pipeline>) -> anyhow::Result<Registry> {
        let registry = self.client(pipeline)?;
        registry.ensure_topics()?;
        Ok(registry)
    }

    /// The registry for reading: an error if it was never written to.
    pub(super) fn existing(&self, pipeline: Option<&Pipeline>) -> anyhow::Result<Registry> {
        let registry = self.client(pipeline)?;
        if !registry.exists()? {
            bail!("the registry is empty: nothing was pushed to these brokers yet (weir module push)");
        }
        Ok(registry)
    }

    fn client(&self, pipeline: Option<&Pipeline>) -> anyhow::Result<Registry> {
        let mut config = pipeline.map(clients::base_config).unwrap_or_default();
        if let Some(b) = &self.bootstrap {
            config.set("bootstrap.servers", b);
        } else if config.get("bootstrap.servers").is_none()
            && let Ok(b) = std::env::var("WEIR_BOOTSTRAP")
        {
            config.set("bootstrap.servers", b);
        }
        for (k, v) in config_map(&self.kafka).context("--kafka")? {
            config.set(k, v);
        }
        if config.get("bootstrap.servers").is_none() {
            bail!("no brokers: give --bootstrap HOST:PORT (or set WEIR_BOOTSTRAP, or name a pipeline file)");
        }
        Ok(Registry::new(config, self.kafka_timeout))
    }
}
