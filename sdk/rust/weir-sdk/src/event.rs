//! Events as an operator sees them: borrowed views into the batch buffer.

use crate::codec::Reader;

/// One input record. Fields borrow from the batch the host sent, so reading
/// an event copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: Headers<'a>,
    timestamp: i64,
    /// Checked as UTF-8 when read ([`Event::topic`]): most operators never
    /// look at it.
    topic: &'a [u8],
    partition: i32,
    offset: i64,
}

impl<'a> Event<'a> {
    /// An event with this value and nothing else set, for tests:
    /// `Event::new(b"hello").with_key(b"k").with_timestamp(5)`.
    pub fn new(value: &'a [u8]) -> Self {
        Event {
            key: None,
            value: Some(value),
            headers: Headers::EMPTY,
            timestamp: 0,
            topic: b"",
            partition: 0,
            offset: 0,
        }
    }

    /// This event with a key.
    pub fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// This event with no value (a tombstone).
    pub fn without_value(mut self) -> Self {
        self.value = None;
        self
    }

    /// This event with a timestamp (ms).
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// This event with headers.
    pub fn with_headers(mut self, headers: &'a [(&'a str, Option<&'a [u8]>)]) -> Self {
        self.headers = Headers(HeadersRepr::List(headers));
        self
    }

    /// This event with a provenance.
    pub fn with_source(mut self, topic: &'a str, partition: i32, offset: i64) -> Self {
        (self.topic, self.partition, self.offset) = (topic.as_bytes(), partition, offset);
        self
    }

    /// Record key.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// Record value.
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// The value as UTF-8 text, if it is present and valid.
    pub fn value_str(&self) -> Option<&'a str> {
        self.value.and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The key as UTF-8 text, if it is present and valid.
    pub fn key_str(&self) -> Option<&'a str> {
        self.key.and_then(|k| std::str::from_utf8(k).ok())
    }

    /// Record headers, in order.
    pub fn headers(&self) -> Headers<'a> {
        self.headers
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Event time, ms since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Source topic.
    pub fn topic(&self) -> &'a str {
        // The host sends topic names, which are ASCII.
        std::str::from_utf8(self.topic).unwrap_or("")
    }

    /// Source partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Source offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Decodes the event at the reader's position (host data: trusted format).
    /// Inlined into the batch loop: once per record, and its result is
    /// otherwise returned through the guest's stack in memory.
    #[inline(always)]
    pub(crate) fn decode(r: &mut Reader<'a>) -> Option<Self> {
        let timestamp = r.i64()?;
        let partition = r.i32()?;
        let offset = r.i64()?;
        let topic = r.bytes()?;
        let key = r.opt_bytes()?;
        let value = r.opt_bytes()?;
        let count = r.u32()?;
        let start = r.position();
        for _ in 0..count {
            r.bytes()?;
            r.opt_bytes()?;
        }
        let raw = r.slice_from(start);
        Some(Event {
            key,
            value,
            headers: Headers(HeadersRepr::Raw { raw, count }),
            timestamp,
            topic,
            partition,
            offset,
        })
    }
}

/// The headers of an [`Event`]: iterate for `(name, value)` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a>(HeadersRepr<'a>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadersRepr<'a> {
    Raw { raw: &'a [u8], count: u32 },
    List(&'a [(&'a str, Option<&'a [u8]>)]),
}

impl<'a> Headers<'a> {
    pub(crate) const EMPTY: Headers<'static> = Headers(HeadersRepr::List(&[]));

    /// Headers as encoded in a batch (checked by the decoder).
    pub(crate) fn raw(raw: &'a [u8], count: u32) -> Self {
        Headers(HeadersRepr::Raw { raw, count })
    }

    /// The headers as a batch encodes them (after their count), when they
    /// came in one: outputs copy them in one piece.
    pub(crate) fn encoded(&self) -> Option<&'a [u8]> {
        match self.0 {
            HeadersRepr::Raw { raw, .. } => Some(raw),
            HeadersRepr::List(_) => None,
        }
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        match self.0 {
            HeadersRepr::Raw { count, .. } => count as usize,
            HeadersRepr::List(l) => l.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The headers in order.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        let (mut reader, mut list) = match self.0 {
            HeadersRepr::Raw { raw, count } => (Some((Reader::new(raw), count)), None),
            HeadersRepr::List(l) => (None, Some(l.iter())),
        };
        std::iter::from_fn(move || {
            if let Some(list) = list.as_mut() {
                return list.next().copied();
            }
            let (r, left) = reader.as_mut()?;
            if *left == 0 {
                return None;
            }
            *left -= 1;
            let name = std::str::from_utf8(r.bytes()?).unwrap_or("");
            Some((name, r.opt_bytes()?))
        })
    }
}
