//! One live, replaceable instance of an operator module.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::Instance;
use wasmtime::{Store, StoreLimitsBuilder, Trap};

use super::bindings::exports::weir::stream::{aggregator, migrator, subtractor};
use super::bindings::join::exports::weir::stream::joiner;
use super::bindings::process::exports::weir::stream::processor;
use super::bindings::weir::stream::types as wit;
use super::error::{GuestError, GuestFault};
use super::host::{HostState, OperatorContext};
use super::{ExportIndices, LoadedModule, Runtime};
use crate::codec::{self, BatchEncoder, EventRef, PairEncoder, ResultBatch};
use crate::contract::OperatorKind;
use crate::event::{Event, EventResult, Failure, Pair, Window};

/// What a guest made of a batch: its results, or, when the call trapped,
/// one outcome per item (the items that trap found by halving the batch;
/// a module that does not start fails every item).
pub enum Called<'i> {
    /// The whole batch's results.
    Whole(ResultBatch<'i>),
    /// Each item's outcome, the call having trapped.
    Isolated(Vec<Result<EventResult, GuestError>>),
}

impl<'i> Called<'i> {
    /// The results, with the traps of the isolated items beside them (their
    /// results are failures naming the trap): what a stage hands its
    /// collector.
    pub fn with_traps(self) -> Result<(ResultBatch<'i>, BTreeMap<usize, GuestError>), codec::DecodeError> {
        let outcomes = match self {
            Called::Whole(batch) => return Ok((batch, BTreeMap::new())),
            Called::Isolated(outcomes) => outcomes,
        };
        let mut traps = BTreeMap::new();
        let results: Vec<EventResult> = outcomes
            .into_iter()
            .enumerate()
            .map(|(idx, r)| {
                r.unwrap_or_else(|e| {
                    let placeholder = EventResult::Failed(Failure::new(e.kind(), e.to_string()));
                    traps.insert(idx, e);
                    placeholder
                })
            })
            .collect();
        Ok((ResultBatch::from_results(&results)?, traps))
    }

    /// One outcome per item.
    pub fn outcomes(self) -> Vec<Result<EventResult, GuestError>> {
        match self {
            Called::Whole(batch) => batch.into_owned().into_iter().map(Ok).collect(),
            Called::Isolated(outcomes) => outcomes,
        }
    }
}

/// A run of events of one key (and window) for [`Operator::add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The window, for windowed stages.
    pub window: Option<Window>,
    /// The current accumulator; `None` starts from the operator's initial value.
    pub acc: Option<Vec<u8>>,
    /// The events in the `event-batch` encoding.
    pub events: Vec<u8>,
}

/// The result of folding one [`Group`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    /// The new accumulator.
    pub acc: Vec<u8>,
    /// Events that failed (0-based index within the group) and why.
    pub failures: Vec<(u32, Failure)>,
}

/// An accumulator to turn into outputs, for [`Operator::emit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitRequest {
    /// The key; outputs without a key get it.
    pub key: Option<Vec<u8>>,
    /// The window, for windowed stages.
    pub window: Option<Window>,
    /// The accumulator.
    pub acc: Vec<u8>,
}

/// One guest call over a batch of items (events or pairs).
type BatchCall<T> = dyn Fn(&mut Operator, &[T]) -> Result<Vec<EventResult>, GuestError>;

/// An instance of an operator. Calls run under the runtime's deadline, fuel
/// and memory cap; a call that traps returns a [`GuestError`] and drops the
/// instance, so the next call runs in a fresh one.
pub struct Operator {
    runtime: Runtime,
    module: Arc<LoadedModule>,
    ctx: Arc<OperatorContext>,
    live: Option<Live>,
}

struct Live {
    store: Store<HostState>,
    guest: Guest,
}

enum Guest {
    Processor(processor::Guest),
    Aggregator(aggregator::Guest, Option<migrator::Guest>, Option<subtractor::Guest>),
    Joiner(joiner::Guest),
}

impl Operator {
    pub(super) fn new(runtime: Runtime, module: Arc<LoadedModule>, ctx: Arc<OperatorContext>) -> Self {
        Operator {
            runtime,
            module,
            ctx,
            live: None,
        }
    }

    /// The module this operator runs.
    pub fn module(&self) -> &Arc<LoadedModule> {
        &self.module
    }

    /// Shared context: label, config and the guest's counters.
    pub fn context(&self) -> &Arc<OperatorContext> {
        &self.ctx
    }

    /// Creates the instance now instead of on first use (so that its cost is
    /// paid before a batch, e.g. at a hot swap).
    pub fn warm_up(&mut self) -> Result<(), GuestError> {
        self.live("instantiate").map(|_| ())
    }

    /// Processes one encoded batch: one result per event, read in place from
    /// the buffer the guest returned (and, for outputs that keep their
    /// event's key or headers, from `batch`).
    pub fn process<'i>(&mut self, batch: &'i BatchEncoder) -> Result<ResultBatch<'i>, GuestError> {
        self.require("process", OperatorKind::Processor)?;
        let out = self.call("process", |store, guest| match guest {
            Guest::Processor(p) => p.call_process(store, batch.as_vec()),
            _ => Err(wasmtime::format_err!("not a processor")),
        })?;
        ResultBatch::decode_for(out, batch).map_err(|e| self.error("process", GuestFault::BadResult(e.into())))
    }

    /// Joins one encoded batch of pairs (joiners only): one result per pair.
    /// Outputs without a key keep `None` here; the join stage gives them the
    /// pair's key.
    pub fn join(&mut self, pairs: &PairEncoder) -> Result<ResultBatch<'static>, GuestError> {
        self.require("join", OperatorKind::Joiner)?;
        let count = pairs.len();
        let out = self.call("join", |store, guest| match guest {
            Guest::Joiner(j) => j.call_join(store, pairs.as_vec()),
            _ => Err(wasmtime::format_err!("not a joiner")),
        })?;
        ResultBatch::decode(out, count).map_err(|e| self.error("join", GuestFault::BadResult(e.into())))
    }

    /// Processes `batch` (whose events are `events`); when the call traps,
    /// isolates the events that trap ([`Called`]).
    pub fn process_isolating<'i>(&mut self, batch: &'i BatchEncoder, events: &[EventRef<'_>]) -> Called<'i> {
        match self.process(batch) {
            Ok(results) => Called::Whole(results),
            Err(e) if matches!(e.fault, GuestFault::Instantiate(_)) => {
                Called::Isolated(events.iter().map(|_| Err(e.clone())).collect())
            }
            Err(_) => {
                let owned: Vec<Event> = events.iter().map(EventRef::to_event).collect();
                Called::Isolated(self.process_events(&owned))
            }
        }
    }

    /// Joins `pairs`; when the call traps, isolates the pairs that trap
    /// ([`Called`]). A batch of pairs the host encoded that does not read
    /// back is an error.
    pub fn join_isolating(&mut self, pairs: &PairEncoder) -> Result<Called<'static>, codec::DecodeError> {
        match self.join(pairs) {
            Ok(results) => Ok(Called::Whole(results)),
            Err(e) => {
                let items = codec::read_pairs(pairs.as_bytes())?;
                Ok(Called::Isolated(if matches!(e.fault, GuestFault::Instantiate(_)) {
                    items.iter().map(|_| Err(e.clone())).collect()
                } else {
                    self.join_pairs(&items)
                }))
            }
        }
    }

    /// Processes events and returns one outcome per event. When a batch traps,
    /// it is split in halves until the events that trap are found, so one bad
    /// event costs only its own outcome (operators are deterministic).
    pub fn process_events(&mut self, events: &[Event]) -> Vec<Result<EventResult, GuestError>> {
        let mut out = Vec::with_capacity(events.len());
        self.isolate(events, &mut out, &|op, events| {
            op.process(&codec::encode_events(events)).map(ResultBatch::into_owned)
        });
        out
    }

    /// Joins pairs and returns one outcome per pair, isolating the pairs
    /// that trap as [`Operator::process_events`] does.
    pub fn join_pairs(&mut self, pairs: &[Pair]) -> Vec<Result<EventResult, GuestError>> {
        let mut out = Vec::with_capacity(pairs.len());
        self.isolate(pairs, &mut out, &|op, pairs| {
            op.join(&codec::encode_pairs(pairs)).map(ResultBatch::into_owned)
        });
        out
    }

    /// One outcome per item of `items` through `call`, halving a batch that
    /// traps until the items that trap are found (one at a time after a
    /// deadline or fuel trap).
    fn isolate<T>(&mut self, items: &[T], out: &mut Vec<Result<EventResult, GuestError>>, call: &BatchCall<T>) {
        if items.is_empty() {
            return;
        }
        match call(self, items) {
            Ok(results) => out.extend(results.into_iter().map(Ok)),
            Err(e) if items.len() == 1 || matches!(e.fault, GuestFault::Instantiate(_)) => {
                out.extend(items.iter().map(|_| Err(e.clone())));
            }
            // A deadline (or fuel) costs its whole length each time it is
            // hit: halving would hit it again at every level for each slow
            // item, one at a time hits it once per slow item.
            Err(e) if matches!(e.fault, GuestFault::Deadline(_) | GuestFault::OutOfFuel(_)) => {
                for item in items {
                    self.isolate(std::slice::from_ref(item), out, call);
                }
            }
            Err(_) => {
                let (a, b) = items.split_at(items.len() / 2);
                self.isolate(a, out, call);
                self.isolate(b, out, call);
            }
        }
    }

    /// Folds groups of events into their accumulators (aggregators only).
    pub fn add(&mut self, groups: Vec<Group>) -> Result<Vec<Folded>, GuestError> {
        self.fold_groups("add", groups)
    }

    /// Takes each group's events back out of its accumulator (the
    /// `subtract` export: table aggregations); `None` when this module does
    /// not export it.
    pub fn subtract(&mut self, groups: Vec<Group>) -> Result<Option<Vec<Folded>>, GuestError> {
        if !self.module.info.subtract {
            return Ok(None);
        }
        self.fold_groups("subtract", groups).map(Some)
    }

    /// `add` or `subtract` on `groups`, its results checked.
    fn fold_groups(&mut self, export: &'static str, groups: Vec<Group>) -> Result<Vec<Folded>, GuestError> {
        self.require(export, OperatorKind::Aggregator)?;
        let n = groups.len();
        let sizes: Vec<u32> = groups.iter().map(|g| codec::batch_len(&g.events)).collect();
        let groups: Vec<aggregator::Group> = groups
            .into_iter()
            .map(|g| aggregator::Group {
                key: g.key,
                window: g.window.map(to_wit_window),
                acc: g.acc,
                events: g.events,
            })
            .collect();
        let folded = self.call(export, |store, guest| match (export, guest) {
            ("subtract", Guest::Aggregator(_, _, Some(s))) => s.call_subtract(store, &groups),
            ("subtract", _) => Err(wasmtime::format_err!("no subtract export")),
            _ => aggregator_of(guest)?.call_add(store, &groups),
        })?;
        if folded.len() != n {
            let e = codec::DecodeError::CountMismatch {
                expected: n,
                found: folded.len(),
            };
            return Err(self.error(export, GuestFault::BadResult(e.into())));
        }
        for (f, size) in folded.iter().zip(&sizes) {
            if let Some((index, _)) = f.failures.iter().find(|(i, _)| i >= size) {
                let e = codec::CodecError::BadIndex {
                    index: *index,
                    len: *size,
                };
                return Err(self.error(export, GuestFault::BadResult(e)));
            }
        }
        Ok(folded
            .into_iter()
            .map(|f| Folded {
                acc: f.acc,
                failures: f.failures.into_iter().map(|(i, e)| (i, from_wit_failure(e))).collect(),
            })
            .collect())
    }

    /// Merges two accumulators of one key (session windows).
    pub fn merge(&mut self, key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Result<Vec<u8>, Failure>, GuestError> {
        self.require("merge", OperatorKind::Aggregator)?;
        let (key, a, b) = (key.map(<[u8]>::to_vec), a.to_vec(), b.to_vec());
        let r = self.call("merge", |store, guest| {
            aggregator_of(guest)?.call_merge(store, key.as_ref(), &a, &b)
        })?;
        Ok(r.map_err(from_wit_failure))
    }

    /// Turns accumulators into outputs: one result per request.
    pub fn emit(&mut self, requests: Vec<EmitRequest>) -> Result<Vec<EventResult>, GuestError> {
        self.require("emit", OperatorKind::Aggregator)?;
        let n = requests.len();
        let keys: Vec<Option<Vec<u8>>> = requests.iter().map(|r| r.key.clone()).collect();
        let reqs: Vec<aggregator::EmitRequest> = requests
            .into_iter()
            .map(|r| aggregator::EmitRequest {
                key: r.key,
                window: r.window.map(to_wit_window),
                acc: r.acc,
            })
            .collect();
        let out = self.call("emit", |store, guest| aggregator_of(guest)?.call_emit(store, &reqs))?;
        let mut results = ResultBatch::decode(out, n)
            .map_err(|e| self.error("emit", GuestFault::BadResult(e.into())))?
            .into_owned();
        // The contract: an output without a key gets the request's key.
        for (result, key) in results.iter_mut().zip(keys) {
            if let EventResult::Outputs(outputs) = result {
                for o in outputs.iter_mut().filter(|o| o.key.is_none()) {
                    o.key.clone_from(&key);
                }
            }
        }
        Ok(results)
    }

    /// Converts an accumulator written by version `from`; `None` when this
    /// module does not export `migrate`.
    pub fn migrate(
        &mut self,
        from: &str,
        key: Option<&[u8]>,
        acc: &[u8],
    ) -> Result<Option<Result<Vec<u8>, Failure>>, GuestError> {
        if !self.module.info.migrate {
            return Ok(None);
        }
        let (key, acc) = (key.map(<[u8]>::to_vec), acc.to_vec());
        let r = self.call("migrate", |store, guest| match guest {
            Guest::Aggregator(_, Some(m), _) => m.call_migrate(store, from, key.as_ref(), &acc),
            _ => Err(wasmtime::format_err!("no migrate export")),
        })?;
        Ok(Some(r.map_err(from_wit_failure)))
    }

    fn live(&mut self, export: &'static str) -> Result<&mut Live, GuestError> {
        if self.live.is_none() {
            let live = self
                .instantiate()
                .map_err(|e| self.error(export, GuestFault::Instantiate(format!("{e:#}"))))?;
            self.live = Some(live);
        }
        // Just ensured above.
        self.live.as_mut().ok_or_else(|| unreachable_error(export))
    }

    fn instantiate(&self) -> wasmtime::Result<Live> {
        let cfg = self.runtime.config();
        let limits = StoreLimitsBuilder::new()
            .memory_size(cfg.memory_limit)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.runtime.inner.engine, HostState::new(self.ctx.clone(), limits));
        store.limiter(|s| &mut s.limits);
        // Start-up code (language runtimes) gets ten call deadlines.
        store.set_epoch_deadline(cfg.deadline_ticks().saturating_mul(10));
        if let Some(fuel) = cfg.fuel {
            store.set_fuel(fuel.saturating_mul(10))?;
        }
        let instance: Instance = self.module.pre.instantiate(&mut store)?;
        let guest = match &self.module.exports {
            ExportIndices::Processor(p) => Guest::Processor(p.load(&mut store, &instance)?),
            ExportIndices::Aggregator {
                aggregator,
                migrator,
                subtractor,
            } => Guest::Aggregator(
                aggregator.load(&mut store, &instance)?,
                migrator.as_ref().map(|m| m.load(&mut store, &instance)).transpose()?,
                subtractor.as_ref().map(|m| m.load(&mut store, &instance)).transpose()?,
            ),
            ExportIndices::Joiner(j) => Guest::Joiner(j.load(&mut store, &instance)?),
        };
        Ok(Live { store, guest })
    }

    /// Runs one export under the limits; a trap drops the instance.
    fn call<R>(
        &mut self,
        export: &'static str,
        f: impl FnOnce(&mut Store<HostState>, &Guest) -> wasmtime::Result<R>,
    ) -> Result<R, GuestError> {
        let (ticks, fuel) = (self.runtime.config().deadline_ticks(), self.runtime.config().fuel);
        let live = self.live(export)?;
        live.store.set_epoch_deadline(ticks);
        if let Some(fuel) = fuel {
            // Setting fuel only fails when fuel is disabled, which `fuel` rules out.
            let _ = live.store.set_fuel(fuel);
        }
        live.store.data_mut().last_error = None;
        live.store.data_mut().pending_counters.clear();
        match f(&mut live.store, &live.guest) {
            Ok(r) => {
                live.store.data_mut().commit_counters();
                Ok(r)
            }
            Err(e) => {
                let fault = self.classify(&e);
                self.live = None;
                Err(self.error(export, fault))
            }
        }
    }

    /// Refuses a call to an export that this module's kind does not have,
    /// without touching the instance.
    fn require(&self, export: &'static str, kind: OperatorKind) -> Result<(), GuestError> {
        if self.module.kind() == kind {
            return Ok(());
        }
        Err(self.error(
            export,
            GuestFault::NotExported {
                kind: self.module.kind(),
            },
        ))
    }

    fn classify(&self, e: &wasmtime::Error) -> GuestFault {
        let cfg = self.runtime.config();
        let last_error = self.live.as_ref().and_then(|l| l.store.data().last_error.clone());
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => return GuestFault::Deadline(cfg.call_deadline),
            Some(Trap::OutOfFuel) => return GuestFault::OutOfFuel(cfg.fuel.unwrap_or_default()),
            Some(Trap::UnreachableCodeReached) => {
                return GuestFault::Panic(last_error.unwrap_or_else(|| "wasm `unreachable` executed".into()));
            }
            _ => {}
        }
        // One line: error chains can embed newlines.
        let text = format!("{e:#}").replace('\n', " ");
        if let Some(rest) = text.split("forcing trap when growing memory to ").nth(1) {
            let wanted = rest.split_whitespace().next().unwrap_or("?").to_owned();
            return GuestFault::OutOfMemory {
                cap: cfg.memory_limit,
                wanted,
            };
        }
        GuestFault::Trap(match last_error {
            Some(msg) => format!("{text} (guest logged: {msg})"),
            None => text,
        })
    }

    fn error(&self, export: &'static str, fault: GuestFault) -> GuestError {
        GuestError {
            module: self.ctx.label.clone(),
            export,
            fault,
        }
    }
}

fn unreachable_error(export: &'static str) -> GuestError {
    GuestError {
        module: String::new(),
        export,
        fault: GuestFault::Instantiate("instance missing".into()),
    }
}

fn aggregator_of(guest: &Guest) -> wasmtime::Result<&aggregator::Guest> {
    match guest {
        Guest::Aggregator(a, ..) => Ok(a),
        _ => Err(wasmtime::format_err!("not an aggregator")),
    }
}

fn to_wit_window(w: Window) -> wit::Window {
    wit::Window {
        start: w.start,
        end: w.end,
    }
}

fn from_wit_failure(f: wit::Failure) -> Failure {
    Failure {
        code: f.code,
        message: f.message,
    }
}
