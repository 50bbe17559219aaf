//! # weir-sdk: Weir stream operators in Rust
//!
//! An operator is a plain function with one attribute:
//!
//! ```
//! use weir_sdk::Event;
//!
//! #[weir_sdk::filter]
//! fn errors_only(event: &Event) -> bool {
//!     event.value_str().is_some_and(|v| v.contains("ERROR"))
//! }
//!
//! assert!(errors_only(&Event::new(b"ERROR: disk full")));
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (crate type
//! `cdylib`) and the `.wasm` file is a component that `weir` can run. The
//! function stays an ordinary function, so `cargo test` tests it natively.
//!
//! | attribute | signature | becomes |
//! |---|---|---|
//! | [`filter`] | `fn(&Event) -> bool` | keeps the event or drops it |
//! | [`map`] | `fn(&Event) -> Output` | one output per event |
//! | [`map_value`] | `fn(&Event, &mut ValueOut)` | the event with a new value, written straight into the results |
//! | [`flat_map`] | `fn(&Event) -> Vec<Output>` | zero or more outputs |
//! | [`rekey`] | `fn(&Event) -> Vec<u8>` (or `String`, `&str`, `Option<…>`) | the event with a new key |
//! | [`route`] | `fn(&Event) -> &str` (or `String`) | the event, sent to a named route |
//! | [`aggregator`] | `impl Aggregate for T` (`(migrate)`: also `impl Migrate`, `(subtract)`: also `impl Subtract`) | a keyed aggregator |
//! | [`joiner`] | `fn(&Pair) -> Output` (or `Option`, `Vec`) | combines the two sides of a join |
//!
//! Any of them may return `Result<_, Failure>`: a [`Failure`] sends that one
//! event to the stage's error policy. A panic traps the whole batch, which the
//! host retries to isolate the event that caused it; prefer `Failure`.

#![warn(missing_docs)]

mod aggregate;
mod event;
mod glue;
mod host;
mod output;
mod pair;
pub mod testing;
mod writer;

pub use aggregate::{Aggregate, Migrate, State, Subtract, Window};
pub use event::{Event, Headers};
pub use host::{config, log, metrics};
pub use output::{Failure, Output, OutputHeader};
pub use pair::Pair;
pub use weir_abi::ValueOut;
pub use weir_sdk_macros::{aggregator, filter, flat_map, joiner, map, map_value, rekey, route};

/// Used by the attribute macros; not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::glue::*;
    pub use crate::writer::ResultWriter;
    pub use wit_bindgen;
}
