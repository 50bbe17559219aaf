//! Module versions at run time: catching up with the registry before new
//! tasks start, and swapping ready versions into every task at a
//! transaction boundary (the swap itself is [`crate::swap::apply`]).

use std::collections::HashMap;

use super::error::InstanceError;
use super::instance::{Instance, TaskId};
use crate::swap::{self, SwapError};
use crate::task::Task;

impl Instance {
    /// Reads the registry to its end (see [`Swapper::catch_up`](crate::swap::Swapper::catch_up)), trying a
    /// few times: running a new task with a version older than the one its
    /// partition last ran would break the order of versions.
    pub(super) fn catch_up(&self) -> Result<(), InstanceError> {
        let mut attempt = 0;
        loop {
            match self.swapper().catch_up() {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!("{e}; trying again");
                }
                Err(e) => return Err(InstanceError::Swap(SwapError::Registry(e))),
            }
        }
    }

    /// At a transaction boundary: swaps the versions that are ready into
    /// every task, and checks the guards of recent swaps. Does nothing while
    /// a transaction is open.
    pub(super) fn swap(&self, tasks: &mut HashMap<TaskId, Task>) -> Result<(), InstanceError> {
        if self.shared.lock().open {
            return Ok(());
        }
        swap::apply::apply_ready(
            &mut self.swapper(),
            &self.chain,
            tasks.values_mut().collect(),
            || self.writer(),
            |e| self.shared.explain(e),
        )
    }
}
