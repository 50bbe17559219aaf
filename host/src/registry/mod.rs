//! The module registry: named, versioned operator modules and the table of
//! which version each pipeline stage runs, kept in compacted Kafka topics so
//! that every instance sees a push and an activation.
//!
//! Three single-partition, compacted control topics (one partition keeps a
//! total order: a version's chunks always precede its record):
//!
//! | topic | key | value |
//! |---|---|---|
//! | [`MODULES_TOPIC`] | `<name>/<digest>` | [`ModuleRecord`] (JSON) |
//! | [`CHUNKS_TOPIC`] | `<digest>/<index>` | a slice of the zstd-compressed component |
//! | [`ACTIVE_TOPIC`] | `<application>/<stage>` | [`Activation`] (JSON) |
//!
//! A component is compressed, cut into [`CHUNK_SIZE`] slices (Python
//! components are ~20 MB, a Kafka message is 1 MB by default), and its
//! record is written last: a version is listed only once all its bytes are
//! there. Reassembly checks the digest.
//!
//! An activation names the version a stage runs and the versions it
//! replaced, newest first, so a rollback needs nothing but the current
//! record. `seq` orders activations of a stage; instances ignore one that is
//! not newer than what they have, which makes a repeated write harmless.

mod client;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use client::{ActiveTail, Pushed, Registry, RegistryError, Update};

use crate::contract::OperatorKind;
use crate::module::ModuleInfo;

/// Versions of modules: one [`ModuleRecord`] per name and digest.
pub const MODULES_TOPIC: &str = "weir-modules";
/// The compressed bytes of each digest, in chunks.
pub const CHUNKS_TOPIC: &str = "weir-module-chunks";
/// The version each pipeline stage runs.
pub const ACTIVE_TOPIC: &str = "weir-active";
/// Bytes per chunk: half of Kafka's default `message.max.bytes`.
pub const CHUNK_SIZE: usize = 512 * 1024;
/// The largest component the registry reassembles (a sanity bound on what a
/// record may claim).
pub const MAX_MODULE_SIZE: u64 = 1 << 30;
/// How many replaced versions an activation remembers for rollbacks.
pub const HISTORY: usize = 16;

/// A version of a module in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleRecord {
    /// Module name.
    pub name: String,
    /// 1 for the first version pushed under `name`, then 2, 3…
    pub version: u32,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// Component size in bytes.
    pub size: u64,
    /// Compressed size (what the chunks hold).
    pub compressed: u64,
    /// Number of chunks.
    pub chunks: u32,
    /// The kind of stage it serves.
    pub kind: OperatorKind,
    /// The WIT world it implements.
    pub world: String,
    /// Whether it exports `migrate`.
    pub migrate: bool,
    /// The interfaces it exports.
    #[serde(default)]
    pub exports: Vec<String>,
    /// The interfaces it imports.
    #[serde(default)]
    pub imports: Vec<String>,
    /// The SDK that built it, when known.
    pub sdk: Option<String>,
    /// When it was pushed (ms since the epoch).
    pub pushed_at: i64,
    /// Offset of its first chunk in [`CHUNKS_TOPIC`], where a fetch starts.
    #[serde(default)]
    pub first_chunk: Option<i64>,
}

impl ModuleRecord {
    /// A record for a validated module.
    pub fn new(name: &str, version: u32, info: &ModuleInfo, compressed: usize, pushed_at: i64) -> ModuleRecord {
        ModuleRecord {
            name: name.to_owned(),
            version,
            digest: info.digest.clone(),
            size: info.size as u64,
            compressed: compressed as u64,
            chunks: compressed.div_ceil(CHUNK_SIZE).max(1) as u32,
            kind: info.kind,
            world: info.world.clone(),
            migrate: info.migrate,
            exports: info.exports.clone(),
            imports: info.imports.clone(),
            sdk: info.sdk.clone(),
            pushed_at,
            first_chunk: None,
        }
    }

    /// How activations, logs and output headers name it: `name@sha256:…`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.digest)
    }

    /// A reference to this version.
    pub fn reference(&self) -> VersionRef {
        VersionRef {
            name: self.name.clone(),
            version: self.version,
            digest: self.digest.clone(),
        }
    }

    /// Its key in [`MODULES_TOPIC`].
    pub fn key(&self) -> String {
        format!("{}/{}", self.name, self.digest)
    }
}

/// A version of a module, as an activation names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRef {
    /// Module name.
    pub name: String,
    /// Version number under that name.
    pub version: u32,
    /// Content digest.
    pub digest: String,
}

impl std::fmt::Display for VersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} ({})", self.name, self.version, short(&self.digest))
    }
}

/// Automatic rollback: when the new version fails on more than
/// `max_failure_share` of its first `first` records (in any instance).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Guard {
    /// How many records the guard watches, per instance.
    pub first: u64,
    /// The share of failures (0–1) above which the stage rolls back.
    pub max_failure_share: f64,
}

/// The version a pipeline stage runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activation {
    /// Orders the activations of one stage (1, 2, …).
    pub seq: u64,
    /// The version to run.
    pub module: VersionRef,
    /// The versions it replaced, newest first (what a rollback goes back to).
    pub previous: Vec<VersionRef>,
    /// When it was written (ms since the epoch).
    pub at: i64,
    /// `activate`, `rollback` or `auto-rollback`.
    pub by: String,
    /// Why, for rollbacks.
    pub reason: Option<String>,
    /// Opt-in automatic rollback.
    pub guard: Option<Guard>,
}

impl Activation {
    /// The activation after `current` (if any) that runs `module`.
    /// `initial` is what the stage ran before its first activation (the
    /// pipeline file's module), so that it can be rolled back to.
    pub fn next(
        current: Option<&Activation>,
        initial: Option<VersionRef>,
        module: VersionRef,
        guard: Option<Guard>,
        at: i64,
    ) -> Activation {
        let (seq, mut previous) = match current {
            Some(c) => {
                let mut p = vec![c.module.clone()];
                p.extend(c.previous.iter().cloned());
                (c.seq + 1, p)
            }
            None => (1, initial.into_iter().collect()),
        };
        previous.truncate(HISTORY);
        Activation {
            seq,
            module,
            previous,
            at,
            by: "activate".into(),
            reason: None,
            guard,
        }
    }

    /// The activation that goes back to the version this one replaced.
    pub fn rollback(&self, by: &str, reason: Option<String>, at: i64) -> Option<Activation> {
        let (back, rest) = self.previous.split_first()?;
        Some(Activation {
            seq: self.seq + 1,
            module: back.clone(),
            previous: rest.to_vec(),
            at,
            by: by.to_owned(),
            reason,
            guard: None,
        })
    }
}

/// Key of a stage's activation in [`ACTIVE_TOPIC`].
pub fn active_key(application: &str, stage: &str) -> String {
    format!("{application}/{stage}")
}

/// The first 12 hex digits of a digest, as listings show it.
pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

/// Everything in the registry at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Versions, by name then version number.
    pub modules: BTreeMap<String, BTreeMap<u32, ModuleRecord>>,
    /// Activations by (application, stage).
    pub active: BTreeMap<(String, String), Activation>,
}

/// A name or version could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No module has this name.
    #[error("no module named {name:?} in the registry (known: {known}); push it first with `weir module push`")]
    UnknownName {
        /// The name asked for.
        name: String,
        /// Names there are.
        known: String,
    },
    /// The name has no such version.
    #[error("module {name} has no version {version:?} (versions: {known})")]
    UnknownVersion {
        /// Name.
        name: String,
        /// What was asked for.
        version: String,
        /// What there is.
        known: String,
    },
    /// A digest prefix matches several versions.
    #[error("{prefix:?} matches several versions of {name}; give more digits")]
    Ambiguous {
        /// Name.
        name: String,
        /// The prefix.
        prefix: String,
    },
}

impl Snapshot {
    /// The version of `name` with this digest.
    pub fn by_digest(&self, name: &str, digest: &str) -> Option<&ModuleRecord> {
        self.modules.get(name)?.values().find(|m| m.digest == digest)
    }

    /// Any version with this digest (whatever its name).
    pub fn any_by_digest(&self, digest: &str) -> Option<&ModuleRecord> {
        self.modules
            .values()
            .flat_map(|v| v.values())
            .find(|m| m.digest == digest)
    }

    /// The version a reference names.
    pub fn get(&self, r: &VersionRef) -> Option<&ModuleRecord> {
        self.by_digest(&r.name, &r.digest)
    }

    /// Resolves `NAME`, `NAME@VERSION`, `NAME@vVERSION`, `NAME@latest` or
    /// `NAME@DIGEST-PREFIX` (with or without `sha256:`).
    pub fn resolve(&self, spec: &str) -> Result<&ModuleRecord, ResolveError> {
        let (name, version) = spec.split_once('@').unwrap_or((spec, "latest"));
        let versions = self.modules.get(name).ok_or_else(|| ResolveError::UnknownName {
            name: name.to_owned(),
            known: self.modules.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        let unknown = || ResolveError::UnknownVersion {
            name: name.to_owned(),
            version: version.to_owned(),
            known: versions.keys().map(u32::to_string).collect::<Vec<_>>().join(", "),
        };
        if version == "latest" {
            return versions.values().next_back().ok_or_else(unknown);
        }
        if let Ok(n) = version.trim_start_matches('v').parse::<u32>()
            && let Some(m) = versions.get(&n)
        {
            return Ok(m);
        }
        let prefix = version.strip_prefix("sha256:").unwrap_or(version);
        if prefix.len() < 6 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let mut found = versions
            .values()
            .filter(|m| m.digest.trim_start_matches("sha256:").starts_with(prefix));
        match (found.next(), found.next()) {
            (Some(m), None) => Ok(m),
            (Some(_), Some(_)) => Err(ResolveError::Ambiguous {
                name: name.to_owned(),
                prefix: prefix.to_owned(),
            }),
            (None, _) => Err(unknown()),
        }
    }

    /// The next version number under `name`.
    pub fn next_version(&self, name: &str) -> u32 {
        self.modules
            .get(name)
            .and_then(|v| v.keys().next_back())
            .map_or(1, |n| n + 1)
    }

    /// Where each version is active: `application/stage` per digest.
    pub fn active_in(&self, digest: &str) -> Vec<String> {
        self.active
            .iter()
            .filter(|(_, a)| a.module.digest == digest)
            .map(|((app, stage), _)| format!("{app}/{stage}"))
            .collect()
    }

    pub(crate) fn add_module(&mut self, m: ModuleRecord) {
        self.modules.entry(m.name.clone()).or_default().insert(m.version, m);
    }
}

/// Compresses a component and cuts it into chunks.
pub fn chunk(bytes: &[u8]) -> std::io::Result<Vec<Vec<u8>>> {
    let compressed = zstd::bulk::compress(bytes, 3)?;
    let mut chunks: Vec<Vec<u8>> = compressed.chunks(CHUNK_SIZE).map(<[u8]>::to_vec).collect();
    if chunks.is_empty() {
        chunks.push(Vec::new());
    }
    Ok(chunks)
}

/// Reassembles a component from its chunks (in order) and checks its digest.
pub fn reassemble(record: &ModuleRecord, chunks: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    if chunks.len() != record.chunks as usize {
        return Err(format!("found {} of its {} chunks", chunks.len(), record.chunks));
    }
    if record.size > MAX_MODULE_SIZE {
        return Err(format!(
            "its record claims {} bytes (at most {MAX_MODULE_SIZE})",
            record.size
        ));
    }
    let compressed = chunks.concat();
    let bytes =
        zstd::bulk::decompress(&compressed, record.size as usize).map_err(|e| format!("cannot decompress it: {e}"))?;
    let digest = crate::module::digest(&bytes);
    if digest != record.digest {
        return Err(format!("its bytes hash to {digest}"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, version: u32, digest: &str) -> ModuleRecord {
        ModuleRecord {
            name: name.into(),
            version,
            digest: digest.into(),
            size: 0,
            compressed: 0,
            chunks: 1,
            kind: OperatorKind::Processor,
            world: String::new(),
            migrate: false,
            exports: Vec::new(),
            imports: Vec::new(),
            sdk: None,
            pushed_at: 0,
            first_chunk: None,
        }
    }

    #[test]
    fn versions_resolve_by_number_digest_prefix_or_latest() {
        let mut s = Snapshot::default();
        s.add_module(record("up", 1, "sha256:aaaaaa11"));
        s.add_module(record("up", 2, "sha256:aaaaaa22"));
        assert_eq!(s.resolve("up").unwrap().version, 2);
        assert_eq!(s.resolve("up@1").unwrap().version, 1);
        assert_eq!(s.resolve("up@v2").unwrap().version, 2);
        assert_eq!(s.resolve("up@aaaaaa1").unwrap().version, 1);
        assert_eq!(s.resolve("up@sha256:aaaaaa2").unwrap().version, 2);
        assert!(matches!(s.resolve("up@aaaaaa"), Err(ResolveError::Ambiguous { .. })));
        assert!(matches!(s.resolve("up@3"), Err(ResolveError::UnknownVersion { .. })));
        assert!(matches!(s.resolve("down"), Err(ResolveError::UnknownName { .. })));
        assert_eq!(s.next_version("up"), 3);
        assert_eq!(s.next_version("new"), 1);
    }

    #[test]
    fn the_label_on_outputs_resolves_to_its_version() {
        let mut s = Snapshot::default();
        let d1 = format!("sha256:{}", "0123456789ab".repeat(5) + "cdef");
        let d2 = format!("sha256:{}", "0123456789ac".repeat(5) + "cdef");
        s.add_module(record("up", 1, &d1));
        s.add_module(record("up", 2, &d2));
        for (version, digest) in [(1, &d1), (2, &d2)] {
            let full = format!("up@{digest}");
            let short = crate::stage::collector::header_label(&full);
            assert!(short.len() < full.len(), "{short}");
            assert_eq!(s.resolve(short).unwrap().version, version, "{short}");
        }
    }

    #[test]
    fn chunks_reassemble_and_check_the_digest() {
        // xorshift64: bytes zstd cannot shrink much.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let bytes: Vec<u8> = (0..3 * CHUNK_SIZE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let chunks = chunk(&bytes).unwrap();
        assert!(chunks.len() > 1, "incompressible bytes span several chunks");
        let mut rec = record("m", 1, &crate::module::digest(&bytes));
        rec.size = bytes.len() as u64;
        rec.chunks = chunks.len() as u32;
        assert_eq!(reassemble(&rec, &chunks).unwrap(), bytes);
        let mut bad = chunks.clone();
        bad.pop();
        assert!(reassemble(&rec, &bad).unwrap_err().contains("chunks"));
        rec.digest = "sha256:00".into();
        assert!(reassemble(&rec, &chunks).unwrap_err().contains("hash"));
    }

    #[test]
    fn activations_stack_and_roll_back() {
        let v = |n: u32| VersionRef {
            name: "m".into(),
            version: n,
            digest: format!("d{n}"),
        };
        let a1 = Activation::next(None, Some(v(1)), v(2), None, 0);
        assert_eq!((a1.seq, a1.previous.clone()), (1, vec![v(1)]));
        let a2 = Activation::next(Some(&a1), None, v(3), None, 0);
        assert_eq!(a2.previous, vec![v(2), v(1)]);
        let back = a2.rollback("rollback", None, 0).unwrap();
        assert_eq!(
            (back.seq, back.module.clone(), back.previous.clone()),
            (3, v(2), vec![v(1)])
        );
        let first = back.rollback("rollback", None, 0).unwrap();
        assert_eq!(first.module, v(1));
        assert!(first.rollback("rollback", None, 0).is_none());
    }
}
