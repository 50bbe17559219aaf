//! Tasks: the compiled pipeline ([`Chain`]) and the [`Task`] that runs one
//! sub-topology of it for one partition number. A task knows nothing about
//! Kafka: batches come in encoded, per source topic; records go out through
//! a [`Sink`]. The Kafka instance decides when a transaction begins and
//! ends; between two batches is a boundary where modules can be swapped.

mod chain;
mod workers;

use std::sync::Arc;
use std::time::Instant;

pub use chain::{Chain, ChainError, OpenError};
pub use workers::{Workers, WorkersError};

use crate::codec::BatchEncoder;
use crate::runtime::{GuestError, LoadedModule};
use crate::stage::collector::{self, Collector, Context, Slots};
pub use crate::stage::collector::{
    CountingSink, HEADER_DIGEST_HEX, MODULE_HEADER, MemorySink, OutRecord, SentRecord, Sink, SinkError, dead_letter,
    header_label,
};
use crate::stage::{Input, Stage, StageError};
use crate::state::{Changelog, StateError, Store};

/// A task stopped (see [`StageError`]).
pub type TaskError = StageError;

/// One partition number's run of a sub-topology, with its own stage
/// instances and stores.
pub struct Task {
    chain: Arc<Chain>,
    sub: usize,
    partition: i32,
    /// By stage index; `None` for stages of other sub-topologies.
    stages: Vec<Option<Box<dyn Stage>>>,
    /// The topics it reads (its sub-topology's sources).
    sources: Vec<String>,
    /// The next offset of each source (by index) since the task opened or
    /// last dropped uncommitted work; 0: not read since (changelog records
    /// carry them, see [`crate::state::changelog::INPUT_NEXT`]).
    next: Vec<i64>,
    /// The source (index) and last offset of the last batch (emitted
    /// results carry them).
    last: (usize, i64),
    /// The wall clock of the batch being processed (`idle-close` counts
    /// quiet time from it; the broker-free driver moves it itself).
    now: Instant,
}

impl Task {
    fn new(chain: Arc<Chain>, sub: usize, partition: i32, stages: Vec<Option<Box<dyn Stage>>>) -> Task {
        let sources = chain.topology().sub_topologies()[sub].sources.clone();
        Task {
            next: vec![0; sources.len()],
            sources,
            last: (0, -1),
            chain,
            sub,
            partition,
            stages,
            now: Instant::now(),
        }
    }

    /// Runs a batch of events of one source topic (at most the chain's
    /// batch size) through the task's stages, sending outputs, dead
    /// letters, repartitioned records and state changes to `sink`.
    pub fn process(&mut self, batch: &BatchEncoder, sink: &mut dyn Sink) -> Result<(), TaskError> {
        self.process_at(batch, sink, Instant::now())
    }

    /// [`Task::process`] at wall-clock time `now`.
    pub fn process_at(&mut self, batch: &BatchEncoder, sink: &mut dyn Sink, now: Instant) -> Result<(), TaskError> {
        self.now = now;
        let chain = self.chain.clone();
        let routing = chain.routing();
        let events = collector::read_back(routing, usize::MAX, batch)?;
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let topic = first.topic;
        if let Some(other) = events.iter().find(|e| e.topic != topic) {
            return Err(routing.invariant(
                usize::MAX,
                "a batch mixes source topics",
                format!("{topic} and {}", other.topic),
            ));
        }
        let (source, hops) = self
            .sources
            .iter()
            .position(|t| t == topic)
            .zip(routing.topology().source_hops(topic))
            .ok_or_else(|| {
                routing.invariant(
                    usize::MAX,
                    "a batch reached a task that does not read its topic",
                    format!("{topic}[{}] to sub-topology {}", self.partition, self.sub),
                )
            })?;
        self.next[source] = last.offset + 1;
        self.last = (source, last.offset);
        // Sources that a repartitioning stage reads directly go to its
        // repartition topic unchanged.
        let mut headers: Vec<(&str, Option<&[u8]>)> = Vec::new();
        for repartition in &hops.repartition {
            for ev in &events {
                headers.clear();
                headers.extend(ev.headers.iter());
                sink.send(&OutRecord::of_event(
                    repartition,
                    ev.key.is_none().then_some(0),
                    ev,
                    &headers,
                ))?;
            }
        }
        let ctx = Context {
            routing,
            now: self.now,
            sources: &self.sources,
            next: &self.next,
            source: (topic, self.partition, last.offset),
        };
        let input = Input {
            batch,
            events: &events,
            from: None,
        };
        collector::run_stages(&mut self.stages, 0, &hops.stages, &input, &ctx, sink)
    }

    /// Runs `f` on stage `i` with a collector for its records.
    fn with_stage<T>(
        &mut self,
        i: usize,
        sink: &mut dyn Sink,
        f: impl FnOnce(&mut dyn Stage, &mut Collector<'_>) -> Result<T, StageError>,
    ) -> Result<Option<T>, TaskError> {
        let chain = self.chain.clone();
        let ctx = Context {
            routing: chain.routing(),
            now: self.now,
            sources: &self.sources,
            next: &self.next,
            source: (
                self.sources.get(self.last.0).map_or("", String::as_str),
                self.partition,
                self.last.1,
            ),
        };
        let (head, later): (&mut Slots, &mut Slots) = self.stages.split_at_mut(i + 1);
        let Some(stage) = head.last_mut().and_then(Option::as_mut) else {
            return Ok(None);
        };
        let mut out = Collector::new(&ctx, i, stage.module_label(), sink, later);
        let value = f(stage.as_mut(), &mut out)?;
        out.finish()?;
        Ok(Some(value))
    }

    /// Runs `module` in stage `i` from the next batch on (a hot swap, at a
    /// transaction boundary). The stage's state stays; an aggregate adopts
    /// it with [`Task::adopt`].
    pub fn swap(&mut self, i: usize, module: Arc<LoadedModule>) {
        if let Some(Some(stage)) = self.stages.get_mut(i)
            && let Some(guest) = stage.guest()
        {
            guest.swap(module);
        }
    }

    /// Migrates stage `i`'s state to the version it now runs (after
    /// [`Task::swap`]), sending the changes to the changelog: `true` if the
    /// stage keeps state in this task (a transaction must be open).
    pub fn adopt(&mut self, i: usize, sink: &mut dyn Sink) -> Result<bool, TaskError> {
        if !self.has_state(i) {
            return Ok(false);
        }
        Ok(self
            .with_stage(i, sink, |stage, out| match stage.guest() {
                Some(guest) => guest.adopt(out),
                None => Ok(false),
            })?
            .unwrap_or(false))
    }

    /// Whether stage `i` keeps state in this task.
    pub fn has_state(&self, i: usize) -> bool {
        self.stage(i).is_some_and(|s| s.store().is_some())
    }

    fn stage(&self, i: usize) -> Option<&dyn Stage> {
        self.stages.get(i).and_then(Option::as_deref)
    }

    /// The version (`name@digest`) each stage of the task runs.
    pub fn module_labels(&self) -> Vec<String> {
        self.stages.iter().flatten().map(|s| s.module_label()).collect()
    }

    /// Creates every stage's instance now (start-up cost paid up front).
    pub fn warm_up(&mut self) -> Result<(), GuestError> {
        self.stages
            .iter_mut()
            .flatten()
            .try_for_each(|s| s.guest().map_or(Ok(()), |g| g.warm_up()))
    }

    /// The names of the chain's stages (index = stage).
    pub fn stage_names(&self) -> Vec<&str> {
        self.chain.stage_names()
    }

    /// The indices of the stages this task runs.
    pub fn stages(&self) -> impl Iterator<Item = usize> + '_ {
        self.chain.topology().sub_topologies()[self.sub].stages.iter().copied()
    }

    /// The topics the task reads (that partition of each).
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// The sub-topology it runs.
    pub fn sub_topology(&self) -> usize {
        self.sub
    }

    /// The partition number it reads.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The task's stateful stages: (stage index, stage).
    pub fn stores(&self) -> impl Iterator<Item = (usize, &dyn Stage, &Store)> {
        self.stages
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_deref().and_then(|s| s.store().map(|st| (i, s, st))))
    }

    /// Re-reads every store (after a restore, or an abort), and forgets
    /// how far the dropped work had read: the next changelog records carry
    /// only what is read from here on.
    pub fn reload(&mut self) -> Result<(), StateError> {
        self.next.iter_mut().for_each(|n| *n = 0);
        self.stages.iter_mut().flatten().try_for_each(|s| s.abort())
    }

    /// The unit of work committed: apply staged state, with each store's
    /// changelog checkpoint from `checkpoint`.
    pub fn commit_state(&mut self, checkpoint: impl Fn(&Changelog) -> Option<i64>) -> Result<(), StateError> {
        self.stages.iter_mut().flatten().try_for_each(|s| s.commit(&checkpoint))
    }

    /// Whether a stage has a wall-clock timer due (`idle-close`).
    pub fn idle_due(&self, now: Instant) -> bool {
        self.stages.iter().flatten().any(|s| s.wall_clock_due(now))
    }

    /// Fires wall-clock timers (`idle-close` closes windows of quiet
    /// partitions), sending what they emit on through the task.
    pub fn idle_close(&mut self, now: Instant, sink: &mut dyn Sink) -> Result<(), TaskError> {
        // What the closed windows emit may reach a later aggregate of this
        // task: it runs at this wall-clock time too.
        self.now = now;
        for i in 0..self.stages.len() {
            if self.stage(i).is_some_and(|s| s.wall_clock_due(now)) {
                self.with_stage(i, sink, |stage, out| stage.on_wall_clock(now, out))?;
            }
        }
        Ok(())
    }

    /// The task is going away (revoked, or the instance stops).
    pub fn close(mut self) {
        self.stages.iter_mut().flatten().for_each(|s| s.close());
    }
}
