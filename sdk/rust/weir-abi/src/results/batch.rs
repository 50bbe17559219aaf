//! Reading a `result-batch` from a guest: checked once, then read in place.

use alloc::borrow::ToOwned;
use alloc::vec::Vec;

use crate::events::{Kept, MIN_EVENT, events};
use crate::headers::HeadersView;
use crate::owned::{EventResult, Failure, Output, encode_results};
use crate::wire::{Pos, Reader, Span};
use crate::{DecodeError, EventEncoder, Field, NONE_LEN, TAG_FAILURE, TAG_OUTPUTS, flags};

/// A result takes at least 5 bytes (a tag and a count).
const MIN_RESULT: usize = 5;
/// An output takes at least 13 bytes (flags, a value length, a header count
/// and a key length).
const MIN_OUTPUT: usize = 13;

/// A guest's `result-batch`, checked once and then read in place: outputs
/// borrow their keys, values and headers from the buffer the guest
/// returned, or, where an output keeps its input event's key or headers,
/// from the `event-batch` the guest was given (`'i`). Checking is a single
/// pass that allocates two vectors per batch, none per record.
#[derive(Debug, Clone)]
pub struct ResultBatch<'i> {
    buf: Vec<u8>,
    input: &'i [u8],
    entries: Vec<Entry>,
    outputs: Vec<OutputPos>,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Outputs { first: u32, count: u32 },
    Failed { code: Pos, message: Pos },
}

#[derive(Debug, Clone, Copy)]
struct OutputPos {
    /// Meaningful when `flags` has `TIMESTAMP`.
    timestamp: i64,
    /// In the input batch when `flags` has `INPUT_KEY`.
    key: Pos,
    value: Pos,
    /// In the input batch when `flags` has `INPUT_HEADERS`: the encoded
    /// headers after their count.
    headers: Pos,
    route: Pos,
    header_count: u32,
    flags: u8,
}

impl ResultBatch<'static> {
    /// Checks a `result-batch` of a call without input events (a joiner's,
    /// an aggregator's): it must hold exactly `expected` results, and no
    /// output may keep an input's key or headers.
    pub fn decode(buf: Vec<u8>, expected: usize) -> Result<Self, DecodeError> {
        Self::check(buf, expected, None)
    }

    /// A batch of owned results (e.g. the host's own, after isolating a
    /// trap). [`encode_results`] writes exactly what `decode` reads, so an
    /// error is a bug in this crate, which the caller must not paper over.
    pub fn from_results(results: &[EventResult]) -> Result<Self, DecodeError> {
        Self::decode(encode_results(results), results.len())
    }
}

impl<'i> ResultBatch<'i> {
    /// Checks a `result-batch` for the events of `input`: one result per
    /// event, and outputs that keep their event's key or headers read them
    /// from `input`.
    pub fn decode_for(buf: Vec<u8>, input: &'i EventEncoder) -> Result<Self, DecodeError> {
        Self::check(buf, input.len(), Some((input.as_bytes(), input.kept())))
    }

    /// The same for an `event-batch` given as bytes, which is read (and
    /// checked) first to find each event's key and headers; an error may be
    /// about either buffer.
    pub fn decode_for_batch(buf: Vec<u8>, input: &'i [u8]) -> Result<Self, DecodeError> {
        if input.len() >= NONE_LEN as usize {
            return Err(DecodeError::TooLarge { len: input.len() });
        }
        let mut kept = Vec::with_capacity((crate::events::count_or_zero(input) as usize).min(input.len() / MIN_EVENT));
        for e in events(input) {
            kept.push(Kept::of(input, &e?));
        }
        Self::check(buf, kept.len(), Some((input, &kept)))
    }

    fn check(buf: Vec<u8>, expected: usize, input: Option<(&'i [u8], &[Kept])>) -> Result<Self, DecodeError> {
        for len in [buf.len(), input.map_or(0, |(b, _)| b.len())] {
            if len >= NONE_LEN as usize {
                return Err(DecodeError::TooLarge { len });
            }
        }
        let events = input.map(|(_, kept)| kept);
        let mut r = Reader::new(&buf);
        let count = r.u32()? as usize;
        if count != expected {
            return Err(DecodeError::CountMismatch { expected, found: count });
        }
        // Never preallocate beyond what the buffer could encode.
        let mut entries = Vec::with_capacity(count.min(buf.len() / MIN_RESULT));
        let mut outputs = Vec::with_capacity(count.min(buf.len() / MIN_OUTPUT));
        for index in 0..count {
            let at = r.position();
            match r.u8()? {
                TAG_OUTPUTS => {
                    let n = r.u32()?;
                    // Fewer outputs than buffer bytes, so below 4 GiB.
                    let first = outputs.len() as u32;
                    for _ in 0..n {
                        outputs.push(read_output(&mut r, events.and_then(|e| e.get(index)))?);
                    }
                    entries.push(Entry::Outputs { first, count: n });
                }
                TAG_FAILURE => {
                    let code = Pos::of(r.str_span(Field::FailureCode)?);
                    let message = Pos::of(r.str_span(Field::FailureMessage)?);
                    entries.push(Entry::Failed { code, message });
                }
                tag => return Err(DecodeError::BadTag { index, at, tag }),
            }
        }
        r.finish()?;
        Ok(ResultBatch {
            buf,
            input: input.map_or(&[], |(b, _)| b),
            entries,
            outputs,
        })
    }

    /// Number of results (one per input).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The batch as the guest returned it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The buffer, for reuse.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// The results in input order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = ResultRef<'_>> {
        self.entries.iter().map(|e| self.entry(*e))
    }

    #[inline]
    fn entry(&self, e: Entry) -> ResultRef<'_> {
        // Checked as UTF-8 by `check`.
        let text = |p: Pos| core::str::from_utf8(p.of_buf(&self.buf)).unwrap_or_default();
        match e {
            Entry::Outputs { first, count } => ResultRef::Outputs(OutputsRef {
                buf: &self.buf,
                input: self.input,
                outputs: self
                    .outputs
                    .get(first as usize..)
                    .and_then(|o| o.get(..count as usize))
                    .unwrap_or_default(),
            }),
            Entry::Failed { code, message } => ResultRef::Failed {
                code: text(code),
                message: text(message),
            },
        }
    }

    /// Owned copies of every result.
    pub fn into_owned(self) -> Vec<EventResult> {
        self.iter()
            .map(|r| match r {
                ResultRef::Outputs(outs) => EventResult::Outputs(outs.iter().map(|o| o.to_output()).collect()),
                ResultRef::Failed { code, message } => EventResult::Failed(Failure {
                    code: code.to_owned(),
                    message: message.to_owned(),
                }),
            })
            .collect()
    }
}

/// One output of the result of an input whose key and headers are at
/// `kept` in the input batch (`None`: these results have no input events).
#[inline]
fn read_output(r: &mut Reader<'_>, kept: Option<&Kept>) -> Result<OutputPos, DecodeError> {
    let at = r.position();
    let flags = r.u8()?;
    if flags & !flags::ALL != 0 {
        return Err(DecodeError::BadFlags { at, flags });
    }
    let keeps = flags & (flags::INPUT_KEY | flags::INPUT_HEADERS) != 0;
    let kept = match kept {
        Some(k) if keeps => Some(*k),
        None if keeps => return Err(DecodeError::NoInput { at, flags }),
        _ => None,
    };
    let timestamp = if flags & flags::TIMESTAMP != 0 { r.i64()? } else { 0 };
    let key = match kept {
        Some(input) if flags & flags::INPUT_KEY != 0 => input.key,
        _ => Pos::opt(r.opt_span()?),
    };
    let value = Pos::opt(r.opt_span()?);
    let (headers, header_count) = match kept {
        Some(input) if flags & flags::INPUT_HEADERS != 0 => (input.headers, input.header_count),
        _ => {
            let start = r.position();
            let view = HeadersView::read(r)?;
            let block = Span {
                start: start + 4,
                len: view.encoded().len(),
            };
            (Pos::of(block), view.len() as u32)
        }
    };
    let route = if flags & flags::ROUTE != 0 {
        Pos::of(r.str_span(Field::Route)?)
    } else {
        Pos::ABSENT
    };
    Ok(OutputPos {
        timestamp,
        key,
        value,
        headers,
        route,
        header_count,
        flags,
    })
}

/// What an operator made of one input, borrowed from a [`ResultBatch`].
#[derive(Debug, Clone, Copy)]
pub enum ResultRef<'a> {
    /// Zero or more outputs.
    Outputs(OutputsRef<'a>),
    /// A typed failure.
    Failed {
        /// Machine-readable cause.
        code: &'a str,
        /// Human-readable message.
        message: &'a str,
    },
}

/// The outputs of one input.
#[derive(Debug, Clone, Copy)]
pub struct OutputsRef<'a> {
    buf: &'a [u8],
    input: &'a [u8],
    outputs: &'a [OutputPos],
}

impl<'a> OutputsRef<'a> {
    /// Number of outputs.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// The outputs in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = OutputRef<'a>> + 'a {
        let (buf, input) = (self.buf, self.input);
        self.outputs.iter().map(move |pos| OutputRef { buf, input, pos: *pos })
    }
}

/// One output, borrowed from a [`ResultBatch`] (and, for a key or headers
/// kept from the input, from its input batch).
#[derive(Debug, Clone, Copy)]
pub struct OutputRef<'a> {
    buf: &'a [u8],
    input: &'a [u8],
    pos: OutputPos,
}

impl<'a> OutputRef<'a> {
    /// The buffer a field is in: the input batch when `flag` is set.
    #[inline]
    fn source(&self, flag: u8) -> &'a [u8] {
        if self.pos.flags & flag != 0 {
            self.input
        } else {
            self.buf
        }
    }

    /// The flags byte: which fields were written and which kept.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.pos.flags
    }

    /// Record key (the input's, if kept).
    #[inline]
    pub fn key(&self) -> Option<&'a [u8]> {
        self.pos.key.opt_of_buf(self.source(flags::INPUT_KEY))
    }

    /// Record value.
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        self.pos.value.opt_of_buf(self.buf)
    }

    /// Event time; `None` keeps the input's.
    #[inline]
    pub fn timestamp(&self) -> Option<i64> {
        (self.pos.flags & flags::TIMESTAMP != 0).then_some(self.pos.timestamp)
    }

    /// Named route; `None` is the stage's default next hop.
    #[inline]
    pub fn route(&self) -> Option<&'a str> {
        // Checked as UTF-8 when the batch was decoded.
        self.pos
            .route
            .opt_of_buf(self.buf)
            .map(|s| core::str::from_utf8(s).unwrap_or_default())
    }

    /// The headers (the input's, if kept).
    #[inline]
    pub fn headers(&self) -> HeadersView<'a> {
        // The result batch's own headers were checked by `check`; the
        // input's were written by an `EventEncoder` from `&str` names or
        // checked by `decode_for_batch`.
        let raw = self.pos.headers.of_buf(self.source(flags::INPUT_HEADERS));
        HeadersView::checked(raw, self.pos.header_count)
    }

    /// An owned copy.
    pub fn to_output(&self) -> Output {
        Output {
            key: self.key().map(<[u8]>::to_vec),
            value: self.value().map(<[u8]>::to_vec),
            headers: crate::owned::owned_headers(self.headers()),
            timestamp: self.timestamp(),
            route: self.route().map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec;

    use super::*;
    use crate::Header;
    use crate::wire::{put_bytes, put_opt};

    fn out(value: &str) -> Output {
        Output {
            value: Some(value.into()),
            ..Output::default()
        }
    }

    fn decode_results(bytes: &[u8], expected: usize) -> Result<Vec<EventResult>, DecodeError> {
        crate::decode_results(bytes, expected)
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
            EventResult::Failed(Failure::new("invalid-json", "bad")),
        ];
        let bytes = encode_results(&results);
        assert_eq!(decode_results(&bytes, 3).unwrap(), results);
    }

    #[test]
    fn wrong_count_is_rejected() {
        let bytes = encode_results(&[EventResult::Outputs(vec![])]);
        assert_eq!(
            decode_results(&bytes, 2),
            Err(DecodeError::CountMismatch { expected: 2, found: 1 })
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
    fn huge_counts_do_not_allocate() {
        // One result claiming u32::MAX outputs, then 1 MiB of zeros: fails on
        // truncation, not out of memory.
        let mut bytes = vec![1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(decode_results(&bytes, 1), Err(DecodeError::Truncated { .. })));
        bytes.resize(bytes.len() + (1 << 20), 0);
        assert!(decode_results(&bytes, 1).is_err());
    }

    #[test]
    fn unknown_flags_tags_and_trailing_bytes_are_named() {
        assert_eq!(
            decode_results(&[1, 0, 0, 0, 0, 1, 0, 0, 0, 0x80], 1),
            Err(DecodeError::BadFlags { at: 9, flags: 0x80 })
        );
        assert_eq!(
            decode_results(&[1, 0, 0, 0, 9], 1),
            Err(DecodeError::BadTag {
                index: 0,
                at: 4,
                tag: 9
            })
        );
        assert_eq!(
            decode_results(&[0, 0, 0, 0, 1], 0),
            Err(DecodeError::Trailing { at: 4, extra: 1 })
        );
    }

    #[test]
    fn a_failure_must_be_text() {
        let mut bytes = vec![1, 0, 0, 0, TAG_FAILURE];
        put_bytes(&mut bytes, b"code");
        put_bytes(&mut bytes, &[0xff]);
        assert_eq!(
            decode_results(&bytes, 1),
            Err(DecodeError::NotUtf8 {
                field: Field::FailureMessage,
                at: 17
            })
        );
    }

    #[test]
    fn outputs_keep_their_input_events_key_and_headers_by_flag() {
        let mut input = EventEncoder::new();
        input.push(1, "t", 0, 0, Some(b"k0"), Some(b"a"), [("h", Some(&b"x"[..]))]);
        input.push(2, "t", 0, 1, None, Some(b"b"), [("i", Some(&b"y"[..]))]);
        input.push(3, "t", 0, 2, Some(b"k2"), Some(b"c"), [("j", None)]);
        let mut b = 3u32.to_le_bytes().to_vec();
        // Event 0: none. Event 1: its key (none) kept, headers written.
        b.extend([0, 0, 0, 0, 0, 0, 1, 0, 0, 0, flags::INPUT_KEY]);
        put_bytes(&mut b, b"B");
        b.extend(1u32.to_le_bytes());
        put_bytes(&mut b, b"g");
        put_opt(&mut b, None);
        // Event 2: key and headers kept, twice.
        b.extend([0, 2, 0, 0, 0]);
        for value in [&b"C"[..], b"D"] {
            b.push(flags::INPUT_KEY | flags::INPUT_HEADERS);
            put_bytes(&mut b, value);
        }
        let kept = |key: Option<&[u8]>, value: &[u8], header: &str| Output {
            key: key.map(<[u8]>::to_vec),
            value: Some(value.to_vec()),
            headers: vec![Header {
                name: String::from(header),
                value: None,
            }],
            ..Output::default()
        };
        let want = vec![
            EventResult::Outputs(vec![]),
            EventResult::Outputs(vec![kept(None, b"B", "g")]),
            EventResult::Outputs(vec![kept(Some(b"k2"), b"C", "j"), kept(Some(b"k2"), b"D", "j")]),
        ];
        assert_eq!(
            ResultBatch::decode_for(b.clone(), &input).map(ResultBatch::into_owned),
            Ok(want.clone())
        );
        assert_eq!(
            ResultBatch::decode_for_batch(b.clone(), input.as_bytes()).map(ResultBatch::into_owned),
            Ok(want)
        );
        // A joiner's or an aggregator's results have no input event.
        assert_eq!(
            ResultBatch::decode(b, 3).map(ResultBatch::into_owned),
            Err(DecodeError::NoInput {
                at: 14,
                flags: flags::INPUT_KEY
            })
        );
    }
}
