//! Writes to a changelogged store, in one place: a write is staged in the
//! store (applied when Kafka commits the transaction), and the record the
//! store makes of it ([`Store::changelog_record`]) goes to the store's
//! changelog inside the open transaction.

use crate::stage::StageError;
use crate::stage::collector::{Collector, OutRecord, Sink, SinkError};
use crate::state::Store;
pub use crate::state::changelog::INPUT_NEXT;

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
    send(out.sink(), store, &key, value.as_deref(), position)?;
    store.stage(key, value);
    Ok(())
}

/// Sends the changelog record of `store`'s entry `key`, `value` (`None`:
/// deleted), written at the task's input `position`.
pub fn send(
    sink: &mut dyn Sink,
    store: &Store,
    key: &[u8],
    value: Option<&[u8]>,
    position: &str,
) -> Result<(), SinkError> {
    let r = store.changelog_record(key, value, position);
    sink.send(&OutRecord {
        topic: r.topic,
        partition: Some(r.partition),
        key: Some(r.key),
        value: r.value,
        headers: &[(INPUT_NEXT, Some(r.position.as_bytes()))],
        timestamp: r.timestamp,
        changelog: true,
    })
}
