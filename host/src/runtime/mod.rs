//! The component runtime: loads operator modules (validating them against the
//! contract), and runs them in sandboxed, replaceable instances.
//!
//! - [`Runtime`] owns the wasmtime engine, the linker with everything a guest
//!   may import, and the epoch ticker behind per-call deadlines.
//! - [`Runtime::load`] checks and compiles a module once (cached on disk by
//!   digest) into a [`LoadedModule`] whose `InstancePre` makes instantiation cheap.
//! - An [`Operator`] is one live instance of a module: batches in, results out.
//!   A trap poisons only that instance; the next call gets a fresh one.

mod bindings;
mod engine;
mod error;
mod host;
mod operator;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{InstancePre, Linker};

pub use engine::{RuntimeConfig, default_cache_dir};
pub use error::{GuestError, GuestFault, LoadError};
pub use host::OperatorContext;
pub use operator::{Called, EmitRequest, Folded, Group, Operator};

use crate::contract::{self, OperatorKind};
use crate::module::{self, ModuleInfo};
use bindings::exports::weir::stream::{aggregator, migrator, subtractor};
use bindings::join::exports::weir::stream::joiner;
use bindings::process::exports::weir::stream::processor;
use host::HostState;

/// The engine, linker and limits shared by every operator of a process.
/// Cloning is cheap.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    _ticker: engine::EpochTicker,
}

/// The engine could not be set up with the given configuration.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the WebAssembly engine: {0}")]
pub struct EngineError(String);

/// A module that passed validation, compiled and ready to instantiate.
pub struct LoadedModule {
    info: ModuleInfo,
    pre: InstancePre<HostState>,
    exports: ExportIndices,
}

enum ExportIndices {
    Processor(processor::GuestIndices),
    Aggregator {
        aggregator: aggregator::GuestIndices,
        migrator: Option<migrator::GuestIndices>,
        subtractor: Option<subtractor::GuestIndices>,
    },
    Joiner(joiner::GuestIndices),
}

impl LoadedModule {
    /// What the module is.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// Its operator kind.
    pub fn kind(&self) -> OperatorKind {
        self.info.kind
    }
}

impl Runtime {
    /// A runtime with the given limits.
    pub fn new(config: RuntimeConfig) -> Result<Self, EngineError> {
        let engine = engine::build_engine(&config).map_err(|e| EngineError(format!("{e:#}")))?;
        let linker = host::linker(&engine).map_err(|e| EngineError(format!("{e:#}")))?;
        let ticker = engine::EpochTicker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| EngineError(format!("cannot start the deadline clock thread: {e}")))?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                _ticker: ticker,
            }),
        })
    }

    /// The limits in force.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Reads, validates and compiles a module file, named after the file.
    pub fn load_file(&self, path: &Path) -> Result<Arc<LoadedModule>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned());
        self.load(&name, &bytes)
    }

    /// Validates and compiles a module: it must be a component, compile, and
    /// implement exactly one operator world with the contract's types and
    /// imports. It is instantiated once in the sandbox to check export types;
    /// no export is called.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Arc<LoadedModule>, LoadError> {
        let name = name.to_owned();
        if !wasmparser::Parser::is_component(bytes) {
            if wasmparser::Parser::is_core_wasm(bytes) {
                return Err(LoadError::CoreModule { name });
            }
            return Err(LoadError::NotWasm {
                name,
                head: bytes.iter().take(4).copied().collect(),
            });
        }
        let digest = module::digest(bytes);
        let engine = &self.inner.engine;
        let component = engine::compile_cached(engine, self.inner.config.cache_dir.as_deref(), &digest, bytes)
            .map_err(|e| LoadError::Compile {
                name: name.clone(),
                reason: format!("{e:#}"),
            })?;
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
        let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
        let kind = match module::kind_from_exports(&exports) {
            Some(Ok(kind)) => kind,
            Some(Err(_)) => return Err(LoadError::Ambiguous { name }),
            None => {
                return Err(LoadError::NotAnOperator {
                    name,
                    exports: exports.join(", "),
                });
            }
        };
        let contract_err = |reason: String| LoadError::Contract {
            name: name.clone(),
            world: kind.world(),
            reason,
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| contract_err(format!("{e:#}")))?;
        let indices = match kind {
            OperatorKind::Processor => ExportIndices::Processor(
                processor::GuestIndices::new(&pre).map_err(|e| contract_err(format!("{e:#}")))?,
            ),
            OperatorKind::Aggregator => ExportIndices::Aggregator {
                aggregator: aggregator::GuestIndices::new(&pre).map_err(|e| contract_err(format!("{e:#}")))?,
                migrator: if exports.iter().any(|e| e == contract::MIGRATOR) {
                    Some(migrator::GuestIndices::new(&pre).map_err(|e| contract_err(format!("{e:#}")))?)
                } else {
                    None
                },
                subtractor: if exports.iter().any(|e| e == contract::SUBTRACTOR) {
                    Some(subtractor::GuestIndices::new(&pre).map_err(|e| contract_err(format!("{e:#}")))?)
                } else {
                    None
                },
            },
            OperatorKind::Joiner => {
                ExportIndices::Joiner(joiner::GuestIndices::new(&pre).map_err(|e| contract_err(format!("{e:#}")))?)
            }
        };
        let migrate = matches!(indices, ExportIndices::Aggregator { migrator: Some(_), .. });
        let subtract = matches!(
            indices,
            ExportIndices::Aggregator {
                subtractor: Some(_),
                ..
            }
        );
        let info = ModuleInfo {
            name,
            digest,
            size: bytes.len(),
            kind,
            world: match (migrate, subtract) {
                (true, true) => "weir:stream/aggregate-with-migrate-and-subtract@0.1.0".into(),
                (true, false) => "weir:stream/aggregate-with-migrate@0.1.0".into(),
                (false, true) => "weir:stream/aggregate-with-subtract@0.1.0".into(),
                (false, false) => kind.world().into(),
            },
            migrate,
            subtract,
            sdk: module::detect_sdk(bytes),
            imports,
            exports,
        };
        let module = Arc::new(LoadedModule {
            info,
            pre,
            exports: indices,
        });
        // wasmtime checks export types when an instance's exports are looked
        // up, so one sandboxed instantiation proves that the types match the
        // contract (and that the module starts within its limits).
        self.operator(module.clone(), BTreeMap::new()).warm_up().map_err(|e| {
            let world = module.info.kind.world();
            let name = module.info.name.clone();
            match e.fault {
                GuestFault::Instantiate(reason) => LoadError::Contract { name, world, reason },
                other => LoadError::Start {
                    name,
                    reason: other.to_string(),
                },
            }
        })?;
        Ok(module)
    }

    /// A new operator instance of `module` with deploy-time `config`. The
    /// instance is created on first use.
    pub fn operator(&self, module: Arc<LoadedModule>, config: BTreeMap<String, String>) -> Operator {
        let ctx = Arc::new(OperatorContext::new(module.info.version_label(), config));
        Operator::new(self.clone(), module, ctx)
    }
}
