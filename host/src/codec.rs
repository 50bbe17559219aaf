//! The flat batch encoding that crosses the component boundary.
//!
//! `wit/weir.wit` specifies the format. One buffer goes in per batch and one
//! comes out, so the canonical ABI copies two byte lists per call instead of
//! allocating per record and per field. The host encodes events from borrowed
//! data (no intermediate [`Event`] needed) and decodes results into owned
//! [`Output`]s, checking every length against the buffer: a guest's result is
//! untrusted input.

use std::mem::MaybeUninit;

use crate::event::{Event, EventResult, Failure, Header, Output, Pair};

const NONE_LEN: u32 = u32::MAX;
const FLAG_TIMESTAMP: u8 = 1;
const FLAG_ROUTE: u8 = 2;
/// The output keeps its input event's key: no key follows.
const FLAG_INPUT_KEY: u8 = 4;
/// The output keeps its input event's headers: no headers follow.
const FLAG_INPUT_HEADERS: u8 = 8;
const FLAGS: u8 = FLAG_TIMESTAMP | FLAG_ROUTE | FLAG_INPUT_KEY | FLAG_INPUT_HEADERS;

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
    /// An output keeps its input's key or headers in results that have no
    /// input event (a joiner's or an aggregator's).
    #[error(
        "output at byte {at} keeps its input's key or headers (flags {flags:#04x}), but these results have no input event"
    )]
    NoInput {
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
    /// A result batch (or its input batch) of 4 GiB or more, which no wasm32
    /// guest can take or return.
    #[error("batch of {len} bytes (the format's limit is 4 GiB)")]
    TooLarge {
        /// Buffer length.
        len: usize,
    },
}

/// A buffer that starts with the `u32` count of the items appended to it:
/// what `event-batch` and `join-batch` share.
#[derive(Debug, Clone)]
struct Counted {
    buf: Vec<u8>,
    count: u32,
}

impl Counted {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&0u32.to_le_bytes());
        Counted { buf, count: 0 }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.count = 0;
    }

    /// Counts one more item, written to `buf` by the caller.
    fn counted(&mut self) {
        self.count += 1;
        self.buf[..4].copy_from_slice(&self.count.to_le_bytes());
    }
}

/// Builds an `event-batch` buffer, noting where each event's key and
/// headers are, for results that keep them.
#[derive(Debug, Clone)]
pub struct BatchEncoder {
    batch: Counted,
    kept: Vec<Kept>,
}

impl Default for BatchEncoder {
    fn default() -> Self {
        BatchEncoder::new()
    }
}

impl BatchEncoder {
    /// An empty batch.
    pub fn new() -> Self {
        BatchEncoder {
            batch: Counted::new(),
            kept: Vec::new(),
        }
    }

    /// Clears the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.batch.clear();
        self.kept.clear();
    }

    /// Number of events pushed.
    pub fn len(&self) -> usize {
        self.batch.count as usize
    }

    /// True when no event was pushed.
    pub fn is_empty(&self) -> bool {
        self.batch.count == 0
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
        let b = &mut self.batch.buf;
        // Positions past 4 GiB are not exact; `ResultBatch` refuses such
        // batches before reading any.
        let key_at = (b.len() + 24 + topic.len()) as u32 + 4;
        let len = |x: Option<&[u8]>| x.map_or(NONE_LEN, |x| x.len() as u32).to_le_bytes();
        put_all(
            b,
            [
                &timestamp.to_le_bytes(),
                &partition.to_le_bytes(),
                &offset.to_le_bytes(),
                &(topic.len() as u32).to_le_bytes(),
                topic.as_bytes(),
                &len(key),
                key.unwrap_or_default(),
                &len(value),
                value.unwrap_or_default(),
            ],
        );
        let headers_at = b.len() + 4;
        let header_count = put_headers(b, headers);
        self.kept.push(Kept {
            key: key.map_or(Pos::ABSENT, |k| Pos {
                start: key_at,
                len: k.len() as u32,
            }),
            headers: Pos {
                start: headers_at as u32,
                len: (b.len() - headers_at) as u32,
            },
            header_count,
        });
        self.batch.counted();
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
        &self.batch.buf
    }

    /// The buffer as the generated bindings take it.
    pub(crate) fn buffer(&self) -> &Vec<u8> {
        &self.batch.buf
    }
}

/// Builds a `join-batch` buffer: the pairs a joiner combines.
#[derive(Debug, Clone)]
pub struct PairEncoder(Counted);

impl Default for PairEncoder {
    fn default() -> Self {
        PairEncoder::new()
    }
}

impl PairEncoder {
    /// An empty batch.
    pub fn new() -> Self {
        PairEncoder(Counted::new())
    }

    /// Clears the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Number of pairs pushed.
    pub fn len(&self) -> usize {
        self.0.count as usize
    }

    /// True when no pair was pushed.
    pub fn is_empty(&self) -> bool {
        self.0.count == 0
    }

    /// Appends one pair: the result's timestamp, the key, each side's value
    /// (`None`: that side has no record) and the headers of the record that
    /// caused the join.
    pub fn push<'a>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        left: Option<&[u8]>,
        right: Option<&[u8]>,
        headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) {
        let b = &mut self.0.buf;
        b.extend_from_slice(&timestamp.to_le_bytes());
        put_opt(b, key);
        put_opt(b, left);
        put_opt(b, right);
        put_headers(b, headers);
        self.0.counted();
    }

    /// The encoded batch.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.buf
    }

    /// The buffer as the generated bindings take it.
    pub(crate) fn buffer(&self) -> &Vec<u8> {
        &self.0.buf
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

/// Encodes owned pairs into one `join-batch`.
pub fn encode_pairs(pairs: &[Pair]) -> PairEncoder {
    let mut enc = PairEncoder::new();
    for p in pairs {
        enc.push(
            p.timestamp,
            p.key.as_deref(),
            p.left.as_deref(),
            p.right.as_deref(),
            p.headers.iter().map(|h| (h.name.as_str(), h.value.as_deref())),
        );
    }
    enc
}

/// Appends `parts` with one capacity check and one length update: a record
/// is a dozen short fields, and `extend_from_slice` per field re-reads the
/// vector's length and capacity after every copy (10% of a 100-byte record's
/// trip through a guest went to that).
#[inline(always)]
fn put_all<const N: usize>(b: &mut Vec<u8>, parts: [&[u8]; N]) {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    b.reserve(n);
    let spare = &mut b.spare_capacity_mut()[..n];
    let mut at = 0;
    for p in parts {
        copy(&mut spare[at..at + p.len()], p);
        at += p.len();
    }
    // SAFETY: `reserve` made room for `n` more bytes and the loop above
    // initialised exactly the `n` bytes past the length (`at == n`).
    unsafe { b.set_len(b.len() + n) };
}

/// Copies `src` to `dst` (of the same length). Keys, topics and header
/// names and values are mostly 4 to 16 bytes: two overlapping word moves
/// copy those without a call to `memcpy`, which costs more than the copy.
#[inline(always)]
fn copy(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    let n = src.len();
    if (8..=16).contains(&n) {
        let (head, tail) = (word::<8>(src, 0), word::<8>(src, n - 8));
        dst[..8].write_copy_of_slice(&head);
        dst[n - 8..].write_copy_of_slice(&tail);
    } else if (4..8).contains(&n) {
        let (head, tail) = (word::<4>(src, 0), word::<4>(src, n - 4));
        dst[..4].write_copy_of_slice(&head);
        dst[n - 4..].write_copy_of_slice(&tail);
    } else {
        dst.write_copy_of_slice(src);
    }
}

/// The `N` bytes of `src` at `at`, which the caller has checked are there.
#[inline(always)]
fn word<const N: usize>(src: &[u8], at: usize) -> [u8; N] {
    let mut w = [0; N];
    w.copy_from_slice(&src[at..at + N]);
    w
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

/// Writes headers; returns their count.
fn put_headers<'a>(b: &mut Vec<u8>, headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> u32 {
    let count_at = b.len();
    b.extend_from_slice(&0u32.to_le_bytes());
    let mut n = 0u32;
    for (name, value) in headers {
        let value_len = value.map_or(NONE_LEN, |v| v.len() as u32);
        put_all(
            b,
            [
                &(name.len() as u32).to_le_bytes(),
                name.as_bytes(),
                &value_len.to_le_bytes(),
                value.unwrap_or_default(),
            ],
        );
        n += 1;
    }
    b[count_at..count_at + 4].copy_from_slice(&n.to_le_bytes());
    n
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

/// Decodes a guest's `result-batch` into owned results (copies every field;
/// [`ResultBatch`] reads them in place).
pub fn decode_results(buf: &[u8], expected: usize) -> Result<Vec<EventResult>, CodecError> {
    Ok(ResultBatch::decode(buf.to_vec(), expected)?.into_owned())
}

/// A guest's `result-batch`, checked once and then read in place: outputs
/// borrow their keys, values and headers from the buffer the guest returned,
/// which is what a Kafka producer takes, or, where an output keeps its input
/// event's key or headers (a map of the value), from the `event-batch` the
/// guest was given (`'i`). Checking is a single pass that allocates two
/// vectors per batch, none per record.
#[derive(Debug, Clone)]
pub struct ResultBatch<'i> {
    buf: Vec<u8>,
    input: &'i [u8],
    entries: Vec<Entry>,
    outputs: Vec<OutputPos>,
}

/// A byte range of the buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

/// A byte range of a [`ResultBatch`]'s buffer, or none (`len` is
/// `NONE_LEN`), in 8 bytes: `decode` writes one per field of every output and
/// the stages read them back, so their size is memory traffic per record.
/// Exact because `decode` refuses buffers of 4 GiB or more.
#[derive(Debug, Clone, Copy)]
struct Pos {
    start: u32,
    len: u32,
}

impl Pos {
    const ABSENT: Pos = Pos {
        start: 0,
        len: NONE_LEN,
    };

    #[inline]
    fn of(s: Span) -> Pos {
        Pos {
            start: s.start as u32,
            len: s.len as u32,
        }
    }

    #[inline]
    fn opt(s: Option<Span>) -> Pos {
        s.map_or(Pos::ABSENT, Pos::of)
    }

    /// The bytes at this position of `buf`.
    #[inline]
    fn of_buf(self, buf: &[u8]) -> &[u8] {
        &buf[self.start as usize..][..self.len as usize]
    }

    /// The same, `None` for an absent field.
    #[inline]
    fn opt_of_buf(self, buf: &[u8]) -> Option<&[u8]> {
        (self.len != NONE_LEN).then(|| self.of_buf(buf))
    }
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Outputs { first: u32, count: u32 },
    Failed { code: Pos, message: Pos },
}

#[derive(Debug, Clone, Copy)]
struct OutputPos {
    /// Meaningful when `flags` has `FLAG_TIMESTAMP`.
    timestamp: i64,
    /// In the input batch when `flags` has `FLAG_INPUT_KEY`.
    key: Pos,
    value: Pos,
    /// In the input batch when `flags` has `FLAG_INPUT_HEADERS`.
    headers: Pos,
    route: Pos,
    header_count: u32,
    flags: u8,
}

/// What an operator made of one input event, borrowed from a [`ResultBatch`].
#[derive(Debug, Clone, Copy)]
pub enum ResultRef<'a> {
    /// Zero or more outputs.
    Outputs(OutputsRef<'a>),
    /// A typed failure: code and message.
    Failed {
        /// Machine-readable cause.
        code: &'a str,
        /// Human-readable message.
        message: &'a str,
    },
}

/// The outputs of one event.
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

/// One output, borrowed from a [`ResultBatch`].
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

    /// Record key.
    #[inline]
    pub fn key(&self) -> Option<&'a [u8]> {
        self.pos.key.opt_of_buf(self.source(FLAG_INPUT_KEY))
    }

    /// Record value.
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        self.pos.value.opt_of_buf(self.buf)
    }

    /// Event time; `None` keeps the input's.
    #[inline]
    pub fn timestamp(&self) -> Option<i64> {
        (self.pos.flags & FLAG_TIMESTAMP != 0).then_some(self.pos.timestamp)
    }

    /// Named route; `None` is the stage's default next hop.
    #[inline]
    pub fn route(&self) -> Option<&'a str> {
        // Checked as UTF-8 when the batch was decoded.
        self.pos
            .route
            .opt_of_buf(self.buf)
            .map(|s| std::str::from_utf8(s).unwrap_or_default())
    }

    /// The headers in order.
    #[inline]
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        // An `OutputRef` only reads the buffers of a decoded `ResultBatch`:
        // its own, whose `decode` checked every header name of every output,
        // and the input batch, which a `BatchEncoder` wrote from `&str` names.
        let headers = self.pos.headers.of_buf(self.source(FLAG_INPUT_HEADERS));
        checked_headers(headers, self.pos.header_count)
    }

    /// An owned copy.
    pub fn to_output(&self) -> Output {
        Output {
            key: self.key().map(<[u8]>::to_vec),
            value: self.value().map(<[u8]>::to_vec),
            headers: owned_headers(self.headers()),
            timestamp: self.timestamp(),
            route: self.route().map(str::to_owned),
        }
    }
}

impl ResultBatch<'static> {
    /// Checks a guest's `result-batch` for calls without input events (a
    /// joiner's, an aggregator's): it must hold exactly `expected` results,
    /// and no output may keep an input's key or headers.
    pub fn decode(buf: Vec<u8>, expected: usize) -> Result<Self, CodecError> {
        Self::check(buf, expected, None)
    }

    /// A batch of the host's own results (e.g. after isolating a trap).
    /// `encode_results` writes exactly what `decode` reads, so an error is a
    /// bug in this codec, which the caller must not paper over.
    pub fn from_results(results: &[EventResult]) -> Result<Self, CodecError> {
        Self::decode(encode_results(results), results.len())
    }
}

impl<'i> ResultBatch<'i> {
    /// Checks a guest's `result-batch` for the events of `input`: one result
    /// per event, and outputs that keep their event's key or headers read
    /// them from `input`.
    pub fn decode_for(buf: Vec<u8>, input: &'i BatchEncoder) -> Result<Self, CodecError> {
        Self::check(buf, input.len(), Some((input.as_bytes(), &input.kept)))
    }

    fn check(buf: Vec<u8>, expected: usize, input: Option<(&'i [u8], &[Kept])>) -> Result<Self, CodecError> {
        for len in [buf.len(), input.map_or(0, |(b, _)| b.len())] {
            if len >= NONE_LEN as usize {
                return Err(CodecError::TooLarge { len });
            }
        }
        let events = input.map(|(_, kept)| kept);
        let mut r = Reader { buf: &buf, at: 0 };
        let count = r.u32()? as usize;
        if count != expected {
            return Err(CodecError::CountMismatch { expected, found: count });
        }
        // Never preallocate beyond what the buffer could encode: a result takes
        // at least 5 bytes and an output 13.
        let mut entries = Vec::with_capacity(count.min(buf.len() / 5));
        let mut outputs = Vec::with_capacity(count.min(buf.len() / 13));
        for index in 0..count {
            match r.u8()? {
                0 => {
                    let n = r.u32()?;
                    // Fewer outputs than buffer bytes, so below 4 GiB.
                    let first = outputs.len() as u32;
                    for _ in 0..n {
                        outputs.push(r.output(index, events)?);
                    }
                    entries.push(Entry::Outputs { first, count: n });
                }
                1 => {
                    let code = Pos::of(r.str_span("failure code")?);
                    let message = Pos::of(r.str_span("failure message")?);
                    entries.push(Entry::Failed { code, message });
                }
                tag => return Err(CodecError::BadTag { index, tag }),
            }
        }
        if r.remaining() != 0 {
            return Err(CodecError::Trailing { extra: r.remaining() });
        }
        Ok(ResultBatch {
            buf,
            input: input.map_or(&[], |(b, _)| b),
            entries,
            outputs,
        })
    }

    /// Number of results (one per input event).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The results in input order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = ResultRef<'_>> {
        self.entries.iter().map(|e| self.entry(*e))
    }

    #[inline]
    fn entry(&self, e: Entry) -> ResultRef<'_> {
        let text = |p: Pos| std::str::from_utf8(p.of_buf(&self.buf)).unwrap_or_default();
        match e {
            Entry::Outputs { first, count } => ResultRef::Outputs(OutputsRef {
                buf: &self.buf,
                input: self.input,
                outputs: &self.outputs[first as usize..][..count as usize],
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

/// One event of an `event-batch`, read in place. The host reads back the
/// batches it encoded, to know each event's time and provenance and to
/// dead-letter it.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    /// Event time in ms.
    pub timestamp: i64,
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Record key.
    pub key: Option<&'a [u8]>,
    /// Record value.
    pub value: Option<&'a [u8]>,
    headers: &'a [u8],
    header_count: u32,
}

impl<'a> EventRef<'a> {
    /// The headers in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        // An `EventRef` comes only from `read_events`, which checked every
        // header name of the event as UTF-8.
        checked_headers(self.headers, self.header_count)
    }

    /// An owned copy.
    pub fn to_event(&self) -> Event {
        Event {
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: owned_headers(self.headers()),
            timestamp: self.timestamp,
            topic: self.topic.to_owned(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// Reads every event of an `event-batch` in place.
pub fn read_events(buf: &[u8]) -> Result<Vec<EventRef<'_>>, CodecError> {
    let mut r = Reader { buf, at: 0 };
    let count = r.u32()? as usize;
    // An event takes at least 36 bytes; never trust the count beyond that.
    let mut events = Vec::with_capacity(count.min(buf.len() / 36));
    for _ in 0..count {
        let timestamp = r.i64()?;
        let partition = r.u32()? as i32;
        let offset = r.i64()?;
        let topic = r.str("topic")?;
        let key = r.opt_span()?.map(|s| &buf[s.start..s.start + s.len]);
        let value = r.opt_span()?.map(|s| &buf[s.start..s.start + s.len]);
        let header_count = r.u32()?;
        let start = r.at;
        for _ in 0..header_count {
            r.str_span("header name")?;
            r.opt_span()?;
        }
        events.push(EventRef {
            timestamp,
            topic,
            partition,
            offset,
            key,
            value,
            headers: &buf[start..r.at],
            header_count,
        });
    }
    if r.remaining() != 0 {
        return Err(CodecError::Trailing { extra: r.remaining() });
    }
    Ok(events)
}

/// Reads every pair of a `join-batch`, owned.
pub fn read_pairs(buf: &[u8]) -> Result<Vec<Pair>, CodecError> {
    let mut r = Reader { buf, at: 0 };
    let count = r.u32()? as usize;
    // A pair takes at least 24 bytes; never trust the count beyond that.
    let mut pairs = Vec::with_capacity(count.min(buf.len() / 24));
    let owned = |s: Option<Span>| s.map(|s| buf[s.start..s.start + s.len].to_vec());
    for _ in 0..count {
        let timestamp = r.i64()?;
        let key = owned(r.opt_span()?);
        let left = owned(r.opt_span()?);
        let right = owned(r.opt_span()?);
        let header_count = r.u32()?;
        let start = r.at;
        for _ in 0..header_count {
            r.str_span("header name")?;
            r.opt_span()?;
        }
        pairs.push(Pair {
            key,
            left,
            right,
            headers: owned_headers(headers_in(&buf[start..r.at], header_count)),
            timestamp,
        });
    }
    if r.remaining() != 0 {
        return Err(CodecError::Trailing { extra: r.remaining() });
    }
    Ok(pairs)
}

/// Iterates `count` encoded headers that were checked when their batch was
/// read (so reading them again cannot fail).
fn headers_in(buf: &[u8], count: u32) -> impl Iterator<Item = (&str, Option<&[u8]>)> + '_ {
    let mut r = Reader { buf, at: 0 };
    (0..count).map_while(move |_| {
        let name = std::str::from_utf8(r.bytes().ok()?).ok()?;
        Some((name, r.opt_span().ok()?.map(|s| &r.buf[s.start..s.start + s.len])))
    })
}

/// Headers whose names were checked as UTF-8 when their batch was read
/// (`read_events`, `ResultBatch::decode`): checking again cost 3% of a
/// 100-byte record's trip through a guest.
#[inline]
fn checked_headers(buf: &[u8], count: u32) -> impl Iterator<Item = (&str, Option<&[u8]>)> + '_ {
    let mut r = Reader { buf, at: 0 };
    (0..count).map_while(move |_| {
        let name = r.bytes().ok()?;
        // SAFETY: the callers pass only header spans of a batch whose reader
        // checked each name with `str_span` (read_events, ResultBatch::decode),
        // and the batch is borrowed immutably for as long as the names live.
        let name = unsafe { std::str::from_utf8_unchecked(name) };
        Some((name, r.opt_span().ok()?.map(|s| &r.buf[s.start..s.start + s.len])))
    })
}

/// Owned copies of borrowed headers.
fn owned_headers<'a>(headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>) -> Vec<Header> {
    headers
        .map(|(n, v)| Header {
            name: n.to_owned(),
            value: v.map(<[u8]>::to_vec),
        })
        .collect()
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    #[inline(always)]
    fn span(&mut self, n: usize) -> Result<Span, CodecError> {
        if self.remaining() < n {
            return Err(self.truncated(n));
        }
        let span = Span { start: self.at, len: n };
        self.at += n;
        Ok(span)
    }

    #[cold]
    fn truncated(&self, needed: usize) -> CodecError {
        CodecError::Truncated {
            at: self.at,
            needed,
            len: self.buf.len(),
        }
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let s = self.span(n)?;
        Ok(&self.buf[s.start..s.start + s.len])
    }

    #[inline(always)]
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    #[inline(always)]
    fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline(always)]
    fn i64(&mut self) -> Result<i64, CodecError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    #[inline(always)]
    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    #[inline(always)]
    fn opt_span(&mut self) -> Result<Option<Span>, CodecError> {
        let n = self.u32()?;
        if n == NONE_LEN {
            return Ok(None);
        }
        self.span(n as usize).map(Some)
    }

    /// Text, checked once.
    fn str(&mut self, field: &'static str) -> Result<&'a str, CodecError> {
        let n = self.u32()? as usize;
        let at = self.at;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map_err(|_| CodecError::NotUtf8 { field, at })
    }

    #[inline(always)]
    fn str_span(&mut self, field: &'static str) -> Result<Span, CodecError> {
        let n = self.u32()? as usize;
        let at = self.at;
        let span = self.span(n)?;
        let bytes = &self.buf[span.start..span.start + span.len];
        // Names are short and nearly always ASCII: an inline check first.
        if !bytes.is_ascii() && std::str::from_utf8(bytes).is_err() {
            return Err(CodecError::NotUtf8 { field, at });
        }
        Ok(span)
    }

    /// One output of the result of input event `index`.
    #[inline]
    fn output(&mut self, index: usize, events: Option<&[Kept]>) -> Result<OutputPos, CodecError> {
        let at = self.at;
        let flags = self.u8()?;
        if flags & !FLAGS != 0 {
            return Err(CodecError::BadFlags { at, flags });
        }
        let kept = if flags & (FLAG_INPUT_KEY | FLAG_INPUT_HEADERS) != 0 {
            let events = events.ok_or(CodecError::NoInput { at, flags })?;
            // `check` has one result per event, so `index` is in range.
            Some(*events.get(index).ok_or(CodecError::BadIndex {
                index: index as u32,
                len: events.len() as u32,
            })?)
        } else {
            None
        };
        let timestamp = if flags & FLAG_TIMESTAMP != 0 { self.i64()? } else { 0 };
        let key = match kept {
            Some(input) if flags & FLAG_INPUT_KEY != 0 => input.key,
            _ => Pos::opt(self.opt_span()?),
        };
        let value = Pos::opt(self.opt_span()?);
        let (headers, header_count) = match kept {
            Some(input) if flags & FLAG_INPUT_HEADERS != 0 => (input.headers, input.header_count),
            _ => {
                let header_count = self.u32()?;
                let headers_start = self.at;
                for _ in 0..header_count {
                    self.str_span("header name")?;
                    self.opt_span()?;
                }
                let headers = Pos::of(Span {
                    start: headers_start,
                    len: self.at - headers_start,
                });
                (headers, header_count)
            }
        };
        let route = if flags & FLAG_ROUTE != 0 {
            Pos::of(self.str_span("route")?)
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
}

/// Where an input event's key and headers are in its `event-batch`, noted
/// as it is encoded, for outputs that keep them.
#[derive(Debug, Clone, Copy)]
struct Kept {
    key: Pos,
    headers: Pos,
    header_count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_read_back_as_encoded() {
        let pairs = vec![
            Pair {
                key: Some(b"k".to_vec()),
                left: Some(b"{}".to_vec()),
                right: None,
                headers: vec![
                    Header::new("h", "v"),
                    Header {
                        name: "n".into(),
                        value: None,
                    },
                ],
                timestamp: -3,
            },
            Pair::default(),
        ];
        let enc = encode_pairs(&pairs);
        assert_eq!(enc.len(), 2);
        assert_eq!(read_pairs(enc.as_bytes()).unwrap(), pairs);
        assert!(read_pairs(&enc.as_bytes()[..20]).is_err());
    }

    fn out(value: &str) -> Output {
        Output {
            value: Some(value.into()),
            ..Output::default()
        }
    }

    fn headers_with_a_null() -> Vec<Header> {
        vec![
            Header::new("a", "1"),
            Header {
                name: "n".into(),
                value: None,
            },
        ]
    }

    #[test]
    fn events_read_back_as_encoded() {
        let events = vec![
            Event {
                key: Some(b"k".to_vec()),
                value: None,
                headers: headers_with_a_null(),
                timestamp: -3,
                topic: "t".into(),
                partition: 2,
                offset: 99,
            },
            Event::default(),
        ];
        let enc = encode_events(&events);
        let back: Vec<Event> = read_events(enc.as_bytes())
            .unwrap()
            .iter()
            .map(EventRef::to_event)
            .collect();
        assert_eq!(back, events);
        assert!(read_events(&enc.as_bytes()[..enc.as_bytes().len() - 1]).is_err());
    }

    #[test]
    fn results_round_trip_with_every_field() {
        let results = vec![
            EventResult::Outputs(vec![]),
            EventResult::Outputs(vec![
                Output {
                    key: Some(b"k".to_vec()),
                    value: None,
                    headers: headers_with_a_null(),
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
    fn outputs_keep_their_input_events_key_and_headers_by_flag() {
        let mut input = BatchEncoder::new();
        input.push(1, "t", 0, 0, Some(b"k0"), Some(b"a"), [("h", Some(&b"x"[..]))]);
        input.push(2, "t", 0, 1, None, Some(b"b"), [("i", Some(&b"y"[..]))]);
        input.push(3, "t", 0, 2, Some(b"k2"), Some(b"c"), [("j", None)]);
        let mut b = 3u32.to_le_bytes().to_vec();
        // Event 0: none. Event 1: its key (none) kept, headers written.
        b.extend([0, 0, 0, 0, 0, 0, 1, 0, 0, 0, FLAG_INPUT_KEY]);
        put_bytes(&mut b, b"B");
        b.extend(1u32.to_le_bytes());
        put_bytes(&mut b, b"g");
        put_opt(&mut b, None);
        // Event 2: key and headers kept, twice.
        b.extend([0, 2, 0, 0, 0]);
        for value in [&b"C"[..], b"D"] {
            b.push(FLAG_INPUT_KEY | FLAG_INPUT_HEADERS);
            put_bytes(&mut b, value);
        }
        let kept = |key: Option<&[u8]>, value: &[u8], headers: Vec<Header>| Output {
            key: key.map(<[u8]>::to_vec),
            value: Some(value.to_vec()),
            headers,
            ..Output::default()
        };
        let j = Header {
            name: "j".into(),
            value: None,
        };
        let g = Header {
            name: "g".into(),
            value: None,
        };
        assert_eq!(
            ResultBatch::decode_for(b.clone(), &input).map(ResultBatch::into_owned),
            Ok(vec![
                EventResult::Outputs(vec![]),
                EventResult::Outputs(vec![kept(None, b"B", vec![g])]),
                EventResult::Outputs(vec![
                    kept(Some(b"k2"), b"C", vec![j.clone()]),
                    kept(Some(b"k2"), b"D", vec![j])
                ]),
            ])
        );
        // A joiner's or an aggregator's results have no input event.
        assert_eq!(
            ResultBatch::decode(b, 3).map(ResultBatch::into_owned),
            Err(CodecError::NoInput {
                at: 14,
                flags: FLAG_INPUT_KEY
            })
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
