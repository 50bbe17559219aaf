//! What the host lets an operator do: log, read its configuration, count.
//!
//! Inside a component these call the host. Compiled natively (unit tests),
//! logs go to stderr and configuration and counters live in the current
//! thread, settable through [`crate::testing`].

#[cfg(target_arch = "wasm32")]
mod imports {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "imports",
    });
    pub(crate) use weir::stream::{config, log, metrics};
}

/// Structured logging into the host's log, tagged with the module version.
pub mod log {
    /// Log severity.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Level {
        /// Very detailed.
        Trace,
        /// For debugging.
        Debug,
        /// Normal events.
        Info,
        /// Something odd.
        Warn,
        /// Something failed.
        Error,
    }

    /// Logs a message.
    pub fn log(level: Level, message: &str) {
        #[cfg(target_arch = "wasm32")]
        {
            use super::imports::log::{Level as L, log};
            let l = match level {
                Level::Trace => L::Trace,
                Level::Debug => L::Debug,
                Level::Info => L::Info,
                Level::Warn => L::Warn,
                Level::Error => L::Error,
            };
            log(l, message);
        }
        #[cfg(not(target_arch = "wasm32"))]
        eprintln!("[{level:?}] {message}");
    }

    /// Logs at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }
    /// Logs at info level.
    pub fn info(message: &str) {
        log(Level::Info, message);
    }
    /// Logs at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message);
    }
    /// Logs at error level.
    pub fn error(message: &str) {
        log(Level::Error, message);
    }
}

/// Deploy-time configuration: the stage's `config` table, or `weir test --config k=v`.
pub mod config {
    /// The value of a key, if set.
    pub fn get(key: &str) -> Option<String> {
        #[cfg(target_arch = "wasm32")]
        return super::imports::config::get(key);
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::CONFIG.with(|c| c.borrow().get(key).cloned())
    }

    /// Every key and value.
    pub fn entries() -> Vec<(String, String)> {
        #[cfg(target_arch = "wasm32")]
        return super::imports::config::entries();
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::CONFIG.with(|c| c.borrow().iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// Counters the host exports as metrics.
pub mod metrics {
    /// Adds `delta` to counter `name`.
    pub fn counter_add(name: &str, delta: u64) {
        #[cfg(target_arch = "wasm32")]
        super::imports::metrics::counter_add(name, delta);
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::COUNTERS.with(|c| *c.borrow_mut().entry(name.to_owned()).or_default() += delta);
    }
}
