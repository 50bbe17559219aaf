//! Kafka I/O: client configuration, the producer sink, and the pipeline
//! instance that ties a consumer group, tasks and transactions together.
//!
//! - [`clients`]: librdkafka settings Weir chooses, merged with the
//!   pipeline's `[kafka]` table, and the producer side of a task ([`clients::ProducerSink`]).
//! - [`instance`]: one `weir run` process: consumer group membership, one
//!   task per assigned partition, and the commit protocol of each guarantee.
//! - [`purge`]: deleting repartition records the group has committed past.
//! - [`restore`]: bringing a store up to the end of its changelog.
//! - [`topics`]: creating the internal repartition and changelog topics.

pub mod clients;
pub mod instance;
pub mod purge;
pub mod restore;
pub mod topics;

pub use instance::{Instance, InstanceError, RunOptions};
