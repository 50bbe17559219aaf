//! Host-side bindings generated from `wit/weir.wit`.
//!
//! One `bindgen!` for the widest world gives the import traits and the
//! aggregator/migrator/subtractor export types; one each for `process` and `join`
//! reuses those interfaces and adds the processor or joiner export.

#![allow(missing_docs, reason = "generated code")]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "aggregate-with-migrate-and-subtract",
});

/// Bindings of the `process` world, sharing the interfaces above.
pub mod process {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "process",
        with: {
            "weir:stream/types": super::weir::stream::types,
            "weir:stream/log": super::weir::stream::log,
            "weir:stream/config": super::weir::stream::config,
            "weir:stream/metrics": super::weir::stream::metrics,
        },
    });
}

/// Bindings of the `join` world, sharing the interfaces above.
pub mod join {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "join",
        with: {
            "weir:stream/types": super::weir::stream::types,
            "weir:stream/log": super::weir::stream::log,
            "weir:stream/config": super::weir::stream::config,
            "weir:stream/metrics": super::weir::stream::metrics,
        },
    });
}
