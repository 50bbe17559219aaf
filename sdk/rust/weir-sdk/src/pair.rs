//! The two sides of a join as a joiner sees them: borrowed views into the
//! batch buffer.

use weir_abi::PairView;

use crate::event::Headers;

/// The pairs of a `join-batch` from the host; like [`crate::event::events`],
/// reading stops at a malformed pair, and says why in the host's log.
#[inline]
pub(crate) fn pairs(batch: &[u8]) -> Pairs<'_> {
    Pairs(weir_abi::pairs(batch))
}

/// Iterates the pairs of a batch (see [`pairs`]).
pub(crate) struct Pairs<'a>(weir_abi::Pairs<'a>);

impl<'a> Iterator for Pairs<'a> {
    type Item = Pair<'a>;

    /// Inlined into the batch loop, as for events.
    #[inline(always)]
    fn next(&mut self) -> Option<Pair<'a>> {
        match self.0.next()? {
            Ok(p) => Some(Pair::from_view(p)),
            Err(err) => {
                crate::event::malformed("join batch", &err);
                None
            }
        }
    }
}

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

    /// The pair as read from a batch.
    #[inline(always)]
    pub(crate) fn from_view(p: PairView<'a>) -> Self {
        Pair {
            key: p.key,
            left: p.left,
            right: p.right,
            headers: Headers::raw(p.headers),
            timestamp: p.timestamp,
        }
    }
}
