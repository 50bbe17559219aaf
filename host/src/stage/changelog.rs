//! Writes to a changelogged store, in one place: a write is staged in the
//! store (applied when Kafka commits the transaction) and sent to the
//! store's changelog with the task's input position, so a restore knows
//! which writes the committed offsets already cover.

use crate::stage::StageError;
use crate::stage::aggregate::INPUT_NEXT;
use crate::stage::collector::{Collector, OutRecord};
use crate::state::Store;

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
    let changelog = store.changelog().clone();
    out.sink().send(&OutRecord {
        topic: &changelog.topic,
        partition: Some(changelog.partition),
        key: Some(&key),
        value: value.as_deref(),
        headers: &[(INPUT_NEXT, Some(position.as_bytes()))],
        timestamp: now_ms(),
        changelog: true,
    })?;
    store.stage(key, value);
    Ok(())
}

/// The wall clock in ms (changelog records' timestamps, as the aggregate's).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
