//! A batch's groups for the guest: events encoded as the `event-batch` of
//! their (key, window) group, and groups folded with one `add` call,
//! narrowed down to the events that trap when it traps.

use crate::codec::{BatchEncoder, EventRef};
use crate::event::Failure;
use crate::runtime::{Folded, Group, GuestError, GuestFault};

use super::fold::{Fold, Rejection};

/// Encodes some events of a batch as an `event-batch`.
pub(super) fn encode(events: &[EventRef<'_>], members: &[usize]) -> Vec<u8> {
    let mut enc = BatchEncoder::new();
    for &i in members {
        let e = &events[i];
        enc.push(
            e.timestamp,
            e.topic,
            e.partition,
            e.offset,
            e.key,
            e.value,
            e.headers.iter(),
        );
    }
    enc.as_bytes().to_vec()
}

/// Joins single-event `event-batch`es into one batch.
pub(super) fn join<'a>(parts: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    let mut n: u32 = 0;
    for p in parts {
        out.extend_from_slice(p.get(4..).unwrap_or_default());
        n += 1;
    }
    out[..4].copy_from_slice(&n.to_le_bytes());
    out
}

/// What folding one group did.
pub(super) struct Outcome {
    /// The accumulator after it (`None`: none existed and nothing folded).
    pub(super) acc: Option<Vec<u8>>,
    /// At least one event went in.
    pub(super) changed: bool,
    /// Events (index within the group) that did not.
    pub(super) failures: Vec<(usize, Rejection)>,
}

/// Folds groups with one `add` call. When the call traps, each group is
/// retried alone, and a group that still traps is folded event by event
/// (`single(group, j)` encodes its `j`-th event alone), so that only the
/// events that trap are rejected (operators are deterministic).
pub(super) fn fold(
    op: &mut dyn Fold,
    groups: Vec<Group>,
    sizes: &[usize],
    single: &dyn Fn(usize, usize) -> Vec<u8>,
) -> Vec<Outcome> {
    match op.add(groups.clone()) {
        Ok(folded) => return folded.into_iter().zip(sizes).map(|(f, n)| outcome(f, *n)).collect(),
        Err(e) if matches!(e.fault, GuestFault::Instantiate(_)) => {
            return sizes.iter().map(|&n| all_trapped(n, &e)).collect();
        }
        Err(_) => {}
    }
    groups
        .into_iter()
        .zip(sizes)
        .enumerate()
        .map(|(gi, (g, &n))| match op.add(vec![g.clone()]) {
            Ok(mut f) => f.pop().map_or_else(|| all_trapped_text(n), |f| outcome(f, n)),
            Err(e) if matches!(e.fault, GuestFault::Instantiate(_)) => all_trapped(n, &e),
            Err(_) => one_by_one(op, g, n, &|j| single(gi, j)),
        })
        .collect()
}

fn one_by_one(op: &mut dyn Fold, g: Group, n: usize, single: &dyn Fn(usize) -> Vec<u8>) -> Outcome {
    let mut acc = g.acc.clone();
    let mut changed = false;
    let mut failures = Vec::new();
    for j in 0..n {
        let one = Group {
            key: g.key.clone(),
            window: g.window,
            acc: acc.clone(),
            events: single(j),
        };
        match op.add(vec![one]) {
            Ok(mut f) => match f.pop() {
                Some(f) if f.failures.is_empty() => {
                    acc = Some(f.acc);
                    changed = true;
                }
                Some(mut f) => failures.push((j, Rejection::Failed(f.failures.remove(0).1))),
                None => failures.push((j, Rejection::Failed(Failure::new("bad-result", "add returned nothing")))),
            },
            Err(e) => failures.push((j, Rejection::Trapped(e))),
        }
    }
    Outcome { acc, changed, failures }
}

fn outcome(f: Folded, n: usize) -> Outcome {
    let failures: Vec<(usize, Rejection)> = f
        .failures
        .into_iter()
        .map(|(j, why)| (j as usize, Rejection::Failed(why)))
        .collect();
    Outcome {
        changed: failures.len() < n,
        acc: Some(f.acc),
        failures,
    }
}

fn all_trapped(n: usize, e: &GuestError) -> Outcome {
    Outcome {
        acc: None,
        changed: false,
        failures: (0..n).map(|j| (j, Rejection::Trapped(e.clone()))).collect(),
    }
}

fn all_trapped_text(n: usize) -> Outcome {
    Outcome {
        acc: None,
        changed: false,
        failures: (0..n)
            .map(|j| (j, Rejection::Failed(Failure::new("bad-result", "add returned nothing"))))
            .collect(),
    }
}
