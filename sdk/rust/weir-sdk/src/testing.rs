//! Helpers for unit-testing operators natively with `cargo test`.
//!
//! Operators are plain functions, so most tests just call them with an
//! [`Event::new`](crate::Event::new). These set what the host would provide.

use std::cell::RefCell;
use std::collections::BTreeMap;

thread_local! {
    pub(crate) static CONFIG: RefCell<BTreeMap<String, String>> = RefCell::default();
    pub(crate) static COUNTERS: RefCell<BTreeMap<String, u64>> = RefCell::default();
}

/// Sets a configuration value as `weir test --config key=value` would.
pub fn set_config(key: &str, value: &str) {
    CONFIG.with(|c| c.borrow_mut().insert(key.to_owned(), value.to_owned()));
}

/// A counter's value on this thread.
pub fn counter(name: &str) -> u64 {
    COUNTERS.with(|c| c.borrow().get(name).copied().unwrap_or(0))
}
