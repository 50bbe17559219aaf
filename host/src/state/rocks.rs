//! The RocksDB engine: one database per store, in the store's directory.

use std::path::{Path, PathBuf};

use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use super::{Engine, Entry, Reader, StateError, Write, keys};

/// A store's committed state in RocksDB.
pub struct Rocks {
    db: DB,
    path: PathBuf,
}

impl Rocks {
    /// Opens (or creates) the database in `path`.
    pub fn open(path: &Path) -> Result<Rocks, StateError> {
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
        Ok(Rocks {
            db,
            path: path.to_owned(),
        })
    }

    fn io(&self, op: &'static str, e: rocksdb::Error) -> StateError {
        StateError::Io {
            path: self.path.clone(),
            op,
            reason: e.to_string(),
        }
    }
}

impl Reader for Rocks {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.db.get(key).map_err(|e| self.io("read", e))
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, StateError> {
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::From(prefix, Direction::Forward)) {
            let (k, v) = item.map_err(|e| self.io("scan", e))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    fn scan_page(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>, StateError> {
        // The first key after `after` is `after` with a zero byte appended.
        let from = after.map_or_else(|| prefix.to_vec(), |a| [a, &[0]].concat());
        let mut out = Vec::new();
        for item in self.db.iterator(IteratorMode::From(&from, Direction::Forward)) {
            let (k, v) = item.map_err(|e| self.io("scan", e))?;
            if !k.starts_with(prefix) || out.len() == limit {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }
}

impl Engine for Rocks {
    fn location(&self) -> &Path {
        &self.path
    }

    fn write(&self, writes: Vec<Write>, checkpoint: Option<i64>, logged: bool) -> Result<(), StateError> {
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
        let mut opts = WriteOptions::default();
        opts.disable_wal(!logged);
        self.db.write_opt(batch, &opts).map_err(|e| self.io("write", e))
    }

    fn wipe(&self) -> Result<(), StateError> {
        let mut batch = WriteBatch::default();
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, _) = item.map_err(|e| self.io("scan", e))?;
            batch.delete(k);
        }
        self.db.write(batch).map_err(|e| self.io("write", e))
    }

    fn persist(&self) -> Result<(), StateError> {
        self.db.flush().map_err(|e| self.io("flush", e))
    }

    fn estimated_keys(&self) -> u64 {
        self.db
            .property_int_value("rocksdb.estimate-num-keys")
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}
