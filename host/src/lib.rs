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
//! - [`componentize`]: turns a core module (C, or any language without
//!   component tooling) into a component that implements a Weir world.
//! - [`jsonl`]: the JSON-lines event format of `weir test`.
//! - [`units`]: durations and sizes as users write them (`"2s"`, `"256MiB"`).
//! - [`cli`]: the `weir` command line, one file per subcommand.
//!
//! Record flow (for `weir test` today; Kafka tasks follow the same path):
//! input → [`codec::BatchEncoder`] → [`runtime::Operator::process`] (one call
//! per batch) → [`codec::ResultBatch`] (outputs read in place) → outputs, or
//! failures that go to the
//! stage's error policy.

#![warn(missing_docs)]

pub mod cli;
pub mod codec;
pub mod componentize;
pub mod contract;
pub mod event;
pub mod jsonl;
pub mod module;
pub mod runtime;
pub mod units;
