//! What a module *is*, read from its bytes before anything runs: digest,
//! size, exported interfaces, imports, and the SDK that built it.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::contract::OperatorKind;

/// Facts about a validated operator module, as `weir validate` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleInfo {
    /// The name it was loaded under (file name or registry name).
    pub name: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    /// Size in bytes.
    pub size: usize,
    /// The kind of stage it can serve.
    pub kind: OperatorKind,
    /// The WIT world it implements.
    pub world: String,
    /// True when it exports `migrator` (can read an older version's state).
    pub migrate: bool,
    /// True when it exports `subtractor` (can serve a table aggregation).
    pub subtract: bool,
    /// The SDK or toolchain that built it, when the module says.
    pub sdk: Option<String>,
    /// Interfaces it imports.
    pub imports: Vec<String>,
    /// Interfaces it exports.
    pub exports: Vec<String>,
}

impl ModuleInfo {
    /// `name@sha256:…` — how logs, dead letters and output headers name a version.
    pub fn version_label(&self) -> String {
        format!("{}@{}", self.name, self.digest)
    }
}

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Which operator kind a set of exported interface names implements.
/// `Err` holds every kind it exports, when that is more than one.
pub(crate) fn kind_from_exports(exports: &[String]) -> Option<Result<OperatorKind, Vec<OperatorKind>>> {
    let kinds: Vec<OperatorKind> = [OperatorKind::Processor, OperatorKind::Aggregator, OperatorKind::Joiner]
        .into_iter()
        .filter(|k| exports.iter().any(|e| e == k.interface()))
        .collect();
    match kinds.as_slice() {
        [] => None,
        [one] => Some(Ok(*one)),
        _ => Some(Err(kinds)),
    }
}

/// Looks for the SDK that built a component: the `weir-sdk` custom section our
/// Rust and C SDKs write; else a language tool named in the modules'
/// `producers` sections (`processed-by`); else the runtime library that
/// componentize-py links in.
pub(crate) fn detect_sdk(bytes: &[u8]) -> Option<String> {
    let mut tools: Vec<(String, String)> = Vec::new();
    let mut python = false;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::CustomSection(section)) => match section.name() {
                "weir-sdk" => {
                    if let Ok(s) = std::str::from_utf8(section.data()) {
                        return Some(s.trim().to_owned());
                    }
                }
                "producers" => tools.extend(processed_by(section.data(), section.data_offset())),
                _ => {}
            },
            Ok(wasmparser::Payload::ImportSection(imports)) if !python => {
                python = imports
                    .into_imports()
                    .flatten()
                    .any(|i| i.module == "libcomponentize_py_runtime.so");
            }
            _ => {}
        }
    }
    // Language tools first; wasi-libc inside every guest is built with
    // wit-bindgen-c, so that name says nothing about the guest's language.
    let pick = |names: &[&str]| {
        tools
            .iter()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|(n, v)| format!("{n} {v}"))
    };
    pick(&["componentize-py", "ComponentizeJS", "componentize-js"])
        .or_else(|| python.then(|| "componentize-py".to_owned()))
        .or_else(|| pick(&["wit-bindgen-rust"]))
}

/// The `processed-by` tools of one `producers` section.
fn processed_by(data: &[u8], offset: usize) -> Vec<(String, String)> {
    let Ok(reader) = wasmparser::ProducersSectionReader::new(wasmparser::BinaryReader::new(data, offset)) else {
        return vec![];
    };
    reader
        .into_iter()
        .flatten()
        .filter(|field| field.name == "processed-by")
        .flat_map(|field| field.values.into_iter().flatten())
        .map(|v| (v.name.to_owned(), v.version.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn kind_comes_from_the_exported_interface() {
        let p = vec![contract::PROCESSOR.to_owned(), "wasi:cli/run@0.2.0".to_owned()];
        assert_eq!(kind_from_exports(&p), Some(Ok(OperatorKind::Processor)));
        assert_eq!(kind_from_exports(&["x".to_owned()]), None);
        let j = vec![contract::JOINER.to_owned()];
        assert_eq!(kind_from_exports(&j), Some(Ok(OperatorKind::Joiner)));
        let both = vec![contract::JOINER.to_owned(), contract::PROCESSOR.to_owned()];
        assert_eq!(
            kind_from_exports(&both),
            Some(Err(vec![OperatorKind::Processor, OperatorKind::Joiner]))
        );
    }
}
