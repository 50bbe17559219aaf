//! The two sides of a join as a joiner sees them: borrowed views into the
//! batch buffer.

use crate::codec::Reader;
use crate::event::Headers;

/// One pair to join. Either side may be absent: the left one in an outer
/// join, the right one in a left or outer join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    key: Option<&'a [u8]>,
    left: Option<&'a [u8]>,
    right: Option<&'a [u8]>,
    headers: Headers<'a>,
    timestamp: i64,
}

impl<'a> Pair<'a> {
    /// A pair of these sides and nothing else set, for tests:
    /// `Pair::new(Some(b"order"), None).with_key(b"c1")`.
    pub fn new(left: Option<&'a [u8]>, right: Option<&'a [u8]>) -> Self {
        Pair {
            key: None,
            left,
            right,
            headers: Headers::EMPTY,
            timestamp: 0,
        }
    }

    /// This pair with a key.
    pub fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// This pair with a timestamp (ms).
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The join key.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The key as UTF-8 text, if it is present and valid.
    pub fn key_str(&self) -> Option<&'a str> {
        self.key.and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The left side's value (`None`: no left record).
    pub fn left(&self) -> Option<&'a [u8]> {
        self.left
    }

    /// The right side's value (`None`: no right record).
    pub fn right(&self) -> Option<&'a [u8]> {
        self.right
    }

    /// Headers of the record that caused the join.
    pub fn headers(&self) -> Headers<'a> {
        self.headers
    }

    /// The result's timestamp (the default of its outputs), ms.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Decodes the pair at the reader's position (host data: trusted format).
    pub(crate) fn decode(r: &mut Reader<'a>) -> Option<Self> {
        let timestamp = r.i64()?;
        let key = r.opt_bytes()?;
        let left = r.opt_bytes()?;
        let right = r.opt_bytes()?;
        let count = r.u32()?;
        let start = r.position();
        for _ in 0..count {
            r.bytes()?;
            r.opt_bytes()?;
        }
        Some(Pair {
            key,
            left,
            right,
            headers: Headers::raw(r.slice_from(start), count),
            timestamp,
        })
    }
}
