//! The `process` stage: a guest processor called once per batch. A batch
//! that traps is narrowed down to the events that cause the trap, whose
//! results become failures with the trap on the side; the rest go on.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::runtime::{GuestError, LoadedModule, Operator, Runtime};
use crate::stage::collector::Collector;
use crate::stage::open::{OpenError, Opening};
use crate::stage::{GuestStage, Input, Stage, StageError};

/// A guest processor in one task.
pub struct ProcessStage {
    runtime: Runtime,
    config: BTreeMap<String, String>,
    op: Operator,
}

impl ProcessStage {
    /// A stage running `module` with `config` (the instance is created on
    /// first use, or by [`GuestStage::warm_up`]).
    pub fn new(runtime: &Runtime, module: Arc<LoadedModule>, config: BTreeMap<String, String>) -> ProcessStage {
        ProcessStage {
            op: runtime.operator(module, config.clone()),
            runtime: runtime.clone(),
            config,
        }
    }
}

impl ProcessStage {
    /// The stage [`Opening`] describes: it keeps no state.
    pub fn open(o: Opening<'_>) -> Result<Box<dyn Stage>, OpenError> {
        o.no_store()?;
        Ok(Box::new(ProcessStage::new(o.runtime, o.module()?, o.config())))
    }
}

impl Stage for ProcessStage {
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        let (results, traps) = self
            .op
            .process_isolating(input.batch, input.events)
            .with_traps()
            .map_err(|e| out.invariant("isolated results do not encode", e.to_string()))?;
        out.results(&results, &traps, input.events)
    }

    fn module_label(&self) -> String {
        self.op.module().info().version_label()
    }

    fn guest(&mut self) -> Option<&mut dyn GuestStage> {
        Some(self)
    }
}

impl GuestStage for ProcessStage {
    fn swap(&mut self, module: Arc<LoadedModule>) {
        self.op = super::swapped(&self.runtime, module, &self.config);
    }
    fn warm_up(&mut self) -> Result<(), GuestError> {
        self.op.warm_up()
    }
}
