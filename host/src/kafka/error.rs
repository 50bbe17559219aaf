//! Why an instance stops: every error of the Kafka loop, with the values
//! that caused it.

use std::path::PathBuf;
use std::time::Duration;

use super::global::GlobalError;
use super::restore::RestoreError;
use crate::clients::retry::Stopped;
use crate::clients::topics::TopicError;
use crate::state::StateError;
use crate::swap::SwapError;
use crate::task::{OpenError, TaskError, WorkersError};

/// Why an instance stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// librdkafka refused the configuration.
    #[error("cannot create the Kafka {client}: {reason} (check [kafka] in {})", file.display())]
    Client {
        /// `consumer` or `producer`.
        client: &'static str,
        /// The pipeline file.
        file: PathBuf,
        /// librdkafka's message.
        reason: String,
    },
    /// The brokers did not answer.
    #[error(
        "cannot reach Kafka at {bootstrap} within {timeout:?}: {reason}; is the broker running, \
         and is \"bootstrap.servers\" in [kafka] of {} right?", file.display()
    )]
    Unreachable {
        /// bootstrap.servers.
        bootstrap: String,
        /// How long we waited.
        timeout: Duration,
        /// librdkafka's message.
        reason: String,
        /// The pipeline file.
        file: PathBuf,
    },
    /// A global table could not be read.
    #[error(transparent)]
    Global(#[from] GlobalError),
    /// A stateful task would read inputs with different partition counts.
    #[error(transparent)]
    NotCoPartitioned(#[from] crate::topology::CoPartitionError),
    /// A record has no valid timestamp (none, or negative) and the
    /// pipeline's `timestamp-policy` is `fail`.
    #[error(
        "{topic}[{partition}] offset {offset}: the record's timestamp is {}, not a valid time; \
         set timestamp-policy = \"log-and-skip\" (skip such records) or \"wall-clock\" (give them \
         the wall clock's time) in {} to go on", .timestamp.map_or("absent".to_owned(), |t| t.to_string()), file.display()
    )]
    InvalidTimestamp {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// Its timestamp, if it has one.
        timestamp: Option<i64>,
        /// The pipeline file.
        file: PathBuf,
    },
    /// Topics the pipeline reads or writes do not exist.
    #[error("topic(s) {topics} do not exist; weir does not create topics, so create them and start again")]
    MissingTopics {
        /// Comma-separated names.
        topics: String,
    },
    /// Another producer with our transactional.id took over.
    #[error(
        "fenced: another instance now uses transactional.id {transactional_id} ({reason}); \
         run each instance of the application with its own --instance-id"
    )]
    Fenced {
        /// Our transactional.id.
        transactional_id: String,
        /// librdkafka's message.
        reason: String,
    },
    /// Another consumer joined the group with our `group.instance.id`
    /// (static membership): another instance runs with our instance id.
    #[error(
        "fenced: another instance joined the consumer group as {group_instance_id} ({reason}); \
         run each instance of the application with its own --instance-id"
    )]
    FencedMember {
        /// Our group.instance.id.
        group_instance_id: String,
        /// librdkafka's message.
        reason: String,
    },
    /// The consumer failed fatally (librdkafka cannot go on with it).
    #[error("the Kafka consumer failed: {reason}")]
    Consumer {
        /// librdkafka's message.
        reason: String,
    },
    /// A transaction operation failed in a way that cannot be recovered by aborting.
    #[error("Kafka transaction failed (transactional.id {transactional_id}): {reason}")]
    Transaction {
        /// Our transactional.id.
        transactional_id: String,
        /// librdkafka's message.
        reason: String,
    },
    /// A stop was requested while the instance waited for the brokers to
    /// come back.
    #[error(
        "{0}; nothing since the last commit is kept (Kafka aborts an open transaction), \
         so it is processed again at the next start"
    )]
    StoppedWaiting(#[from] Stopped),
    /// The consumer could not be positioned after an abort.
    #[error("cannot rewind {partitions} partition(s) to their last committed offsets after an abort: {reason}")]
    Rewind {
        /// How many partitions were to rewind.
        partitions: usize,
        /// librdkafka's message (naming the partition that failed).
        reason: String,
    },
    /// A task stopped (an event failed under `on-error = "fail"`, or a
    /// record could not be produced). Nothing after the last commit is kept.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A task could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// An internal topic could not be created.
    #[error(transparent)]
    Topics(#[from] TopicError),
    /// A state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A store could not be restored from its changelog.
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// The module registry could not be followed.
    #[error(transparent)]
    Swap(#[from] SwapError),
    /// The processing threads could not be started.
    #[error(transparent)]
    Workers(#[from] WorkersError),
}

/// A topic and a partition of it.
pub type TopicPartition = (String, i32);
