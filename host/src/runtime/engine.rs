//! The wasmtime engine: settings, the epoch ticker that enforces per-call
//! deadlines, and the on-disk cache of precompiled components.

use std::sync::atomic::Ordering;

use crate::shutdown::Shutdown;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// Sandbox limits and engine settings. Defaults suit every example operator,
/// Python and JavaScript included.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Linear memory cap per instance, in bytes.
    pub memory_limit: usize,
    /// CPU deadline per call into a guest.
    pub call_deadline: Duration,
    /// How often the deadline clock ticks; deadlines are rounded up to it.
    pub epoch_tick: Duration,
    /// Fuel per call, when set (costs speed: every guest instruction is metered).
    pub fuel: Option<u64>,
    /// Where precompiled components are kept; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Use wasmtime's pooling allocator (faster instantiation, memory reserved up front).
    pub pooling: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_limit: 256 << 20,
            call_deadline: Duration::from_secs(2),
            epoch_tick: Duration::from_millis(10),
            fuel: None,
            cache_dir: default_cache_dir(),
            pooling: false,
        }
    }
}

impl RuntimeConfig {
    /// Deadline in epoch ticks, at least one.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        (self.call_deadline.as_nanos().div_ceil(tick) as u64).max(1)
    }
}

/// `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir/modules`, else `~/.cache/weir/modules`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("weir").join("modules"))
}

pub(crate) fn build_engine(cfg: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.consume_fuel(cfg.fuel.is_some());
    c.cranelift_opt_level(OptLevel::Speed);
    // Guest backtraces would make trap messages multi-line; the SDKs log a
    // panic's message instead, which the trap error carries.
    c.wasm_backtrace_max_frames(None);
    // `WEIR_PERFMAP=1` names guest functions for `perf` (in
    // /tmp/perf-<pid>.map): how BENCHMARKS.md's profiles see into guests.
    if std::env::var_os("WEIR_PERFMAP").is_some() {
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if cfg.pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.max_memory_size(cfg.memory_limit);
        pool.total_component_instances(64);
        pool.total_core_instances(1024);
        pool.total_memories(256);
        pool.total_tables(1024);
        pool.max_core_instances_per_component(64);
        pool.max_memories_per_component(16);
        pool.max_tables_per_component(64);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Engine::new(&c)
}

/// Increments the engine's epoch every tick until dropped (not at the
/// process's first signal: the last batch's guest calls still need their
/// deadlines).
pub(crate) struct EpochTicker {
    stop: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Shutdown::new();
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("weir-epoch".into()).spawn(move || {
            while !flag.requested() {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.request();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Compiles a component, or loads it precompiled from the disk cache. The
/// cache key is the module digest plus a hash of everything in the engine's
/// settings that affects compiled code, so a changed setting never loads a
/// stale artifact.
pub(crate) fn compile_cached(
    engine: &Engine,
    cache_dir: Option<&Path>,
    digest: &str,
    bytes: &[u8],
) -> wasmtime::Result<Component> {
    let Some(dir) = cache_dir else {
        return Component::new(engine, bytes);
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let hex = digest.trim_start_matches("sha256:");
    let path = dir.join(format!("{hex}-{:016x}.cwasm", h.finish()));
    if path.exists() && private_dir(dir) {
        // SAFETY: the file was written by `Component::serialize` of an engine with
        // the same compatibility hash (part of its name), in a directory that no
        // other user can write (checked just above); wasmtime still checks its
        // header and version.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable precompiled module: {e:#}")
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(e) = store_artifact(&path, &component.serialize()?) {
        tracing::debug!(path = %path.display(), "could not cache precompiled module: {e}");
    }
    Ok(component)
}

/// Precompiled artifacts are native code: only load them from a directory
/// that no other user can write to.
fn private_dir(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::metadata(dir) {
            Ok(m) if m.permissions().mode() & 0o022 == 0 => true,
            _ => {
                tracing::warn!(dir = %dir.display(), "not loading precompiled modules from a directory others can write");
                false
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        true
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

fn store_artifact(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    // Write then rename, so a concurrent reader never sees half a file; the
    // temporary name is unique per process and call.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
