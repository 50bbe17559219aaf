//! Errors of loading a module and of calling into one.

use std::path::PathBuf;
use std::time::Duration;

use crate::codec::CodecError;

/// Why a module cannot be used. Each names the module and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read module {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not WebAssembly at all.
    #[error("{name} is not a WebAssembly component (it starts with bytes {head:02x?}, not \\0asm)")]
    NotWasm {
        /// Module name.
        name: String,
        /// Its first bytes.
        head: Vec<u8>,
    },
    /// A core module: needs turning into a component first.
    #[error(
        "{name} is a core WebAssembly module, not a component: build for wasm32-wasip2, \
         or wrap it with `weir componentize {name} --world process`"
    )]
    CoreModule {
        /// Module name.
        name: String,
    },
    /// Invalid bytes, or compilation failed.
    #[error("{name} does not compile: {reason}")]
    Compile {
        /// Module name.
        name: String,
        /// The compiler's message.
        reason: String,
    },
    /// A component exporting no operator interface.
    #[error(
        "{name} is not a Weir operator: it exports [{exports}], but an operator exports \
         weir:stream/processor@0.1.0 or weir:stream/aggregator@0.1.0"
    )]
    NotAnOperator {
        /// Module name.
        name: String,
        /// What it does export.
        exports: String,
    },
    /// The module traps or exceeds its limits while starting.
    #[error("{name} fails to start: {reason}")]
    Start {
        /// Module name.
        name: String,
        /// What happened.
        reason: String,
    },
    /// A component exporting several kinds.
    #[error("{name} exports more than one of processor, aggregator and joiner; an operator implements one world")]
    Ambiguous {
        /// Module name.
        name: String,
    },
    /// Exports or imports that do not fit the contract.
    #[error("{name} does not match the {world} world: {reason}")]
    Contract {
        /// Module name.
        name: String,
        /// The world it claims.
        world: &'static str,
        /// What does not match.
        reason: String,
    },
}

/// What went wrong inside one call into a guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestFault {
    /// The per-call CPU deadline passed (epoch interruption).
    #[error("exceeded its deadline of {0:?} per call")]
    Deadline(Duration),
    /// Fuel ran out.
    #[error("ran out of fuel ({0} units per call)")]
    OutOfFuel(u64),
    /// The memory cap was hit.
    #[error("ran out of memory (cap {cap} bytes, wanted {wanted} bytes)")]
    OutOfMemory {
        /// The configured cap.
        cap: usize,
        /// The size the guest tried to grow to, when known.
        wanted: String,
    },
    /// The guest panicked or hit `unreachable`.
    #[error("panicked: {0}")]
    Panic(String),
    /// Any other trap.
    #[error("trapped: {0}")]
    Trap(String),
    /// The guest returned bytes that are not a valid result batch.
    #[error("returned a malformed result: {0}")]
    BadResult(#[from] CodecError),
    /// The module does not have this export (a processor asked to aggregate,
    /// or the reverse); nothing was called.
    #[error("is not exported: the module is a {kind}")]
    NotExported {
        /// What the module is.
        kind: crate::contract::OperatorKind,
    },
    /// The instance could not be created.
    #[error("failed to instantiate: {0}")]
    Instantiate(String),
}

/// A call into a guest that failed as a whole (a trap, not a typed failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("module {module}: {export} {fault}")]
pub struct GuestError {
    /// `name@digest` of the module.
    pub module: String,
    /// The export that was called, e.g. `process`.
    pub export: &'static str,
    /// The cause.
    pub fault: GuestFault,
}

impl GuestError {
    /// The short kind of fault, for counters and dead-letter headers.
    pub fn kind(&self) -> &'static str {
        match self.fault {
            GuestFault::Deadline(_) => "deadline",
            GuestFault::OutOfFuel(_) => "fuel",
            GuestFault::OutOfMemory { .. } => "memory",
            GuestFault::Panic(_) => "panic",
            GuestFault::Trap(_) => "trap",
            GuestFault::BadResult(_) => "bad-result",
            GuestFault::Instantiate(_) => "instantiate",
            GuestFault::NotExported { .. } => "not-exported",
        }
    }
}
