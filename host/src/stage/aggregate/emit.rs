//! Emission: in `update` mode, what a step changed, once, in the order
//! results go; and windows closing, their timers fired by stream time:
//! deleted, and in `final` mode emitted just before.

use std::collections::HashMap;

use crate::pipeline::Emit;
use crate::state::keys::{self, Entry};
use crate::window::{WindowKind, Windowing};

use super::fold::{AggregateError, Aggregator, Due, SlidingOrder, Step};
use super::store::split;

/// How many windows close at a time (a jump of stream time may close
/// millions: their timers are read from the store a page at a time).
const CLOSE_PAGE: usize = 1024;

impl Aggregator {
    /// In `update` mode, every accumulator a step changed (`latest`: its
    /// key in the store and its results' timestamp), once, in the order
    /// the results go (`order`: sliding windows').
    pub(super) fn emit_updates(
        &self,
        latest: &HashMap<Vec<u8>, i64>,
        order: &HashMap<Vec<u8>, SlidingOrder>,
        step: &mut Step,
    ) -> Result<(), AggregateError> {
        for (k, ts) in latest {
            if let Some(acc) = self.store.get(k)? {
                let (key, window) = split(&self.store, k)?;
                step.due.push(Due {
                    key,
                    window,
                    timestamp: *ts,
                    acc: Some(acc),
                });
            }
        }
        if order.is_empty() {
            // Emission in event-time order (then key), as records would
            // go: downstream stream time then moves forward through a
            // batch. At one time and key, tombstones first (as a merge
            // emits them).
            step.due.sort_by(|a, b| {
                (a.timestamp, &a.key, a.acc.is_some(), a.window).cmp(&(b.timestamp, &b.key, b.acc.is_some(), b.window))
            });
        } else {
            // Sliding windows: in the order Kafka Streams forwards them,
            // by the event that last changed each.
            let of = |d: &Due| {
                d.window
                    .map(|win| keys::windowed(d.key.as_deref(), win))
                    .and_then(|k| order.get(&k).copied())
            };
            step.due.sort_by_key(|d| of(d));
        }
        Ok(())
    }

    /// Deletes every window whose close time `stream_time` has reached,
    /// emitting it first in `final` mode.
    pub(super) fn close(&mut self, stream_time: i64, step: &mut Step) -> Result<(), AggregateError> {
        if self.spec.window.is_none() {
            return Ok(());
        }
        loop {
            let due = self.timers.pop_due(&mut self.store, stream_time, CLOSE_PAGE)?;
            let more = due.len() == CLOSE_PAGE;
            for (_, k) in due {
                self.close_window(k, step)?;
            }
            if !more {
                break;
            }
        }
        self.first_close = self.timers.first(&self.store)?;
        Ok(())
    }

    /// Deletes the window at store key `k`, whose timer fired.
    fn close_window(&mut self, k: Vec<u8>, step: &mut Step) -> Result<(), AggregateError> {
        if self.spec.emit == Emit::Final
            && let Some(acc) = self.store.get(&k)?
            && let (key, Some(window)) = split(&self.store, &k)?
        {
            let timestamp = match self.stamp(&k)? {
                Some(ts) => ts,
                // Sessions carry their end; so did windows stored
                // before stamps were kept.
                None => window.end - 1,
            };
            step.due.push(Due {
                key,
                window: Some(window),
                timestamp,
                acc: Some(acc),
            });
        }
        if let (
            Some(Windowing {
                kind: WindowKind::Sliding { size },
                grace,
            }),
            Some(Entry::Windowed(key, _)),
        ) = (self.spec.window, keys::decode(&k))
        {
            self.purge_events(key.as_deref(), size, grace)?;
        }
        if self.stamp(&k)?.is_some() {
            self.put(keys::stamp(&k), None);
        }
        self.put(k, None);
        Ok(())
    }
}
