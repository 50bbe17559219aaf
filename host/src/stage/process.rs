//! The `process` stage: a guest processor called once per batch. A batch
//! that traps is narrowed down to the events that cause the trap, whose
//! results become failures with the trap on the side; the rest go on.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::codec::{EventRef, ResultBatch};
use crate::event::{EventResult, Failure};
use crate::runtime::{GuestError, GuestFault, LoadedModule, Operator, Runtime};
use crate::stage::collector::Collector;
use crate::stage::{GuestStage, Input, Stage, StageError};

/// A guest processor in one task.
pub struct ProcessStage {
    runtime: Runtime,
    config: BTreeMap<String, String>,
    op: Operator,
}

impl ProcessStage {
    /// A stage running `module` with `config` (the instance is created on
    /// first use, or by [`Stage::warm_up`]).
    pub fn new(runtime: &Runtime, module: Arc<LoadedModule>, config: BTreeMap<String, String>) -> ProcessStage {
        ProcessStage {
            op: runtime.operator(module, config.clone()),
            runtime: runtime.clone(),
            config,
        }
    }

    /// Calls the guest on a batch: its results, and the traps of events that
    /// had to be isolated (their results are failures).
    fn call<'i>(
        &mut self,
        input: &Input<'i>,
        out: &Collector<'_>,
    ) -> Result<(ResultBatch<'i>, BTreeMap<usize, GuestError>), StageError> {
        let err = match self.op.process(input.batch) {
            Ok(batch) => return Ok((batch, BTreeMap::new())),
            Err(e) => e,
        };
        let outcomes: Vec<Result<EventResult, GuestError>> = if matches!(err.fault, GuestFault::Instantiate(_)) {
            input.events.iter().map(|_| Err(err.clone())).collect()
        } else {
            let owned: Vec<_> = input.events.iter().map(EventRef::to_event).collect();
            self.op.process_events(&owned)
        };
        let mut traps = BTreeMap::new();
        let results: Vec<EventResult> = outcomes
            .into_iter()
            .enumerate()
            .map(|(idx, r)| match r {
                Ok(r) => r,
                Err(e) => {
                    let placeholder = EventResult::Failed(Failure {
                        code: e.kind().to_owned(),
                        message: e.to_string(),
                    });
                    traps.insert(idx, e);
                    placeholder
                }
            })
            .collect();
        let batch = ResultBatch::from_results(&results)
            .map_err(|e| out.invariant("isolated results do not encode", e.to_string()))?;
        Ok((batch, traps))
    }
}

impl Stage for ProcessStage {
    fn process(&mut self, input: &Input<'_>, out: &mut Collector<'_>) -> Result<(), StageError> {
        let (results, traps) = self.call(input, out)?;
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
