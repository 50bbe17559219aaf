//! What a guest may import: the Weir interfaces (log, config, metrics) and a
//! WASI that grants nothing — no files, network, environment or arguments;
//! a wall clock stuck at zero, a virtual monotonic clock that moves only when
//! the guest sleeps on it (a sleep returns at once, so it cannot hold a host
//! thread beyond the call deadline), and a fixed-seed random source: a guest
//! is a pure function of its inputs and replays deterministically.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{StoreContextMut, StoreLimits};
use wasmtime_wasi::p2::{DynPollable, Pollable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::weir::stream::{config, log, metrics};

/// What every instance of one operator shares: its name, deploy-time config
/// and counters. It outlives instances, so counters survive a replacement.
#[derive(Debug, Default)]
pub struct OperatorContext {
    /// `name@digest`, attached to the guest's log lines.
    pub label: String,
    /// Deploy-time configuration (`config` import).
    pub config: BTreeMap<String, String>,
    counters: Mutex<BTreeMap<String, u64>>,
}

impl OperatorContext {
    /// A context for module `label` with configuration `config`.
    pub fn new(label: String, config: BTreeMap<String, String>) -> Self {
        OperatorContext {
            label,
            config,
            counters: Mutex::default(),
        }
    }

    /// A snapshot of the guest's counters (`metrics` import).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// The data of one guest instance's store.
pub struct HostState {
    pub(crate) ctx: Arc<OperatorContext>,
    pub(crate) limits: StoreLimits,
    /// The last message the guest logged at error level; an SDK's panic hook
    /// logs the panic there, so a trap can say why it happened.
    pub(crate) last_error: Option<String>,
    /// Counter increments of the call in progress; they reach the shared
    /// counters only if the call succeeds, so a retried batch counts once.
    pub(crate) pending_counters: BTreeMap<String, u64>,
    clock: VirtualClock,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    pub(crate) fn new(ctx: Arc<OperatorContext>, limits: StoreLimits) -> Self {
        let clock = VirtualClock::new();
        HostState {
            ctx,
            limits,
            last_error: None,
            pending_counters: BTreeMap::new(),
            wasi: sealed_wasi(clock.clone()),
            clock,
            table: ResourceTable::new(),
        }
    }

    /// Adds the finished call's counter increments to the shared counters.
    pub(crate) fn commit_counters(&mut self) {
        if self.pending_counters.is_empty() {
            return;
        }
        if let Ok(mut counters) = self.ctx.counters.lock() {
            for (name, delta) in std::mem::take(&mut self.pending_counters) {
                *counters.entry(name).or_default() += delta;
            }
        }
    }
}

/// WASI as guests get it by default: language runtimes can start, but nothing
/// outside the sandbox is reachable and nothing varies between runs.
fn sealed_wasi(clock: VirtualClock) -> WasiCtx {
    WasiCtxBuilder::new()
        .wall_clock(FrozenClock)
        .monotonic_clock(clock)
        .secure_random(wasmtime_wasi::Deterministic::new(SEED.to_vec()))
        .insecure_random(wasmtime_wasi::Deterministic::new(SEED.to_vec()))
        .insecure_random_seed(0x5745_4952)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

const SEED: [u8; 16] = *b"weir-determinism";

/// A wall clock that always reads zero: time is the event timestamp, not the
/// wall.
struct FrozenClock;

impl wasmtime_wasi::HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// The monotonic clock a guest instance sees, in nanoseconds: it starts at one
/// second and moves only when the guest waits on it, by exactly what the
/// guest waited for, with no real time passing. The same calls see the same
/// times on every run, and a runtime that sleeps until a timer is due (Go's
/// scheduler) finds it due. It does not start at zero because Go's runtime
/// refuses to start on a clock that reads zero.
#[derive(Clone)]
struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    const START: u64 = 1_000_000_000;

    fn new() -> Self {
        VirtualClock(Arc::new(AtomicU64::new(Self::START)))
    }

    /// A wait of `ns` nanoseconds, over at once.
    fn wait(&self, ns: u64) {
        // The closure always returns Some, so the update cannot fail.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| Some(now.saturating_add(ns)));
    }

    /// A wait until the clock reads `at`, over at once.
    fn wait_until(&self, at: u64) {
        self.0.fetch_max(at, Ordering::Relaxed);
    }
}

impl wasmtime_wasi::HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let module = self.ctx.label.as_str();
        match level {
            log::Level::Trace => tracing::trace!(target: "weir::guest", module, "{message}"),
            log::Level::Debug => tracing::debug!(target: "weir::guest", module, "{message}"),
            log::Level::Info => tracing::info!(target: "weir::guest", module, "{message}"),
            log::Level::Warn => tracing::warn!(target: "weir::guest", module, "{message}"),
            log::Level::Error => {
                tracing::error!(target: "weir::guest", module, "{message}");
                self.last_error = Some(message);
            }
        }
    }
}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.ctx.config.get(&key).cloned()
    }

    fn entries(&mut self) -> Vec<(String, String)> {
        self.ctx.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl metrics::Host for HostState {
    fn counter_add(&mut self, name: String, delta: u64) {
        *self.pending_counters.entry(name).or_default() += delta;
    }
}

impl super::bindings::weir::stream::types::Host for HostState {}

/// A linker with everything a guest may import.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    log::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    config::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    metrics::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    virtual_time(&mut linker)?;
    Ok(linker)
}

/// The WASI monotonic clock's own subscriptions wait in real time, in a host
/// call where epoch deadlines cannot interrupt them. On Weir's virtual clock
/// a subscription moves the clock to its deadline and is ready at once.
fn virtual_time(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, HostState>, (ns,): (u64,)| {
            store.data().clock.wait(ns);
            ready_now(store.data_mut())
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, HostState>, (at,): (u64,)| {
            store.data().clock.wait_until(at);
            ready_now(store.data_mut())
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The monotonic-clock interface as wasmtime-wasi defines it (guests importing
/// any 0.2.x version link to it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

fn ready_now(state: &mut HostState) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let now = state.table.push(ReadyNow)?;
    Ok((wasmtime_wasi::p2::subscribe(&mut state.table, now)?,))
}

/// A pollable that is always ready.
struct ReadyNow;

#[wasmtime_wasi::async_trait]
impl Pollable for ReadyNow {
    async fn ready(&mut self) {}
}
