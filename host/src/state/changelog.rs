//! A store's changelog records, as the store writes them: keyed as the
//! store's entries, to the store's changelog topic at its task's
//! partition, with the task's input position in the [`INPUT_NEXT`] header
//! (so that a restore knows which writes the committed offsets already
//! cover) and the wall clock as timestamp. Stages send them inside the
//! open transaction; restores read them back.

use super::Store;
use crate::units::now_ms;

/// Header on changelog records: the task's input position after the batch
/// that wrote the record — the next offset (decimal) of a task that reads one
/// topic, else `topic=next` for each of its topics, comma-separated.
pub const INPUT_NEXT: &str = "weir.input.next";

/// One record of a store's changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangelogRecord<'a> {
    /// The changelog topic.
    pub topic: &'a str,
    /// Its partition: the store's task's.
    pub partition: i32,
    /// The entry's key in the store.
    pub key: &'a [u8],
    /// Its value; `None`: deleted.
    pub value: Option<&'a [u8]>,
    /// The task's input position (the [`INPUT_NEXT`] header).
    pub position: &'a str,
    /// When it was written (wall clock, ms).
    pub timestamp: i64,
}

impl Store {
    /// The changelog record of writing `value` (`None`: deleting) at `key`,
    /// at the task's input `position`.
    pub fn changelog_record<'a>(
        &'a self,
        key: &'a [u8],
        value: Option<&'a [u8]>,
        position: &'a str,
    ) -> ChangelogRecord<'a> {
        let changelog = self.changelog();
        ChangelogRecord {
            topic: &changelog.topic,
            partition: changelog.partition,
            key,
            value,
            position,
            // The wall clock, not event time: a windowed changelog is
            // deleted by time as well as compacted, and its retention must
            // count from when the state was written, even when reprocessing
            // year-old events.
            timestamp: now_ms(),
        }
    }
}
