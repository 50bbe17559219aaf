//! The crate's error type: one enum, each variant carrying the values that caused it.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong talking to the broker, decoding its record batches, or starting
/// it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No TCP connection could be made to a broker.
    #[error("connecting to broker {addr}: {source}")]
    Connect {
        /// The `host:port` dialled.
        addr: String,
        /// Why the connection failed.
        #[source]
        source: io::Error,
    },

    /// Sending a request or reading its response failed (including a read timeout).
    #[error("{api} v{version} to broker {addr}: {source}")]
    Io {
        /// The broker's `host:port`.
        addr: String,
        /// The request's API name, e.g. `Fetch`.
        api: &'static str,
        /// The request's API version.
        version: i16,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// `kafka-protocol` refused to encode a request.
    #[error("encoding {api} v{version}: {detail}")]
    Encode {
        /// The request's API name.
        api: &'static str,
        /// The request's API version.
        version: i16,
        /// `kafka-protocol`'s explanation.
        detail: String,
    },

    /// A response could not be decoded.
    #[error("decoding the {api} v{version} response of broker {addr}: {detail}")]
    Decode {
        /// The broker's `host:port`.
        addr: String,
        /// The request's API name.
        api: &'static str,
        /// The request's API version.
        version: i16,
        /// What was wrong with it.
        detail: String,
    },

    /// A response carried another request's correlation id.
    #[error("broker {addr} answered {api} request {expected} with correlation id {found}")]
    Correlation {
        /// The broker's `host:port`.
        addr: String,
        /// The request's API name.
        api: &'static str,
        /// The correlation id sent.
        expected: i32,
        /// The correlation id received.
        found: i32,
    },

    /// The broker does not list an API this crate needs in its ApiVersions response.
    #[error("broker {addr} does not support {api}")]
    ApiMissing {
        /// The broker's `host:port`.
        addr: String,
        /// The API's name.
        api: &'static str,
    },

    /// The broker and this crate share no version of an API.
    #[error("broker {addr} supports {api} v{broker_min}..=v{broker_max}, this crate v{client_min}..=v{client_max}")]
    NoCommonVersion {
        /// The broker's `host:port`.
        addr: String,
        /// The API's name.
        api: &'static str,
        /// Oldest version the broker supports.
        broker_min: i16,
        /// Newest version the broker supports.
        broker_max: i16,
        /// Oldest version this crate can use.
        client_min: i16,
        /// Newest version this crate can use.
        client_max: i16,
    },

    /// A response's top-level error code was not `NONE`.
    #[error("broker {addr} answered {api} with error {code} ({name})")]
    Api {
        /// The broker's `host:port`.
        addr: String,
        /// The request's API name.
        api: &'static str,
        /// The Kafka error code.
        code: i16,
        /// The error code's name.
        name: String,
    },

    /// A topic-level error code in a Metadata or CreateTopics response.
    #[error("topic {topic}: {api} error {code} ({name}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Topic {
        /// The topic.
        topic: String,
        /// The request's API name.
        api: &'static str,
        /// The Kafka error code, e.g. 36 for `TOPIC_ALREADY_EXISTS`.
        code: i16,
        /// The error code's name.
        name: String,
        /// The broker's message, if it sent one.
        message: Option<String>,
    },

    /// A partition-level error code in a Metadata or Fetch response.
    #[error("topic {topic} partition {partition}: {api} error {code} ({name})")]
    Partition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The request's API name.
        api: &'static str,
        /// The Kafka error code.
        code: i16,
        /// The error code's name.
        name: String,
    },

    /// The Metadata response did not mention the topic asked for.
    #[error("broker {addr} returned no metadata for topic {topic}")]
    MissingTopic {
        /// The broker's `host:port`.
        addr: String,
        /// The topic.
        topic: String,
    },

    /// A partition's leader is not among the brokers of the Metadata response.
    #[error("topic {topic} partition {partition} is led by broker {leader}, which the metadata does not list")]
    UnknownLeader {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The leader's node id.
        leader: i32,
    },

    /// A record batch could not be decoded.
    #[error("partition {partition}: record batch at offset {offset}: {detail}")]
    Batch {
        /// The partition the batch came from.
        partition: i32,
        /// The batch's base offset.
        offset: i64,
        /// What was wrong with it.
        detail: String,
    },

    /// A record batch uses a message format older than v2 (magic 0 or 1).
    #[error("partition {partition}: record batch at offset {offset} has magic {magic}, only v2 batches are supported")]
    Magic {
        /// The partition the batch came from.
        partition: i32,
        /// The batch's base offset.
        offset: i64,
        /// The batch's magic byte.
        magic: i8,
    },

    /// A control record whose key is too short to hold a version and a type.
    #[error("partition {partition}: control record at offset {offset} has a {len}-byte key, a marker key has 4")]
    ControlKey {
        /// The partition the record came from.
        partition: i32,
        /// The record's offset.
        offset: i64,
        /// The key's length (0 for a null key).
        len: usize,
    },

    /// A partition was not read up to its end in time.
    #[error(
        "topic {topic} partition {partition}: read to offset {offset} of high watermark {high_watermark} \
         (last stable offset {last_stable}) in {waited:?}"
    )]
    Timeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The next offset to fetch.
        offset: i64,
        /// The partition's high watermark in the last response (-1 before any).
        high_watermark: i64,
        /// The partition's last stable offset in the last response (-1 before any).
        last_stable: i64,
        /// How long the read took.
        waited: Duration,
    },

    /// No free loopback port could be found for the broker.
    #[error("finding a free port on 127.0.0.1: {source}")]
    FreePort {
        /// The error from binding or reading the port.
        #[source]
        source: io::Error,
    },

    /// The broker's log file could not be created.
    #[error("creating broker log {}: {source}", path.display())]
    LogFile {
        /// The log file.
        path: PathBuf,
        /// Why it could not be created.
        #[source]
        source: io::Error,
    },

    /// A process could not be started.
    #[error("starting {}: {source}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why it did not start.
        #[source]
        source: io::Error,
    },

    /// The broker exited before it answered requests.
    #[error("broker for {bootstrap} exited with {status} before it answered requests; see {}", log.display())]
    BrokerExited {
        /// The address it was to listen on.
        bootstrap: String,
        /// How it exited.
        status: ExitStatus,
        /// Its log file.
        log: PathBuf,
    },

    /// The broker did not answer ApiVersions and Metadata in time.
    #[error("broker on {bootstrap} did not answer within {waited:?} (last: {last}); see {}", log.display())]
    BrokerNotReady {
        /// The address it listens on.
        bootstrap: String,
        /// How long it was given.
        waited: Duration,
        /// The last error seen.
        last: String,
        /// Its log file.
        log: PathBuf,
    },
}

impl Error {
    /// The Kafka error code this error carries, if it came from a response's error code.
    pub fn code(&self) -> Option<i16> {
        match self {
            Error::Api { code, .. } | Error::Topic { code, .. } | Error::Partition { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the error is a Kafka error that goes away by itself (e.g. a leader not elected yet
    /// right after the topic was created), so the request is worth sending again.
    pub fn is_retriable(&self) -> bool {
        self.code()
            .is_some_and(|code| kafka_protocol::ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable()))
    }
}

/// The name of a Kafka error code, e.g. `TopicAlreadyExists` for 36.
pub(crate) fn code_name(code: i16) -> String {
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(error) => error.to_string(),
        None => "NONE".to_owned(),
    }
}
