//! Hot swap inside a running instance.
//!
//! The [`Swapper`] follows the registry's activation table. When a stage of
//! this pipeline gets a new version, the module is fetched and compiled on a
//! background thread (processing goes on meanwhile), then waits as
//! [`Ready`] until the instance reaches a transaction boundary, where
//! [`apply::apply_ready`] swaps it into every task at once. A
//! record is thus processed by the version that was active when its
//! transaction began, and the swap costs only the instantiation of the new
//! version in each task.
//!
//! An activation may carry a [`Guard`]: the swapper then watches the stage's
//! first records under the new version and, when too many fail, writes the
//! rollback to the registry, which every instance then applies the same way.

pub mod apply;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::contract::OperatorKind;
use crate::metrics::Metrics;
use crate::registry::{Activation, ActiveTail, Guard, ModuleRecord, Registry, RegistryError, Update};
use crate::runtime::{LoadedModule, Runtime};
use crate::units::now_ms;

/// What the admin API shows about one stage's version.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SwapView {
    /// Stage name.
    pub stage: String,
    /// The version running now (`name@sha256:…`).
    pub active: String,
    /// Its registry version (`name@N`), when it came from the registry.
    pub version: Option<String>,
    /// The activation it runs under (0: the pipeline file's module).
    pub seq: u64,
    /// A swap in progress: `compiling name@N`, `ready name@N` (waiting for a
    /// transaction boundary), or the error that refused the last activation.
    pub pending: Option<String>,
    /// An automatic-rollback guard being watched.
    pub guard: Option<GuardView>,
    /// The last thing that happened to the stage (swap, rollback, refusal).
    pub last: Option<String>,
    /// Swaps applied since start.
    pub swaps: u64,
    /// How long the last swap paused processing (µs): instantiating the new
    /// version in every task.
    pub last_pause_micros: Option<u64>,
}

/// An automatic-rollback guard as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GuardView {
    /// Records watched.
    pub first: u64,
    /// Failure share that triggers a rollback.
    pub max_failure_share: f64,
    /// Records seen by the new version so far.
    pub seen: u64,
    /// Of which failed.
    pub failed: u64,
}

/// A compiled version waiting for the next transaction boundary.
pub struct Ready {
    /// Stage index.
    pub stage: usize,
    /// The module.
    pub module: Arc<LoadedModule>,
    /// The activation that asked for it.
    pub activation: Activation,
    /// When this instance learnt of the activation.
    pub seen_at: Instant,
}

struct Job {
    stage: usize,
    activation: Activation,
    seen_at: Instant,
    handle: JoinHandle<Result<Arc<LoadedModule>, String>>,
}

struct Watch {
    stage: usize,
    activation: Activation,
    guard: Guard,
    base_events: u64,
    base_failed: u64,
}

/// A stage's name, and the kind and current version of its module (`None`
/// for a stage that runs none).
pub type StageModule = (String, Option<(OperatorKind, Arc<LoadedModule>)>);

/// Follows activations for one pipeline and prepares its swaps.
pub struct Swapper {
    registry: Registry,
    tail: ActiveTail,
    runtime: Runtime,
    application: String,
    /// Name and the kind of module it runs (`None`: a stage that runs
    /// none, such as a table; activations for it are refused).
    stages: Vec<(String, Option<OperatorKind>)>,
    /// The latest activation accepted per stage, and the digest it asks for.
    seq: Vec<u64>,
    desired: Vec<String>,
    /// Version records seen, by digest.
    records: HashMap<String, ModuleRecord>,
    loaded: HashMap<String, Arc<LoadedModule>>,
    jobs: Vec<Job>,
    ready: Vec<Ready>,
    watches: Vec<Watch>,
    views: Arc<Mutex<Vec<SwapView>>>,
}

/// The registry could not be followed at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The registry could not be read.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// An active version cannot run in its stage.
    #[error("stage {stage}: the active version {version} cannot be used: {reason}")]
    Unusable {
        /// Stage.
        stage: String,
        /// `name@N`.
        version: String,
        /// Why.
        reason: String,
    },
}

impl Swapper {
    /// Starts following the activation table. `stages` are the pipeline's
    /// (name, kind and current module — `None` for a stage without one).
    /// Returns the versions active now, to be applied before any task starts.
    pub fn start(
        registry: Registry,
        runtime: Runtime,
        application: &str,
        stages: Vec<StageModule>,
    ) -> Result<(Swapper, Vec<Ready>), SwapError> {
        let tail = ActiveTail::open(&registry)?;
        let views = stages
            .iter()
            .map(|(name, m)| SwapView {
                stage: name.clone(),
                active: m.as_ref().map_or_else(
                    || crate::stage::table::LABEL.to_owned(),
                    |(_, m)| m.info().version_label(),
                ),
                ..SwapView::default()
            })
            .collect();
        let mut s = Swapper {
            registry,
            tail,
            runtime,
            application: application.to_owned(),
            seq: vec![0; stages.len()],
            desired: stages
                .iter()
                .map(|(_, m)| m.as_ref().map(|(_, m)| m.info().digest.clone()).unwrap_or_default())
                .collect(),
            records: HashMap::new(),
            loaded: stages
                .iter()
                .filter_map(|(_, m)| m.as_ref().map(|(_, m)| (m.info().digest.clone(), m.clone())))
                .collect(),
            stages: stages.into_iter().map(|(n, m)| (n, m.map(|(k, _)| k))).collect(),
            jobs: Vec::new(),
            ready: Vec::new(),
            watches: Vec::new(),
            views: Arc::new(Mutex::new(views)),
        };
        s.catch_up()?;
        if let Some(v) = s
            .view_list()
            .into_iter()
            .find(|v| v.pending.as_deref().is_some_and(|p| p.starts_with("refused")))
        {
            return Err(SwapError::Unusable {
                stage: v.stage.clone(),
                version: v.version.clone().unwrap_or_default(),
                reason: v.pending.unwrap_or_default(),
            });
        }
        let ready = std::mem::take(&mut s.ready);
        Ok((s, ready))
    }

    /// What `/status` shows, shared with the admin API.
    pub fn views(&self) -> Arc<Mutex<Vec<SwapView>>> {
        self.views.clone()
    }

    fn view_list(&self) -> Vec<SwapView> {
        self.views.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn view(&self, stage: usize, f: impl FnOnce(&mut SwapView)) {
        if let Ok(mut v) = self.views.lock()
            && let Some(v) = v.get_mut(stage)
        {
            f(v);
        }
    }

    /// Notices new activations and finished compilations; never blocks.
    pub fn poll(&mut self) {
        match self.tail.poll(Duration::ZERO) {
            Ok(news) => self.accept(news),
            Err(e) => tracing::warn!("{e}"),
        }
        self.collect(false);
    }

    /// Reads the activation table to its end and waits for every
    /// compilation: before new tasks open, so that a partition never goes
    /// back to an older version when it changes hands.
    pub fn catch_up(&mut self) -> Result<(), RegistryError> {
        let news = self.tail.catch_up()?;
        self.accept(news);
        self.collect(true);
        Ok(())
    }

    /// Versions ready to swap in, oldest activation first.
    pub fn take_ready(&mut self) -> Vec<Ready> {
        std::mem::take(&mut self.ready)
    }

    /// Whether a version waits for a boundary.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    fn accept(&mut self, news: Vec<Update>) {
        // Only the last activation of each stage counts (reading the table
        // from its start replays its history).
        let mut activations: Vec<(String, String, Activation)> = Vec::new();
        for update in news {
            match update {
                Update::Module(m) => {
                    self.records.insert(m.digest.clone(), m);
                }
                Update::Activation(app, stage, a) if app == self.application => {
                    activations.retain(|(_, s, _)| *s != stage);
                    activations.push((app, stage, a));
                }
                Update::Activation(..) => {}
            }
        }
        for (_, stage, a) in activations {
            let Some(i) = self.stages.iter().position(|(n, _)| *n == stage) else {
                tracing::warn!(
                    stage,
                    "an activation names a stage this pipeline does not have; ignored"
                );
                continue;
            };
            let Some(kind) = self.stages[i].1 else {
                tracing::warn!(
                    stage,
                    "an activation names a stage that runs no module (a table); ignored"
                );
                continue;
            };
            // Two activations written at once can share a number: like
            // compaction, the later one in the log wins, in every instance.
            if a.seq < self.seq[i] || (a.seq == self.seq[i] && a.module.digest == self.desired[i]) {
                continue;
            }
            self.seq[i] = a.seq;
            self.desired[i] = a.module.digest.clone();
            // Whatever waited for an earlier activation is stale now.
            self.ready.retain(|r| r.stage != i);
            let seen_at = Instant::now();
            tracing::info!(stage, version = %a.module, by = %a.by, seq = a.seq, "activation received");
            if let Some(m) = self.loaded.get(&a.module.digest).cloned()
                && m.kind() == kind
            {
                self.queue(i, m, a, seen_at);
                continue;
            }
            self.view(i, |v| {
                v.pending = Some(format!("compiling {}@{}", a.module.name, a.module.version))
            });
            let (registry, runtime, module, kind, known) = (
                self.registry.clone(),
                self.runtime.clone(),
                a.module.clone(),
                kind,
                self.records.get(&a.module.digest).cloned(),
            );
            let handle = std::thread::spawn(move || {
                let started = Instant::now();
                // Records precede activations in practice; if this one did
                // not, look it up.
                let record = match known {
                    Some(r) => r,
                    None => registry
                        .snapshot()
                        .map_err(|e| e.to_string())?
                        .get(&module)
                        .cloned()
                        .ok_or_else(|| format!("{module} is not in the registry"))?,
                };
                let bytes = registry.fetch(&record).map_err(|e| e.to_string())?;
                let fetched = started.elapsed();
                let loaded = runtime.load(&module.name, &bytes).map_err(|e| e.to_string())?;
                tracing::info!(version = %module, fetch_ms = fetched.as_millis() as u64,
                    load_ms = (started.elapsed() - fetched).as_millis() as u64, "new version ready");
                if loaded.kind() != kind {
                    return Err(format!(
                        "it is {}, but the stage needs {}",
                        loaded.kind().with_article(),
                        kind.with_article()
                    ));
                }
                Ok(loaded)
            });
            self.jobs.push(Job {
                stage: i,
                activation: a,
                seen_at,
                handle,
            });
        }
    }

    fn collect(&mut self, wait: bool) {
        let mut still = Vec::new();
        for job in std::mem::take(&mut self.jobs) {
            if !wait && !job.handle.is_finished() {
                still.push(job);
                continue;
            }
            let result = job
                .handle
                .join()
                .unwrap_or_else(|_| Err("the compiler thread panicked".into()));
            if job.activation.seq != self.seq[job.stage] || job.activation.module.digest != self.desired[job.stage] {
                continue; // A newer activation replaced it meanwhile.
            }
            match result {
                Ok(m) => {
                    self.loaded.insert(m.info().digest.clone(), m.clone());
                    self.queue(job.stage, m, job.activation, job.seen_at);
                }
                Err(reason) => {
                    let (stage, a) = (&self.stages[job.stage].0, &job.activation);
                    tracing::error!(stage, version = %a.module, "activation refused, the stage keeps its version: {reason}");
                    self.view(job.stage, |v| {
                        v.pending = Some(format!("refused {}@{}: {reason}", a.module.name, a.module.version));
                    });
                }
            }
        }
        self.jobs = still;
    }

    fn queue(&mut self, stage: usize, module: Arc<LoadedModule>, activation: Activation, seen_at: Instant) {
        let label = format!("ready {}@{}", activation.module.name, activation.module.version);
        self.view(stage, |v| v.pending = Some(label));
        self.ready.retain(|r| r.stage != stage);
        self.ready.push(Ready {
            stage,
            module,
            activation,
            seen_at,
        });
    }

    /// Records a swap the instance applied (it paused for `pause`), and
    /// starts watching its guard.
    pub fn applied(&mut self, r: &Ready, pause: Duration, metrics: &Metrics) {
        let a = &r.activation;
        let what = match a.by.as_str() {
            "activate" => format!("activated {}", a.module),
            other => format!(
                "{other} to {}{}",
                a.module,
                a.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
        };
        self.view(r.stage, |v| {
            v.active = r.module.info().version_label();
            v.version = Some(format!("{}@{}", a.module.name, a.module.version));
            v.seq = a.seq;
            v.pending = None;
            v.guard = None;
            v.last = Some(what);
            v.swaps += 1;
            v.last_pause_micros = Some(pause.as_micros() as u64);
        });
        self.watches.retain(|w| w.stage != r.stage);
        if let Some(guard) = a.guard {
            let c = &metrics.stages[r.stage];
            self.watches.push(Watch {
                stage: r.stage,
                activation: a.clone(),
                guard,
                base_events: crate::metrics::get(&c.events),
                base_failed: crate::metrics::get(&c.failed),
            });
        }
    }

    /// Checks the guards of new versions (at a boundary): a version that
    /// failed on more than its share of its first records is rolled back
    /// through the registry.
    pub fn check_guards(&mut self, metrics: &Metrics) {
        let mut done = Vec::new();
        for (n, w) in self.watches.iter().enumerate() {
            let c = &metrics.stages[w.stage];
            let seen = crate::metrics::get(&c.events).saturating_sub(w.base_events);
            let failed = crate::metrics::get(&c.failed).saturating_sub(w.base_failed);
            let watched = seen.min(w.guard.first).max(1);
            let limit = w.guard.max_failure_share * w.guard.first as f64;
            let tripped = failed as f64 > limit
                || (seen >= w.guard.first && failed as f64 / watched as f64 > w.guard.max_failure_share);
            self.view(w.stage, |v| {
                v.guard = Some(GuardView {
                    first: w.guard.first,
                    max_failure_share: w.guard.max_failure_share,
                    seen,
                    failed,
                });
            });
            let stage = &self.stages[w.stage].0;
            if tripped {
                done.push(n);
                let reason = format!(
                    "{failed} of its first {seen} record(s) failed (limit {:.0}%)",
                    w.guard.max_failure_share * 100.0
                );
                if self.seq[w.stage] != w.activation.seq || self.desired[w.stage] != w.activation.module.digest {
                    continue; // Another activation (or an instance's rollback) came first.
                }
                match w.activation.rollback("auto-rollback", Some(reason.clone()), now_ms()) {
                    Some(back) => {
                        tracing::error!(stage, version = %w.activation.module, to = %back.module,
                            "automatic rollback: {reason}");
                        // Off the processing thread: writing takes a round trip or two.
                        let (registry, app, stage) = (self.registry.clone(), self.application.clone(), stage.clone());
                        std::thread::spawn(move || {
                            if let Err(e) = registry.write_activation(&app, &stage, &back) {
                                tracing::error!(stage, "cannot write the automatic rollback: {e}");
                            }
                        });
                        self.view(w.stage, |v| v.last = Some(format!("auto-rollback requested: {reason}")));
                    }
                    None => tracing::error!(stage, "{reason}, but there is no earlier version to roll back to"),
                }
            } else if seen >= w.guard.first {
                done.push(n);
                tracing::info!(stage, version = %w.activation.module, seen, failed, "new version passed its guard");
                self.view(w.stage, |v| {
                    v.last = Some(format!(
                        "{} passed its guard ({failed} of {seen} failed)",
                        w.activation.module
                    ))
                });
            }
        }
        for n in done.into_iter().rev() {
            self.watches.remove(n);
        }
    }
}
