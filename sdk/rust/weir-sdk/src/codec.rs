//! The guest side of the flat batch encoding specified in `wit/weir.wit`.

use crate::{Event, Failure, Headers, Output, OutputHeader};

const NONE_LEN: u32 = u32::MAX;
/// Output flags (`wit/weir.wit`): a timestamp follows; a route follows; the
/// input's key is kept (none follows); the input's headers are kept (none
/// follow).
const FLAG_TIMESTAMP: u8 = 1;
const FLAG_ROUTE: u8 = 2;
const FLAG_INPUT_KEY: u8 = 4;
const FLAG_INPUT_HEADERS: u8 = 8;

/// Reads the host's buffers. The host writes them, so a short buffer is a bug,
/// reported as `None` rather than a panic.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

// The small readers and writers below run several times per record: they
// are inlined, which the guest build does not always do by itself.
impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    #[inline(always)]
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    #[inline(always)]
    pub(crate) fn slice_from(&self, start: usize) -> &'a [u8] {
        &self.buf[start..self.at]
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    /// The next `N` bytes as an array: one length check, no per-byte bounds
    /// checks (indexing a taken slice left those in, and a closure that the
    /// guest build did not inline).
    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let a = *self.buf.get(self.at..)?.first_chunk::<N>()?;
        self.at += N;
        Some(a)
    }

    #[inline(always)]
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    #[inline(always)]
    pub(crate) fn i32(&mut self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }

    #[inline(always)]
    pub(crate) fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }

    #[inline(always)]
    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    #[inline(always)]
    pub(crate) fn opt_bytes(&mut self) -> Option<Option<&'a [u8]>> {
        let n = self.u32()?;
        if n == NONE_LEN {
            return Some(None);
        }
        self.take(n as usize).map(Some)
    }
}

/// Decodes an `event-batch` lazily.
pub(crate) fn events(batch: &[u8]) -> impl Iterator<Item = Event<'_>> {
    let mut r = Reader::new(batch);
    let mut left = r.u32().unwrap_or(0);
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        left -= 1;
        Event::decode(&mut r)
    })
}

/// Decodes a `join-batch` lazily.
pub(crate) fn pairs(batch: &[u8]) -> impl Iterator<Item = crate::Pair<'_>> {
    let mut r = Reader::new(batch);
    let mut left = r.u32().unwrap_or(0);
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        left -= 1;
        crate::Pair::decode(&mut r)
    })
}

/// Number of events in an `event-batch`.
pub(crate) fn event_count(batch: &[u8]) -> u32 {
    Reader::new(batch).u32().unwrap_or(0)
}

/// Writes a `result-batch`: one result per input, each a list of outputs or a
/// failure, straight into one buffer.
pub struct ResultWriter {
    buf: Vec<u8>,
    results: u32,
    current: Current,
    /// A joiner's pair key, which outputs without a key get (so the host
    /// need not fill it in); `None` outside a join.
    default_key: Option<Vec<u8>>,
    /// The input event whose result is being written, where it came from
    /// in the batch: its outputs may keep its key and headers by a flag
    /// instead of copying them (the host reads them from the batch it sent).
    input: Option<InputId>,
}

/// Where an event's key and headers are in the batch it was decoded from:
/// an event the operator made or changed (another key, its own headers)
/// does not match the input it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputId {
    key: Option<(usize, usize)>,
    headers: (usize, usize),
}

impl InputId {
    /// `None` for an event not read from a batch.
    #[inline(always)]
    fn of(e: &Event<'_>) -> Option<InputId> {
        let at = |s: &[u8]| (s.as_ptr() as usize, s.len());
        let headers = e.headers().encoded()?;
        Some(InputId {
            key: e.key().map(at),
            headers: at(headers),
        })
    }
}

/// The state of the result being written.
enum Current {
    /// No result begun.
    Idle,
    /// Begun, nothing written yet: closes as zero outputs.
    Pending,
    /// Outputs being written: where the count lives, and the count.
    Open { at: usize, outputs: u32 },
    /// A failure was written; later outputs of this input are ignored.
    Failed,
}

impl ResultWriter {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        let mut buf = Vec::with_capacity(cap + 4);
        buf.extend_from_slice(&0u32.to_le_bytes());
        ResultWriter {
            buf,
            results: 0,
            current: Current::Idle,
            default_key: None,
            input: None,
        }
    }

    /// Outputs without a key get `key` from here on (a joiner's pair key;
    /// `None`: they keep none). The buffer is reused from pair to pair.
    pub(crate) fn default_key(&mut self, key: Option<&[u8]>) {
        match (key, &mut self.default_key) {
            (Some(k), Some(buf)) => {
                buf.clear();
                buf.extend_from_slice(k);
            }
            (Some(k), slot @ None) => *slot = Some(k.to_vec()),
            (None, slot) => *slot = None,
        }
    }

    /// Starts the result of the next input.
    #[inline(always)]
    pub(crate) fn begin(&mut self) {
        self.close();
        self.results += 1;
        self.current = Current::Pending;
        self.input = None;
    }

    /// Starts the result of input event `e`, read from the batch: outputs
    /// that forward it or map its value keep its key and headers by flag.
    #[inline(always)]
    pub(crate) fn begin_event(&mut self, e: &Event<'_>) {
        self.begin();
        self.input = InputId::of(e);
    }

    /// True when `e` is the input being answered, as it came: its key and
    /// headers are the host's already.
    #[inline(always)]
    fn is_input(&self, e: &Event<'_>) -> bool {
        self.input.is_some() && self.input == InputId::of(e)
    }

    #[inline(always)]
    fn close(&mut self) {
        match std::mem::replace(&mut self.current, Current::Idle) {
            Current::Pending => {
                self.buf.push(0);
                put_u32(&mut self.buf, 0);
            }
            Current::Open { at, outputs } => self.buf[at..at + 4].copy_from_slice(&outputs.to_le_bytes()),
            Current::Idle | Current::Failed => {}
        }
    }

    /// Opens the outputs list if needed; false when the input already failed.
    #[inline(always)]
    fn open(&mut self) -> bool {
        match self.current {
            Current::Pending | Current::Idle => {
                self.buf.push(0);
                self.current = Current::Open {
                    at: self.buf.len(),
                    outputs: 1,
                };
                put_u32(&mut self.buf, 0);
                true
            }
            Current::Open { ref mut outputs, .. } => {
                *outputs += 1;
                true
            }
            Current::Failed => false,
        }
    }

    /// Appends one output to the current input's result.
    pub fn output(&mut self, o: &Output<'_>) {
        if !self.open() {
            return;
        }
        let flags = (u8::from(o.timestamp.is_some()) * FLAG_TIMESTAMP) | (u8::from(o.route.is_some()) * FLAG_ROUTE);
        self.buf.push(flags);
        if let Some(ts) = o.timestamp {
            self.buf.extend_from_slice(&ts.to_le_bytes());
        }
        match (o.key.as_deref(), &self.default_key) {
            (Some(k), _) => put_opt(&mut self.buf, Some(k)),
            (None, Some(k)) => {
                put_u32(&mut self.buf, k.len() as u32);
                self.buf.extend_from_slice(k);
            }
            (None, None) => put_opt(&mut self.buf, None),
        }
        put_opt(&mut self.buf, o.value.as_deref());
        self.headers(o.inherited_headers, &o.headers);
        if let Some(route) = &o.route {
            put_bytes(&mut self.buf, route.as_bytes());
        }
    }

    /// Appends the event itself (key, value, headers) as an output, optionally
    /// with a new key or a route, without building an [`Output`].
    pub(crate) fn forward(&mut self, e: &Event<'_>, key: Option<Option<&[u8]>>, route: Option<&str>) {
        if !self.open() {
            return;
        }
        let input = self.is_input(e);
        let keep_key = input && key.is_none();
        let flags = (u8::from(route.is_some()) * FLAG_ROUTE)
            | (u8::from(keep_key) * FLAG_INPUT_KEY)
            | (u8::from(input) * FLAG_INPUT_HEADERS);
        self.buf.push(flags);
        if !keep_key {
            put_opt(&mut self.buf, key.unwrap_or(e.key()));
        }
        put_opt(&mut self.buf, e.value());
        if !input {
            self.headers(Some(e.headers()), &[]);
        }
        if let Some(route) = route {
            put_bytes(&mut self.buf, route.as_bytes());
        }
    }

    /// Appends the event with a new value that `write` puts straight into
    /// the result buffer (a `#[map_value]`): no allocation for the value,
    /// and one pass over it; the input's key and headers are kept by flag,
    /// not copied. A tombstone passes as it is, unwritten.
    pub fn map_value(&mut self, e: &Event<'_>, write: impl FnOnce(&mut ValueOut<'_>) -> Result<(), Failure>) {
        if e.value().is_none() {
            return self.forward(e, None, None);
        }
        if !self.open() {
            return;
        }
        let input = self.is_input(e);
        if input {
            self.buf.push(FLAG_INPUT_KEY | FLAG_INPUT_HEADERS);
        } else {
            self.buf.push(0);
            put_opt(&mut self.buf, e.key());
        }
        let at = self.buf.len();
        put_u32(&mut self.buf, 0);
        let written = write(&mut ValueOut {
            buf: &mut self.buf,
            start: at + 4,
        });
        match written {
            Ok(()) => {
                // wasm32: a buffer is below 4 GiB, so below NONE_LEN.
                let len = (self.buf.len() - at - 4) as u32;
                self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
                if !input {
                    self.headers(Some(e.headers()), &[]);
                }
            }
            Err(f) => self.fail(&f),
        }
    }

    /// Writes an output's headers: the inherited ones as they came (copied
    /// in one piece when they came in a batch), then the added ones.
    fn headers(&mut self, inherited: Option<Headers<'_>>, added: &[OutputHeader<'_>]) {
        let count = inherited.map_or(0, |h| h.len()) + added.len();
        put_u32(&mut self.buf, count as u32);
        if let Some(h) = inherited {
            match h.encoded() {
                Some(raw) => self.buf.extend_from_slice(raw),
                None => {
                    for (name, value) in h.iter() {
                        put_bytes(&mut self.buf, name.as_bytes());
                        put_opt(&mut self.buf, value);
                    }
                }
            }
        }
        for (name, value) in added {
            put_bytes(&mut self.buf, name.as_bytes());
            put_opt(&mut self.buf, value.as_deref());
        }
    }

    /// The current input failed; outputs already written for it are discarded.
    pub fn fail(&mut self, f: &Failure) {
        match self.current {
            Current::Failed => return,
            Current::Open { at, .. } => self.buf.truncate(at - 1),
            Current::Idle | Current::Pending => {}
        }
        self.current = Current::Failed;
        self.buf.push(1);
        put_bytes(&mut self.buf, f.code.as_bytes());
        put_bytes(&mut self.buf, f.message.as_bytes());
    }

    /// The finished buffer.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.close();
        let n = self.results;
        self.buf[..4].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

/// Where a [`crate::map_value`] function writes its event's new value: straight
/// into the batch of results the host reads, so making a value allocates
/// nothing and copies it once. It is a `Vec<u8>`-like writer (and
/// [`std::io::Write`], for `serde_json::to_writer`, and [`std::fmt::Write`],
/// for `write!`) that can only append.
pub struct ValueOut<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> ValueOut<'a> {
    /// A writer appending to `buf` (for tests: the value is what it appends).
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        let start = buf.len();
        ValueOut { buf, start }
    }

    /// Appends one byte.
    #[inline(always)]
    pub fn push(&mut self, b: u8) {
        self.buf.push(b);
    }

    /// Appends bytes.
    #[inline(always)]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Makes room for `n` more bytes.
    #[inline(always)]
    pub fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
    }

    /// The value written so far.
    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The value written so far, to change in place (e.g. copy the input's
    /// value with [`ValueOut::extend_from_slice`], then edit it here).
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    /// Bytes written so far.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True when nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Extend<u8> for ValueOut<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.buf.extend(iter);
    }
}

impl<'b> Extend<&'b u8> for ValueOut<'_> {
    fn extend<I: IntoIterator<Item = &'b u8>>(&mut self, iter: I) {
        self.buf.extend(iter);
    }
}

impl std::io::Write for ValueOut<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Write for ValueOut<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[inline(always)]
fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

#[inline(always)]
fn put_bytes(b: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(b, bytes.len() as u32);
    b.extend_from_slice(bytes);
}

#[inline(always)]
fn put_opt(b: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => put_bytes(b, bytes),
        None => put_u32(b, NONE_LEN),
    }
}

/// Encodes an `event-batch` (for the SDK's tests).
#[cfg(test)]
pub(crate) fn encode_events(events: &[Event<'_>]) -> Vec<u8> {
    let mut b = Vec::new();
    put_u32(&mut b, events.len() as u32);
    for e in events {
        b.extend_from_slice(&e.timestamp().to_le_bytes());
        b.extend_from_slice(&e.partition().to_le_bytes());
        b.extend_from_slice(&e.offset().to_le_bytes());
        put_bytes(&mut b, e.topic().as_bytes());
        put_opt(&mut b, e.key());
        put_opt(&mut b, e.value());
        put_u32(&mut b, e.headers().len() as u32);
        for (n, v) in e.headers().iter() {
            put_bytes(&mut b, n.as_bytes());
            put_opt(&mut b, v);
        }
    }
    b
}

/// Decodes a `result-batch` (for the SDK's tests); outputs that keep their
/// input's key or headers take them from `input`, the `event-batch`.
#[cfg(test)]
pub(crate) fn decode_results(buf: &[u8], input: &[u8]) -> Option<Vec<Result<Vec<Output<'static>>, Failure>>> {
    let inputs: Vec<Event<'_>> = events(input).collect();
    let mut r = Reader::new(buf);
    let n = r.u32()?;
    let mut all = Vec::new();
    for i in 0..n as usize {
        let tag = r.take(1)?[0];
        if tag == 1 {
            let code = String::from_utf8_lossy(r.bytes()?).into_owned();
            let message = String::from_utf8_lossy(r.bytes()?).into_owned();
            all.push(Err(Failure { code, message }));
            continue;
        }
        let count = r.u32()?;
        let mut outs = Vec::new();
        for _ in 0..count {
            let flags = r.take(1)?[0];
            let timestamp = if flags & FLAG_TIMESTAMP != 0 {
                Some(r.i64()?)
            } else {
                None
            };
            use std::borrow::Cow;
            let owned = |b: &[u8]| Cow::Owned(b.to_vec());
            let key = if flags & FLAG_INPUT_KEY != 0 {
                inputs.get(i)?.key().map(owned)
            } else {
                r.opt_bytes()?.map(owned)
            };
            let value = r.opt_bytes()?.map(owned);
            let mut headers = Vec::new();
            if flags & FLAG_INPUT_HEADERS != 0 {
                for (name, v) in inputs.get(i)?.headers().iter() {
                    headers.push((Cow::Owned(name.to_owned()), v.map(owned)));
                }
            } else {
                for _ in 0..r.u32()? {
                    let name = String::from_utf8_lossy(r.bytes()?).into_owned();
                    headers.push((Cow::Owned(name), r.opt_bytes()?.map(owned)));
                }
            }
            let route = if flags & FLAG_ROUTE != 0 {
                Some(Cow::Owned(String::from_utf8_lossy(r.bytes()?).into_owned()))
            } else {
                None
            };
            outs.push(Output {
                key,
                value,
                inherited_headers: None,
                headers,
                timestamp,
                route,
            });
        }
        all.push(Ok(outs));
    }
    Some(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_batch_encoding() {
        let headers = [("h", Some(&b"v"[..])), ("n", None)];
        let a = Event::new(b"one")
            .with_key(b"k")
            .with_timestamp(-3)
            .with_headers(&headers)
            .with_source("t", 2, 9);
        let b = Event::new(b"").without_value();
        let batch = encode_events(&[a, b]);
        let got: Vec<Event<'_>> = events(&batch).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].key(), got[0].value(), got[0].timestamp()),
            (Some(&b"k"[..]), Some(&b"one"[..]), -3)
        );
        assert_eq!((got[0].topic(), got[0].partition(), got[0].offset()), ("t", 2, 9));
        assert_eq!(got[0].headers().iter().collect::<Vec<_>>(), headers);
        assert_eq!(got[1].value(), None);
    }

    #[test]
    fn forwarded_outputs_write_inherited_then_added_headers() {
        let headers = [("a", Some(&b"1"[..])), ("n", None)];
        let e = Event::new(b"v").with_headers(&headers);
        let mut w = ResultWriter::with_capacity(0);
        w.begin();
        w.output(&Output::forward(&e).header("b", b"2".to_vec()));
        let results = decode_results(&w.finish(), &[]).unwrap();
        let out = &results[0].as_ref().unwrap()[0];
        let got: Vec<(&str, Option<&[u8]>)> = out.all_headers().collect();
        assert_eq!(got, [("a", Some(&b"1"[..])), ("n", None), ("b", Some(&b"2"[..]))]);
    }

    #[test]
    fn headers_from_a_batch_are_copied_whole_before_added_ones() {
        let headers = [("a", Some(&b"1"[..])), ("n", None)];
        let batch = encode_events(&[Event::new(b"v").with_headers(&headers).with_source("t", 0, 1)]);
        let e = events(&batch).next().unwrap();
        let mut w = ResultWriter::with_capacity(0);
        w.begin();
        w.output(&Output::forward(&e).header("b", b"2".to_vec()));
        w.forward(&e, None, None);
        let results = decode_results(&w.finish(), &batch).unwrap();
        let outs = results[0].as_ref().unwrap();
        let got: Vec<(&str, Option<&[u8]>)> = outs[0].all_headers().collect();
        assert_eq!(got, [("a", Some(&b"1"[..])), ("n", None), ("b", Some(&b"2"[..]))]);
        assert_eq!(outs[1].all_headers().collect::<Vec<_>>(), headers);
    }

    #[test]
    fn a_value_is_written_in_place_and_a_tombstone_passes() {
        let headers = [("h", Some(&b"x"[..]))];
        let batch = encode_events(&[
            Event::new(b"abc").with_key(b"k").with_headers(&headers),
            Event::new(b"").with_key(b"gone").without_value(),
            Event::new(b"bad"),
            Event::new(b"def"),
        ]);
        let mut w = ResultWriter::with_capacity(0);
        for e in events(&batch) {
            w.begin();
            w.map_value(&e, |out| {
                if e.value() == Some(b"bad") {
                    out.extend_from_slice(b"half-written");
                    return Err(Failure::new("bad", "no"));
                }
                out.extend(e.value().unwrap_or_default().iter().map(u8::to_ascii_uppercase));
                std::fmt::Write::write_str(out, "!").map_err(|_| Failure::new("fmt", ""))?;
                assert_eq!(out.len(), 4);
                Ok(())
            });
        }
        let results = decode_results(&w.finish(), &batch).unwrap();
        let first = &results[0].as_ref().unwrap()[0];
        assert_eq!((first.key_str(), first.value_str()), (Some("k"), Some("ABC!")));
        assert_eq!(first.all_headers().collect::<Vec<_>>(), headers);
        let tombstone = &results[1].as_ref().unwrap()[0];
        assert_eq!((tombstone.key_str(), tombstone.value.as_deref()), (Some("gone"), None));
        assert_eq!(results[2], Err(Failure::new("bad", "no")));
        assert_eq!(results[3].as_ref().unwrap()[0].value_str(), Some("DEF!"));
    }

    #[test]
    fn every_input_gets_exactly_one_result() {
        let e = Event::new(b"x").with_key(b"k");
        let mut w = ResultWriter::with_capacity(0);
        w.begin(); // no output
        w.begin(); // two outputs
        w.output(&Output::new().text("a"));
        w.forward(&e, None, Some("r"));
        w.begin(); // output, then failure: the failure wins
        w.output(&Output::new().text("dropped"));
        w.fail(&Failure::new("bad", "why"));
        w.output(&Output::new().text("ignored"));
        w.begin(); // failure only
        w.fail(&Failure::new("bad", "again"));
        let results = decode_results(&w.finish(), &[]).unwrap();
        assert_eq!(results.len(), 4);
        assert_eq!(results[0], Ok(vec![]));
        let two = results[1].as_ref().unwrap();
        assert_eq!(
            (two[0].value_str(), two[1].route.as_deref(), two[1].key_str()),
            (Some("a"), Some("r"), Some("k"))
        );
        assert_eq!(results[2], Err(Failure::new("bad", "why")));
        assert_eq!(results[3], Err(Failure::new("bad", "again")));
    }

    #[test]
    fn the_input_itself_keeps_its_key_and_headers_by_flag() {
        let headers = [("h", Some(&b"x"[..]))];
        let batch = encode_events(&[
            Event::new(b"abc").with_key(b"key-one").with_headers(&headers),
            Event::new(b"def").with_key(b"key-two").with_headers(&headers),
        ]);
        let mut w = ResultWriter::with_capacity(0);
        let mut inputs = events(&batch);
        let first = inputs.next().unwrap();
        w.begin_event(&first);
        w.map_value(&first, |out| {
            out.extend_from_slice(b"ABC");
            Ok(())
        });
        let second = inputs.next().unwrap();
        w.begin_event(&second);
        w.forward(&second, None, Some("r"));
        w.forward(&second, Some(Some(&b"new"[..])), None);
        let buf = w.finish();
        // Neither input key nor the header is copied; only the new key is.
        let has = |needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
        assert!(!has(b"key-one") && !has(b"key-two") && !has(b"x") && has(b"new"));
        let results = decode_results(&buf, &batch).unwrap();
        let mapped = &results[0].as_ref().unwrap()[0];
        assert_eq!((mapped.key_str(), mapped.value_str()), (Some("key-one"), Some("ABC")));
        assert_eq!(mapped.all_headers().collect::<Vec<_>>(), headers);
        let [routed, rekeyed] = results[1].as_ref().unwrap().as_slice() else {
            panic!("two outputs")
        };
        assert_eq!(
            (routed.key_str(), routed.route.as_deref()),
            (Some("key-two"), Some("r"))
        );
        assert_eq!(routed.all_headers().collect::<Vec<_>>(), headers);
        assert_eq!((rekeyed.key_str(), rekeyed.value_str()), (Some("new"), Some("def")));
        assert_eq!(rekeyed.all_headers().collect::<Vec<_>>(), headers);
    }

    #[test]
    fn an_event_other_than_the_input_is_written_out() {
        let batch = encode_events(&[
            Event::new(b"a").with_key(b"k1").with_source("t", 0, 1),
            Event::new(b"b").with_key(b"k2").with_source("t", 0, 2),
        ]);
        let inputs: Vec<Event<'_>> = events(&batch).collect();
        let mut w = ResultWriter::with_capacity(0);
        // The result of the second input forwards the first, and a copy of
        // the second with another key: neither is the input as it came.
        w.begin_event(&inputs[0]);
        w.begin_event(&inputs[1]);
        w.forward(&inputs[0], None, None);
        w.map_value(&inputs[1].with_key(b"k3"), |out| {
            out.extend_from_slice(b"B");
            Ok(())
        });
        let results = decode_results(&w.finish(), &batch).unwrap();
        let outs = results[1].as_ref().unwrap();
        assert_eq!((outs[0].key_str(), outs[0].value_str()), (Some("k1"), Some("a")));
        assert_eq!((outs[1].key_str(), outs[1].value_str()), (Some("k3"), Some("B")));
    }
}
