//! Events as an operator sees them: borrowed views into the batch buffer.

use weir_abi::{EventView, HeadersView};

/// One input record. Fields borrow from the batch the host sent, so reading
/// an event copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: Headers<'a>,
    timestamp: i64,
    topic: &'a str,
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
            topic: "",
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
        (self.topic, self.partition, self.offset) = (topic, partition, offset);
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
        self.topic
    }

    /// Source partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Source offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The event as read from a batch.
    #[inline(always)]
    pub(crate) fn from_view(e: EventView<'a>) -> Self {
        Event {
            key: e.key,
            value: e.value,
            headers: Headers(HeadersRepr::Raw(e.headers)),
            timestamp: e.timestamp,
            topic: e.topic,
            partition: e.partition,
            offset: e.offset,
        }
    }
}

/// The events of an `event-batch` from the host. The host writes it, so a
/// malformed batch is a host bug: reading stops there, says why in the
/// host's log, and the host, getting fewer results than it sent events,
/// reports the mismatch.
#[inline]
pub(crate) fn events(batch: &[u8]) -> Events<'_> {
    Events(weir_abi::events(batch))
}

/// Iterates the events of a batch (see [`events`]).
pub(crate) struct Events<'a>(weir_abi::Events<'a>);

impl<'a> Iterator for Events<'a> {
    type Item = Event<'a>;

    /// Inlined into the batch loop: once per record (a `map_while` over
    /// the events was not, and cost a third of a small record's time).
    #[inline(always)]
    fn next(&mut self) -> Option<Event<'a>> {
        match self.0.next()? {
            Ok(e) => Some(Event::from_view(e)),
            Err(err) => {
                malformed("event batch", &err);
                None
            }
        }
    }
}

/// Says in the host's log why reading a batch from it stopped (out of the
/// loop that reads every event).
#[cold]
#[inline(never)]
pub(crate) fn malformed(what: &str, err: &weir_abi::DecodeError) {
    crate::log::error(&format!("{what} from the host: {err}"));
}

/// Encodes events as the host does (for the SDK's tests).
#[cfg(test)]
pub(crate) fn encode_events(events: &[Event<'_>]) -> Vec<u8> {
    let mut enc = weir_abi::EventEncoder::new();
    for e in events {
        enc.push(
            e.timestamp(),
            e.topic(),
            e.partition(),
            e.offset(),
            e.key(),
            e.value(),
            e.headers().iter(),
        );
    }
    enc.into_vec()
}

/// The headers of an [`Event`]: iterate for `(name, value)` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers<'a>(HeadersRepr<'a>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadersRepr<'a> {
    /// Read in place from a batch.
    Raw(HeadersView<'a>),
    /// Given by a test.
    List(&'a [(&'a str, Option<&'a [u8]>)]),
}

impl<'a> Headers<'a> {
    pub(crate) const EMPTY: Headers<'static> = Headers(HeadersRepr::List(&[]));

    /// Headers read from a batch.
    pub(crate) fn raw(view: HeadersView<'a>) -> Self {
        Headers(HeadersRepr::Raw(view))
    }

    /// The headers as read from a batch, when they came in one: outputs
    /// copy them in one piece.
    pub(crate) fn view(&self) -> Option<HeadersView<'a>> {
        match self.0 {
            HeadersRepr::Raw(view) => Some(view),
            HeadersRepr::List(_) => None,
        }
    }

    /// The headers given as a list (by a test), else none.
    pub(crate) fn list(&self) -> &'a [(&'a str, Option<&'a [u8]>)] {
        match self.0 {
            HeadersRepr::Raw(_) => &[],
            HeadersRepr::List(l) => l,
        }
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        match self.0 {
            HeadersRepr::Raw(view) => view.len(),
            HeadersRepr::List(l) => l.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The headers in order.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        let (view, list) = match self.0 {
            HeadersRepr::Raw(view) => (view, &[][..]),
            HeadersRepr::List(l) => (HeadersView::EMPTY, l),
        };
        view.iter().chain(list.iter().copied())
    }
}
