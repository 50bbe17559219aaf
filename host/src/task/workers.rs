//! Processing threads: an instance's tasks run on a pool of threads, each
//! task on one thread at a time, every task of a round done before the
//! round returns. The round's end is where the Kafka loop commits, swaps
//! and rebalances, so those stay on one thread and see every task idle.

use std::num::NonZeroUsize;

/// A pool of processing threads (none for one thread: the caller's thread
/// runs the tasks, with no hand-over).
pub struct Workers {
    threads: usize,
    pool: Option<rayon::ThreadPool>,
}

/// The pool's threads could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start {threads} processing threads: {reason}")]
pub struct WorkersError {
    /// How many were asked for.
    pub threads: usize,
    /// What the system said.
    pub reason: String,
}

impl Workers {
    /// A pool of `threads` processing threads (at least one).
    pub fn new(threads: usize) -> Result<Workers, WorkersError> {
        let threads = threads.max(1);
        let pool = if threads == 1 {
            None
        } else {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("weir-task-{i}"))
                .build()
                .map_err(|e| WorkersError {
                    threads,
                    reason: e.to_string(),
                })?;
            Some(pool)
        };
        Ok(Workers { threads, pool })
    }

    /// The default: one thread per core the process may use.
    pub fn per_core() -> usize {
        std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
    }

    /// How many threads run tasks.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on every item, each on one thread, up to
    /// [`Workers::threads`] at once, and returns when all are done: the
    /// first error, if any (the others still finish what they started).
    pub fn for_each<T, E>(&self, items: &mut [T], work: impl Fn(&mut T) -> Result<(), E> + Sync) -> Result<(), E>
    where
        T: Send,
        E: Send,
    {
        match &self.pool {
            Some(pool) if items.len() > 1 => {
                use rayon::prelude::*;
                // One item per split: tasks are coarse (a batch each), and
                // uneven ones are stolen by an idle thread.
                pool.install(|| items.par_iter_mut().with_max_len(1).try_for_each(&work))
            }
            _ => items.iter_mut().try_for_each(work),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn every_item_is_done_once_on_the_pool_threads() {
        let workers = Workers::new(2).expect("a pool");
        let seen = Mutex::new(HashSet::new());
        let mut items: Vec<(u32, u32)> = (0..64).map(|i| (i, 0)).collect();
        workers
            .for_each(&mut items, |(i, done)| {
                *done += 1;
                let name = std::thread::current().name().unwrap_or("").to_owned();
                seen.lock().map_err(|_| "poisoned")?.insert(name);
                // Long enough that both threads get items.
                std::thread::sleep(std::time::Duration::from_millis(2));
                let _ = i;
                Ok::<(), &str>(())
            })
            .expect("no errors");
        assert!(items.iter().all(|(_, done)| *done == 1), "{items:?}");
        let seen = seen.into_inner().expect("not poisoned");
        assert_eq!(seen.len(), 2, "both pool threads worked: {seen:?}");
        assert!(seen.iter().all(|n| n.starts_with("weir-task-")), "{seen:?}");
    }

    #[test]
    fn an_error_is_returned_after_the_round() {
        let workers = Workers::new(2).expect("a pool");
        let mut items: Vec<u32> = (0..8).collect();
        let got = workers.for_each(&mut items, |i| if *i == 5 { Err(*i) } else { Ok(()) });
        assert_eq!(got, Err(5));
    }

    #[test]
    fn one_thread_runs_on_the_caller() {
        let workers = Workers::new(1).expect("no pool");
        let caller = std::thread::current().id();
        let mut items = vec![0u8; 3];
        workers
            .for_each(&mut items, |_| {
                assert_eq!(std::thread::current().id(), caller);
                Ok::<(), ()>(())
            })
            .expect("no errors");
    }
}
