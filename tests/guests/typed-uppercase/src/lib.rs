//! The design the contract did not choose, kept to measure against: each
//! event is a WIT record, so the canonical ABI allocates and copies per field.
//! `host/benches/boundary.rs` compares it with the flat batch encoding.

wit_bindgen::generate!({
    path: "../../../host/benches/typed.wit",
    world: "typed",
});

use exports::bench::typed::processor::{Event, Output};

struct Typed;

impl exports::bench::typed::processor::Guest for Typed {
    fn process(events: Vec<Event>) -> Vec<Output> {
        events
            .into_iter()
            .map(|e| Output {
                key: e.key,
                value: e.value.map(|v| v.to_ascii_uppercase()),
                headers: e.headers,
            })
            .collect()
    }
}

// Component exports only exist in wasm32 (the names are not native symbols).
#[cfg(target_arch = "wasm32")]
export!(Typed);
