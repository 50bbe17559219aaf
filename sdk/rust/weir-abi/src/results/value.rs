//! An output's value written straight into the result batch.

use alloc::vec::Vec;

/// Where an output's value is written in place
/// ([`ResultEncoder::output_with`](crate::ResultEncoder::output_with)):
/// straight into the result batch, so making a value allocates nothing and
/// copies it once. A `Vec<u8>`-like writer (and [`core::fmt::Write`], for
/// `write!`; with the `std` feature also `std::io::Write`) that can only
/// append, so it cannot touch the bytes before the value.
pub struct ValueOut<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> ValueOut<'a> {
    /// A writer appending to `buf`: the value is what it appends (also for
    /// tests).
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

impl core::fmt::Write for ValueOut<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(feature = "std")]
impl std::io::Write for ValueOut<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
