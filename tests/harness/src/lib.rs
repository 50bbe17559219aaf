//! Support for Weir's integration tests: a Kafka broker to run against, and a reader for what a
//! `read_committed` consumer would see in a topic.
//!
//! - [`broker`] starts the test broker (nisshi, in memory, on a free loopback port) once per test
//!   process, or uses an external one named by `WEIR_TEST_BOOTSTRAP`, and creates topics.
//! - [`committed`] reads a topic's committed output from the raw log, applying the transaction
//!   markers itself, as the Kafka consumer specification says: a second opinion beside
//!   librdkafka's `read_committed`, and the counts of committed, aborted and open records that
//!   crash tests need as evidence.
//! - [`proxy`] is a TCP proxy on loopback that can cut every connection to a broker and let them
//!   through again: a broker outage, with the broker still running
//!   ([`broker::Broker::start_nisshi_behind_proxy`]).
//! - [`wire`] is a small blocking Kafka protocol client over `std::net::TcpStream`, built on the
//!   `kafka-protocol` crate's message types. The modules above use it; tests can use it for a
//!   request the harness does not wrap (e.g. producing hand-built batches).
//!
//! A typical test:
//!
//! ```no_run
//! use std::time::Duration;
//! use weir_test_harness::broker::Broker;
//!
//! let broker = Broker::shared();
//! broker.create_topic("orders-out-7f3a", 3).unwrap();
//! // ... run a pipeline that writes transactionally to orders-out-7f3a ...
//! let records = broker.read_committed("orders-out-7f3a", Duration::from_secs(10)).unwrap();
//! assert_eq!(records.len(), 42);
//! ```

#![warn(missing_docs)]

pub mod broker;
pub mod committed;
mod error;
pub mod proxy;
pub mod wire;

pub use error::Error;
