//! `join-batch := u32 count, pair{count}`, with
//! `pair := s64 timestamp, opt-bytes key, opt-bytes left, opt-bytes right,
//! headers`: what a joiner combines.

use alloc::vec::Vec;

use crate::DecodeError;
use crate::headers::{HeadersView, put_headers};
use crate::wire::{Reader, opt_len, put_all, put_u32};

/// One pair of a `join-batch`, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairView<'a> {
    /// The join result's timestamp (the default of its outputs), ms.
    pub timestamp: i64,
    /// The join key.
    pub key: Option<&'a [u8]>,
    /// The left side's value; `None`: no left record (an outer join).
    pub left: Option<&'a [u8]>,
    /// The right side's value; `None`: no right record (a left or outer join).
    pub right: Option<&'a [u8]>,
    /// Headers of the record that caused the join.
    pub headers: HeadersView<'a>,
}

impl<'a> PairView<'a> {
    #[inline(always)]
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(PairView {
            timestamp: r.i64()?,
            key: r.opt_bytes()?,
            left: r.opt_bytes()?,
            right: r.opt_bytes()?,
            headers: HeadersView::read(r)?,
        })
    }
}

/// Reads the pairs of a `join-batch` in place, in order (see [`pairs`]).
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    r: Reader<'a>,
    left: u32,
    /// What the next call reports instead of a pair (a batch too short for
    /// its count); `done` after it.
    pending: Option<DecodeError>,
    done: bool,
}

/// Reads a `join-batch` in place: yields each pair, then an error instead of
/// ending if bytes are left after the last one. After an error it yields
/// nothing more.
pub fn pairs(batch: &[u8]) -> Pairs<'_> {
    let mut r = Reader::new(batch);
    let (left, pending) = match r.u32() {
        Ok(left) => (left, None),
        Err(e) => (0, Some(e)),
    };
    Pairs {
        r,
        left,
        pending,
        done: false,
    }
}

impl<'a> Pairs<'a> {
    /// Pairs the batch announces that were not read yet.
    pub fn remaining(&self) -> u32 {
        self.left
    }

    /// After the last pair: what is wrong with the batch, once.
    #[cold]
    fn end(&mut self) -> Option<Result<PairView<'a>, DecodeError>> {
        if core::mem::replace(&mut self.done, true) {
            return None;
        }
        match self.pending.take() {
            Some(e) => Some(Err(e)),
            None => self.r.finish().err().map(Err),
        }
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<PairView<'a>, DecodeError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left > 0 {
            self.left -= 1;
            let p = PairView::read(&mut self.r);
            if p.is_err() {
                self.left = 0;
                self.done = true;
            }
            return Some(p);
        }
        self.end()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.remaining() as usize;
        (0, Some(left.saturating_add(1)))
    }
}

/// Builds a `join-batch` by appending pairs from borrowed parts;
/// [`clear`](PairEncoder::clear) keeps the allocation for the next batch.
#[derive(Debug, Clone)]
pub struct PairEncoder {
    buf: Vec<u8>,
    count: u32,
}

impl Default for PairEncoder {
    fn default() -> Self {
        PairEncoder::new()
    }
}

impl PairEncoder {
    /// An empty batch.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(4096);
        put_u32(&mut buf, 0);
        PairEncoder { buf, count: 0 }
    }

    /// Empties the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        put_u32(&mut self.buf, 0);
        self.count = 0;
    }

    /// Number of pairs appended.
    #[inline]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when no pair was appended.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends one pair: the result's timestamp, the key, each side's value
    /// (`None`: that side has no record) and the headers of the record that
    /// caused the join.
    #[inline]
    pub fn push<'h>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        left: Option<&[u8]>,
        right: Option<&[u8]>,
        headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    ) {
        let b = &mut self.buf;
        put_all(
            b,
            [
                &timestamp.to_le_bytes(),
                &opt_len(key),
                key.unwrap_or_default(),
                &opt_len(left),
                left.unwrap_or_default(),
                &opt_len(right),
                right.unwrap_or_default(),
            ],
        );
        put_headers(b, HeadersView::EMPTY, headers);
        self.count += 1;
        crate::wire::patch_u32(&mut self.buf, 0, self.count);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_read_back_as_pushed() {
        let mut enc = PairEncoder::new();
        enc.push(-3, Some(b"k"), Some(b"{}"), None, [("h", Some(&b"v"[..])), ("n", None)]);
        enc.push(0, None, None, None, []);
        let got: Vec<PairView<'_>> = pairs(enc.as_bytes()).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].timestamp, got[0].key), (-3, Some(&b"k"[..])));
        assert_eq!((got[0].left, got[0].right), (Some(&b"{}"[..]), None));
        assert_eq!(
            got[0].headers.iter().collect::<Vec<_>>(),
            [("h", Some(&b"v"[..])), ("n", None)]
        );
        assert_eq!((got[1].key, got[1].left, got[1].headers.len()), (None, None, 0));
        let bytes = enc.as_bytes();
        for cut in 0..bytes.len() {
            assert!(pairs(&bytes[..cut]).any(|p| p.is_err()), "cut at {cut}");
        }
    }
}
