//! Applying ready versions to the tasks of an instance, at a transaction
//! boundary: new tasks start with the new version, running tasks swap their
//! instance, and stateful stages adopt their state in a transaction of its
//! own (committed at the next commit), so that quiet partitions and queries
//! see the new format too.

use std::time::Instant;

use super::{Ready, Swapper};
use crate::task::{Chain, Sink, Task, TaskError};

/// Checks the guards of recent swaps, then swaps every version that is ready
/// into `chain` and `tasks`. Must only run when no transaction is open;
/// `writer` opens one for state adoption, and `explain` turns a task's
/// failure into the caller's error.
pub fn apply_ready<W: Sink, E>(
    swapper: &mut Swapper,
    chain: &Chain,
    mut tasks: Vec<&mut Task>,
    mut writer: impl FnMut() -> Result<W, E>,
    explain: impl Fn(TaskError) -> E,
) -> Result<(), E> {
    swapper.check_guards(chain.metrics());
    let ready: Vec<Ready> = swapper.take_ready();
    for r in ready {
        let started = Instant::now();
        let from = chain
            .module(r.stage)
            .map_or_else(|| "(none)".to_owned(), |m| m.info().version_label());
        chain.set_module(r.stage, r.module.clone());
        for task in tasks.iter_mut() {
            task.swap(r.stage, r.module.clone());
        }
        if tasks.iter().any(|t| t.has_state(r.stage)) {
            let mut sink = writer()?;
            for task in tasks.iter_mut() {
                task.adopt(r.stage, &mut sink).map_err(&explain)?;
            }
        }
        let pause = started.elapsed();
        tracing::info!(
            stage = %chain.stage_names()[r.stage],
            from = %from,
            to = %r.module.info().version_label(),
            version = %r.activation.module,
            tasks = tasks.len(),
            pause_us = pause.as_micros() as u64,
            since_activation_ms = r.seen_at.elapsed().as_millis() as u64,
            "swapped at a transaction boundary"
        );
        swapper.applied(&r, pause, chain.metrics());
    }
    Ok(())
}
