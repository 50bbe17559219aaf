//! `headers := u32 count, (str name, opt-bytes value){count}`: read in place
//! and written by appending.

use alloc::vec::Vec;

use crate::wire::{Reader, opt_len, put_all, put_u32};
use crate::{DecodeError, Field};

/// The headers of an event, a pair or an output, read in place: names need
/// not be unique and their order is kept. Every name was checked as UTF-8
/// when the batch was read, so iterating cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadersView<'a> {
    /// The encoded headers after their count.
    raw: &'a [u8],
    count: u32,
}

impl<'a> HeadersView<'a> {
    /// No headers.
    pub const EMPTY: HeadersView<'static> = HeadersView { raw: &[], count: 0 };

    /// Reads a `headers` block, checking every name.
    #[inline(always)]
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = r.u32()?;
        let start = r.position();
        for _ in 0..count {
            r.str_span(Field::HeaderName)?;
            r.opt_span()?;
        }
        Ok(HeadersView {
            raw: &r.buf()[start..r.position()],
            count,
        })
    }

    /// Headers whose block a reader of this crate checked, or that an
    /// encoder of this crate wrote from `&str` names.
    #[inline(always)]
    pub(crate) fn checked(raw: &'a [u8], count: u32) -> Self {
        HeadersView { raw, count }
    }

    /// Number of headers.
    #[inline]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The headers as encoded after their count: what an encoder copies in
    /// one piece to pass them on.
    #[inline]
    pub fn encoded(&self) -> &'a [u8] {
        self.raw
    }

    /// The headers in order: `(name, value)`, `None` for a header without a
    /// value.
    #[inline]
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter {
            raw: self.raw,
            left: self.count,
        }
    }

    /// The value of the first header called `name` (`Some(None)`: it has no
    /// value; `None`: there is no such header).
    pub fn get(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl<'a> IntoIterator for HeadersView<'a> {
    type Item = (&'a str, Option<&'a [u8]>);
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// Iterates a [`HeadersView`].
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    raw: &'a [u8],
    left: u32,
}

impl<'a> HeaderIter<'a> {
    /// The next `u32` length and the bytes after it (`None` past the end,
    /// which a checked block never reaches).
    #[inline(always)]
    fn field(&mut self) -> Option<(u32, &'a [u8])> {
        let (len, rest) = self.raw.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len);
        self.raw = rest;
        Some((len, rest))
    }
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (n, rest) = self.field()?;
        let (name, rest) = rest.split_at_checked(n as usize)?;
        self.raw = rest;
        // SAFETY: a `HeadersView` is made only from a block whose reader
        // checked every name as UTF-8 (`HeadersView::read`) or that an
        // encoder wrote from `&str` names (`HeadersView::checked`), and it
        // borrows that block immutably. Checking again cost 3% of a
        // 100-byte record's trip through a guest, measured in the host.
        let name = unsafe { core::str::from_utf8_unchecked(name) };
        let value = match self.field()? {
            (crate::NONE_LEN, _) => None,
            (n, rest) => {
                let (value, rest) = rest.split_at_checked(n as usize)?;
                self.raw = rest;
                Some(value)
            }
        };
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

/// Appends a `headers` block: `copied` (already encoded, copied in one
/// piece), then `added`. Returns the count written.
#[inline]
pub(crate) fn put_headers<'h>(
    b: &mut Vec<u8>,
    copied: HeadersView<'_>,
    added: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
) -> u32 {
    let count_at = b.len();
    put_u32(b, 0);
    if !copied.raw.is_empty() {
        b.extend_from_slice(copied.raw);
    }
    let mut n = copied.count;
    for (name, value) in added {
        put_all(
            b,
            [
                &(name.len() as u32).to_le_bytes(),
                name.as_bytes(),
                &opt_len(value),
                value.unwrap_or_default(),
            ],
        );
        n += 1;
    }
    crate::wire::patch_u32(b, count_at, n);
    n
}
