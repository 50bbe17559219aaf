//! # weir-abi: the batch ABI, defined once
//!
//! Events cross the component boundary between the Weir host and an operator
//! a batch at a time, as one flat byte buffer, and results come back as one
//! flat buffer (`wit/weir.wit` explains why). This crate is the single Rust
//! definition of those buffers; the host and the Rust SDK both use it, and the
//! golden vectors in `sdk/abi/vectors/` that the Python, JavaScript and C SDKs
//! are tested against are generated from it (`tests/vectors.rs`).
//!
//! ```text
//! event-batch  := u32 count, event{count}
//! event        := s64 timestamp, s32 partition, s64 offset, str topic,
//!                 opt-bytes key, opt-bytes value, headers
//! headers      := u32 count, (str name, opt-bytes value){count}
//!
//! join-batch   := u32 count, pair{count}
//! pair         := s64 timestamp, opt-bytes key, opt-bytes left,
//!                 opt-bytes right, headers
//!
//! result-batch := u32 count, result{count}       count = number of inputs
//! result       := u8 0, u32 n, output{n}          zero or more outputs
//!               | u8 1, str code, str message     a typed failure
//! output       := u8 flags, [s64 timestamp], opt-bytes key, opt-bytes value,
//!                 headers, [str route]
//! ```
//!
//! Integers are little-endian; `str` and `bytes` are `u32 len` then `len`
//! bytes (`str` is UTF-8); `opt-bytes` is the same with `len = 0xffff_ffff`
//! ([`NONE_LEN`]) meaning none. The output [`flags`] say which optional parts
//! follow, and let an output keep its input event's key or headers without
//! copying them.
//!
//! ## Map of the crate
//!
//! | module | owns |
//! |---|---|
//! | [`flags`], [`NONE_LEN`], [`TAG_OUTPUTS`], [`TAG_FAILURE`] | the constants of the layout |
//! | `error` | [`DecodeError`]: what is wrong with a buffer, and where |
//! | `wire` | the scalar encodings: a bounds-checked reader, the appending writers |
//! | `headers` | [`HeadersView`], headers read in place |
//! | `events` | `event-batch`: [`EventEncoder`] (appends), [`events`] / [`EventView`] (read in place) |
//! | `pairs` | `join-batch`: [`PairEncoder`], [`pairs`] / [`PairView`] |
//! | `results` | `result-batch`: [`ResultEncoder`] (what a guest writes), [`ResultBatch`] (what the host checks once, then reads in place) |
//! | `owned` | owned records ([`Event`], [`Pair`], [`Output`], [`EventResult`]) and whole-batch conversions, for tests and tools |
//!
//! Reading never trusts the buffer: every length is checked, a malformed
//! buffer is a [`DecodeError`] naming the offset and the value found, and no
//! count read from a buffer sizes an allocation beyond what the buffer could
//! hold. Reading allocates nothing per record; the encoders append into a
//! `Vec<u8>` that [`clear`](EventEncoder::clear) keeps for the next batch.

#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod error;
mod events;
mod headers;
mod owned;
mod pairs;
mod results;
mod wire;

pub use error::{DecodeError, Field};
pub use events::{EventEncoder, EventView, Events, events, read_events};
pub use headers::{HeaderIter, HeadersView};
pub use owned::{
    Event, EventResult, Failure, Header, Output, Pair, decode_results, encode_events, encode_pairs, encode_results,
    read_pairs,
};
pub use pairs::{PairEncoder, PairView, Pairs, pairs};
pub use results::{
    InputOr, NoHeaders, OutputFields, OutputHeaders, OutputRef, OutputsRef, ResultBatch, ResultEncoder, ResultRef,
    ValueOut,
};
pub use wire::count;

/// The length that marks an absent `opt-bytes` (no bytes follow).
pub const NONE_LEN: u32 = u32::MAX;

/// The tag of a result that is a list of outputs.
pub const TAG_OUTPUTS: u8 = 0;

/// The tag of a result that is a typed failure.
pub const TAG_FAILURE: u8 = 1;

/// The bits of an output's flags byte.
pub mod flags {
    /// A timestamp follows (else the output keeps its input's).
    pub const TIMESTAMP: u8 = 1;
    /// A route follows (else the output goes to the stage's default next hop).
    pub const ROUTE: u8 = 2;
    /// No key follows: the output keeps its input event's key.
    pub const INPUT_KEY: u8 = 4;
    /// No headers follow: the output keeps its input event's headers.
    pub const INPUT_HEADERS: u8 = 8;
    /// Every defined bit; a decoder refuses any other.
    pub const ALL: u8 = TIMESTAMP | ROUTE | INPUT_KEY | INPUT_HEADERS;
}
