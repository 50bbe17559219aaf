//! Writing a `result-batch`: one result per input, each a list of outputs
//! or a typed failure, straight into one buffer.

use alloc::vec::Vec;

use super::ValueOut;
use crate::headers::{HeadersView, put_headers};
use crate::wire::{patch_u32, put_bytes, put_opt, put_u32};
use crate::{TAG_FAILURE, TAG_OUTPUTS, flags};

/// A field of an output: written in the output, or kept from its input
/// event by a flag (only in the results of a `process` call, whose host
/// reads it from the `event-batch` it sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputOr<T> {
    /// Kept from the input event: nothing is written
    /// ([`flags::INPUT_KEY`], [`flags::INPUT_HEADERS`]).
    Input,
    /// Written in the output.
    Own(T),
}

/// The headers an output writes: `copied`, a block read from a batch and
/// copied in one piece, then `added`, `(name, value)` pairs.
#[derive(Debug, Clone, Copy)]
pub struct OutputHeaders<'a, I> {
    /// Headers copied as they were encoded (e.g. the input event's).
    pub copied: HeadersView<'a>,
    /// Headers written one by one after them.
    pub added: I,
}

/// No added headers.
pub type NoHeaders = [(&'static str, Option<&'static [u8]>); 0];

impl<I> OutputHeaders<'static, I> {
    /// These headers, written one by one.
    pub fn list(added: I) -> Self {
        OutputHeaders {
            copied: HeadersView::EMPTY,
            added,
        }
    }
}

impl<'a> OutputHeaders<'a, NoHeaders> {
    /// No headers.
    pub const NONE: OutputHeaders<'static, NoHeaders> = OutputHeaders {
        copied: HeadersView::EMPTY,
        added: [],
    };

    /// Headers read from a batch, copied in one piece.
    pub fn copied(copied: HeadersView<'a>) -> Self {
        OutputHeaders { copied, added: [] }
    }
}

/// Everything an output says besides its value, in the order of the
/// format.
#[derive(Debug, Clone, Copy)]
pub struct OutputFields<'a, I> {
    /// Event time in ms; `None` keeps the input's (or, for a joiner, the
    /// pair's).
    pub timestamp: Option<i64>,
    /// Record key (`Own(None)`: none).
    pub key: InputOr<Option<&'a [u8]>>,
    /// Record headers.
    pub headers: InputOr<OutputHeaders<'a, I>>,
    /// A named route of the stage; `None` is its default next hop.
    pub route: Option<&'a str>,
}

impl<'a, I> OutputFields<'a, I> {
    fn flags(&self) -> u8 {
        let mut f = 0;
        if self.timestamp.is_some() {
            f |= flags::TIMESTAMP;
        }
        if self.route.is_some() {
            f |= flags::ROUTE;
        }
        if self.key == InputOr::Input {
            f |= flags::INPUT_KEY;
        }
        if matches!(self.headers, InputOr::Input) {
            f |= flags::INPUT_HEADERS;
        }
        f
    }
}

/// The state of the result being written.
#[derive(Debug, Clone, Copy)]
enum Current {
    /// No result begun.
    Idle,
    /// Begun, nothing written yet: closes as zero outputs.
    Pending,
    /// Outputs being written: where the output count lives, and the count.
    Open { at: usize, outputs: u32 },
    /// A failure was written; later outputs of this input are dropped.
    Failed,
}

/// Writes a `result-batch` into one buffer, result by result: call
/// [`begin`](ResultEncoder::begin) for each input, then zero or more
/// [`output`](ResultEncoder::output)s or one [`fail`](ResultEncoder::fail).
/// A failure replaces the outputs already written for its input, and later
/// outputs of that input are dropped, so every input gets exactly one
/// result.
#[derive(Debug, Clone)]
pub struct ResultEncoder {
    buf: Vec<u8>,
    results: u32,
    current: Current,
}

impl Default for ResultEncoder {
    fn default() -> Self {
        ResultEncoder::new()
    }
}

impl ResultEncoder {
    /// An empty batch.
    pub fn new() -> Self {
        ResultEncoder::from_vec(Vec::new())
    }

    /// An empty batch with room for `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        ResultEncoder::from_vec(Vec::with_capacity(bytes.saturating_add(4)))
    }

    /// An empty batch written into `buf` (emptied first): reuses its
    /// allocation.
    pub fn from_vec(mut buf: Vec<u8>) -> Self {
        buf.clear();
        put_u32(&mut buf, 0);
        ResultEncoder {
            buf,
            results: 0,
            current: Current::Idle,
        }
    }

    /// Empties the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        put_u32(&mut self.buf, 0);
        self.results = 0;
        self.current = Current::Idle;
    }

    /// Number of results begun.
    pub fn len(&self) -> usize {
        self.results as usize
    }

    /// True when no result was begun.
    pub fn is_empty(&self) -> bool {
        self.results == 0
    }

    /// Starts the result of the next input (zero outputs until some are
    /// written).
    #[inline(always)]
    pub fn begin(&mut self) {
        self.close();
        self.results += 1;
        self.current = Current::Pending;
    }

    /// True when the current input has failed.
    pub fn is_failed(&self) -> bool {
        matches!(self.current, Current::Failed)
    }

    #[inline(always)]
    fn close(&mut self) {
        match core::mem::replace(&mut self.current, Current::Idle) {
            Current::Pending => {
                self.buf.push(TAG_OUTPUTS);
                put_u32(&mut self.buf, 0);
            }
            Current::Open { at, outputs } => patch_u32(&mut self.buf, at, outputs),
            Current::Idle | Current::Failed => {}
        }
    }

    /// Opens the current result's output list if needed and counts one more
    /// output; false when the input already failed. Branches, not a jump
    /// table: this runs once per output, and the table's indirect jump
    /// cost a guest a tenth of a mapped record's time.
    #[inline(always)]
    fn open(&mut self) -> bool {
        if let Current::Open { ref mut outputs, .. } = self.current {
            *outputs += 1;
            return true;
        }
        if !matches!(self.current, Current::Pending) {
            return self.open_unusual();
        }
        self.buf.push(TAG_OUTPUTS);
        self.current = Current::Open {
            at: self.buf.len(),
            outputs: 1,
        };
        put_u32(&mut self.buf, 0);
        true
    }

    /// `open` after a failure (false), or before any `begin` (which begins
    /// the first result).
    #[cold]
    fn open_unusual(&mut self) -> bool {
        match self.current {
            Current::Idle => {
                self.begin();
                self.open()
            }
            _ => false,
        }
    }

    /// Takes back the output just opened (its bytes from `start` on).
    fn unopen(&mut self, start: usize) {
        self.buf.truncate(start);
        if let Current::Open { ref mut outputs, .. } = self.current {
            *outputs -= 1;
        }
    }

    /// Writes the fields before the value.
    #[inline(always)]
    fn head<I>(&mut self, o: &OutputFields<'_, I>) {
        self.buf.push(o.flags());
        if let Some(ts) = o.timestamp {
            self.buf.extend_from_slice(&ts.to_le_bytes());
        }
        if let InputOr::Own(key) = o.key {
            put_opt(&mut self.buf, key);
        }
    }

    /// Writes the fields after the value.
    #[inline(always)]
    fn tail<'h, I>(&mut self, o: OutputFields<'_, I>)
    where
        I: IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    {
        if let InputOr::Own(h) = o.headers {
            put_headers(&mut self.buf, h.copied, h.added);
        }
        if let Some(route) = o.route {
            put_bytes(&mut self.buf, route.as_bytes());
        }
    }

    /// Appends an output with this value (`None`: none) to the current
    /// input's result; dropped if the input failed.
    #[inline]
    pub fn output<'h, I>(&mut self, fields: OutputFields<'_, I>, value: Option<&[u8]>)
    where
        I: IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    {
        if !self.open() {
            return;
        }
        self.head(&fields);
        put_opt(&mut self.buf, value);
        self.tail(fields);
    }

    /// Appends an output whose value `write` puts straight into the batch
    /// (one pass over the value, no allocation for it). If `write` fails,
    /// the output is taken back and its error returned; the input's result
    /// stays open.
    #[inline]
    pub fn output_with<'h, I, E>(
        &mut self,
        fields: OutputFields<'_, I>,
        write: impl FnOnce(&mut ValueOut<'_>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        I: IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    {
        if !self.open() {
            return Ok(());
        }
        let start = self.buf.len();
        self.head(&fields);
        let len_at = self.buf.len();
        put_u32(&mut self.buf, 0);
        if let Err(e) = write(&mut ValueOut::new(&mut self.buf)) {
            self.unopen(start);
            return Err(e);
        }
        // A value of 4 GiB or more cannot be encoded; a wasm32 guest cannot
        // hold one, and the host refuses such a batch.
        let len = (self.buf.len() - len_at - 4) as u32;
        patch_u32(&mut self.buf, len_at, len);
        self.tail(fields);
        Ok(())
    }

    /// Makes the current input's result a typed failure, replacing the
    /// outputs written for it; later outputs and failures of this input are
    /// dropped. A failure before any `begin` begins the first result.
    pub fn fail(&mut self, code: &str, message: &str) {
        match self.current {
            Current::Failed => return,
            Current::Open { at, .. } => self.buf.truncate(at - 1),
            Current::Idle => {
                self.begin();
            }
            Current::Pending => {}
        }
        self.current = Current::Failed;
        self.buf.push(TAG_FAILURE);
        put_bytes(&mut self.buf, code.as_bytes());
        put_bytes(&mut self.buf, message.as_bytes());
    }

    /// The finished batch.
    pub fn finish(mut self) -> Vec<u8> {
        self.close();
        patch_u32(&mut self.buf, 0, self.results);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use super::*;

    fn plain<'a>(key: Option<&'a [u8]>) -> OutputFields<'a, NoHeaders> {
        OutputFields {
            timestamp: None,
            key: InputOr::Own(key),
            headers: InputOr::Own(OutputHeaders::NONE),
            route: None,
        }
    }

    #[test]
    fn an_output_is_laid_out_as_the_wit_says() {
        let mut w = ResultEncoder::new();
        w.begin();
        let fields = OutputFields {
            timestamp: Some(-2),
            key: InputOr::Own(None),
            headers: InputOr::Own(OutputHeaders::list([("h", None)])),
            route: Some("r"),
        };
        w.output(fields, Some(b"v"));
        let mut want = vec![1, 0, 0, 0, TAG_OUTPUTS, 1, 0, 0, 0, flags::TIMESTAMP | flags::ROUTE];
        want.extend_from_slice(&(-2i64).to_le_bytes());
        want.extend_from_slice(&[0xff; 4]);
        want.extend_from_slice(&[1, 0, 0, 0, b'v']);
        want.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, b'h', 0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[1, 0, 0, 0, b'r']);
        assert_eq!(w.finish(), want);
    }

    #[test]
    fn every_input_gets_exactly_one_result() {
        let mut w = ResultEncoder::new();
        w.begin(); // no output
        w.begin(); // output, then failure: the failure wins
        w.output(plain(Some(b"k")), Some(b"dropped"));
        w.fail("bad", "why");
        w.output(plain(None), Some(b"ignored"));
        w.fail("worse", "ignored too");
        w.begin(); // a value that fails to be written is taken back
        let _ = w.output_with(plain(None), |v| {
            v.extend_from_slice(b"half");
            Err(())
        });
        w.output(plain(None), Some(b"x"));
        let mut want = vec![3, 0, 0, 0, TAG_OUTPUTS, 0, 0, 0, 0, TAG_FAILURE];
        want.extend_from_slice(&[3, 0, 0, 0, b'b', b'a', b'd', 3, 0, 0, 0, b'w', b'h', b'y']);
        want.extend_from_slice(&[
            TAG_OUTPUTS,
            1,
            0,
            0,
            0,
            0,
            0xff,
            0xff,
            0xff,
            0xff,
            1,
            0,
            0,
            0,
            b'x',
            0,
            0,
            0,
            0,
        ]);
        assert_eq!(w.finish(), want);
    }

    #[test]
    fn a_value_written_in_place_is_measured() {
        let mut w = ResultEncoder::new();
        w.begin();
        let fields = OutputFields {
            timestamp: None,
            key: InputOr::Input,
            headers: InputOr::<OutputHeaders<'_, NoHeaders>>::Input,
            route: None,
        };
        w.output_with(fields, |v| -> Result<(), ()> {
            core::fmt::Write::write_str(v, "abc").map_err(|_| ())?;
            v.as_mut_slice()[0] = b'A';
            Ok(())
        })
        .unwrap();
        let want = [
            1,
            0,
            0,
            0,
            TAG_OUTPUTS,
            1,
            0,
            0,
            0,
            flags::INPUT_KEY | flags::INPUT_HEADERS,
            3,
            0,
            0,
            0,
            b'A',
            b'b',
            b'c',
        ];
        assert_eq!(w.finish(), want);
    }

    #[test]
    fn a_first_value_that_fails_leaves_zero_outputs() {
        let mut w = ResultEncoder::new();
        w.begin();
        let _ = w.output_with(plain(None), |v| {
            v.push(1);
            Err(())
        });
        assert_eq!(w.finish(), [1, 0, 0, 0, TAG_OUTPUTS, 0, 0, 0, 0]);
    }
}
