//! Start-up: [`Instance::connect`] makes the clients (producer, consumer,
//! restore consumer, purger's admin client), checks the topics and creates
//! the internal ones, fences an earlier life of the instance, reads the
//! active module versions from the registry, loads the global tables and
//! joins the consumer group.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;

use super::error::InstanceError;
use super::global::GlobalTables;
use super::instance::{Instance, RunOptions};
use super::purge::Purger;
use super::rebalance::ConsumerCtx;
use super::restore::Restorer;
use super::txn::{Shared, TxnState};
use crate::clients::topics;
use crate::clients::{self, Producer, ProducerCtx};
use crate::pipeline::{Guarantee, Pipeline};
use crate::registry::Registry;
use crate::status::Restores;
use crate::status::query::StoreQueries;
use crate::swap::Swapper;
use crate::task::{Chain, Workers};

impl Instance {
    /// Connects to Kafka, checks that every topic exists, initialises
    /// transactions (fencing an earlier life of this instance) and joins the
    /// consumer group.
    pub fn connect(pipeline: &Pipeline, chain: Arc<Chain>, options: RunOptions) -> Result<Instance, InstanceError> {
        let client_error = |client: &'static str, e: KafkaError| InstanceError::Client {
            client,
            file: pipeline.file.clone(),
            reason: e.to_string(),
        };
        let producer = Producer::from_config_and_context(
            &clients::producer_config(pipeline, &options.instance_id),
            ProducerCtx::default(),
        )
        .map_err(|e| client_error("producer", e))?;
        let shared = Arc::new(Shared {
            producer,
            ends: Mutex::default(),
            assigned: Arc::default(),
            guarantee: pipeline.guarantee,
            timeout: options.kafka_timeout,
            transactional_id: clients::transactional_id(pipeline, &options.instance_id),
            metrics: chain.metrics().clone(),
            state: Mutex::new(TxnState::default()),
            fault_abort_every: options.fault_abort_every,
            shutdown: options.shutdown.clone(),
        });
        let consumer = BaseConsumer::from_config_and_context(
            &clients::consumer_config(pipeline, &options.instance_id),
            ConsumerCtx { shared: shared.clone() },
        )
        .map_err(|e| client_error("consumer", e))?;

        let metadata =
            consumer
                .fetch_metadata(None, options.kafka_timeout)
                .map_err(|e| InstanceError::Unreachable {
                    bootstrap: pipeline
                        .kafka
                        .get("bootstrap.servers")
                        .cloned()
                        .unwrap_or_else(|| "(bootstrap.servers not set)".into()),
                    timeout: options.kafka_timeout,
                    reason: e.to_string(),
                    file: pipeline.file.clone(),
                })?;
        let existing: Vec<&str> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| t.name())
            .collect();
        let mut missing: Vec<&str> = pipeline
            .inputs
            .iter()
            .map(String::as_str)
            .chain(pipeline.output_topics())
            .filter(|t| !existing.contains(t))
            .collect();
        missing.dedup();
        if !missing.is_empty() {
            return Err(InstanceError::MissingTopics {
                topics: missing.join(", "),
            });
        }
        // Internal topics that do not exist yet are checked with the count
        // they will be created with.
        let internal = chain.internal_topics();
        let inputs_count = topics::input_partitions(&metadata, &pipeline.inputs);
        let partitions = |topic: &str| {
            metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic && !t.partitions().is_empty())
                .map(|t| t.partitions().len() as i32)
                .or_else(|| {
                    internal
                        .iter()
                        .find(|t| t.name == topic)
                        .map(|t| t.partitions.unwrap_or(inputs_count))
                })
        };
        chain.topology().check_co_partitioning(&partitions)?;
        if pipeline.guarantee == Guarantee::ExactlyOnce {
            shared
                .producer
                .init_transactions(options.kafka_timeout)
                .map_err(|e| shared.fatal(&e))?;
        }
        if !chain.internal_topics().is_empty() {
            topics::ensure(
                &clients::base_config(pipeline),
                &metadata,
                &chain.internal_topics(),
                topics::input_partitions(&metadata, &pipeline.inputs),
                options.kafka_timeout,
            )?;
        }
        // The versions active in the registry replace the file's modules
        // before any task starts.
        let registry = Registry::new(clients::base_config(pipeline), options.kafka_timeout);
        let stages = (0..pipeline.stages.len())
            .map(|i| {
                (
                    pipeline.stages[i].name.clone(),
                    chain.stage_kind(i).zip(chain.module(i)),
                )
            })
            .collect();
        let (mut swapper, active) =
            Swapper::start(registry, chain.runtime().clone(), &pipeline.application_id, stages)?;
        for r in active {
            tracing::info!(stage = %pipeline.stages[r.stage].name, version = %r.activation.module,
                "running the version active in the registry");
            chain.set_module(r.stage, r.module.clone());
            swapper.applied(&r, Duration::ZERO, chain.metrics());
        }
        let restores = Arc::new(Mutex::new(Restores::new()));
        let restorer = if chain.is_stateful() {
            let mut config = clients::base_config(pipeline);
            let name = format!("weir-{}-{}-restore", pipeline.application_id, options.instance_id);
            // librdkafka wants a group id even for assign(); this one never
            // joins (no subscribe) and never commits.
            config.set("client.id", &name).set("group.id", &name);
            Some(
                Restorer::new(
                    config,
                    options.kafka_timeout,
                    shared.transactional_id.clone(),
                    restores.clone(),
                    options.shutdown.child(),
                    pipeline.timestamp_policy,
                )
                .map_err(|e| client_error("restore consumer", e))?,
            )
        } else {
            None
        };
        let purger = Purger::start(
            &clients::base_config(pipeline),
            chain.repartition_topics(),
            pipeline.repartition_purge_interval,
            options.kafka_timeout,
        )
        .map_err(|e| client_error("admin client", e))?;
        let state_root = pipeline
            .state_dir
            .join(&pipeline.application_id)
            .join(&options.instance_id);
        let queries = chain.is_stateful().then(|| StoreQueries::new(chain.clone()));
        // Global tables are whole before any task opens.
        let globals = GlobalTables::start(
            &chain,
            &clients::base_config(pipeline),
            &state_root,
            options.kafka_timeout,
            queries.as_deref(),
            &options.shutdown,
            pipeline.timestamp_policy,
        )?;
        let repartition = chain.repartition_topics();
        let mut inputs: Vec<&str> = pipeline.inputs.iter().map(String::as_str).collect();
        inputs.extend(repartition.iter().map(String::as_str));
        consumer.subscribe(&inputs).map_err(|e| client_error("consumer", e))?;
        tracing::info!(
            application = %pipeline.application_id,
            instance = %options.instance_id,
            guarantee = %pipeline.guarantee,
            "joined the consumer group"
        );
        let workers = Workers::new(options.threads.or(pipeline.threads).unwrap_or_else(Workers::per_core))?;
        tracing::info!(threads = workers.threads(), "processing threads");
        Ok(Instance {
            workers,
            queries,
            globals,
            chain,
            pipeline: pipeline.clone(),
            options,
            shared,
            consumer,
            state_root,
            restorer,
            restores,
            views: Arc::default(),
            swapper: Mutex::new(swapper),
            purger: Mutex::new(purger),
            started: Instant::now(),
        })
    }
}
