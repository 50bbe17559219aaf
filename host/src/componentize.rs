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
    /// The module is a command (it exports `_start`), not a reactor: its
    /// language runtime would never start, so every call would trap.
    #[error(
        "the module is a WASI command (it exports _start); an operator must be a reactor that the host calls into: \
         build it with -mexec-model=reactor (clang) or -buildmode=c-shared (Go)"
    )]
    Command,
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
pub const WORLDS: [&str; 6] = [
    "process",
    "join",
    "aggregate",
    "aggregate-with-migrate",
    "aggregate-with-subtract",
    "aggregate-with-migrate-and-subtract",
];

/// Wraps `core` (a wasm32-wasip1 reactor module) as a component of `world`
/// (one of [`WORLDS`]). With `sdk`, the module is marked as built by that SDK
/// (see [`append_sdk_section`]).
pub fn componentize(core: &[u8], world: &str, sdk: Option<&str>) -> Result<Vec<u8>, ComponentizeError> {
    if !wasmparser::Parser::is_core_wasm(core) {
        return Err(ComponentizeError::NotCoreModule {
            is_component: wasmparser::Parser::is_component(core),
        });
    }
    if exports_start(core) {
        return Err(ComponentizeError::Command);
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
    if let Some(sdk) = sdk {
        append_sdk_section(&mut module, sdk);
    }
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

/// Whether a core module exports `_start`, the entry point of a WASI
/// command. An unreadable module is left to the encoder, which says why.
fn exports_start(core: &[u8]) -> bool {
    wasmparser::Parser::new(0).parse_all(core).any(|payload| match payload {
        Ok(wasmparser::Payload::ExportSection(exports)) => {
            exports.into_iter().any(|e| e.is_ok_and(|e| e.name == "_start"))
        }
        _ => false,
    })
}

/// Appends a `weir-sdk` custom section holding `sdk` (e.g. `weir-sdk-go
/// 0.1.0`) to a core module: the section the Rust and C SDKs write
/// themselves, which `weir validate` reports. For toolchains that cannot
/// write a custom section (Go).
pub fn append_sdk_section(module: &mut Vec<u8>, sdk: &str) {
    const NAME: &[u8] = b"weir-sdk";
    let mut content = Vec::with_capacity(1 + NAME.len() + sdk.len());
    leb128(&mut content, NAME.len());
    content.extend_from_slice(NAME);
    content.extend_from_slice(sdk.as_bytes());
    module.push(0); // a custom section
    leb128(module, content.len());
    module.extend_from_slice(&content);
}

/// Unsigned LEB128, as section and name lengths are encoded.
fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_section_is_read_back_by_validate() {
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        let long = "weir-sdk-go 0.1.0 ".repeat(10); // a length of two LEB128 bytes
        append_sdk_section(&mut module, &long);
        for payload in wasmparser::Parser::new(0).parse_all(&module) {
            payload.expect("a well-formed module");
        }
        assert_eq!(crate::module::detect_sdk(&module), Some(long.trim().to_owned()));
    }

    #[test]
    fn rejects_what_is_not_a_core_module() {
        assert!(matches!(
            componentize(b"nope", "process", None),
            Err(ComponentizeError::NotCoreModule { is_component: false })
        ));
    }

    #[test]
    fn refuses_a_command_naming_the_build_flag() {
        // (module (func (export "_start")))
        let command = [
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
            0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
            0x03, 0x02, 0x01, 0x00, // one function of type 0
            0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // export "_start"
            0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // its body: end
        ];
        let err = componentize(&command, "process", None).unwrap_err();
        assert!(matches!(err, ComponentizeError::Command), "{err}");
        assert!(err.to_string().contains("-buildmode=c-shared"), "{err}");
    }

    #[test]
    fn rejects_unknown_worlds() {
        let empty_module = b"\0asm\x01\0\0\0";
        let err = componentize(empty_module, "http", None).unwrap_err();
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
            let err = componentize(empty_module, world, None).unwrap_err();
            assert!(matches!(err, ComponentizeError::Encode { .. }), "{world}: {err}");
        }
    }

    #[test]
    fn a_module_without_the_export_is_refused_with_the_reason() {
        let empty_module = b"\0asm\x01\0\0\0";
        let err = componentize(empty_module, "process", None).unwrap_err().to_string();
        assert!(err.contains("process"), "{err}");
    }
}
