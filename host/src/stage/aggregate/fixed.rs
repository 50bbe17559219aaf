//! Fixed windows (tumbling and hopping) and unwindowed folds: an event goes
//! to its key's accumulator, or to each window it falls in that is still
//! open, and each (key, window) group of a batch is folded with one call.

use std::collections::{BTreeSet, HashMap};

use crate::codec::EventRef;
use crate::event::Window;
use crate::runtime::Group;
use crate::state::keys;
use crate::window::Windowing;

use super::fold::{AggregateError, Aggregator, Fold, Rejection, Step};
use super::groups::{encode, fold};

impl Aggregator {
    pub(super) fn fold_fixed(
        &mut self,
        op: &mut dyn Fold,
        windowing: Option<Windowing>,
        events: &[EventRef<'_>],
        step: &mut Step,
        latest: &mut HashMap<Vec<u8>, i64>,
    ) -> Result<(), AggregateError> {
        struct Build {
            store_key: Vec<u8>,
            window: Option<Window>,
            members: Vec<usize>,
        }
        let mut builds: Vec<Build> = Vec::new();
        let mut at: HashMap<Vec<u8>, usize> = HashMap::new();
        for (i, ev) in events.iter().enumerate() {
            self.stream_time.observe(ev.timestamp);
            let targets: Vec<(Vec<u8>, Option<Window>)> = match windowing {
                None => vec![(keys::plain(ev.key), None)],
                Some(w) => {
                    let all = w.windows_for(ev.timestamp);
                    let open: Vec<_> = all
                        .iter()
                        .filter(|win| !w.is_late(**win, self.stream_time.0))
                        .map(|win| (keys::windowed(ev.key, *win), Some(*win)))
                        .collect();
                    if open.is_empty() {
                        let window = all.last().copied().unwrap_or(Window {
                            start: ev.timestamp,
                            end: ev.timestamp.saturating_add(1),
                        });
                        step.rejected.push((
                            i,
                            Rejection::Late {
                                window,
                                stream_time: self.stream_time.0,
                            },
                        ));
                        continue;
                    }
                    open
                }
            };
            for (store_key, window) in targets {
                let b = *at.entry(store_key.clone()).or_insert_with(|| {
                    builds.push(Build {
                        store_key,
                        window,
                        members: Vec::new(),
                    });
                    builds.len() - 1
                });
                builds[b].members.push(i);
            }
        }
        let mut groups = Vec::with_capacity(builds.len());
        // Windows that exist have their timer.
        let mut existed = Vec::with_capacity(builds.len());
        for b in &builds {
            let first = &events[b.members[0]];
            let acc = self.store.get(&b.store_key)?;
            existed.push(acc.is_some());
            groups.push(Group {
                key: first.key.map(<[u8]>::to_vec),
                window: b.window,
                acc,
                events: encode(events, &b.members),
            });
        }
        let sizes: Vec<usize> = builds.iter().map(|b| b.members.len()).collect();
        let outcomes = fold(op, groups, &sizes, &|g, j| encode(events, &[builds[g].members[j]]));
        let mut failed: BTreeSet<usize> = BTreeSet::new();
        for ((b, outcome), existed) in builds.into_iter().zip(outcomes).zip(existed) {
            let mut refused: BTreeSet<usize> = BTreeSet::new();
            for (j, why) in outcome.failures {
                refused.insert(j);
                let i = b.members[j];
                if failed.insert(i) {
                    step.rejected.push((i, why));
                }
            }
            let Some(acc) = outcome.acc.filter(|_| outcome.changed) else {
                continue;
            };
            // The newest event that went in (a refused one is not in it).
            let newest = b
                .members
                .iter()
                .enumerate()
                .filter(|(j, _)| !refused.contains(j))
                .map(|(_, &i)| events[i].timestamp)
                .max();
            let ts = self.restamp(&b.store_key, newest)?;
            if let (Some(w), Some(window), false) = (windowing, b.window, existed) {
                self.timers
                    .insert(&mut self.store, w.close_time(window), &b.store_key)?;
            }
            latest.insert(b.store_key.clone(), ts);
            self.put(b.store_key, Some(acc));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::Emit;
    use crate::stage::aggregate::harness::{k1, run, run_batched, spec};
    use crate::window::WindowKind;

    #[test]
    fn tumbling_final_results_as_kafka_streams_suppression() {
        // SuppressScenarioTest.shouldSupportFinalResultsForTimeWindows:
        // size 2, grace 1; the last record is out of the grace period.
        let s = spec(Some((WindowKind::Tumbling { size: 2 }, 1)), Emit::Final);
        let ran = run_batched(&s, &k1(&[0, 1, 2, 1, 0, 5, 0]));
        assert_eq!(
            ran.out,
            [("k1".into(), Some((0, 2)), 4, 1), ("k1".into(), Some((2, 4)), 1, 2)],
            "window [0,2) holds four records and carries the newest one's time"
        );
        assert_eq!(ran.late, [("k1".to_owned(), 0)]);
    }

    #[test]
    fn tumbling_final_results_with_a_large_jump() {
        // shouldSupportFinalResultsForTimeWindowsWithLargeJump: size 2, grace 2.
        let s = spec(Some((WindowKind::Tumbling { size: 2 }, 2)), Emit::Final);
        let ran = run_batched(&s, &k1(&[0, 1, 2, 0, 3, 0, 4, 0, 30]));
        assert_eq!(
            ran.out,
            [
                ("k1".into(), Some((0, 2)), 4, 1),
                ("k1".into(), Some((2, 4)), 2, 3),
                ("k1".into(), Some((4, 6)), 1, 4)
            ]
        );
        assert_eq!(ran.late, [("k1".to_owned(), 0)]);
    }

    #[test]
    fn updates_carry_the_newest_time_in_the_window_across_batches() {
        // The raw (update) stream of the same scenario: [0/2] is 4 at time 1
        // even though its last record has time 0.
        let s = spec(Some((WindowKind::Tumbling { size: 2 }, 1)), Emit::Update);
        let ran = run(&s, &k1(&[0, 1, 2, 1, 0, 5, 0]), 1);
        assert_eq!(
            ran.out,
            [
                ("k1".into(), Some((0, 2)), 1, 0),
                ("k1".into(), Some((0, 2)), 2, 1),
                ("k1".into(), Some((2, 4)), 1, 2),
                ("k1".into(), Some((0, 2)), 3, 1),
                ("k1".into(), Some((0, 2)), 4, 1),
                ("k1".into(), Some((4, 6)), 1, 5)
            ]
        );
        run_batched(&s, &k1(&[0, 1, 2, 1, 0, 5, 0]));
        // Unwindowed: the newest time folded in, too.
        let plain = spec(None, Emit::Update);
        let ran = run(&plain, &k1(&[5, 3]), 1);
        assert_eq!(ran.out, [("k1".into(), None, 1, 5), ("k1".into(), None, 2, 5)]);
    }

    #[test]
    fn hopping_lateness_is_per_window() {
        // Size 10, advance 5, grace 0: a record at 7 belongs to [0,10) and
        // [5,15). At stream time 12, [0,10) has closed and [5,15) has not:
        // the record counts in [5,15) only.
        let s = spec(Some((WindowKind::Hopping { size: 10, advance: 5 }, 0)), Emit::Final);
        let ran = run_batched(&s, &[("a", 1), ("a", 12), ("a", 7), ("a", 40)]);
        assert_eq!(
            ran.out,
            [
                ("a".into(), Some((0, 10)), 1, 1),
                ("a".into(), Some((5, 15)), 2, 12),
                ("a".into(), Some((10, 20)), 1, 12)
            ]
        );
        assert!(ran.late.is_empty(), "on time for one of its windows: {:?}", ran.late);
    }

    #[test]
    fn stream_time_is_shared_across_keys() {
        // Another key's record moves stream time: k1's window closes.
        let s = spec(Some((WindowKind::Tumbling { size: 10 }, 0)), Emit::Final);
        let ran = run_batched(&s, &[("k1", 1), ("k2", 10), ("k1", 2)]);
        assert_eq!(ran.out, [("k1".into(), Some((0, 10)), 1, 1)]);
        assert_eq!(ran.late, [("k1".to_owned(), 2)]);
    }
}
