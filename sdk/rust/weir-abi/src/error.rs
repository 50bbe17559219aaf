//! What is wrong with a malformed buffer, and where.

use core::fmt;

/// A text field of the format, named in [`DecodeError::NotUtf8`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// An event's source topic.
    Topic,
    /// A header's name.
    HeaderName,
    /// An output's route.
    Route,
    /// A failure's code.
    FailureCode,
    /// A failure's message.
    FailureMessage,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Topic => "topic",
            Field::HeaderName => "header name",
            Field::Route => "route",
            Field::FailureCode => "failure code",
            Field::FailureMessage => "failure message",
        })
    }
}

/// A buffer that is not a well-formed batch. Offsets are in bytes from the
/// start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ended in the middle of a field.
    Truncated {
        /// Offset where reading stopped.
        at: usize,
        /// Bytes that were still needed.
        needed: usize,
        /// Buffer length.
        len: usize,
    },
    /// A result had a tag other than [`TAG_OUTPUTS`](crate::TAG_OUTPUTS) or
    /// [`TAG_FAILURE`](crate::TAG_FAILURE).
    BadTag {
        /// Index of the result in the batch.
        index: usize,
        /// Offset of the tag byte.
        at: usize,
        /// The tag found.
        tag: u8,
    },
    /// A result batch holds a different number of results than there were
    /// inputs.
    CountMismatch {
        /// Inputs sent.
        expected: usize,
        /// Results found.
        found: usize,
    },
    /// A text field is not UTF-8.
    NotUtf8 {
        /// Which field.
        field: Field,
        /// Offset of its first byte.
        at: usize,
    },
    /// An output's flags byte has bits the format does not define.
    BadFlags {
        /// Offset of the flags byte.
        at: usize,
        /// The flags found.
        flags: u8,
    },
    /// An output keeps its input's key or headers in results that have no
    /// input event (a joiner's or an aggregator's).
    NoInput {
        /// Offset of the flags byte.
        at: usize,
        /// The flags found.
        flags: u8,
    },
    /// Bytes were left over after the last item of the batch.
    Trailing {
        /// Offset of the first extra byte.
        at: usize,
        /// How many there are.
        extra: usize,
    },
    /// A buffer of 4 GiB or more, which no wasm32 guest can take or return
    /// and whose offsets the format's `u32` lengths cannot express.
    TooLarge {
        /// Buffer length.
        len: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Truncated { at, needed, len } => {
                write!(f, "batch truncated at byte {at} (needed {needed} more bytes of {len})")
            }
            DecodeError::BadTag { index, at, tag } => write!(f, "result {index} at byte {at} has unknown tag {tag}"),
            DecodeError::CountMismatch { expected, found } => {
                write!(f, "expected {expected} results (one per input), got {found}")
            }
            DecodeError::NotUtf8 { field, at } => write!(f, "{field} at byte {at} is not UTF-8"),
            DecodeError::BadFlags { at, flags } => write!(f, "output at byte {at} has unknown flag bits {flags:#04x}"),
            DecodeError::NoInput { at, flags } => write!(
                f,
                "output at byte {at} keeps its input's key or headers (flags {flags:#04x}), but these results have no input event"
            ),
            DecodeError::Trailing { at, extra } => {
                write!(f, "{extra} trailing bytes at byte {at}, after the last item")
            }
            DecodeError::TooLarge { len } => write!(f, "batch of {len} bytes (the format's limit is 4 GiB)"),
        }
    }
}

impl core::error::Error for DecodeError {}
