//! How a task opens a stage: with its definition, its module, the store it
//! declared (opened by the task, restored before the first record), and
//! the tables of its task it looks up. Each stage kind builds itself from
//! an [`Opening`] (`open` of its file); [`super::open()`] picks the kind.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::pipeline::{Stage as Definition, StageKind};
use crate::runtime::{LoadedModule, Runtime};
use crate::state::row::TableView;
use crate::state::{Scope, StateError, Store};

/// What a stage is opened with.
pub struct Opening<'a> {
    /// Its index in the pipeline.
    pub index: usize,
    /// Every stage's definition (index = stage).
    pub stages: &'a [Arc<Definition>],
    /// The runtime its guests run in.
    pub runtime: &'a Runtime,
    /// The module version it starts with (`None`: it runs none).
    pub module: Option<Arc<LoadedModule>>,
    /// A global-table join's `key-module`, or a grouped table's `group-by`.
    pub key_module: Option<Arc<LoadedModule>>,
    /// The store it declared, opened (`None`: it declared none).
    pub store: Option<Store>,
    /// The tables of its task opened so far (a join looks them up; a table
    /// or a table-table join adds its own).
    pub tables: &'a mut BTreeMap<usize, TableView>,
    /// The rows of each global table of the instance.
    pub globals: &'a BTreeMap<usize, TableView>,
}

impl Opening<'_> {
    /// Its definition.
    pub fn def(&self) -> &Definition {
        &self.stages[self.index]
    }

    /// Its deploy-time configuration.
    pub fn config(&self) -> BTreeMap<String, String> {
        self.def().config.clone()
    }

    /// The module it runs.
    pub fn module(&self) -> Result<Arc<LoadedModule>, OpenError> {
        self.module.clone().ok_or_else(|| OpenError::NoModule {
            stage: self.def().name.clone(),
        })
    }

    /// Its key module (a global join's `key-module`, a table's `group-by`).
    pub fn key_module(&self) -> Result<Arc<LoadedModule>, OpenError> {
        self.key_module.clone().ok_or_else(|| OpenError::NoModule {
            stage: self.def().name.clone(),
        })
    }

    /// The store it declared.
    pub fn take_store(&mut self) -> Result<Store, OpenError> {
        self.store.take().ok_or_else(|| OpenError::Store {
            stage: self.def().name.clone(),
            detail: format!("a {} stage without its store", kind_name(&self.def().kind)),
        })
    }

    /// That it declared no store.
    pub fn no_store(&self) -> Result<(), OpenError> {
        match self.store {
            None => Ok(()),
            Some(_) => Err(OpenError::Store {
                stage: self.def().name.clone(),
                detail: format!("a {} stage with a store", kind_name(&self.def().kind)),
            }),
        }
    }

    /// The rows of table stage `table` of its task.
    pub fn table(&self, table: usize) -> Result<TableView, OpenError> {
        self.tables.get(&table).cloned().ok_or_else(|| self.no_table(table))
    }

    /// The rows of global table stage `table`.
    pub fn global(&self, table: usize) -> Result<TableView, OpenError> {
        self.globals.get(&table).cloned().ok_or_else(|| self.no_table(table))
    }

    fn no_table(&self, table: usize) -> OpenError {
        OpenError::NoTable {
            stage: self.def().name.clone(),
            table: self.stages[table].name.clone(),
        }
    }
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
    /// A stage that runs a module has none (a bug: the chain loads one
    /// for every such stage).
    #[error("stage {stage} has no module loaded")]
    NoModule {
        /// Stage name.
        stage: String,
    },
    /// A join's table is not in the join's task (a bug: the topology puts
    /// them together).
    #[error("stage {stage} joins table {table}, which its task does not hold")]
    NoTable {
        /// The join.
        stage: String,
        /// The table stage.
        table: String,
    },
    /// A stage and the store the topology declares for it do not fit (a bug).
    #[error("stage {stage}: {detail}")]
    Store {
        /// Stage name.
        stage: String,
        /// What does not fit.
        detail: String,
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

/// A kind's name in the pipeline file.
pub fn kind_name(kind: &StageKind) -> &'static str {
    match kind {
        StageKind::Process => "process",
        StageKind::Aggregate(_) => "aggregate",
        StageKind::Table(_) => "table",
        StageKind::GlobalTable => "global-table",
        StageKind::Join(_) => "join",
    }
}
