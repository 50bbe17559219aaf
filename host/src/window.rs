//! Window rules, as pure functions over event time (ms): which windows an
//! event belongs to, when a window is closed to late events, when a `final`
//! result is due, and how sessions merge. No state and no Kafka here; the
//! aggregate stage applies these rules to its store.
//!
//! The rules follow Kafka Streams:
//! - a window is `[start, end)`; tumbling windows are aligned to the epoch,
//!   hopping windows to multiples of their advance, and no window starts
//!   before 0;
//! - stream time is the largest event time a task has seen;
//! - a window accepts events while `end + grace > stream time`, and its
//!   `final` result is due once `stream time >= end + grace` (sessions add
//!   their gap: a session's last event + gap + grace must be before stream time);
//! - a session is `[first, last]` of its events (stored as `[first, last + 1)`),
//!   and an event within `gap` of a session joins it, merging every session
//!   it bridges; the event is late once the session it makes has closed
//!   (last + gap + grace before stream time);
//! - sliding windows are each event's left window and, when not empty, its
//!   right window ([`sliding_windows`]); an event earlier than the window
//!   size has `[0, size]` for its left window.

use crate::event::Window;

/// How events are grouped in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed-size, non-overlapping windows.
    Tumbling {
        /// Window length, ms.
        size: i64,
    },
    /// Fixed-size windows starting every `advance` ms (they overlap when
    /// `advance < size`).
    Hopping {
        /// Window length, ms.
        size: i64,
        /// Distance between window starts, ms.
        advance: i64,
    },
    /// Activity sessions that end after `gap` ms without events.
    Session {
        /// Inactivity gap, ms.
        gap: i64,
    },
    /// Kafka Streams' sliding windows: every distinct set of a key's events
    /// no more than `size` ms apart (see [`sliding_windows`]).
    Sliding {
        /// Largest time difference between two events of one window, ms.
        size: i64,
    },
}

/// A window kind with its grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windowing {
    /// The kind.
    pub kind: WindowKind,
    /// How long after a window's end late events are still accepted, ms.
    pub grace: i64,
}

/// A window definition that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A size, advance or gap of zero or less.
    #[error("{what} must be above 0 ms, got {value} ms")]
    NotPositive {
        /// Which parameter.
        what: &'static str,
        /// Its value.
        value: i64,
    },
    /// A hopping window that advances further than its size leaves gaps.
    #[error("a hopping window's advance ({advance} ms) must not exceed its size ({size} ms)")]
    AdvanceAboveSize {
        /// Size.
        size: i64,
        /// Advance.
        advance: i64,
    },
    /// A negative grace period.
    #[error("grace must not be negative, got {0} ms")]
    NegativeGrace(i64),
}

impl Windowing {
    /// Checks the parameters.
    pub fn new(kind: WindowKind, grace: i64) -> Result<Windowing, WindowError> {
        let positive = |what, value: i64| {
            if value > 0 {
                Ok(())
            } else {
                Err(WindowError::NotPositive { what, value })
            }
        };
        match kind {
            WindowKind::Tumbling { size } => positive("size", size)?,
            WindowKind::Hopping { size, advance } => {
                positive("size", size)?;
                positive("advance", advance)?;
                if advance > size {
                    return Err(WindowError::AdvanceAboveSize { size, advance });
                }
            }
            WindowKind::Session { gap } => positive("gap", gap)?,
            WindowKind::Sliding { size } => positive("size", size)?,
        }
        if grace < 0 {
            return Err(WindowError::NegativeGrace(grace));
        }
        Ok(Windowing { kind, grace })
    }

    /// The fixed windows an event at `ts` belongs to, oldest first. Empty for
    /// sessions and sliding windows, whose windows depend on the other events
    /// of the key (see [`session_for`] and [`sliding_windows`]).
    pub fn windows_for(&self, ts: i64) -> Vec<Window> {
        match self.kind {
            WindowKind::Tumbling { size } => {
                let start = ts - ts.rem_euclid(size);
                if start < 0 {
                    return Vec::new();
                }
                vec![Window {
                    start,
                    end: start.saturating_add(size),
                }]
            }
            WindowKind::Hopping { size, advance } => {
                // The latest window containing ts starts at the last multiple
                // of `advance` at or before ts; earlier ones step back while
                // they still contain ts.
                let last = ts - ts.rem_euclid(advance);
                let mut windows = Vec::new();
                let mut start = last;
                while start > ts - size && start >= 0 {
                    windows.push(Window {
                        start,
                        end: start.saturating_add(size),
                    });
                    start -= advance;
                }
                windows.reverse();
                windows
            }
            WindowKind::Session { .. } | WindowKind::Sliding { .. } => Vec::new(),
        }
    }

    /// When `window`'s final result is due and its state goes: stream time
    /// at or past its end + grace, the moment it stops accepting events.
    /// Session and sliding windows are stored as `[start, last + 1)`. A
    /// session closes at its last event + gap + grace, as Kafka Streams'
    /// suppression emits it (until then an event can still extend it). A
    /// sliding window `[start, last]` closes at `last + 1 + grace`: Kafka
    /// Streams still folds an event into it at `last + grace` (its
    /// `windowEnd >= closeTime`), so Weir emits it one millisecond of stream
    /// time later than Kafka Streams' suppression, with that event in it.
    pub fn close_time(&self, window: Window) -> i64 {
        let end = match self.kind {
            WindowKind::Session { gap } => window.end.saturating_sub(1).saturating_add(gap),
            _ => window.end,
        };
        end.saturating_add(self.grace)
    }

    /// How long, in event time, a window's state is needed after its start:
    /// How long, in event time, a window's state is needed after its start:
    /// what its store keeps before the window closes (tumbling and hopping:
    /// size + grace; sessions: gap + grace past the last event; sliding:
    /// the events of 2 × size + grace). A windowed changelog keeps its
    /// records at least this long, plus a margin (see `kafka::topics`).
    pub fn retention(&self) -> i64 {
        let span = match self.kind {
            WindowKind::Tumbling { size } | WindowKind::Hopping { size, .. } => size,
            WindowKind::Session { gap } => gap,
            WindowKind::Sliding { size } => size.saturating_mul(2),
        };
        span.saturating_add(self.grace)
    }

    /// True when an event for `window` arrives too late at `stream_time`:
    /// stream time has passed its end + grace. A session counts from its
    /// last event *after* the event joined it, gap included: Kafka Streams
    /// drops the event when `mergedWindow.end() < streamTime - grace - gap`,
    /// so a session made at its close time is still on time (and closes
    /// at once).
    pub fn is_late(&self, window: Window, stream_time: i64) -> bool {
        match self.kind {
            WindowKind::Session { .. } => self.close_time(window) < stream_time,
            _ => self.close_time(window) <= stream_time,
        }
    }

    /// True when `window`'s final result is due at `stream_time`.
    pub fn is_closed(&self, window: Window, stream_time: i64) -> bool {
        self.close_time(window) <= stream_time
    }
}

/// What an event does to a key's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPlan {
    /// The session the event ends up in (after merging).
    pub window: Window,
    /// Existing sessions that become part of it (their accumulators are
    /// merged with the guest's `merge`, then deleted), oldest first.
    pub merged: Vec<Window>,
}

/// The session an event at `ts` joins, given the key's existing sessions.
/// A session `[s, e)` holds events at `s..=e-1`; the event joins it when
/// `s - gap <= ts <= e - 1 + gap`.
pub fn session_for(existing: &[Window], ts: i64, gap: i64) -> SessionPlan {
    let mut merged: Vec<Window> = existing
        .iter()
        .copied()
        .filter(|w| w.start.saturating_sub(gap) <= ts && ts <= (w.end - 1).saturating_add(gap))
        .collect();
    merged.sort();
    let start = merged.iter().map(|w| w.start).chain([ts]).min().unwrap_or(ts);
    let end = merged
        .iter()
        .map(|w| w.end)
        .chain([ts.saturating_add(1)])
        .max()
        .unwrap_or(ts.saturating_add(1));
    SessionPlan {
        window: Window { start, end },
        merged,
    }
}

/// The left window of an event at `ts` for a time difference `size`:
/// `[ts - size, ts]`, written `[ts - size, ts + 1)`. An event earlier than
/// `size` would make a window that starts before 0; Kafka Streams puts it in
/// `[0, size]` instead (`processEarly`), and so does Weir.
pub fn sliding_left(ts: i64, size: i64) -> Window {
    let last = ts.max(size);
    Window {
        start: last - size,
        end: last.saturating_add(1),
    }
}

/// The right window of an event at `ts`: `[ts + 1, ts + 1 + size]`, written
/// `[ts + 1, ts + size + 2)`.
pub fn sliding_right(ts: i64, size: i64) -> Window {
    Window {
        start: ts.saturating_add(1),
        end: ts.saturating_add(size).saturating_add(2),
    }
}

/// Whether a sliding window (or any window) holds an event at `ts`.
pub fn holds(window: Window, ts: i64) -> bool {
    (window.start..window.end).contains(&ts)
}

/// The sliding windows over a key's event times, as Kafka Streams defines
/// them for a time difference `size`: for every event at `t`, its *left*
/// window ([`sliding_left`]: `[t - size, t]`, or `[0, size]` for an event
/// before `size`), and its *right* window ([`sliding_right`]:
/// `[t + 1, t + 1 + size]`) when some event falls in it (the set the window
/// holds once `t` has dropped out). Bounds are inclusive in Kafka Streams;
/// here, as for every window, the end is exclusive. A window's events are
/// those of the key in its range. Negative times have no window (no window
/// starts before 0, and Kafka Streams never sees them).
pub fn sliding_windows(times: &[i64], size: i64) -> std::collections::BTreeSet<Window> {
    let mut sorted: Vec<i64> = times.iter().copied().filter(|t| *t >= 0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = std::collections::BTreeSet::new();
    for (i, &t) in sorted.iter().enumerate() {
        out.insert(sliding_left(t, size));
        let right = sliding_right(t, size);
        if sorted.get(i + 1).is_some_and(|&next| holds(right, next)) {
            out.insert(right);
        }
    }
    out
}

/// Whether an event at `ts` is too late for every sliding window it could
/// be in: the last of them (the right window of an event at `ts - 1`) ends at
/// `ts + size + 1`.
pub fn sliding_is_late(ts: i64, size: i64, grace: i64, stream_time: i64) -> bool {
    ts.saturating_add(size).saturating_add(1).saturating_add(grace) <= stream_time
}

/// Stream time of a task: the largest event time seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTime(pub i64);

impl Default for StreamTime {
    fn default() -> Self {
        StreamTime(i64::MIN)
    }
}

impl StreamTime {
    /// Advances with an event time; never goes back.
    pub fn observe(&mut self, ts: i64) {
        self.0 = self.0.max(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(start: i64, end: i64) -> Window {
        Window { start, end }
    }

    fn tumbling(size: i64, grace: i64) -> Windowing {
        Windowing::new(WindowKind::Tumbling { size }, grace).unwrap()
    }

    #[test]
    fn retention_covers_what_each_store_keeps_until_close() {
        let kinds = [
            (WindowKind::Tumbling { size: 100 }, 110),
            (WindowKind::Hopping { size: 100, advance: 10 }, 110),
            (WindowKind::Session { gap: 30 }, 40),
            (WindowKind::Sliding { size: 100 }, 210),
        ];
        for (kind, want) in kinds {
            let w = Windowing::new(kind, 10).unwrap();
            assert_eq!(w.retention(), want, "{kind:?}");
        }
    }

    #[test]
    fn tumbling_windows_align_to_the_epoch() {
        let t = tumbling(2000, 0);
        assert_eq!(t.windows_for(0), [w(0, 2000)]);
        assert_eq!(t.windows_for(1999), [w(0, 2000)]);
        assert_eq!(t.windows_for(2000), [w(2000, 4000)]);
        assert_eq!(
            t.windows_for(1_700_000_000_123),
            [w(1_700_000_000_000, 1_700_000_002_000)]
        );
        assert!(t.windows_for(-1).is_empty(), "no window starts before 0");
    }

    #[test]
    fn hopping_windows_contain_the_event_and_start_at_multiples_of_advance() {
        let h = Windowing::new(WindowKind::Hopping { size: 10, advance: 5 }, 0).unwrap();
        assert_eq!(h.windows_for(12), [w(5, 15), w(10, 20)]);
        assert_eq!(h.windows_for(10), [w(5, 15), w(10, 20)]);
        assert_eq!(h.windows_for(3), [w(0, 10)], "no window starts before 0");
        let h = Windowing::new(WindowKind::Hopping { size: 10, advance: 3 }, 0).unwrap();
        for ts in 0..40 {
            let ws = h.windows_for(ts);
            assert!(
                ws.iter().all(|x| x.start <= ts && ts < x.end && x.start % 3 == 0),
                "{ts}: {ws:?}"
            );
            let all = (0..=ts).step_by(3).filter(|s| ts < s + 10).count();
            assert_eq!(ws.len(), all, "{ts}");
        }
        // advance == size is tumbling.
        let h = Windowing::new(WindowKind::Hopping { size: 4, advance: 4 }, 0).unwrap();
        assert_eq!(h.windows_for(9), tumbling(4, 0).windows_for(9));
    }

    #[test]
    fn grace_decides_lateness_and_final_emission() {
        let t = tumbling(10, 5);
        let win = w(0, 10);
        assert!(!t.is_late(win, 14), "stream time 14 < end 10 + grace 5");
        assert!(t.is_late(win, 15));
        assert!(!t.is_closed(win, 14));
        assert!(t.is_closed(win, 15));
        let no_grace = tumbling(10, 0);
        assert!(!no_grace.is_late(win, 9));
        assert!(no_grace.is_late(win, 10));
    }

    #[test]
    fn sessions_start_extend_and_merge() {
        let gap = 30;
        let p = session_for(&[], 100, gap);
        assert_eq!(
            p,
            SessionPlan {
                window: w(100, 101),
                merged: vec![]
            }
        );
        // Within the gap after the session's last event: extends it.
        let p = session_for(&[w(100, 101)], 130, gap);
        assert_eq!(p.window, w(100, 131));
        assert_eq!(p.merged, [w(100, 101)]);
        // Beyond the gap: a new session.
        let p = session_for(&[w(100, 101)], 131, gap);
        assert_eq!(
            p,
            SessionPlan {
                window: w(131, 132),
                merged: vec![]
            }
        );
        // Out of order, before the session but within the gap: extends its start.
        let p = session_for(&[w(100, 121)], 75, gap);
        assert_eq!(p.window, w(75, 121));
        // Bridging two sessions merges them.
        let p = session_for(&[w(170, 181), w(100, 121)], 145, gap);
        assert_eq!(p.window, w(100, 181));
        assert_eq!(p.merged, [w(100, 121), w(170, 181)]);
        // Too far from both: neither is touched.
        let p = session_for(&[w(170, 181), w(100, 121)], 260, gap);
        assert_eq!(
            p,
            SessionPlan {
                window: w(260, 261),
                merged: vec![]
            }
        );
    }

    #[test]
    fn a_session_closes_after_gap_and_grace() {
        let s = Windowing::new(WindowKind::Session { gap: 30 }, 5).unwrap();
        // Last event at 120: an event up to 150 can extend it while stream
        // time is below 120 + gap 30 + grace 5, so its final result is due
        // then (Kafka Streams' suppression).
        let win = w(100, 121);
        assert!(!s.is_closed(win, 154));
        assert!(s.is_closed(win, 155));
        // An event that would leave it so is late only after that: Kafka
        // Streams' `mergedWindow.end() < streamTime - grace - gap`.
        assert!(!s.is_late(win, 155));
        assert!(s.is_late(win, 156));
    }

    #[test]
    fn session_lateness_counts_the_gap_as_kafka_streams() {
        // KStreamSessionWindowAggregateProcessorTest
        // .shouldLogAndMeterWhenSkippingLateRecordWithZeroGrace: gap 10, grace
        // 0: a record at 0 is on time at stream time 0, late at 11.
        let single = w(0, 1);
        let s = Windowing::new(WindowKind::Session { gap: 10 }, 0).unwrap();
        assert!(!s.is_late(single, 0) && !s.is_late(single, 10));
        assert!(s.is_late(single, 11));
        // ...WithNonzeroGrace: grace 1: on time at 11, late at 12.
        let s = Windowing::new(WindowKind::Session { gap: 10 }, 1).unwrap();
        assert!(!s.is_late(single, 11));
        assert!(s.is_late(single, 12));
    }

    #[test]
    fn sliding_windows_close_when_they_stop_accepting_events() {
        let s = Windowing::new(WindowKind::Sliding { size: 5 }, 15).unwrap();
        // [5, 10] inclusive is stored as [5, 11); Kafka Streams folds an
        // event into it up to stream time 10 + 15.
        let win = w(5, 11);
        assert!(!s.is_late(win, 25));
        assert!(!s.is_closed(win, 25));
        assert!(s.is_late(win, 26) && s.is_closed(win, 26));
    }

    #[test]
    fn bad_definitions_are_refused() {
        assert!(Windowing::new(WindowKind::Tumbling { size: 0 }, 0).is_err());
        assert!(Windowing::new(WindowKind::Hopping { size: 5, advance: 10 }, 0).is_err());
        assert!(Windowing::new(WindowKind::Session { gap: -1 }, 0).is_err());
        assert!(Windowing::new(WindowKind::Tumbling { size: 5 }, -1).is_err());
    }

    #[test]
    fn sliding_windows_are_left_windows_plus_non_empty_right_windows() {
        // Kafka Streams' example: events at 8 and 12, size 10.
        let got: Vec<Window> = sliding_windows(&[22, 18], 10).into_iter().collect();
        assert_eq!(
            got,
            vec![w(8, 19), w(12, 23), w(19, 30)],
            "left of 18, left of 22, right of 18 (holds 22); the right of 22 is empty"
        );
        // Further apart than size: no right window joins them.
        let got: Vec<Window> = sliding_windows(&[20, 40], 10).into_iter().collect();
        assert_eq!(got, vec![w(10, 21), w(30, 41)]);
        assert!(sliding_windows(&[5, 5], 3).len() == 1, "equal times make one window");
        // Events before the size share [0, size] (Kafka Streams' processEarly);
        // their right windows are as usual.
        let got: Vec<Window> = sliding_windows(&[12, 8, 3], 10).into_iter().collect();
        assert_eq!(got, vec![w(0, 11), w(2, 13), w(4, 15), w(9, 20)]);
        assert_eq!(sliding_left(10, 10), w(0, 11), "the left window of `size` itself");
        assert!(sliding_windows(&[-5], 10).is_empty(), "no window before 0");
        assert!(!sliding_is_late(10, 5, 0, 15) && sliding_is_late(10, 5, 0, 16));
        assert!(!sliding_is_late(10, 5, 3, 18) && sliding_is_late(10, 5, 3, 19));
    }

    #[test]
    fn stream_time_never_goes_back() {
        let mut st = StreamTime::default();
        st.observe(10);
        st.observe(5);
        assert_eq!(st, StreamTime(10));
    }
}
