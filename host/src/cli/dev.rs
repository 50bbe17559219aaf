//! `weir dev`: run a pipeline on an in-process broker with sample data.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use crate::shutdown::Shutdown;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use rdkafka::mocking::MockCluster;

use super::SandboxArgs;
use crate::dev::samples::Samples;
use crate::dev::{Feeder, Watcher};
use crate::kafka::{Instance, RunOptions};
use crate::pipeline::Pipeline;
use crate::registry;
use crate::task::Chain;
use crate::units;

const DEFAULT_PIPELINE: &str = "guest-examples/pipelines/route-by-type.toml";

/// Try a pipeline in one command: starts an in-process Kafka-compatible
/// broker (librdkafka's mock cluster), creates the pipeline's topics, feeds
/// sample events into its inputs, runs it, and shows live counts and the
/// latest outputs. Prints the broker's address so kcat or any Kafka client
/// can join.
///
/// The embedded broker is for development only: it keeps everything in
/// memory (nothing is durable) and does not filter aborted transactions
/// for read_committed consumers, so it cannot demonstrate exactly-once.
/// Use `weir run` against a real broker for that.
#[derive(Debug, Args)]
pub struct Dev {
    /// The pipeline file (default: guest-examples/pipelines/route-by-type.toml).
    pub pipeline: Option<PathBuf>,
    /// Sample events to feed every input: trades, logs, operations, sentences,
    /// clicks, orders, customers, accounts, limits, searches, instruments or
    /// users
    /// (default: the pipeline's [dev] samples entry for the input, else its [dev] sample, else trades).
    #[arg(long)]
    pub sample: Option<String>,
    /// Sample events per second.
    #[arg(long, default_value_t = 900.0)]
    pub rate: f64,
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long = "for", value_name = "DURATION", value_parser = units::parse_duration)]
    pub run_for: Option<Duration>,
    /// How often to print the live view.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = units::parse_duration)]
    pub every: Duration,
    /// Serve the admin API (/metrics, /status) here; `off` disables it.
    #[arg(long, value_name = "HOST:PORT|off", default_value = "127.0.0.1:0")]
    pub admin: String,
    /// Sandbox limits for the stages' modules.
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

impl Dev {
    /// Runs the pipeline on the embedded broker.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let path = match self.pipeline {
            Some(p) => p,
            None if std::path::Path::new(DEFAULT_PIPELINE).exists() => PathBuf::from(DEFAULT_PIPELINE),
            None => bail!("no pipeline file given, and {DEFAULT_PIPELINE} is not here; run `weir dev PIPELINE.toml`"),
        };
        let mut pipeline = Pipeline::load(&path)?;
        // Per input: `--sample`, else its `[dev] samples` entry, else `[dev] sample`.
        let fallback = pipeline.dev.sample.clone().unwrap_or_else(|| "trades".into());
        let samples: Vec<(String, String, Samples)> = pipeline
            .inputs
            .iter()
            .chain(&pipeline.globals)
            .enumerate()
            .map(|(i, t)| {
                let name = self
                    .sample
                    .clone()
                    .or_else(|| pipeline.dev.samples.get(t).cloned())
                    .unwrap_or_else(|| fallback.clone());
                let generator = Samples::new(&name, 42 + i as u64)?;
                Ok((t.clone(), name, generator))
            })
            .collect::<anyhow::Result<_>>()?;
        let runtime = self.sandbox.runtime()?;
        let chain = Chain::load(&pipeline, &runtime).map_err(|e| {
            let hint = if e.to_string().contains("dist/") {
                " (build the examples first: guest-examples/build.sh)"
            } else {
                ""
            };
            anyhow::anyhow!("{e}{hint}")
        })?;

        let cluster = MockCluster::new(1).context("cannot start the embedded broker")?;
        let bootstrap = cluster.bootstrap_servers();
        let partitions = pipeline.dev.partitions.unwrap_or(3);
        let mut topics: Vec<(String, i32)> = pipeline
            .inputs
            .iter()
            .chain(&pipeline.globals)
            .map(|t| (t.clone(), partitions))
            .collect();
        topics.extend(pipeline.output_topics().into_iter().map(|t| (t.to_owned(), partitions)));
        // Internal topics too: the mock cluster's admin API is not complete.
        topics.extend(
            chain
                .internal_topics()
                .into_iter()
                .map(|t| (t.name, t.partitions.unwrap_or(partitions))),
        );
        // And the module registry's, so that `weir deploy` works against it.
        topics.extend(
            [registry::MODULES_TOPIC, registry::CHUNKS_TOPIC, registry::ACTIVE_TOPIC].map(|t| (t.to_owned(), 1)),
        );
        for (t, n) in &topics {
            cluster
                .create_topic(t, *n, 1)
                .with_context(|| format!("cannot create topic {t}"))?;
        }
        // Nothing of a dev run is durable, state included.
        let state_dir = std::env::temp_dir().join(format!("weir-dev-{}", std::process::id()));
        pipeline.state_dir = state_dir.clone();
        pipeline.kafka.insert("bootstrap.servers".into(), bootstrap.clone());

        let stop = Shutdown::new();
        stop.on_signals("stopping weir dev after a final commit")?;
        let outputs = pipeline.output_topics();
        println!("weir dev: embedded Kafka (librdkafka mock cluster) at {bootstrap}");
        println!(
            "  not durable, and read_committed consumers also see aborted transactions: use `weir run` on a real broker for exactly-once"
        );
        for (topic, name, _) in &samples {
            println!(
                "  {topic} ← sample {name:?} at {}/s ({partitions} partitions each)",
                self.rate
            );
        }
        println!("  stages: {}", chain.module_labels().join(" → "));
        println!("  outputs: {}", outputs.join(", "));
        println!(
            "  try: kcat -b {bootstrap} -C -t {} -o end",
            outputs.first().copied().unwrap_or("TOPIC")
        );
        let feeders = samples
            .into_iter()
            .map(|(t, _, generator)| Feeder::start(&bootstrap, &t, generator, self.rate, stop.clone()))
            .collect::<Result<Vec<_>, _>>()
            .context("cannot start the sample feeder")?;
        let watcher = Watcher::start(&bootstrap, &outputs, 3, stop.clone()).context("cannot watch the outputs")?;

        let options = RunOptions {
            instance_id: "dev".into(),
            kafka_timeout: Duration::from_secs(10),
            shutdown: stop.clone(),
            fault_abort_every: None,
            threads: None,
        };
        let instance = Instance::connect(&pipeline, chain, options)?;
        let admin = super::run::start_admin(&self.admin, &instance)?;
        if let Some(a) = &admin {
            println!("  admin API: http://{}/metrics and /status", a.addr());
        }
        let metrics = instance.metrics().clone();
        let (view_stop, every, run_for) = (stop.clone(), self.every, self.run_for);
        let seeing = watcher.seeing.clone();
        let sent: Vec<_> = feeders.iter().map(|f| f.sent.clone()).collect();
        let view = std::thread::spawn(move || {
            let start = Instant::now();
            let tty = std::io::stdout().is_terminal();
            let mut next = start + every;
            while !view_stop.requested() {
                if run_for.is_some_and(|d| start.elapsed() >= d) {
                    view_stop.request();
                    break;
                }
                if Instant::now() < next {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                next += every;
                let fed: u64 = sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
                let snap = metrics.snapshot();
                let secs = start.elapsed().as_secs();
                println!("[{secs:>4}s] fed {fed} · {snap}");
                if let Ok(s) = seeing.lock() {
                    let counts: Vec<String> = s.counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
                    println!("        in output topics: {}", counts.join(" · "));
                    for r in &s.latest {
                        let clip = |v: &Option<String>| {
                            v.as_deref().map_or("∅".to_owned(), |v| v.chars().take(90).collect())
                        };
                        println!("        {:<20} {:<16} {}", r.topic, clip(&r.key), clip(&r.value));
                    }
                }
                if tty {
                    println!();
                }
            }
        });
        let result = instance.run();
        stop.request();
        let _ = view.join();
        for f in feeders {
            f.join();
        }
        watcher.join();
        let _ = std::fs::remove_dir_all(&state_dir);
        let summary = result?;
        println!("weir dev: stopped: {summary}");
        drop(cluster);
        Ok(ExitCode::SUCCESS)
    }
}
