//! Exports the processor interface's name with a different signature: the
//! host must refuse it before running anything.

wit_bindgen::generate!({
    inline: r#"
        package weir:%stream@0.1.0;
        interface processor {
            process: func(events: string) -> string;
        }
        world wrong { export processor; }
    "#,
    world: "wrong",
});

struct Wrong;

impl exports::weir::stream::processor::Guest for Wrong {
    fn process(events: String) -> String {
        events
    }
}

// Component exports only exist in wasm32 (the names are not native symbols).
#[cfg(target_arch = "wasm32")]
export!(Wrong);
