//! An operator run on a sample, with no broker: numbered items (events, or
//! a joiner's pairs, each with its 1-based line) through a processor, a
//! joiner or an aggregator, one result per item. `weir test` prints every
//! result and goes on; the dry run of `weir module push` counts them and
//! refuses at the first trap.

use std::collections::HashMap;

use crate::codec::BatchEncoder;
use crate::event::{Event, EventResult, Failure, Pair};
use crate::runtime::{EmitRequest, Group, GuestError, Operator};

/// What a run gave: outputs, and items that failed.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Outputs written.
    pub(super) outputs: usize,
    /// Items that failed (typed failures, traps, lines that do not parse).
    pub(super) failures: usize,
}

impl Tally {
    /// Counts one item's result.
    pub(super) fn count(&mut self, result: &EventResult) {
        match result {
            EventResult::Outputs(o) => self.outputs += o.len(),
            EventResult::Failed(_) => self.failures += 1,
        }
    }
}

/// Accumulators by key.
pub(super) type Accs = HashMap<Option<Vec<u8>>, Vec<u8>>;

/// A processor's result for each event, with the event and its line, in
/// calls of at most `batch` events (a trap is isolated to its event).
pub(super) fn process<'a>(
    op: &'a mut Operator,
    events: &'a [(usize, Event)],
    batch: usize,
) -> impl Iterator<Item = (usize, &'a Event, Result<EventResult, GuestError>)> + 'a {
    each(events, batch, move |events| op.process_events(events))
}

/// A joiner's result for each pair, with the pair and its line, in calls
/// of at most `batch` pairs (a trap is isolated to its pair).
pub(super) fn join<'a>(
    op: &'a mut Operator,
    pairs: &'a [(usize, Pair)],
    batch: usize,
) -> impl Iterator<Item = (usize, &'a Pair, Result<EventResult, GuestError>)> + 'a {
    each(pairs, batch, move |pairs| op.join_pairs(pairs))
}

/// Each item's result through `call`, in calls of at most `batch` items;
/// a call is made when the results before it have been taken.
fn each<'a, T: Clone>(
    items: &'a [(usize, T)],
    batch: usize,
    mut call: impl FnMut(&[T]) -> Vec<Result<EventResult, GuestError>> + 'a,
) -> impl Iterator<Item = (usize, &'a T, Result<EventResult, GuestError>)> + 'a {
    items.chunks(batch.max(1)).flat_map(move |chunk| {
        let owned: Vec<T> = chunk.iter().map(|(_, item)| item.clone()).collect();
        chunk
            .iter()
            .zip(call(&owned))
            .map(|((line, item), result)| (*line, item, result))
    })
}

/// A group of one key's events for `add`, folded into `acc`.
pub(super) fn group<'e>(
    key: &Option<Vec<u8>>,
    acc: Option<Vec<u8>>,
    events: impl IntoIterator<Item = &'e Event>,
) -> Group {
    let mut enc = BatchEncoder::new();
    for event in events {
        enc.push_event(event);
    }
    Group {
        key: key.clone(),
        window: None,
        acc,
        events: enc.as_bytes().to_vec(),
    }
}

/// Folds events into `accs` (by key), one event per `add` call so that a
/// typed failure or a trap names its line. `on` hears of each event's
/// typed failures, or of its trap (the key's accumulator stays as it
/// was), and stops the fold by returning an error.
pub(super) fn fold_each<'e, E>(
    op: &mut Operator,
    events: impl IntoIterator<Item = &'e (usize, Event)>,
    accs: &mut Accs,
    mut on: impl FnMut(usize, Result<Vec<(u32, Failure)>, GuestError>) -> Result<(), E>,
) -> Result<(), E> {
    for (line, event) in events {
        let acc = accs.get(&event.key).cloned();
        match op.add(vec![group(&event.key, acc, [event])]).map(|mut f| f.pop()) {
            Ok(Some(folded)) => {
                accs.insert(event.key.clone(), folded.acc);
                on(*line, Ok(folded.failures))?;
            }
            Ok(None) => {}
            Err(e) => on(*line, Err(e))?,
        }
    }
    Ok(())
}

/// Each request's result, one `emit` call per request so that a trap
/// names its key; a call is made when the results before it have been
/// taken.
pub(super) fn emit_each<'a>(
    op: &'a mut Operator,
    requests: impl IntoIterator<Item = EmitRequest> + 'a,
) -> impl Iterator<Item = Result<EventResult, GuestError>> + 'a {
    requests
        .into_iter()
        .map(move |r| op.emit(vec![r]).map(|mut one| one.remove(0)))
}
