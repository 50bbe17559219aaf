//! One shutdown for a process: a token that every loop and thread observes.
//!
//! `weir run` and `weir dev` make one [`Shutdown`] and hand it (or a
//! [`Shutdown::child`] of it) to everything that loops: the instance loop,
//! restores, global-table followers, the producer's queue-full retry, the
//! admin server, the epoch ticker, `weir dev`'s feeders and watcher.
//!
//! The first SIGINT or SIGTERM requests the shutdown: the instance
//! finishes its batch, commits and exits 0. A second one exits at once
//! (status 128 + the signal), after a line saying what it abandoned, which
//! the instance keeps current with [`Shutdown::doing`]; an exit there is as
//! safe as a crash, which exactly-once already survives.
//!
//! A child is requested when its parent is, or by itself: a thread that
//! must outlive the process's first signal (the admin server keeps
//! answering while the last batch commits; the epoch ticker keeps guest
//! deadlines running) gets a child that its owner requests when it drops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a second signal abandons before anything has started.
const STARTING: &str = "the start-up (nothing was processed yet)";

/// A shutdown token; clones share it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: AtomicBool,
    parent: Option<Shutdown>,
    /// What the process is doing that a second signal would abandon
    /// (kept on the root).
    doing: Mutex<&'static str>,
}

/// The signal handlers could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the SIGINT/SIGTERM handlers: {0}")]
pub struct SignalError(#[from] std::io::Error);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A token nothing has requested yet.
    pub fn new() -> Shutdown {
        Shutdown::with_parent(None)
    }

    fn with_parent(parent: Option<Shutdown>) -> Shutdown {
        Shutdown {
            inner: Arc::new(Inner {
                requested: AtomicBool::new(false),
                parent,
                doing: Mutex::new(STARTING),
            }),
        }
    }

    /// A token requested when this one is, or when it is requested itself
    /// (which leaves this one alone).
    pub fn child(&self) -> Shutdown {
        Shutdown::with_parent(Some(self.clone()))
    }

    /// Requests the shutdown (of this token and its children).
    pub fn request(&self) {
        self.inner.requested.store(true, Ordering::Relaxed);
    }

    /// Whether this token, or one of its parents, was requested.
    pub fn requested(&self) -> bool {
        let mut token = self;
        loop {
            if token.inner.requested.load(Ordering::Relaxed) {
                return true;
            }
            match &token.inner.parent {
                Some(parent) => token = parent,
                None => return false,
            }
        }
    }

    /// Sleeps for `d`, or less if the shutdown is requested meanwhile;
    /// `true` if it was.
    pub fn sleep(&self, d: Duration) -> bool {
        const SLICE: Duration = Duration::from_millis(20);
        let until = Instant::now() + d;
        loop {
            if self.requested() {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(SLICE));
        }
    }

    /// Notes what a second signal would abandon now (e.g. "the open
    /// transaction: …"), for the line printed before the exit.
    pub fn doing(&self, what: &'static str) {
        if let Ok(mut d) = self.root().inner.doing.lock() {
            *d = what;
        }
    }

    /// What a second signal would abandon now.
    pub fn abandons(&self) -> &'static str {
        self.root().inner.doing.lock().map_or(STARTING, |d| *d)
    }

    fn root(&self) -> &Shutdown {
        let mut token = self;
        while let Some(parent) = &token.inner.parent {
            token = parent;
        }
        token
    }

    /// Installs the process's SIGINT and SIGTERM handling on this token:
    /// the first signal requests it, and `announce` says what happens now;
    /// a second one prints what it abandons and exits at once with status
    /// 128 + the signal.
    pub fn on_signals(&self, announce: &'static str) -> Result<(), SignalError> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let token = self.clone();
        std::thread::Builder::new().name("weir-signals".into()).spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
                seen += 1;
                if seen == 1 {
                    token.request();
                    eprintln!("weir: {name}: {announce}; a second signal exits at once");
                    continue;
                }
                eprintln!(
                    "weir: second signal ({name}): exiting at once, abandoning {}",
                    token.abandons()
                );
                std::process::exit(128 + signal);
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_follows_its_parent_and_not_the_other_way_round() {
        let root = Shutdown::new();
        let child = root.child();
        let grandchild = child.child();
        child.request();
        assert!(child.requested() && grandchild.requested());
        assert!(!root.requested(), "a child's request reaches its parent");
        let other = root.child();
        assert!(!other.requested());
        root.request();
        assert!(other.requested());
    }

    #[test]
    fn sleep_ends_early_when_requested() {
        let token = Shutdown::new();
        assert!(!token.sleep(Duration::from_millis(1)));
        let waker = token.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.request();
        });
        let start = Instant::now();
        assert!(token.sleep(Duration::from_secs(30)));
        assert!(start.elapsed() < Duration::from_secs(10));
        t.join().expect("the waker thread");
    }

    #[test]
    fn what_is_abandoned_is_kept_on_the_root() {
        let root = Shutdown::new();
        assert_eq!(root.abandons(), STARTING);
        root.child().doing("the open transaction");
        assert_eq!(root.abandons(), "the open transaction");
    }
}
