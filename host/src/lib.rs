//! # Weir: a Kafka stream processor whose per-record logic is WebAssembly
//!
//! A map of the crate, in the order a record meets it.
//!
//! **What a pipeline is**
//! - [`pipeline`]: the pipeline file (TOML): inputs, a graph of stages
//!   (each names what it reads), outputs, guarantee, error policies.
//! - [`window`]: window rules as pure functions of event time: which
//!   windows an event is in, when one closes, how sessions merge.
//! - [`topology`]: the pipeline as Kafka Streams would see it — sources,
//!   stages, stores, sinks, sub-topologies cut at repartition topics, and
//!   where each stage's records go ([`topology::Hops`]); `weir topology`.
//!
//! **What runs a record**
//! - [`kafka`]: Kafka I/O only — the instance loop polls records, hands
//!   each topic partition's batch to its [`task::Task`], and commits or
//!   aborts in one place ([`kafka::instance`], `txn`, `rebalance`);
//!   restores and purges.
//! - [`clients`]: librdkafka settings, the producer sink, internal topics,
//!   and waiting out unreachable brokers ([`clients::retry`]), shared by
//!   the instance and the module registry.
//! - [`codec`]: the flat batch encoding: a batch of events goes into a
//!   guest in one buffer, results come back in one, read in place (the
//!   format is the `weir-abi` crate's, shared with the Rust SDK).
//! - [`task`]: the compiled pipeline ([`task::Chain`]) and the task — one
//!   sub-topology at one partition number, reading that partition of every
//!   source — that owns its stages.
//! - [`stage`]: the [`stage::Stage`] lifecycle (process a batch, timers,
//!   commit and abort, close; a guest stage also swaps and adopts,
//!   [`stage::GuestStage`]); each kind opens itself from the store it
//!   declared ([`stage::open()`]); its implementations:
//!   [`stage::process`] (a guest processor), [`stage::aggregate`]
//!   (keyed folds, windows, lateness, `update`/`final` emission), tables
//!   and joins; and [`stage::collector`]: where a stage's records go —
//!   routes, the stages that read it (run at once on one shared batch),
//!   repartition topics, sinks, dead letters under the error policy,
//!   changelogs — through a [`stage::collector::Sink`] (the producer
//!   inside the transaction, or memory).
//! - [`state`]: stores behind an engine trait (RocksDB, or memory), writes
//!   staged until Kafka commits them, with changelog checkpoints; stores are
//!   declared by stages up front ([`state::StoreSpec`]).
//! - [`runtime`]: wasmtime, sandbox limits, the compiled-module cache, and
//!   [`runtime::Operator`], a replaceable guest instance that turns batches
//!   into results and traps into typed errors.
//!
//! **Around it**
//! - [`swap`]: hot swap — follows the registry, compiles in the background,
//!   applies ready versions at transaction boundaries ([`swap::apply`]).
//! - [`registry`]: module versions and activations in compacted topics.
//! - [`status`]: what a running instance shows about itself (tasks,
//!   stores, restores, swaps, lag) and interactive queries of its state
//!   ([`status::query`]); filled by the instance, read by the admin server.
//! - [`admin`]: the admin HTTP API (`/metrics`, `/status`, `/stores`).
//! - [`testing`]: the broker-free driver (`weir test PIPELINE.toml`): the
//!   same tasks as `weir run`, with every topic and store in memory.
//! - [`shutdown`]: the one shutdown token every loop observes; a second
//!   signal exits at once.
//! - [`metrics`], [`contract`], [`event`], [`module`], [`componentize`],
//!   [`jsonl`], [`units`]: counters, the WIT contract as the host knows it,
//!   events and outputs, module metadata, core-module wrapping, the JSON
//!   lines format, durations and sizes.
//! - [`dev`], [`cli`]: `weir dev` (embedded broker, samples, live view) and
//!   the command line, one file per subcommand.
//!
//! A record's path: Kafka → [`kafka::Instance`] gathers it into its topic
//! partition's batch ([`codec::BatchEncoder`]) → [`task::Task::process`]
//! gives the batch to the stages that read its topic → each
//! [`stage::Stage`] hands its results to a [`stage::collector::Collector`] →
//! routed topics, repartition topics, sinks and dead letters go to the
//! [`stage::collector::Sink`] (the producer, inside the open transaction); the
//! stages that read this one get the outputs as their next batch → at the
//! commit interval the instance commits the transaction with the input
//! offsets, and the stores apply their staged writes.
//!
//! Modules import only what is below them: no import cycle between modules,
//! nor between the files of one folder (`.ci/imports` checks it in CI).

#![warn(missing_docs)]

pub mod admin;
pub mod cli;
pub mod clients;
pub mod codec;
pub mod componentize;
pub mod contract;
pub mod dev;
pub mod event;
pub mod jsonl;
pub mod kafka;
pub mod metrics;
pub mod module;
pub mod pipeline;
pub mod registry;
pub mod runtime;
pub mod shutdown;
pub mod stage;
pub mod state;
pub mod status;
pub mod swap;
pub mod task;
pub mod testing;
pub mod topology;
pub mod units;
pub mod window;
