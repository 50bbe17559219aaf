//! The RocksDB engine: one database per store, in the store's directory.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use rocksdb::{BlockBasedOptions, Cache, DB, Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions};

use super::{Engine, Entry, Reader, StateError, Write, keys};

/// The block cache that every store of the process shares: blocks read,
/// and the tables' index and filter blocks (charged to it, not held per
/// table). So RocksDB's memory for reads is one figure per instance
/// however many stores its tasks open, as Kafka Streams' bounded-memory
/// configuration makes it; what remains per store is its memtables
/// ([`WRITE_BUFFER`] × 2).
pub const BLOCK_CACHE: usize = 64 << 20;

/// One memtable of a store.
pub const WRITE_BUFFER: usize = 16 << 20;

static CACHE: OnceLock<Cache> = OnceLock::new();

/// The shared block cache, made at the first store's opening.
fn block_cache(path: &Path) -> Result<Cache, StateError> {
    if let Some(c) = CACHE.get() {
        return Ok(c.clone());
    }
    let made = Cache::new_lru_cache(BLOCK_CACHE).map_err(|e| StateError::Open {
        path: path.to_owned(),
        reason: format!("cannot make the {BLOCK_CACHE}-byte block cache: {e}"),
    })?;
    Ok(CACHE.get_or_init(|| made).clone())
}

/// A store's committed state in RocksDB.
pub struct Rocks {
    /// Closed on drop unless a write failed (see `Drop`).
    db: ManuallyDrop<DB>,
    path: PathBuf,
    /// A write failed: the store is abandoned, not closed.
    failed: AtomicBool,
}

impl Drop for Rocks {
    fn drop(&mut self) {
        if self.failed.load(Ordering::Relaxed) {
            // Closing flushes the write-ahead log's writer again, and
            // RocksDB asserts that a writer which saw a write error (a full
            // disk) is not flushed again: Debian's build keeps assertions,
            // so the close would abort the process before it reports the
            // error. The store is left as it is: the process is ending,
            // which closes its files, and the next open recovers from the
            // write-ahead log (its torn tail dropped) and the changelog.
            tracing::warn!(path = %self.path.display(), "a write failed: the store is left unclosed");
            return;
        }
        // SAFETY: the database is dropped once, here, and never used after.
        unsafe { ManuallyDrop::drop(&mut self.db) }
    }
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
        opts.set_write_buffer_size(WRITE_BUFFER);
        opts.set_max_write_buffer_number(2);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&block_cache(path)?);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // Most reads look for a key that is not there yet (a new key's
        // accumulator, a window's timer): a filter answers without a read.
        table.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&table);
        opts.set_max_open_files(64);
        // RocksDB's own info log (`LOG` in the store's directory) is for
        // RocksDB's developers; Weir reports a store's errors itself. Only
        // fatal lines, in one small file: when the disk is full, RocksDB
        // logs the write error to that file, and Debian's build (which
        // keeps assertions) aborts the process on the log's own earlier
        // write error before Weir can report the store's.
        opts.set_log_level(rocksdb::LogLevel::Fatal);
        opts.set_keep_log_file_num(1);
        opts.set_max_log_file_size(1 << 20);
        let db = DB::open(&opts, path).map_err(|e| StateError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Rocks {
            db: ManuallyDrop::new(db),
            path: path.to_owned(),
            failed: AtomicBool::new(false),
        })
    }

    fn io(&self, op: &'static str, e: rocksdb::Error) -> StateError {
        if op != "read" && op != "scan" {
            self.failed.store(true, Ordering::Relaxed);
        }
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

    fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError> {
        // The first key after `after` is `after` with a zero byte appended.
        let from = after.map_or_else(|| prefix.to_vec(), |a| [a, &[0]].concat());
        // The iterator stops at the bound instead of stepping over deletes
        // (tombstones) past it to the next live key.
        let mut read = ReadOptions::default();
        if let Some(e) = end {
            read.set_iterate_upper_bound(e);
        }
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_opt(IteratorMode::From(&from, Direction::Forward), read)
        {
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
