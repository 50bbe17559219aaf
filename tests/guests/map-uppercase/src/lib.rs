//! `uppercase` written as a `#[map]`: the new value is allocated per record
//! and then copied into the results (the boundary bench compares it with
//! the example's `#[map_value]`, which writes it there directly).

use weir_sdk::{Event, Output};

/// Upper-cases the event's value.
#[weir_sdk::map]
pub fn uppercase<'a>(event: &Event<'a>) -> Output<'a> {
    let mut out = Output::forward(event);
    out.value = event.value().map(|v| v.to_ascii_uppercase().into());
    out
}
