//! Records as the host sees them: events going into an operator, outputs coming out.
//!
//! These own their bytes; the hot path encodes straight from borrowed Kafka
//! records with [`crate::codec::BatchEncoder`] and never builds an [`Event`].

/// One Kafka record header. Names need not be unique and order is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value; Kafka allows null.
    pub value: Option<Vec<u8>>,
}

impl Header {
    /// A header with a value.
    pub fn new(name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// An input record, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub value: Option<Vec<u8>>,
    /// Record headers, in order.
    pub headers: Vec<Header>,
    /// Event time, ms since the Unix epoch.
    pub timestamp: i64,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// Two sides of a join, for a joiner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pair {
    /// The join key.
    pub key: Option<Vec<u8>>,
    /// The left side's value; `None`: no left record (an outer join).
    pub left: Option<Vec<u8>>,
    /// The right side's value; `None`: no right record (a left or outer join).
    pub right: Option<Vec<u8>>,
    /// Headers of the record that caused the join.
    pub headers: Vec<Header>,
    /// The result's timestamp, ms since the Unix epoch.
    pub timestamp: i64,
}

/// A record produced by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub value: Option<Vec<u8>>,
    /// Record headers, in order.
    pub headers: Vec<Header>,
    /// Event time; `None` keeps the input's.
    pub timestamp: Option<i64>,
    /// Named route; `None` is the stage's default next hop.
    pub route: Option<String>,
}

/// A failure an operator reported on purpose for one input event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Machine-readable cause, e.g. `invalid-json`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

impl Failure {
    /// A failure with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// What an operator made of one input event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventResult {
    /// Zero or more outputs.
    Outputs(Vec<Output>),
    /// A typed failure; the event goes to the stage's error policy.
    Failed(Failure),
}

/// A time window `[start, end)` in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}
