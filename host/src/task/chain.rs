//! The compiled pipeline: one loaded module per stage (what new tasks
//! start with; a hot swap replaces it), the topology and the routing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use super::Task;
use crate::collector::Routing;
use crate::contract::OperatorKind;
use crate::metrics::Metrics;
use crate::pipeline::{Aggregation, Pipeline, StageKind};
use crate::runtime::{LoadError, LoadedModule, Runtime};
use crate::stage::Stage;
use crate::stage::aggregate::{AggregateStage, Aggregator};
use crate::stage::process::ProcessStage;
use crate::state::{Scope, StateError, Store, StoreSpec};
use crate::topology::{InternalTopic, Topology};

/// The compiled pipeline, shared by all tasks of an instance.
pub struct Chain {
    runtime: Runtime,
    stages: Vec<ChainStage>,
    routing: Routing,
}

struct ChainStage {
    name: String,
    /// The version new tasks start with; a hot swap replaces it.
    module: RwLock<Arc<LoadedModule>>,
    config: BTreeMap<String, String>,
    aggregate: Option<Aggregation>,
}

/// A stage's module cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The module failed validation.
    #[error("stage {stage}: {source}")]
    Load {
        /// Stage name.
        stage: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// The module is of another kind than the stage.
    #[error("stage {stage}: {} is a {kind}, but the stage's kind is {expected}", module.display())]
    WrongKind {
        /// Stage name.
        stage: String,
        /// Module path.
        module: PathBuf,
        /// What it is.
        kind: OperatorKind,
        /// What the stage needs.
        expected: &'static str,
    },
}

/// A task cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A store failed to open.
    #[error(transparent)]
    State(#[from] StateError),
    /// The topic is read by no sub-topology.
    #[error("no sub-topology of the pipeline reads topic {topic}")]
    NotASource {
        /// The topic.
        topic: String,
    },
    /// A stage declared a store of a scope this version does not open.
    #[error("stage {stage} declares a store of scope {scope:?}, which this version cannot open")]
    Scope {
        /// Stage name.
        stage: String,
        /// Its scope.
        scope: Scope,
    },
}

impl Chain {
    /// Loads and validates every stage's module.
    pub fn load(pipeline: &Pipeline, runtime: &Runtime) -> Result<Arc<Chain>, ChainError> {
        let mut stages = Vec::with_capacity(pipeline.stages.len());
        for s in &pipeline.stages {
            let module = runtime.load_file(&s.module).map_err(|source| ChainError::Load {
                stage: s.name.clone(),
                source,
            })?;
            let (expected, aggregate) = match &s.kind {
                StageKind::Process => (OperatorKind::Processor, None),
                StageKind::Aggregate(a) => (OperatorKind::Aggregator, Some(a.clone())),
            };
            if module.kind() != expected {
                return Err(ChainError::WrongKind {
                    stage: s.name.clone(),
                    module: s.module.clone(),
                    kind: module.kind(),
                    expected: match expected {
                        OperatorKind::Processor => "process",
                        OperatorKind::Aggregator => "aggregate",
                    },
                });
            }
            stages.push(ChainStage {
                name: s.name.clone(),
                module: RwLock::new(module),
                config: s.config.clone(),
                aggregate,
            });
        }
        Ok(Arc::new(Chain {
            runtime: runtime.clone(),
            routing: Routing::of(pipeline, Topology::from_pipeline(pipeline)),
            stages,
        }))
    }

    /// Names, policies, routes and hops, as collectors need them.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The instance's counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.routing.metrics()
    }

    /// Most events per call into a guest.
    pub fn batch_size(&self) -> usize {
        self.routing.batch_size()
    }

    /// Module labels (`name@digest`) per stage: what new tasks start with.
    pub fn module_labels(&self) -> Vec<String> {
        (0..self.stages.len())
            .map(|i| self.module(i).info().version_label())
            .collect()
    }

    /// The module stage `i` runs in new tasks.
    pub fn module(&self, i: usize) -> Arc<LoadedModule> {
        self.stages[i]
            .module
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes new tasks run `module` in stage `i` (a hot swap; running
    /// tasks swap with [`Task::swap`]).
    pub fn set_module(&self, i: usize, module: Arc<LoadedModule>) {
        *self.stages[i].module.write().unwrap_or_else(PoisonError::into_inner) = module;
    }

    /// The operator kind stage `i` needs.
    pub fn stage_kind(&self, i: usize) -> OperatorKind {
        if self.stages[i].aggregate.is_some() {
            OperatorKind::Aggregator
        } else {
            OperatorKind::Processor
        }
    }

    /// Stage names, in order.
    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }

    /// The repartition topics the instance must also consume.
    pub fn repartition_topics(&self) -> Vec<String> {
        self.topology().repartition_topics()
    }

    /// The changelog topic of a stateful stage.
    pub fn changelog_topic(&self, stage: usize) -> String {
        self.topology().changelog_topic(stage)
    }

    /// Topics Weir creates for this pipeline (see [`Topology::internal_topics`]).
    pub fn internal_topics(&self) -> Vec<InternalTopic> {
        self.topology().internal_topics()
    }

    /// The pipeline's topology.
    pub fn topology(&self) -> &Topology {
        self.routing.topology()
    }

    /// Whether any stage keeps state.
    pub fn is_stateful(&self) -> bool {
        self.stages.iter().any(|s| s.aggregate.is_some())
    }

    /// The sub-topology that reads `topic`.
    pub fn sub_of(&self, topic: &str) -> Option<usize> {
        self.topology().sub_of_topic(topic)
    }

    /// A task for partition 0 of the first sub-topology, its stores in
    /// memory (tests, benchmarks).
    pub fn task(self: &Arc<Self>) -> Result<Task, OpenError> {
        self.open_with(0, 0, &|_, changelog| Ok(Store::in_memory(changelog)))
    }

    /// The task for partition `partition` of the sub-topology that reads
    /// `topic`, with its stores opened under `state_root/<store>/<partition>`
    /// (restore them from their changelogs, then [`Task::reload`], before
    /// processing).
    pub fn open_task(self: &Arc<Self>, topic: &str, partition: i32, state_root: &Path) -> Result<Task, OpenError> {
        let sub = self.sub_of(topic).ok_or_else(|| OpenError::NotASource {
            topic: topic.to_owned(),
        })?;
        self.open_with(sub, partition, &|spec, changelog| {
            Store::open(&state_root.join(&spec.name).join(partition.to_string()), changelog)
        })
    }

    /// [`Chain::open_task`] with its stores in memory (the broker-free driver).
    pub fn open_task_in_memory(self: &Arc<Self>, topic: &str, partition: i32) -> Result<Task, OpenError> {
        let sub = self.sub_of(topic).ok_or_else(|| OpenError::NotASource {
            topic: topic.to_owned(),
        })?;
        self.open_with(sub, partition, &|_, changelog| Ok(Store::in_memory(changelog)))
    }

    /// A task whose stages' declared stores come from `open(spec, changelog)`.
    fn open_with(
        self: &Arc<Self>,
        sub: usize,
        partition: i32,
        open: &dyn Fn(&StoreSpec, crate::state::Changelog) -> Result<Store, StateError>,
    ) -> Result<Task, OpenError> {
        let topology = self.topology();
        let mut stages: Vec<Option<Box<dyn Stage>>> = self.stages.iter().map(|_| None).collect();
        for &i in &topology.sub_topologies()[sub].stages {
            let s = &self.stages[i];
            let stage: Box<dyn Stage> = match (&s.aggregate, topology.store(i)) {
                (Some(spec), Some(store)) => {
                    if store.scope != Scope::Task {
                        return Err(OpenError::Scope {
                            stage: s.name.clone(),
                            scope: store.scope,
                        });
                    }
                    let opened = open(&store, store.changelog(partition))?;
                    let agg = Aggregator::open(spec.clone(), opened)?;
                    Box::new(AggregateStage::new(
                        &self.runtime,
                        self.module(i),
                        s.config.clone(),
                        agg,
                    ))
                }
                _ => Box::new(ProcessStage::new(&self.runtime, self.module(i), s.config.clone())),
            };
            stages[i] = Some(stage);
        }
        Ok(Task::new(self.clone(), sub, partition, stages))
    }

    /// The runtime the chain's modules run in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// A stage's module and config (for a query's own operator instance).
    pub fn stage_module(&self, stage: usize) -> (Arc<LoadedModule>, BTreeMap<String, String>) {
        (self.module(stage), self.stages[stage].config.clone())
    }

    /// The index of the stage called `name`.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// Whether stage `i` keeps state.
    pub fn stage_is_stateful(&self, i: usize) -> bool {
        self.stages.get(i).is_some_and(|s| s.aggregate.is_some())
    }

    /// Whether stage `i` is windowed.
    pub fn is_windowed(&self, i: usize) -> bool {
        self.stages[i].aggregate.as_ref().is_some_and(|a| a.window.is_some())
    }
}
