//! The flat batch encoding that crosses the component boundary.
//!
//! One buffer goes in per batch and one comes out, so the canonical ABI
//! copies two byte lists per call instead of allocating per record and per
//! field (`wit/weir.wit`). The format is defined once, in the `weir-abi`
//! crate, which the Rust SDK uses too and from which the golden vectors in
//! `sdk/abi/vectors/` are generated (every SDK's tests round-trip them): a
//! change to the format is a change to that crate and its vectors. This
//! module gives the host's names to its types and adds what only the host
//! checks. The host encodes events from borrowed Kafka records (no
//! intermediate [`Event`](crate::event::Event)) and reads results in place,
//! checking every length: a guest's result is untrusted input.

pub use weir_abi::{
    DecodeError, EventEncoder as BatchEncoder, EventView as EventRef, HeadersView, OutputRef, OutputsRef, PairEncoder,
    ResultBatch, ResultRef, decode_results, encode_events, encode_pairs, encode_results, read_events, read_pairs,
};

/// A malformed batch from a guest, or results that do not fit the events
/// they answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The buffer does not follow the format.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A failure names an event the group does not have.
    #[error("failure for event {index} of a group of {len}")]
    BadIndex {
        /// The index reported.
        index: u32,
        /// Events in the group.
        len: u32,
    },
}

/// The number of events (or pairs) in a batch; 0 for a buffer too short to
/// hold the count.
pub fn batch_len(batch: &[u8]) -> u32 {
    weir_abi::count(batch).unwrap_or(0)
}
