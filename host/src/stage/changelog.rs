//! Writes to a changelogged store, in one place: a write is staged in the
//! store (applied when Kafka commits the transaction) and sent to the
//! store's changelog with the task's input position, so a restore knows
//! which writes the committed offsets already cover.

use crate::stage::StageError;
use crate::stage::collector::{Collector, OutRecord, Sink, SinkError};
use crate::state::{Changelog, Store};

/// Header on changelog records: the task's input position after the batch
/// that wrote the record — the next offset (decimal) of a task that reads one
/// topic, else `topic=next` for each of its topics, comma-separated.
pub const INPUT_NEXT: &str = "weir.input.next";

/// Stages a write of `store` and sends it to the store's changelog, with
/// the task's input `position` (as the aggregate's writes; see
/// [`crate::stage::collector::Context::position`], taken once per batch).
pub fn write_logged(
    store: &mut Store,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    position: &str,
    out: &mut Collector<'_>,
) -> Result<(), StageError> {
    send(out.sink(), store.changelog(), &key, value.as_deref(), position)?;
    store.stage(key, value);
    Ok(())
}

/// Sends a store's entry, `key` and `value` (`None`: deleted), to its
/// `changelog`: the partition of the store's task, the task's input
/// `position` in the [`INPUT_NEXT`] header, the wall clock as timestamp.
pub fn send(
    sink: &mut dyn Sink,
    changelog: &Changelog,
    key: &[u8],
    value: Option<&[u8]>,
    position: &str,
) -> Result<(), SinkError> {
    sink.send(&OutRecord {
        topic: &changelog.topic,
        partition: Some(changelog.partition),
        key: Some(key),
        value,
        headers: &[(INPUT_NEXT, Some(position.as_bytes()))],
        // The wall clock, not event time: a windowed changelog is deleted by
        // time as well as compacted, and its retention must count from when
        // the state was written, even when reprocessing year-old events.
        timestamp: now_ms(),
        changelog: true,
    })
}

/// The wall clock in ms (changelog records' timestamps, as the aggregate's).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
