//! Turns a core WebAssembly module into a Weir operator component.
//!
//! Languages without component tooling (C with clang and wasi-libc, Zig, …)
//! build a `wasm32-wasip1` reactor module that exports the canonical-ABI
//! functions of a Weir world. This embeds the world's type information (from
//! the WIT built into `weir`) and links the WASI preview1 adapter, as
//! `wasm-tools component new --adapt` would, with no extra tool to install.

use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

use crate::contract;

/// Why a core module could not become a component.
#[derive(Debug, thiserror::Error)]
pub enum ComponentizeError {
    /// The input is not a core module.
    #[error("the input is not a core WebAssembly module{}", if *.is_component { " (it is already a component)" } else { "" })]
    NotCoreModule {
        /// True when it is already a component.
        is_component: bool,
    },
    /// The world name is not one of the contract's.
    #[error("unknown world {world:?}; choose one of: {}", WORLDS.join(", "))]
    UnknownWorld {
        /// The name given.
        world: String,
    },
    /// wit-component refused the module, e.g. a missing or mistyped export.
    #[error("cannot make a {world} component from this module: {reason}")]
    Encode {
        /// The world.
        world: String,
        /// wit-component's explanation.
        reason: String,
    },
}

/// The worlds a core module can be made a component of.
pub const WORLDS: [&str; 5] = [
    "process",
    "aggregate",
    "aggregate-with-migrate",
    "aggregate-with-subtract",
    "aggregate-with-migrate-and-subtract",
];

/// Wraps `core` (a wasm32-wasip1 reactor module) as a component of `world`
/// (one of [`WORLDS`]).
pub fn componentize(core: &[u8], world: &str) -> Result<Vec<u8>, ComponentizeError> {
    if !wasmparser::Parser::is_core_wasm(core) {
        return Err(ComponentizeError::NotCoreModule {
            is_component: wasmparser::Parser::is_component(core),
        });
    }
    if !WORLDS.contains(&world) {
        return Err(ComponentizeError::UnknownWorld {
            world: world.to_owned(),
        });
    }
    let encode_err = |e: anyhow::Error| ComponentizeError::Encode {
        world: world.to_owned(),
        reason: format!("{e:#}"),
    };
    let mut resolve = Resolve::default();
    let pkg = resolve.push_source("weir.wit", contract::WIT).map_err(encode_err)?;
    let world_id = resolve.select_world(&[pkg], Some(world)).map_err(encode_err)?;
    let mut module = core.to_vec();
    embed_component_metadata(&mut module, &resolve, world_id, StringEncoding::UTF8).map_err(encode_err)?;
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .map_err(encode_err)?
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .map_err(encode_err)?
        .encode()
        .map_err(encode_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_core_module() {
        assert!(matches!(
            componentize(b"nope", "process"),
            Err(ComponentizeError::NotCoreModule { is_component: false })
        ));
    }

    #[test]
    fn rejects_unknown_worlds() {
        let empty_module = b"\0asm\x01\0\0\0";
        let err = componentize(empty_module, "http").unwrap_err();
        assert!(matches!(err, ComponentizeError::UnknownWorld { .. }));
        assert!(
            err.to_string().ends_with("aggregate-with-migrate-and-subtract"),
            "{err}"
        );
    }

    #[test]
    fn every_listed_world_is_one_of_the_contract() {
        let empty_module = b"\0asm\x01\0\0\0";
        for world in WORLDS {
            // An empty module lacks the exports, so wit-component refuses it;
            // but the world was found.
            let err = componentize(empty_module, world).unwrap_err();
            assert!(matches!(err, ComponentizeError::Encode { .. }), "{world}: {err}");
        }
    }

    #[test]
    fn a_module_without_the_export_is_refused_with_the_reason() {
        let empty_module = b"\0asm\x01\0\0\0";
        let err = componentize(empty_module, "process").unwrap_err().to_string();
        assert!(err.contains("process"), "{err}");
    }
}
