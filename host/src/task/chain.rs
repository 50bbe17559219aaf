//! The compiled pipeline: one loaded module per stage (what new tasks
//! start with; a hot swap replaces it), the topology and the routing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use super::Task;
use crate::contract::OperatorKind;
use crate::metrics::Metrics;
use crate::pipeline::{Join, JoinShape, LookupKey, Pipeline, StageInput, StageKind, Table};
use crate::runtime::{LoadError, LoadedModule, Runtime};
use crate::stage::Stage;
use crate::stage::collector::Routing;
pub use crate::stage::open::OpenError;
use crate::stage::open::Opening;
use crate::state::row::TableView;
use crate::state::{Durability, Scope, StateError, Store, StoreSpec};
use crate::topology::{InternalTopic, Topology};

/// The compiled pipeline, shared by all tasks of an instance.
pub struct Chain {
    runtime: Runtime,
    stages: Vec<ChainStage>,
    routing: Routing,
    /// The rows of each global table (by stage), once the instance (or the
    /// driver) has opened it: joins of every task read them.
    globals: RwLock<BTreeMap<usize, TableView>>,
}

struct ChainStage {
    /// The stage as the pipeline defines it (the topology's definition,
    /// shared).
    def: Arc<crate::pipeline::Stage>,
    /// The version new tasks start with; a hot swap replaces it. `None`
    /// for a stage that runs no module (a table).
    module: Option<RwLock<Arc<LoadedModule>>>,
    /// A global-table join's `key-module` (a processor whose first output's
    /// key is each record's lookup key), or a grouped table's `group-by` (a
    /// processor whose first output re-keys a row). Not hot-swapped.
    key_module: Option<Arc<LoadedModule>>,
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
    /// A table aggregation's module cannot take values back out.
    #[error(
        "stage {stage} aggregates a grouped table, so its module must export `subtract` (a row's old value \
         leaves its group when the row changes); {} exports no subtractor (world {world}): \
         add one, e.g. #[weir_sdk::aggregator(subtract)]",
        module.display()
    )]
    NoSubtract {
        /// Stage name.
        stage: String,
        /// Module path.
        module: PathBuf,
        /// The world it exports.
        world: String,
    },
}

impl Chain {
    /// Loads and validates every stage's module.
    pub fn load(pipeline: &Pipeline, runtime: &Runtime) -> Result<Arc<Chain>, ChainError> {
        let topology = Topology::from_pipeline(pipeline);
        let mut stages = Vec::with_capacity(pipeline.stages.len());
        for (i, s) in pipeline.stages.iter().enumerate() {
            let module = match (&s.module, operator_kind(&s.kind)) {
                (Some(path), Some(expected)) => {
                    let module = runtime.load_file(path).map_err(|source| ChainError::Load {
                        stage: s.name.clone(),
                        source,
                    })?;
                    if module.kind() != expected {
                        return Err(ChainError::WrongKind {
                            stage: s.name.clone(),
                            module: path.clone(),
                            kind: module.kind(),
                            expected: match expected {
                                OperatorKind::Processor => "process",
                                OperatorKind::Aggregator => "aggregate",
                                OperatorKind::Joiner => "join",
                            },
                        });
                    }
                    if matches!(&s.kind, StageKind::Aggregate(a) if a.table) && !module.info().subtract {
                        return Err(ChainError::NoSubtract {
                            stage: s.name.clone(),
                            module: path.clone(),
                            world: module.info().world.clone(),
                        });
                    }
                    Some(RwLock::new(module))
                }
                _ => None,
            };
            let helper = match &s.kind {
                StageKind::Join(Join {
                    shape:
                        JoinShape::StreamGlobal {
                            key: LookupKey::Module(path),
                            ..
                        },
                    ..
                }) => Some((path, "process (its key-module)")),
                StageKind::Table(Table { group_by: Some(path) }) => Some((path, "process (its group-by)")),
                _ => None,
            };
            let key_module = match helper {
                Some((path, expected)) => {
                    let m = runtime.load_file(path).map_err(|source| ChainError::Load {
                        stage: s.name.clone(),
                        source,
                    })?;
                    if m.kind() != OperatorKind::Processor {
                        return Err(ChainError::WrongKind {
                            stage: s.name.clone(),
                            module: path.clone(),
                            kind: m.kind(),
                            expected,
                        });
                    }
                    Some(m)
                }
                None => None,
            };
            stages.push(ChainStage {
                def: topology.stages()[i].clone(),
                module,
                key_module,
            });
        }
        Ok(Arc::new(Chain {
            runtime: runtime.clone(),
            routing: Routing::of(pipeline, topology),
            stages,
            globals: RwLock::default(),
        }))
    }

    /// The global-table stages: (stage index, name, topic).
    pub fn global_tables(&self) -> Vec<(usize, String, String)> {
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.def.kind == StageKind::GlobalTable)
            .filter_map(|(i, s)| match s.def.inputs.as_slice() {
                [StageInput::Topic(t)] => Some((i, s.def.name.clone(), t.clone())),
                _ => None,
            })
            .collect()
    }

    /// Makes the rows of global table `stage` readable by joins (before
    /// tasks open).
    pub fn set_global(&self, stage: usize, rows: TableView) {
        self.globals
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stage, rows);
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

    /// Module labels (`name@digest`) per stage: what new tasks start with
    /// (a stage without a module shows as what it is, e.g. `(table)`).
    pub fn module_labels(&self) -> Vec<String> {
        (0..self.stages.len())
            .map(|i| {
                self.module(i)
                    .map_or_else(|| crate::stage::table::LABEL.to_owned(), |m| m.info().version_label())
            })
            .collect()
    }

    /// The module stage `i` runs in new tasks (`None`: it runs none).
    pub fn module(&self, i: usize) -> Option<Arc<LoadedModule>> {
        self.stages
            .get(i)?
            .module
            .as_ref()
            .map(|m| m.read().unwrap_or_else(PoisonError::into_inner).clone())
    }

    /// Makes new tasks run `module` in stage `i` (a hot swap; running
    /// tasks swap with [`Task::swap`]). A stage without a module keeps none.
    pub fn set_module(&self, i: usize, module: Arc<LoadedModule>) {
        if let Some(m) = self.stages.get(i).and_then(|s| s.module.as_ref()) {
            *m.write().unwrap_or_else(PoisonError::into_inner) = module;
        }
    }

    /// The operator kind stage `i` needs (`None`: it runs no module).
    pub fn stage_kind(&self, i: usize) -> Option<OperatorKind> {
        operator_kind(&self.stages[i].def.kind)
    }

    /// Stage names, in order.
    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.def.name.as_str()).collect()
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
        (0..self.stages.len()).any(|i| self.topology().store(i).is_some())
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
        let mut tables: BTreeMap<usize, TableView> = BTreeMap::new();
        for &i in &topology.sub_topologies()[sub].stages {
            let s = &self.stages[i];
            let store = match topology.store(i) {
                Some(spec) if spec.scope != Scope::Task => {
                    return Err(OpenError::Scope {
                        stage: s.def.name.clone(),
                        scope: spec.scope,
                    });
                }
                Some(spec) => {
                    let store = open(&spec, spec.changelog(partition))?;
                    Some(match spec.durability {
                        Durability::SourceTopic(_) => store.from_source_topic(),
                        Durability::Changelog(_) => store,
                    })
                }
                None => None,
            };
            let globals = self.globals.read().unwrap_or_else(PoisonError::into_inner);
            let stage = crate::stage::open(Opening {
                index: i,
                stages: topology.stages(),
                runtime: &self.runtime,
                module: self.module(i),
                key_module: s.key_module.clone(),
                store,
                tables: &mut tables,
                globals: &globals,
            })?;
            stages[i] = Some(stage);
        }
        Ok(Task::new(self.clone(), sub, partition, stages))
    }

    /// The runtime the chain's modules run in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// A stage's module and config (for a query's own operator instance);
    /// `None` for a stage without a module.
    pub fn stage_module(&self, stage: usize) -> Option<(Arc<LoadedModule>, BTreeMap<String, String>)> {
        Some((self.module(stage)?, self.stages[stage].def.config.clone()))
    }

    /// The index of the stage called `name`.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.def.name == name)
    }

    /// Whether stage `i` keeps state.
    pub fn stage_is_stateful(&self, i: usize) -> bool {
        self.topology().store(i).is_some()
    }

    /// Whether stage `i`'s results are a table (a table, or a table-table
    /// join): its store holds rows, not accumulators.
    pub fn is_table(&self, i: usize) -> bool {
        self.stages.get(i).is_some_and(|s| s.def.kind.is_table())
    }

    /// Whether stage `i` is windowed.
    pub fn is_windowed(&self, i: usize) -> bool {
        matches!(&self.stages[i].def.kind, StageKind::Aggregate(a) if a.window.is_some())
    }
}

/// The operator kind a stage needs (`None`: it runs no module).
fn operator_kind(kind: &StageKind) -> Option<OperatorKind> {
    match kind {
        StageKind::Process => Some(OperatorKind::Processor),
        StageKind::Aggregate(_) => Some(OperatorKind::Aggregator),
        StageKind::Join(_) => Some(OperatorKind::Joiner),
        StageKind::Table(_) | StageKind::GlobalTable => None,
    }
}
