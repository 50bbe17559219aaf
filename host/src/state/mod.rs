//! State stores: one RocksDB database per stateful stage per task, written
//! only with what Kafka has committed.
//!
//! A [`Store`] has two layers. Writes of the open transaction are *staged*
//! in memory (reads see them); when the transaction commits they are applied
//! to RocksDB in one write batch together with a checkpoint — the changelog
//! offset that local state is complete up to. An abort throws the staged
//! writes away. So local state is never ahead of Kafka: after a crash a task
//! replays at most the changelog tail past its checkpoint, and only a task
//! with no local state at all restores everything.
//!
//! Store keys ([`keys`]) are the changelog's record keys too, so restoring
//! is applying records in order.

pub mod keys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// RocksDB could not open the store (another process holds it, no
    /// permission, corrupt files…).
    #[error("cannot open the state store at {}: {reason}", path.display())]
    Open {
        /// The store's directory.
        path: PathBuf,
        /// RocksDB's message.
        reason: String,
    },
    /// A read or write failed.
    #[error("state store at {}: {op} failed: {reason}", path.display())]
    Io {
        /// The store's directory.
        path: PathBuf,
        /// What was attempted.
        op: &'static str,
        /// RocksDB's message.
        reason: String,
    },
}

/// Where a store's changes go in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changelog {
    /// The compacted changelog topic (`<application>-<stage>-changelog`).
    pub topic: String,
    /// The task's partition of it.
    pub partition: i32,
}

/// A write: a value, or `None` to delete.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// An entry: key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One stage's state for one task.
pub struct Store {
    db: Arc<DB>,
    path: PathBuf,
    changelog: Changelog,
    staged: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Store {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path, changelog: Changelog) -> Result<Store, StateError> {
        std::fs::create_dir_all(path).map_err(|e| StateError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        // Small, many stores: keep each one's footprint modest.
        opts.set_write_buffer_size(16 << 20);
        opts.set_max_open_files(64);
        let db = DB::open(&opts, path).map_err(|e| StateError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Store {
            db: Arc::new(db),
            path: path.to_owned(),
            changelog,
            staged: BTreeMap::new(),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where changes go.
    pub fn changelog(&self) -> &Changelog {
        &self.changelog
    }

    /// The committed state, for readers outside the task (interactive
    /// queries): RocksDB serves concurrent reads.
    pub fn committed(&self) -> Arc<DB> {
        self.db.clone()
    }

    /// The changelog offset local state is complete up to; `None` for a store
    /// that has never been written (restore everything).
    pub fn checkpoint(&self) -> Result<Option<i64>, StateError> {
        let v = self
            .db
            .get(keys::meta(keys::CHECKPOINT))
            .map_err(|e| self.io("read", e))?;
        Ok(v.and_then(|b| b.try_into().ok()).map(i64::from_le_bytes))
    }

    /// A value: staged if written in the open transaction, else committed.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(v) = self.staged.get(key) {
            return Ok(v.clone());
        }
        self.db.get(key).map_err(|e| self.io("read", e))
    }

    /// Every entry whose key starts with `prefix`, staged writes applied, in
    /// key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, StateError> {
        let mut out: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for item in self.db.iterator(IteratorMode::From(prefix, Direction::Forward)) {
            let (k, v) = item.map_err(|e| self.io("scan", e))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.insert(k.into_vec(), v.into_vec());
        }
        for (k, v) in self.staged.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            match v {
                Some(v) => out.insert(k.clone(), v.clone()),
                None => out.remove(k),
            };
        }
        Ok(out.into_iter().collect())
    }

    /// Stages a write of the open transaction.
    pub fn stage(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.staged.insert(key, value);
    }

    /// The transaction committed: apply its writes, and move the checkpoint
    /// to `checkpoint` (the changelog's end after it) when known.
    pub fn commit(&mut self, checkpoint: Option<i64>) -> Result<(), StateError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let staged = std::mem::take(&mut self.staged);
        self.apply(staged, checkpoint)
    }

    /// The transaction aborted: forget its writes.
    pub fn discard(&mut self) {
        self.staged.clear();
    }

    /// Writes committed changes straight to RocksDB with a new checkpoint,
    /// atomically (restoring from the changelog).
    pub fn apply(&self, writes: impl IntoIterator<Item = Write>, checkpoint: Option<i64>) -> Result<(), StateError> {
        self.db
            .write(batch(writes, checkpoint))
            .map_err(|e| self.io("write", e))
    }

    /// Like [`Store::apply`] without RocksDB's write-ahead log, for bulk
    /// restores: faster, and durable only after [`Store::persist`] (a crash
    /// before that loses these writes *and* their checkpoint together, so
    /// the restore simply starts again from the last persisted one).
    pub fn apply_unlogged(
        &self,
        writes: impl IntoIterator<Item = Write>,
        checkpoint: Option<i64>,
    ) -> Result<(), StateError> {
        let batch = batch(writes, checkpoint);
        let mut opts = WriteOptions::default();
        opts.disable_wal(true);
        self.db.write_opt(batch, &opts).map_err(|e| self.io("write", e))
    }

    /// Deletes every entry and the checkpoint, so that the store restores
    /// whole: its changelog no longer holds everything since the
    /// checkpoint (a time-deleted windowed changelog moved its start past it).
    /// Called before the task stages anything (restores run first).
    pub fn wipe(&self) -> Result<(), StateError> {
        let mut batch = WriteBatch::default();
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, _) = item.map_err(|e| self.io("scan", e))?;
            batch.delete(k);
        }
        self.db.write(batch).map_err(|e| self.io("write", e))
    }

    /// Flushes memory tables to disk, making unlogged writes durable.
    pub fn persist(&self) -> Result<(), StateError> {
        self.db.flush().map_err(|e| self.io("flush", e))
    }

    /// Estimated number of entries (RocksDB's estimate).
    pub fn estimated_keys(&self) -> u64 {
        self.db
            .property_int_value("rocksdb.estimate-num-keys")
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    fn io(&self, op: &'static str, e: rocksdb::Error) -> StateError {
        StateError::Io {
            path: self.path.clone(),
            op,
            reason: e.to_string(),
        }
    }
}

/// One atomic RocksDB write: the writes and the checkpoint.
fn batch(writes: impl IntoIterator<Item = Write>, checkpoint: Option<i64>) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for (k, v) in writes {
        match v {
            Some(v) => batch.put(k, v),
            None => batch.delete(k),
        }
    }
    if let Some(c) = checkpoint {
        batch.put(keys::meta(keys::CHECKPOINT), c.to_le_bytes());
    }
    batch
}

/// Every entry of a committed store whose key starts with `prefix`.
pub fn scan_committed(db: &DB, prefix: &[u8]) -> Vec<Entry> {
    db.iterator(IteratorMode::From(prefix, Direction::Forward))
        .map_while(Result::ok)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.into_vec(), v.into_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Store {
        Store::open(
            dir,
            Changelog {
                topic: "app-s-changelog".into(),
                partition: 0,
            },
        )
        .unwrap()
    }

    #[test]
    fn staged_writes_are_visible_but_only_committed_ones_persist() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        assert_eq!(s.checkpoint().unwrap(), None);
        s.stage(b"a".to_vec(), Some(b"1".to_vec()));
        s.stage(b"b".to_vec(), Some(b"2".to_vec()));
        assert_eq!(s.get(b"a").unwrap(), Some(b"1".to_vec()));
        s.commit(Some(7)).unwrap();
        s.stage(b"a".to_vec(), None);
        s.stage(b"c".to_vec(), Some(b"3".to_vec()));
        assert_eq!(s.get(b"a").unwrap(), None);
        assert_eq!(s.scan(b"").unwrap().len(), 3, "b, c and the checkpoint");
        s.discard();
        drop(s);
        let s = store(dir.path());
        assert_eq!(s.checkpoint().unwrap(), Some(7));
        assert_eq!(s.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get(b"c").unwrap(), None);
    }

    #[test]
    fn scan_merges_staged_deletes_and_stays_in_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.apply(
            [
                (b"k1".to_vec(), Some(b"x".to_vec())),
                (b"k2".to_vec(), Some(b"y".to_vec())),
                (b"l1".to_vec(), Some(b"z".to_vec())),
            ],
            Some(3),
        )
        .unwrap();
        s.stage(b"k1".to_vec(), None);
        s.stage(b"k3".to_vec(), Some(b"w".to_vec()));
        let keys: Vec<Vec<u8>> = s.scan(b"k").unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"k2".to_vec(), b"k3".to_vec()]);
        assert_eq!(scan_committed(&s.committed(), b"k").len(), 2);
    }
}
