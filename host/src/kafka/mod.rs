//! Kafka I/O: client configuration, the producer sink, and the pipeline
//! instance that ties a consumer group, tasks and transactions together.
//!
//! - [`clients`]: librdkafka settings Weir chooses, merged with the
//!   pipeline's `[kafka]` table, and the producer side of a task ([`clients::ProducerSink`]).
//! - [`instance`]: one `weir run` process: the loop that polls, hands
//!   batches to tasks (one per sub-topology and partition number), commits
//!   or aborts in one place, and applies rebalances.
//! - [`txn`]: the commit protocol — transactions, offsets, aborts, rewinds.
//! - [`rebalance`]: the consumer's rebalance callbacks.
//! - [`purge`]: deleting repartition records the group has committed past.
//! - [`restore`]: bringing a store up to the end of its changelog.
//! - [`topics`]: creating the internal repartition and changelog topics.
//! - [`global`]: reading global tables whole, and keeping them current.

pub mod clients;
pub mod global;
pub mod instance;
pub mod purge;
mod rebalance;
pub mod restore;
pub mod topics;
mod txn;

pub use instance::{Instance, InstanceError, RunOptions};
