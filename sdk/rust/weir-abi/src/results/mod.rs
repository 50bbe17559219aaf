//! `result-batch := u32 count, result{count}`, with
//! `result := u8 0, u32 n, output{n} | u8 1, str code, str message` and
//! `output := u8 flags, [s64 timestamp], opt-bytes key, opt-bytes value,
//! headers, [str route]`: a guest writes it ([`ResultEncoder`]), the host
//! checks it once and reads it in place ([`ResultBatch`]).

mod batch;
mod encode;
mod value;

pub use batch::{OutputRef, OutputsRef, ResultBatch, ResultRef};
pub use encode::{InputOr, NoHeaders, OutputFields, OutputHeaders, ResultEncoder};
pub use value::ValueOut;
