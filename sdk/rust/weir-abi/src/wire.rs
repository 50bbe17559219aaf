//! The scalar encodings: `u8`, `u32`, `s32`, `s64`, `str`, `bytes` and
//! `opt-bytes`, read with every length checked and written by appending.

use alloc::vec::Vec;
use core::mem::MaybeUninit;

use crate::{DecodeError, Field, NONE_LEN};

/// The `u32` count that starts every batch (events, pairs or results).
pub fn count(batch: &[u8]) -> Result<u32, DecodeError> {
    Reader::new(batch).u32()
}

/// A byte range of a buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// A byte range of a buffer below 4 GiB, or none (`len` is `NONE_LEN`), in
/// 8 bytes: a checked result batch keeps one per field of every output and
/// the host reads them back, so their size is memory traffic per record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pos {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

impl Pos {
    pub(crate) const ABSENT: Pos = Pos {
        start: 0,
        len: NONE_LEN,
    };

    /// Exact for buffers below 4 GiB, which is all a result batch checks.
    #[inline]
    pub(crate) fn of(s: Span) -> Pos {
        Pos {
            start: s.start as u32,
            len: s.len as u32,
        }
    }

    #[inline]
    pub(crate) fn opt(s: Option<Span>) -> Pos {
        s.map_or(Pos::ABSENT, Pos::of)
    }

    /// The bytes at this position of `buf` (empty if `buf` is too short,
    /// which the positions of a checked batch never are).
    #[inline]
    pub(crate) fn of_buf(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..)
            .and_then(|b| b.get(..self.len as usize))
            .unwrap_or_default()
    }

    /// The same, `None` for an absent field.
    #[inline]
    pub(crate) fn opt_of_buf(self, buf: &[u8]) -> Option<&[u8]> {
        (self.len != NONE_LEN).then(|| self.of_buf(buf))
    }
}

/// A cursor over a buffer from outside: every read checks the length first.
/// The small reads run several times per record and are inlined (a guest
/// build does not always do that by itself).
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    #[inline(always)]
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    #[inline(always)]
    pub(crate) fn buf(&self) -> &'a [u8] {
        self.buf
    }

    #[inline(always)]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    /// Fails unless the whole buffer was read.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::Trailing { at: self.at, extra }),
        }
    }

    #[cold]
    fn truncated(&self, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            at: self.at,
            needed,
            len: self.buf.len(),
        }
    }

    #[inline(always)]
    pub(crate) fn span(&mut self, n: usize) -> Result<Span, DecodeError> {
        if self.remaining() < n {
            return Err(self.truncated(n));
        }
        let span = Span { start: self.at, len: n };
        self.at += n;
        Ok(span)
    }

    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let at = self.at;
        match at.checked_add(n).and_then(|end| self.buf.get(at..end)) {
            Some(bytes) => {
                self.at = at + n;
                Ok(bytes)
            }
            None => Err(self.truncated(n)),
        }
    }

    /// The next `N` bytes as an array: one length check, no per-byte bounds
    /// checks.
    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        match self.buf.get(self.at..).and_then(<[u8]>::first_chunk::<N>) {
            Some(a) => {
                self.at += N;
                Ok(*a)
            }
            None => Err(self.truncated(N)),
        }
    }

    #[inline(always)]
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.array::<1>().map(|[b]| b)
    }

    #[inline(always)]
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    #[inline(always)]
    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        self.array().map(i32::from_le_bytes)
    }

    #[inline(always)]
    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_le_bytes)
    }

    /// `opt-bytes`.
    #[inline(always)]
    pub(crate) fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.u32()? {
            NONE_LEN => Ok(None),
            n => self.take(n as usize).map(Some),
        }
    }

    /// `opt-bytes`, as a position in the buffer.
    #[inline(always)]
    pub(crate) fn opt_span(&mut self) -> Result<Option<Span>, DecodeError> {
        match self.u32()? {
            NONE_LEN => Ok(None),
            n => self.span(n as usize).map(Some),
        }
    }

    /// `str`, checked as UTF-8.
    #[inline(always)]
    pub(crate) fn str(&mut self, field: Field) -> Result<&'a str, DecodeError> {
        let n = self.u32()? as usize;
        let at = self.at;
        let bytes = self.take(n)?;
        utf8(bytes, field, at)
    }

    /// `str`, checked as UTF-8, as a position in the buffer.
    #[inline(always)]
    pub(crate) fn str_span(&mut self, field: Field) -> Result<Span, DecodeError> {
        let n = self.u32()? as usize;
        let at = self.at;
        let bytes = self.take(n)?;
        utf8(bytes, field, at)?;
        Ok(Span { start: at, len: n })
    }
}

/// `bytes` as text. Topics and header names are short and nearly always
/// ASCII: an inline check first.
#[inline(always)]
fn utf8(bytes: &[u8], field: Field, at: usize) -> Result<&str, DecodeError> {
    if short_ascii(bytes) {
        // SAFETY: ASCII is UTF-8.
        return Ok(unsafe { core::str::from_utf8_unchecked(bytes) });
    }
    core::str::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8 { field, at })
}

/// True when `b` is ASCII, checked in two overlapping words when it is 4 to
/// 16 bytes long (as `copy` copies them); false for other lengths, which
/// the full check then handles. A byte loop here cost a fifth of the time
/// a guest takes to read a small event.
#[inline(always)]
fn short_ascii(b: &[u8]) -> bool {
    let n = b.len();
    if (8..=16).contains(&n) {
        let (head, tail) = (u64::from_le_bytes(word(b, 0)), u64::from_le_bytes(word(b, n - 8)));
        (head | tail) & 0x8080_8080_8080_8080 == 0
    } else if (4..8).contains(&n) {
        let (head, tail) = (u32::from_le_bytes(word(b, 0)), u32::from_le_bytes(word(b, n - 4)));
        (head | tail) & 0x8080_8080 == 0
    } else {
        false
    }
}

/// Appends a `u32`.
#[inline(always)]
pub(crate) fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// The `u32` length of `bytes`. Lengths of 4 GiB - 1 or more cannot be
/// encoded; a wasm32 guest cannot hold them and Kafka records are far
/// smaller, and a decoder refuses the batch they would be written into
/// ([`DecodeError::TooLarge`]).
#[inline(always)]
pub(crate) fn len32(bytes: &[u8]) -> u32 {
    bytes.len() as u32
}

/// The `u32` length of an `opt-bytes`.
#[inline(always)]
pub(crate) fn opt_len(bytes: Option<&[u8]>) -> [u8; 4] {
    bytes.map_or(NONE_LEN, len32).to_le_bytes()
}

/// Appends `bytes` (and `str`).
#[inline(always)]
pub(crate) fn put_bytes(b: &mut Vec<u8>, bytes: &[u8]) {
    put_all(b, [&len32(bytes).to_le_bytes(), bytes]);
}

/// Appends an `opt-bytes`.
#[inline(always)]
pub(crate) fn put_opt(b: &mut Vec<u8>, bytes: Option<&[u8]>) {
    put_all(b, [&opt_len(bytes), bytes.unwrap_or_default()]);
}

/// Overwrites the `u32` at `at`, written earlier as a placeholder.
#[inline(always)]
pub(crate) fn patch_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(slot) = b.get_mut(at..at + 4) {
        slot.copy_from_slice(&v.to_le_bytes());
    }
}

/// Appends `parts` with one capacity check and one length update: a record
/// is a dozen short fields, and `extend_from_slice` per field re-reads the
/// vector's length and capacity after every copy (10% of a 100-byte record's
/// trip through a guest went to that, measured in the host).
#[inline(always)]
pub(crate) fn put_all<const N: usize>(b: &mut Vec<u8>, parts: [&[u8]; N]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_copy_length_lands_whole() {
        let src: Vec<u8> = (0..40).collect();
        for n in 0..=src.len() {
            let mut b = alloc::vec![9];
            put_all(&mut b, [&src[..n], b"!"]);
            assert_eq!(b.len(), n + 2);
            assert_eq!(&b[1..=n], &src[..n]);
            assert_eq!(b[n + 1], b'!');
        }
    }

    #[test]
    fn short_reads_name_the_offset_and_the_need() {
        let mut r = Reader::new(&[1, 0, 0, 0, 7]);
        assert_eq!(r.u32(), Ok(1));
        assert_eq!(
            r.i64(),
            Err(DecodeError::Truncated {
                at: 4,
                needed: 8,
                len: 5
            })
        );
        let mut r = Reader::new(&[5, 0, 0, 0, b'a']);
        assert_eq!(
            r.opt_bytes(),
            Err(DecodeError::Truncated {
                at: 4,
                needed: 5,
                len: 5
            })
        );
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(matches!(r.opt_bytes(), Err(DecodeError::Truncated { at: 4, .. })));
    }

    #[test]
    fn every_short_length_is_checked_for_ascii_in_every_byte() {
        for n in 0..=20 {
            let ascii = alloc::vec![b'a'; n];
            assert_eq!(utf8(&ascii, Field::Topic, 0).map(str::len), Ok(n));
            for i in 0..n {
                let mut bad = ascii.clone();
                bad[i] = 0xff;
                assert!(utf8(&bad, Field::Topic, 0).is_err(), "length {n}, byte {i}");
                bad[i] = 0xc3;
                assert!(!short_ascii(&bad), "length {n}, byte {i}");
            }
        }
    }

    #[test]
    fn text_must_be_utf8() {
        let mut r = Reader::new(&[2, 0, 0, 0, 0xc3, 0x28]);
        assert_eq!(
            r.str(Field::Route),
            Err(DecodeError::NotUtf8 {
                field: Field::Route,
                at: 4
            })
        );
    }
}
