//! Records as the host sees them: events going into an operator, outputs coming out.
//!
//! These own their bytes; the hot path encodes straight from borrowed Kafka
//! records with [`crate::codec::BatchEncoder`] and never builds an [`Event`].
//! The record types are the batch ABI's (`weir-abi`), shared with the Rust
//! SDK; windows are the host's.

pub use weir_abi::{Event, EventResult, Failure, Header, Output, Pair};

/// A time window `[start, end)` in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}
