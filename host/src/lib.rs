//! # Weir: a Kafka stream processor whose per-record logic is WebAssembly
//!
//! A map of the crate, in the order a record flows through it:
//!
//! - [`contract`]: the WIT contract (`wit/weir.wit`) as the host knows it —
//!   interface names and operator kinds.
//! - [`event`]: events going into an operator and outputs coming out.
//! - [`codec`]: the flat batch encoding that carries a batch of events into a
//!   guest and its results back out, in one buffer each way.
//! - [`module`]: what a module is (digest, kind, SDK), read before it runs.
//! - [`runtime`]: wasmtime engine, sandbox limits, compiled-module cache, and
//!   [`runtime::Operator`] — a replaceable instance that turns batches into
//!   results and traps into typed errors.
//! - [`pipeline`]: the pipeline file (TOML): inputs, stages, outputs,
//!   guarantee, error policies, `[kafka]`.
//! - [`topology`]: the pipeline as Kafka Streams would see it — sources,
//!   stages, sinks, sub-topologies cut at repartition topics, internal
//!   topics — and its description (`weir topology`).
//! - [`task`]: the compiled stage chain ([`task::Chain`]) and the
//!   per-partition [`task::Task`] that runs batches through it, applies
//!   error policies and sends records to a [`task::Sink`].
//! - [`kafka`]: consumer group, producer, transactions — one
//!   [`kafka::Instance`] per `weir run` process.
//! - [`metrics`]: counters of a running pipeline.
//! - [`registry`]: the module registry — versions and the activation table in
//!   compacted control topics, modules chunked and digest-checked.
//! - [`swap`]: hot swap in a running instance — follows activations,
//!   compiles in the background, swaps at transaction boundaries, guards.
//! - [`admin`]: the admin HTTP API (`/metrics`, `/status`, `/stores`) of an instance.
//! - [`query`]: interactive queries over the committed state of a stage.
//! - [`window`]: window assignment, grace, closing and session-merge rules
//!   (pure functions of event time).
//! - [`aggregate`]: the `aggregate` stage of one task — grouping, folding,
//!   lateness, `update`/`final` emission, idle close.
//! - [`state`]: stores whose writes are applied only once Kafka has
//!   committed them, with changelog checkpoints, over an engine (RocksDB, or
//!   memory for tests and the driver).
//! - [`testing`]: the broker-free driver (`weir test PIPELINE.toml`): the
//!   same tasks as `weir run`, with every topic and store in memory.
//! - [`dev`]: `weir dev` — an in-process broker, sample data and a live view.
//! - [`componentize`]: turns a core module (C, or any language without
//!   component tooling) into a component that implements a Weir world.
//! - [`jsonl`]: the JSON-lines event format of `weir test`.
//! - [`units`]: durations and sizes as users write them (`"2s"`, `"256MiB"`).
//! - [`cli`]: the `weir` command line, one file per subcommand.
//!
//! Record flow: Kafka records → [`codec::BatchEncoder`] (per partition) →
//! [`runtime::Operator::process`] (one call per batch and stage) →
//! [`codec::ResultBatch`] (outputs read in place) → the next stage, an output
//! topic, or the stage's error policy → the producer, inside the instance's
//! transaction.

#![warn(missing_docs)]

pub mod admin;
pub mod cli;
pub mod codec;
pub mod collector;
pub mod componentize;
pub mod contract;
pub mod dev;
pub mod event;
pub mod jsonl;
pub mod kafka;
pub mod metrics;
pub mod module;
pub mod pipeline;
pub mod query;
pub mod registry;
pub mod runtime;
pub mod stage;
pub mod state;
pub mod swap;
pub mod task;
pub mod testing;
pub mod topology;
pub mod units;
