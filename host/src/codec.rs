//! The flat batch encoding that crosses the component boundary.
//!
//! `wit/weir.wit` specifies the format. One buffer goes in per batch and one
//! comes out, so the canonical ABI copies two byte lists per call instead of
//! allocating per record and per field. The host encodes events from borrowed
//! data (no intermediate [`Event`] needed) and decodes results into owned
//! [`Output`]s, checking every length against the buffer: a guest's result is
//! untrusted input.

use crate::event::{Event, EventResult, Failure, Header, Output};

const NONE_LEN: u32 = u32::MAX;
const FLAG_TIMESTAMP: u8 = 1;
const FLAG_ROUTE: u8 = 2;

/// A malformed `result-batch` returned by a guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The buffer ended in the middle of a field.
    #[error("result batch truncated at byte {at} (needed {needed} more bytes of {len})")]
    Truncated {
        /// Offset where reading stopped.
        at: usize,
        /// Bytes that were still needed.
        needed: usize,
        /// Buffer length.
        len: usize,
    },
    /// A result had a tag other than 0 (outputs) or 1 (failure).
    #[error("result {index} has unknown tag {tag}")]
    BadTag {
        /// Index of the result in the batch.
        index: usize,
        /// The tag found.
        tag: u8,
    },
    /// The guest returned a different number of results than events it got.
    #[error("expected {expected} results (one per input), got {found}")]
    CountMismatch {
        /// Events sent.
        expected: usize,
        /// Results returned.
        found: usize,
    },
    /// A string field was not UTF-8.
    #[error("{field} at byte {at} is not UTF-8")]
    NotUtf8 {
        /// Which field.
        field: &'static str,
        /// Its offset.
        at: usize,
    },
    /// An output's flags byte has bits the format does not define.
    #[error("output at byte {at} has unknown flag bits {flags:#04x}")]
    BadFlags {
        /// Offset of the flags byte.
        at: usize,
        /// The flags found.
        flags: u8,
    },
    /// A failure names an event the group does not have.
    #[error("failure for event {index} of a group of {len}")]
    BadIndex {
        /// The index reported.
        index: u32,
        /// Events in the group.
        len: u32,
    },
    /// Bytes were left over after the last result.
    #[error("{extra} trailing bytes after the last result")]
    Trailing {
        /// How many.
        extra: usize,
    },
}

/// Builds an `event-batch` buffer.
#[derive(Debug, Default, Clone)]
pub struct BatchEncoder {
    buf: Vec<u8>,
    count: u32,
}

impl BatchEncoder {
    /// An empty batch.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&0u32.to_le_bytes());
        BatchEncoder { buf, count: 0 }
    }

    /// Clears the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.count = 0;
    }

    /// Number of events pushed.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when no event was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends one event from borrowed parts.
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the fields of a Kafka record without building one"
    )]
    pub fn push<'a>(
        &mut self,
        timestamp: i64,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) {
        let b = &mut self.buf;
        b.extend_from_slice(&timestamp.to_le_bytes());
        b.extend_from_slice(&partition.to_le_bytes());
        b.extend_from_slice(&offset.to_le_bytes());
        put_bytes(b, topic.as_bytes());
        put_opt(b, key);
        put_opt(b, value);
        put_headers(b, headers);
        self.count += 1;
        self.buf[..4].copy_from_slice(&self.count.to_le_bytes());
    }

    /// Appends an owned [`Event`].
    pub fn push_event(&mut self, e: &Event) {
        self.push(
            e.timestamp,
            &e.topic,
            e.partition,
            e.offset,
            e.key.as_deref(),
            e.value.as_deref(),
            e.headers.iter().map(|h| (h.name.as_str(), h.value.as_deref())),
        );
    }

    /// The encoded batch.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The buffer as the generated bindings take it.
    pub(crate) fn buffer(&self) -> &Vec<u8> {
        &self.buf
    }
}

/// The number of events in an encoded `event-batch` (0 if it is too short).
pub fn batch_len(batch: &[u8]) -> u32 {
    batch
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Encodes owned events into one `event-batch`.
pub fn encode_events(events: &[Event]) -> BatchEncoder {
    let mut enc = BatchEncoder::new();
    for e in events {
        enc.push_event(e);
    }
    enc
}

fn put_bytes(b: &mut Vec<u8>, bytes: &[u8]) {
    // Lengths above u32::MAX - 1 cannot occur: Kafka records are far smaller.
    b.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    b.extend_from_slice(bytes);
}

fn put_opt(b: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => put_bytes(b, bytes),
        None => b.extend_from_slice(&NONE_LEN.to_le_bytes()),
    }
}

fn put_headers<'a>(b: &mut Vec<u8>, headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) {
    let count_at = b.len();
    b.extend_from_slice(&0u32.to_le_bytes());
    let mut n = 0u32;
    for (name, value) in headers {
        put_bytes(b, name.as_bytes());
        put_opt(b, value);
        n += 1;
    }
    b[count_at..count_at + 4].copy_from_slice(&n.to_le_bytes());
}

/// Encodes results into a `result-batch` (what a guest returns); used by tests
/// and by native reference operators.
pub fn encode_results(results: &[EventResult]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(results.len() as u32).to_le_bytes());
    for r in results {
        match r {
            EventResult::Outputs(outs) => {
                b.push(0);
                b.extend_from_slice(&(outs.len() as u32).to_le_bytes());
                for o in outs {
                    let flags =
                        (u8::from(o.timestamp.is_some()) * FLAG_TIMESTAMP) | (u8::from(o.route.is_some()) * FLAG_ROUTE);
                    b.push(flags);
                    if let Some(ts) = o.timestamp {
                        b.extend_from_slice(&ts.to_le_bytes());
                    }
                    put_opt(&mut b, o.key.as_deref());
                    put_opt(&mut b, o.value.as_deref());
                    put_headers(&mut b, o.headers.iter().map(|h| (h.name.as_str(), h.value.as_deref())));
                    if let Some(route) = &o.route {
                        put_bytes(&mut b, route.as_bytes());
                    }
                }
            }
            EventResult::Failed(f) => {
                b.push(1);
                put_bytes(&mut b, f.code.as_bytes());
                put_bytes(&mut b, f.message.as_bytes());
            }
        }
    }
    b
}

/// Decodes a guest's `result-batch`, which must hold exactly `expected` results.
pub fn decode_results(buf: &[u8], expected: usize) -> Result<Vec<EventResult>, CodecError> {
    let mut r = Reader { buf, at: 0 };
    let count = r.u32()? as usize;
    if count != expected {
        return Err(CodecError::CountMismatch { expected, found: count });
    }
    // Never preallocate beyond what the buffer could encode: a result takes at
    // least 5 bytes, an output 13 and a header 8.
    let mut results = Vec::with_capacity(count.min(buf.len() / 5));
    for index in 0..count {
        match r.u8()? {
            0 => {
                let n = r.u32()? as usize;
                let mut outs = Vec::with_capacity(n.min(r.remaining() / 13));
                for _ in 0..n {
                    outs.push(r.output()?);
                }
                results.push(EventResult::Outputs(outs));
            }
            1 => {
                let code = r.string("failure code")?;
                let message = r.string("failure message")?;
                results.push(EventResult::Failed(Failure { code, message }));
            }
            tag => return Err(CodecError::BadTag { index, tag }),
        }
    }
    if r.remaining() != 0 {
        return Err(CodecError::Trailing { extra: r.remaining() });
    }
    Ok(results)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.remaining() < n {
            return Err(CodecError::Truncated {
                at: self.at,
                needed: n,
                len: self.buf.len(),
            });
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn opt(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        let n = self.u32()?;
        if n == NONE_LEN {
            return Ok(None);
        }
        Ok(Some(self.take(n as usize)?.to_vec()))
    }

    fn string(&mut self, field: &'static str) -> Result<String, CodecError> {
        let at = self.at;
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| CodecError::NotUtf8 { field, at })
    }

    fn output(&mut self) -> Result<Output, CodecError> {
        let at = self.at;
        let flags = self.u8()?;
        if flags & !(FLAG_TIMESTAMP | FLAG_ROUTE) != 0 {
            return Err(CodecError::BadFlags { at, flags });
        }
        let timestamp = if flags & FLAG_TIMESTAMP != 0 {
            Some(self.i64()?)
        } else {
            None
        };
        let key = self.opt()?;
        let value = self.opt()?;
        let n = self.u32()? as usize;
        let mut headers = Vec::with_capacity(n.min(self.remaining() / 8));
        for _ in 0..n {
            let name = self.string("header name")?;
            let value = self.opt()?;
            headers.push(Header { name, value });
        }
        let route = if flags & FLAG_ROUTE != 0 {
            Some(self.string("route")?)
        } else {
            None
        };
        Ok(Output {
            key,
            value,
            headers,
            timestamp,
            route,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(value: &str) -> Output {
        Output {
            value: Some(value.into()),
            ..Output::default()
        }
    }

    #[test]
    fn results_round_trip_with_every_field() {
        let results = vec![
            EventResult::Outputs(vec![]),
            EventResult::Outputs(vec![
                Output {
                    key: Some(b"k".to_vec()),
                    value: None,
                    headers: vec![
                        Header::new("a", "1"),
                        Header {
                            name: "n".into(),
                            value: None,
                        },
                    ],
                    timestamp: Some(-5),
                    route: Some("errors".into()),
                },
                out("x"),
            ]),
            EventResult::Failed(Failure {
                code: "invalid-json".into(),
                message: "bad".into(),
            }),
        ];
        let bytes = encode_results(&results);
        assert_eq!(decode_results(&bytes, 3).unwrap(), results);
    }

    #[test]
    fn event_batch_layout_matches_the_wit_spec() {
        let mut enc = BatchEncoder::new();
        enc.push(7, "t", 2, 9, None, Some(b"v"), [("h", Some(&b"x"[..]))]);
        let b = enc.as_bytes();
        let mut want = vec![1, 0, 0, 0];
        want.extend_from_slice(&7i64.to_le_bytes());
        want.extend_from_slice(&2i32.to_le_bytes());
        want.extend_from_slice(&9i64.to_le_bytes());
        want.extend_from_slice(&[1, 0, 0, 0, b't']);
        want.extend_from_slice(&[0xff; 4]);
        want.extend_from_slice(&[1, 0, 0, 0, b'v']);
        want.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, b'h', 1, 0, 0, 0, b'x']);
        assert_eq!(b, &want[..]);
    }

    #[test]
    fn wrong_count_is_rejected() {
        let bytes = encode_results(&[EventResult::Outputs(vec![])]);
        assert_eq!(
            decode_results(&bytes, 2),
            Err(CodecError::CountMismatch { expected: 2, found: 1 })
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode_results(&[EventResult::Outputs(vec![out("hello")]), EventResult::Outputs(vec![])]);
        for cut in 0..bytes.len() {
            assert!(decode_results(&bytes[..cut], 2).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn huge_lengths_do_not_allocate() {
        // count = 1, tag 0, n = u32::MAX outputs: must fail on truncation, not OOM.
        let bytes = [1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(decode_results(&bytes, 1), Err(CodecError::Truncated { .. })));
    }

    #[test]
    fn a_count_far_beyond_the_buffer_fails_cleanly() {
        // One result claiming u32::MAX outputs, followed by 1 MiB of zeros.
        let mut bytes = vec![1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        bytes.resize(bytes.len() + (1 << 20), 0);
        assert!(decode_results(&bytes, 1).is_err());
    }

    #[test]
    fn unknown_output_flags_are_refused() {
        let bytes = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0x80];
        assert_eq!(
            decode_results(&bytes, 1),
            Err(CodecError::BadFlags { at: 9, flags: 0x80 })
        );
    }

    #[test]
    fn bad_tag_and_trailing_bytes_are_named() {
        assert_eq!(
            decode_results(&[1, 0, 0, 0, 9], 1),
            Err(CodecError::BadTag { index: 0, tag: 9 })
        );
        assert_eq!(
            decode_results(&[0, 0, 0, 0, 1], 0),
            Err(CodecError::Trailing { extra: 1 })
        );
    }
}
