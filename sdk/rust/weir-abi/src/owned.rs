//! Owned records and whole-batch conversions: for tests, tools and native
//! reference operators. The hot paths read in place and encode from
//! borrowed parts instead.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::results::{InputOr, OutputFields, OutputHeaders};
use crate::{DecodeError, EventEncoder, EventView, PairEncoder, PairView, ResultBatch, ResultEncoder, pairs};

/// One record header. Names need not be unique; order is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value; Kafka allows none.
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

/// A record produced by an operator, with its key and headers resolved (an
/// output that kept its input's has them here).
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

/// A failure an operator reported on purpose for one input.
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

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl core::error::Error for Failure {}

/// What an operator made of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventResult {
    /// Zero or more outputs.
    Outputs(Vec<Output>),
    /// A typed failure; the input goes to the stage's error policy.
    Failed(Failure),
}

/// Owned copies of borrowed headers.
pub(crate) fn owned_headers<'a>(headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Vec<Header> {
    headers
        .into_iter()
        .map(|(n, v)| Header {
            name: n.to_owned(),
            value: v.map(<[u8]>::to_vec),
        })
        .collect()
}

fn borrowed(headers: &[Header]) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
    headers.iter().map(|h| (h.name.as_str(), h.value.as_deref()))
}

impl EventView<'_> {
    /// An owned copy.
    pub fn to_event(&self) -> Event {
        Event {
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: owned_headers(self.headers),
            timestamp: self.timestamp,
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

impl PairView<'_> {
    /// An owned copy.
    pub fn to_pair(&self) -> Pair {
        Pair {
            key: self.key.map(<[u8]>::to_vec),
            left: self.left.map(<[u8]>::to_vec),
            right: self.right.map(<[u8]>::to_vec),
            headers: owned_headers(self.headers),
            timestamp: self.timestamp,
        }
    }
}

impl EventEncoder {
    /// Appends an owned [`Event`].
    pub fn push_event(&mut self, e: &Event) {
        self.push(
            e.timestamp,
            &e.topic,
            e.partition,
            e.offset,
            e.key.as_deref(),
            e.value.as_deref(),
            borrowed(&e.headers),
        );
    }
}

/// Encodes owned events into one `event-batch`.
pub fn encode_events(events: &[Event]) -> EventEncoder {
    let mut enc = EventEncoder::new();
    for e in events {
        enc.push_event(e);
    }
    enc
}

/// Encodes owned pairs into one `join-batch`.
pub fn encode_pairs(pairs: &[Pair]) -> PairEncoder {
    let mut enc = PairEncoder::new();
    for p in pairs {
        enc.push(
            p.timestamp,
            p.key.as_deref(),
            p.left.as_deref(),
            p.right.as_deref(),
            borrowed(&p.headers),
        );
    }
    enc
}

/// Reads every pair of a `join-batch`, owned.
pub fn read_pairs(batch: &[u8]) -> Result<Vec<Pair>, DecodeError> {
    pairs(batch).map(|p| p.map(|p| p.to_pair())).collect()
}

/// Encodes owned results into a `result-batch` (outputs write every field;
/// none keeps its input's).
pub fn encode_results(results: &[EventResult]) -> Vec<u8> {
    let mut w = ResultEncoder::new();
    for r in results {
        w.begin();
        match r {
            EventResult::Outputs(outs) => {
                for o in outs {
                    let fields = OutputFields {
                        timestamp: o.timestamp,
                        key: InputOr::Own(o.key.as_deref()),
                        headers: InputOr::Own(OutputHeaders::list(borrowed(&o.headers))),
                        route: o.route.as_deref(),
                    };
                    w.output(fields, o.value.as_deref());
                }
            }
            EventResult::Failed(f) => w.fail(&f.code, &f.message),
        }
    }
    w.finish()
}

/// Decodes a `result-batch` of `expected` results without input events
/// into owned results (copies every field; [`ResultBatch`] reads them in
/// place).
pub fn decode_results(batch: &[u8], expected: usize) -> Result<Vec<EventResult>, DecodeError> {
    Ok(ResultBatch::decode(batch.to_vec(), expected)?.into_owned())
}
