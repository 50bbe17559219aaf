//! Kafka I/O: the pipeline instance that ties a consumer group, tasks and
//! transactions together (client settings and internal topics are in
//! [`crate::clients`], shared with the module registry).
//!
//! - [`instance`]: one `weir run` process: the loop that polls, hands
//!   batches to tasks (one per sub-topology and partition number), commits
//!   or aborts in one place, and applies rebalances.
//!   Its parts: `startup`, `run_loop`, `gather` (polling), `round` (a round
//!   through the tasks), `settle` (after a rebalance), `boundary` (ending a
//!   transaction), `swaps`, `views`.
//! - `txn`: the commit protocol — transactions, offsets, aborts, rewinds.
//! - `rebalance`: the consumer's rebalance callbacks.
//! - [`purge`]: deleting repartition records the group has committed past.
//! - [`restore`]: bringing a store up to the end of its changelog.
//! - [`global`]: reading global tables whole, and keeping them current.

mod boundary;
mod error;
mod gather;
pub mod global;
pub mod instance;
pub mod purge;
mod rebalance;
pub mod restore;
mod round;
mod run_loop;
mod settle;
mod startup;
mod swaps;
mod txn;
mod views;

pub use error::{InstanceError, TopicPartition};
pub use instance::{Instance, RunOptions};
