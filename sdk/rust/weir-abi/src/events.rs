//! `event-batch := u32 count, event{count}`, with
//! `event := s64 timestamp, s32 partition, s64 offset, str topic,
//! opt-bytes key, opt-bytes value, headers`.

use alloc::vec::Vec;

use crate::headers::{HeadersView, put_headers};
use crate::wire::{Pos, Reader, len32, opt_len, put_all, put_u32};
use crate::{DecodeError, Field};

/// The fewest bytes an event takes (an empty topic, no key, no value, no
/// headers): a count read from a buffer never sizes an allocation beyond
/// what the buffer could hold.
pub(crate) const MIN_EVENT: usize = 8 + 4 + 8 + 4 + 4 + 4 + 4;

/// One event of an `event-batch`, read in place: every field borrows from
/// the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventView<'a> {
    /// Event time, ms since the Unix epoch.
    pub timestamp: i64,
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Record key; `None`: the record has none.
    pub key: Option<&'a [u8]>,
    /// Record value; `None`: the record has none (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Record headers, in order.
    pub headers: HeadersView<'a>,
}

impl<'a> EventView<'a> {
    #[inline(always)]
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let timestamp = r.i64()?;
        let partition = r.i32()?;
        let offset = r.i64()?;
        let topic = r.str(Field::Topic)?;
        let key = r.opt_bytes()?;
        let value = r.opt_bytes()?;
        let headers = HeadersView::read(r)?;
        Ok(EventView {
            timestamp,
            topic,
            partition,
            offset,
            key,
            value,
            headers,
        })
    }
}

/// Reads the events of an `event-batch` in place, in order (see
/// [`events`]).
#[derive(Debug, Clone)]
pub struct Events<'a> {
    r: Reader<'a>,
    left: u32,
    /// What the next call reports instead of an event (a batch too short
    /// for its count); `done` after it.
    pending: Option<DecodeError>,
    done: bool,
}

/// Reads an `event-batch` in place: yields each event, then an error instead
/// of ending if bytes are left after the last one. After an error it yields
/// nothing more.
pub fn events(batch: &[u8]) -> Events<'_> {
    let mut r = Reader::new(batch);
    let (left, pending) = match r.u32() {
        Ok(left) => (left, None),
        Err(e) => (0, Some(e)),
    };
    Events {
        r,
        left,
        pending,
        done: false,
    }
}

impl<'a> Events<'a> {
    /// Events the batch announces that were not read yet.
    pub fn remaining(&self) -> u32 {
        self.left
    }

    /// After the last event: what is wrong with the batch, once.
    #[cold]
    fn end(&mut self) -> Option<Result<EventView<'a>, DecodeError>> {
        if core::mem::replace(&mut self.done, true) {
            return None;
        }
        match self.pending.take() {
            Some(e) => Some(Err(e)),
            None => self.r.finish().err().map(Err),
        }
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<EventView<'a>, DecodeError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left > 0 {
            self.left -= 1;
            let e = EventView::read(&mut self.r);
            if e.is_err() {
                self.left = 0;
                self.done = true;
            }
            return Some(e);
        }
        self.end()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.remaining() as usize;
        (0, Some(left.saturating_add(1)))
    }
}

/// Reads every event of an `event-batch` in place, checking the whole batch.
pub fn read_events(batch: &[u8]) -> Result<Vec<EventView<'_>>, DecodeError> {
    let mut out = Vec::with_capacity((count_or_zero(batch) as usize).min(batch.len() / MIN_EVENT));
    for e in events(batch) {
        out.push(e?);
    }
    Ok(out)
}

pub(crate) fn count_or_zero(batch: &[u8]) -> u32 {
    crate::count(batch).unwrap_or(0)
}

/// Where an event's key and headers are in the batch that holds it, for
/// outputs that keep them (flags `INPUT_KEY`, `INPUT_HEADERS`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kept {
    pub(crate) key: Pos,
    /// The encoded headers after their count.
    pub(crate) headers: Pos,
    pub(crate) header_count: u32,
}

impl Kept {
    /// The positions of an event read from `batch` (below 4 GiB).
    pub(crate) fn of(batch: &[u8], e: &EventView<'_>) -> Kept {
        let at = |s: &[u8]| Pos {
            start: (s.as_ptr() as usize - batch.as_ptr() as usize) as u32,
            len: len32(s),
        };
        Kept {
            key: e.key.map_or(Pos::ABSENT, at),
            headers: at(e.headers.encoded()),
            header_count: e.headers.len() as u32,
        }
    }
}

/// Builds an `event-batch` by appending events from borrowed parts, noting
/// where each one's key and headers are, so that a result batch can read
/// the outputs that keep them ([`ResultBatch::decode_for`](crate::ResultBatch::decode_for)).
/// [`clear`](EventEncoder::clear) keeps both allocations for the next batch.
#[derive(Debug, Clone)]
pub struct EventEncoder {
    buf: Vec<u8>,
    kept: Vec<Kept>,
}

impl Default for EventEncoder {
    fn default() -> Self {
        EventEncoder::new()
    }
}

impl EventEncoder {
    /// An empty batch.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(4096);
        put_u32(&mut buf, 0);
        EventEncoder { buf, kept: Vec::new() }
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        put_u32(&mut self.buf, 0);
        self.kept.clear();
    }

    /// Number of events appended.
    #[inline]
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// True when no event was appended.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Appends one event from borrowed parts: a Kafka record's fields,
    /// without building a record. Headers are `(name, value)`, `None` for a
    /// header without a value.
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the fields of a Kafka record without building one"
    )]
    #[inline]
    pub fn push<'h>(
        &mut self,
        timestamp: i64,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    ) {
        let b = &mut self.buf;
        // Offsets past 4 GiB are not exact; `ResultBatch` refuses such
        // batches before reading any.
        let key_at = (b.len() + 24 + topic.len()) as u32 + 4;
        put_all(
            b,
            [
                &timestamp.to_le_bytes(),
                &partition.to_le_bytes(),
                &offset.to_le_bytes(),
                &(topic.len() as u32).to_le_bytes(),
                topic.as_bytes(),
                &opt_len(key),
                key.unwrap_or_default(),
                &opt_len(value),
                value.unwrap_or_default(),
            ],
        );
        let headers_at = b.len() + 4;
        let header_count = put_headers(b, HeadersView::EMPTY, headers);
        self.kept.push(Kept {
            key: key.map_or(Pos::ABSENT, |k| Pos {
                start: key_at,
                len: len32(k),
            }),
            headers: Pos {
                start: headers_at as u32,
                len: (b.len() - headers_at) as u32,
            },
            header_count,
        });
        let n = self.kept.len() as u32;
        crate::wire::patch_u32(&mut self.buf, 0, n);
    }

    /// Appends an event read from another batch.
    pub fn push_view(&mut self, e: &EventView<'_>) {
        self.push(e.timestamp, e.topic, e.partition, e.offset, e.key, e.value, e.headers);
    }

    /// The encoded batch.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded batch as a vector (what generated bindings take).
    #[inline]
    pub fn as_vec(&self) -> &Vec<u8> {
        &self.buf
    }

    /// The encoded batch, ending the encoder.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn kept(&self) -> &[Kept] {
        &self.kept
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    #[test]
    fn an_event_is_laid_out_as_the_wit_says() {
        let mut enc = EventEncoder::new();
        enc.push(7, "t", 2, 9, None, Some(b"v"), [("h", Some(&b"x"[..]))]);
        let mut want = vec![1, 0, 0, 0];
        want.extend_from_slice(&7i64.to_le_bytes());
        want.extend_from_slice(&2i32.to_le_bytes());
        want.extend_from_slice(&9i64.to_le_bytes());
        want.extend_from_slice(&[1, 0, 0, 0, b't']);
        want.extend_from_slice(&[0xff; 4]);
        want.extend_from_slice(&[1, 0, 0, 0, b'v']);
        want.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, b'h', 1, 0, 0, 0, b'x']);
        assert_eq!(enc.as_bytes(), &want[..]);
    }

    #[test]
    fn events_read_back_as_pushed_and_trailing_bytes_are_named() {
        let mut enc = EventEncoder::new();
        enc.push(-3, "t", 2, 99, Some(b"k"), None, [("a", Some(&b"1"[..])), ("n", None)]);
        enc.push(0, "", 0, 0, None, Some(b""), []);
        let got = read_events(enc.as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].timestamp, got[0].topic, got[0].partition), (-3, "t", 2));
        assert_eq!((got[0].offset, got[0].key, got[0].value), (99, Some(&b"k"[..]), None));
        assert_eq!(
            got[0].headers.iter().collect::<Vec<_>>(),
            [("a", Some(&b"1"[..])), ("n", None)]
        );
        assert_eq!(
            (got[1].key, got[1].value, got[1].headers.len()),
            (None, Some(&b""[..]), 0)
        );
        let mut long = enc.as_bytes().to_vec();
        long.push(0);
        assert_eq!(
            read_events(&long),
            Err(DecodeError::Trailing {
                at: long.len() - 1,
                extra: 1
            })
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut enc = EventEncoder::new();
        enc.push(1, "topic", 0, 5, Some(b"key"), Some(b"value"), [("h", Some(&b"v"[..]))]);
        let bytes = enc.as_bytes();
        for cut in 0..bytes.len() {
            assert!(read_events(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn an_error_ends_the_iteration() {
        let mut enc = EventEncoder::new();
        enc.push(1, "t", 0, 5, None, None, []);
        enc.push(2, "t", 0, 6, None, None, []);
        let bytes = enc.as_bytes();
        let cut: Vec<_> = events(&bytes[..bytes.len() - 1]).collect();
        assert!(matches!(cut[..], [Ok(_), Err(DecodeError::Truncated { .. })]));
        let mut long = bytes.to_vec();
        long.extend([0, 0]);
        let extra: Vec<_> = events(&long).collect();
        assert!(matches!(
            extra[..],
            [Ok(_), Ok(_), Err(DecodeError::Trailing { extra: 2, .. })]
        ));
        let short: Vec<_> = events(&[1, 0]).collect();
        assert_eq!(
            short,
            [Err(DecodeError::Truncated {
                at: 0,
                needed: 4,
                len: 2
            })]
        );
    }

    #[test]
    fn a_huge_count_allocates_nothing_for_it() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0];
        assert!(matches!(read_events(&bytes), Err(DecodeError::Truncated { at: 4, .. })));
    }

    #[test]
    fn a_topic_or_header_name_that_is_not_utf8_is_refused() {
        let mut enc = EventEncoder::new();
        enc.push(1, "ab", 0, 5, None, None, [("cd", None)]);
        let mut bad = enc.as_bytes().to_vec();
        bad[28] = 0xff;
        assert_eq!(
            read_events(&bad),
            Err(DecodeError::NotUtf8 {
                field: Field::Topic,
                at: 28
            })
        );
        let mut bad = enc.as_bytes().to_vec();
        let at = bad.len() - 4 - 2;
        bad[at] = 0xc0;
        assert_eq!(
            read_events(&bad),
            Err(DecodeError::NotUtf8 {
                field: Field::HeaderName,
                at
            })
        );
    }
}
