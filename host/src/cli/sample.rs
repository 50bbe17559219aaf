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

/// What an operator gives one result for: an event (a processor's) or a
/// pair (a joiner's).
pub(super) trait Item: Clone {
    /// One result per item, a trap isolated to its item.
    fn run(op: &mut Operator, items: &[Self]) -> Vec<Result<EventResult, GuestError>>;
}

impl Item for Event {
    fn run(op: &mut Operator, events: &[Event]) -> Vec<Result<EventResult, GuestError>> {
        op.process_events(events)
    }
}

impl Item for Pair {
    fn run(op: &mut Operator, pairs: &[Pair]) -> Vec<Result<EventResult, GuestError>> {
        op.join_pairs(pairs)
    }
}

/// Each item's result, with the item and its line, in calls of at most
/// `batch` items; a call is made when the results before it have been
/// taken.
pub(super) fn results<'a, T: Item>(
    op: &'a mut Operator,
    items: &'a [(usize, T)],
    batch: usize,
) -> impl Iterator<Item = (usize, &'a T, Result<EventResult, GuestError>)> + 'a {
    items.chunks(batch.max(1)).flat_map(move |chunk| {
        let owned: Vec<T> = chunk.iter().map(|(_, item)| item.clone()).collect();
        chunk
            .iter()
            .zip(T::run(op, &owned))
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
