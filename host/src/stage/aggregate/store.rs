//! The stage's store: accumulators under their keys, with their stamps
//! (results' timestamps), every change staged and, once per step, sent to
//! the changelog with the meta entries (stream time, format).

use std::time::{Duration, Instant};

use crate::event::Window;
use crate::stage::changelog;
use crate::stage::collector::Sink;
use crate::state::keys::{self, Entry};
use crate::state::{StateError, Store};

use super::fold::{AggregateError, Aggregator};

/// How often a windowed stage writes its meta entries (stream time, format)
/// to the changelog again while it runs, though they did not change: its
/// changelog is deleted by time too (`retention + 1 day` after a record's
/// writing), and a full restore needs them.
const META_REFRESH: Duration = Duration::from_secs(60 * 60);

impl Aggregator {
    /// The timestamp of the accumulator at `store_key`, if stamped.
    pub(super) fn stamp(&self, store_key: &[u8]) -> Result<Option<i64>, StateError> {
        let Some(bytes) = self.store.get(&keys::stamp(store_key))? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| self.store.corrupt(store_key, "a timestamp that is not 8 bytes"))?;
        Ok(Some(i64::from_le_bytes(bytes)))
    }

    /// Moves the accumulator's timestamp to the newest event folded in
    /// (`newest`, of this batch) if that is later, and returns it: results
    /// carry the largest timestamp of the events in them, as in Kafka Streams.
    pub(super) fn restamp(&mut self, store_key: &[u8], newest: Option<i64>) -> Result<i64, StateError> {
        let old = self.stamp(store_key)?;
        let ts = match (old, newest) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => a
                .or(b)
                .ok_or_else(|| self.store.corrupt(store_key, "an accumulator folded from no events"))?,
        };
        if old != Some(ts) {
            self.put(keys::stamp(store_key), Some(ts.to_le_bytes().to_vec()));
        }
        Ok(ts)
    }

    pub(super) fn put(&mut self, k: Vec<u8>, v: Option<Vec<u8>>) {
        self.touched.insert(k.clone());
        self.store.stage(k, v);
    }

    /// Sends every changed entry (and stream time, if it moved) to the changelog.
    pub(super) fn flush(&mut self, position: &str, sink: &mut dyn Sink) -> Result<(), AggregateError> {
        if self.spec.window.is_some() && self.meta_sent.elapsed() >= META_REFRESH {
            self.meta_sent = Instant::now();
            if let Some(format) = self.format.clone() {
                self.put(keys::meta(keys::FORMAT), Some(format.into_bytes()));
            }
            if let Some(st) = self.stream_time() {
                self.put(keys::meta(keys::STREAM_TIME), Some(st.to_le_bytes().to_vec()));
            }
        }
        if self.stream_time != self.saved_stream_time {
            self.saved_stream_time = self.stream_time;
            self.put(
                keys::meta(keys::STREAM_TIME),
                Some(self.stream_time.0.to_le_bytes().to_vec()),
            );
        }
        for k in std::mem::take(&mut self.touched) {
            let value = self.store.get(&k)?;
            changelog::send(sink, &self.store, &k, value.as_deref(), position)?;
        }
        Ok(())
    }
}

/// The record key and window of an accumulator's key in `store`; any other
/// key is corrupt state there.
pub(super) fn split(store: &Store, k: &[u8]) -> Result<(Option<Vec<u8>>, Option<Window>), StateError> {
    match store.entry(k)? {
        Entry::Plain(key) => Ok((key, None)),
        Entry::Windowed(key, w) => Ok((key, Some(w))),
        Entry::Meta(_) | Entry::Event(..) | Entry::Stamp(_) | Entry::Joined(..) | Entry::Timer(..) => {
            Err(store.corrupt(k, "a key that is not an accumulator's"))
        }
    }
}
