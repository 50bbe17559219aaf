//! State stores, written only with what Kafka has committed.
//!
//! A [`Store`] is one stage's state for one task, in two layers. Writes of
//! the open transaction are *staged* in memory (reads see them); when the
//! transaction commits they are applied to the store's [`Engine`] in one
//! atomic write together with a checkpoint — the changelog offset that local
//! state is complete up to. An abort throws the staged writes away. So local
//! state is never ahead of Kafka: after a crash a task replays at most the
//! changelog tail past its checkpoint, and only a task with no local state
//! at all restores everything.
//!
//! Engines: [`rocks`] (RocksDB on disk, what `weir run` uses) and
//! [`memory`] (for tests and the broker-free driver). No RocksDB type leaves
//! this module; readers outside a task (interactive queries) get a
//! [`Reader`] of the committed state.
//!
//! Store keys ([`keys`]) are the changelog's record keys too, so restoring
//! is applying records in order.

pub mod changelog;
pub mod global;
pub mod keys;
pub mod memory;
pub mod rocks;
pub mod row;
pub mod timers;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub use timers::Timers;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store could not be opened (another process holds it, no
    /// permission, corrupt files…).
    #[error("cannot open the state store at {}: {reason}", path.display())]
    Open {
        /// The store's directory.
        path: PathBuf,
        /// The engine's message.
        reason: String,
    },
    /// A read or write failed.
    #[error("state store at {}: {op} failed: {reason}", path.display())]
    Io {
        /// The store's directory.
        path: PathBuf,
        /// What was attempted.
        op: &'static str,
        /// The engine's message.
        reason: String,
    },
    /// An entry holds what no store writes (a bug, or a foreign store).
    /// Corrupt state is handled one way everywhere: the task stops.
    #[error("state store {store} is corrupt: entry {key:02x?} holds {what}; the task stops")]
    Corrupt {
        /// The store: its changelog topic and partition.
        store: String,
        /// The entry's key.
        key: Vec<u8>,
        /// What is wrong with it.
        what: &'static str,
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

/// A store as a stage declares it, before the first record: the task
/// opens (and the instance restores) it before the stage runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// Its name (the stage's): the directory under the task's state root.
    pub name: String,
    /// Who has one.
    pub scope: Scope,
    /// What it is restored from.
    pub durability: Durability,
}

/// Who has a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Each task, for its partition number (aggregates, tables).
    Task,
    /// The instance, over every partition of its topic (global tables).
    Global,
}

/// What a store is restored from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    /// Its own changelog topic, which the stage writes every change to.
    Changelog(String),
    /// A source topic that already is its changelog (a table read from a
    /// compacted topic): the stage writes no changelog of its own.
    SourceTopic(String),
}

impl StoreSpec {
    /// The topic that restores the store, and the partition of it that a
    /// task of partition `partition` reads.
    pub fn changelog(&self, partition: i32) -> Changelog {
        let topic = match &self.durability {
            Durability::Changelog(t) | Durability::SourceTopic(t) => t.clone(),
        };
        Changelog { topic, partition }
    }
}

/// A write: a value, or `None` to delete.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// An entry: key and value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Reads of committed state; safe to share with other threads (interactive
/// queries read while the task writes).
pub trait Reader: Send + Sync {
    /// A committed value.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    /// Every committed entry whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, StateError>;
    /// At most `limit` committed entries whose key starts with `prefix`,
    /// comes after `after` and before `end` (either bound may be absent),
    /// in key order: a scan that holds one page in memory, not the whole
    /// prefix. With `end`, deleted entries past it are never stepped over.
    fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError>;
}

/// Where a store's committed state lives.
pub trait Engine: Reader {
    /// Where it is (a directory, or `memory`), for messages.
    fn location(&self) -> &Path;
    /// Applies `writes` and the checkpoint (when given) atomically.
    /// `logged = false` may skip the engine's own log (bulk restores): such
    /// writes are durable only after [`Engine::persist`], and a crash before
    /// that loses them *and* their checkpoint together.
    fn write(&self, writes: Vec<Write>, checkpoint: Option<i64>, logged: bool) -> Result<(), StateError>;
    /// Deletes every entry and the checkpoint.
    fn wipe(&self) -> Result<(), StateError>;
    /// Makes unlogged writes durable.
    fn persist(&self) -> Result<(), StateError>;
    /// Estimated number of entries.
    fn estimated_keys(&self) -> u64;
}

/// Writes of the open transaction, shared with the store's [`View`]s.
type Staged = Arc<Mutex<BTreeMap<Vec<u8>, Option<Vec<u8>>>>>;

/// One stage's state for one task.
pub struct Store {
    engine: Arc<dyn Engine>,
    changelog: Changelog,
    /// Restored from a source topic (a table read from a topic), not a
    /// changelog of its own: its records are the topic's, keyed as written.
    source_topic: bool,
    staged: Staged,
    /// Committed state was written past the task's transactions (a restore
    /// or a wipe) since [`Store::written_outside`] last said so: state kept
    /// only locally and derived from the entries (timers) must be rebuilt.
    outside: AtomicBool,
}

/// Reads of one store as its task sees it — staged writes of the open
/// transaction first, then committed state — for another stage of the same
/// task (a join reads its table's store this way).
#[derive(Clone)]
pub struct View {
    engine: Arc<dyn Engine>,
    staged: Staged,
    /// The store's name, for errors.
    name: Arc<str>,
}

impl View {
    /// Corrupt state in this view's store: `key` holds `what`.
    pub fn corrupt(&self, key: &[u8], what: &'static str) -> StateError {
        StateError::Corrupt {
            store: self.name.to_string(),
            key: key.to_vec(),
            what,
        }
    }

    /// A value: staged if written in the open transaction, else committed.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(v) = lock(&self.staged).get(key) {
            return Ok(v.clone());
        }
        self.engine.get(key)
    }
}

/// The staged writes; a panic elsewhere cannot leave them half-written (each
/// operation is one map call), so a poisoned lock is still consistent.
fn lock(staged: &Staged) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Option<Vec<u8>>>> {
    staged.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store {
    /// Opens (or creates) a RocksDB store in `path`.
    pub fn open(path: &Path, changelog: Changelog) -> Result<Store, StateError> {
        Ok(Store::on(Arc::new(rocks::Rocks::open(path)?), changelog))
    }

    /// An empty store in memory.
    pub fn in_memory(changelog: Changelog) -> Store {
        Store::on(Arc::new(memory::Memory::default()), changelog)
    }

    /// A store over `engine`.
    pub fn on(engine: Arc<dyn Engine>, changelog: Changelog) -> Store {
        Store {
            engine,
            changelog,
            source_topic: false,
            staged: Staged::default(),
            outside: AtomicBool::new(false),
        }
    }

    /// The same store, restored from its source topic (see
    /// [`Durability::SourceTopic`]) instead of a changelog.
    pub fn from_source_topic(mut self) -> Store {
        self.source_topic = true;
        self
    }

    /// Whether it is restored from a source topic.
    pub fn is_source_topic(&self) -> bool {
        self.source_topic
    }

    /// Reads of this store's committed state only (a global table, which
    /// stages nothing).
    pub fn read_view(&self) -> View {
        View {
            engine: self.engine.clone(),
            staged: Staged::default(),
            name: self.name().into(),
        }
    }

    /// Reads of this store for another stage of the task (see [`View`]).
    pub fn view(&self) -> View {
        View {
            engine: self.engine.clone(),
            staged: self.staged.clone(),
            name: self.name().into(),
        }
    }

    /// The store's name in errors: its changelog topic and partition (a
    /// global table's: its topic).
    pub fn name(&self) -> String {
        let Changelog { topic, partition } = &self.changelog;
        if *partition < 0 {
            topic.clone()
        } else {
            format!("{topic}[{partition}]")
        }
    }

    /// Corrupt state in this store: `key` holds `what`.
    pub fn corrupt(&self, key: &[u8], what: &'static str) -> StateError {
        StateError::Corrupt {
            store: self.name(),
            key: key.to_vec(),
            what,
        }
    }

    /// What a key read from this store names; a key that does not decode
    /// is corrupt state.
    pub fn entry(&self, key: &[u8]) -> Result<keys::Entry, StateError> {
        keys::decode(key).ok_or_else(|| self.corrupt(key, "a key that does not decode"))
    }

    /// Where the committed state lives (a directory, or `memory`).
    pub fn location(&self) -> &Path {
        self.engine.location()
    }

    /// Where changes go.
    pub fn changelog(&self) -> &Changelog {
        &self.changelog
    }

    /// The committed state, for readers outside the task (interactive
    /// queries).
    pub fn committed(&self) -> Arc<dyn Reader> {
        self.engine.clone()
    }

    /// The changelog offset local state is complete up to; `None` for a store
    /// that has never been written (restore everything).
    pub fn checkpoint(&self) -> Result<Option<i64>, StateError> {
        let v = self.engine.get(&keys::meta(keys::CHECKPOINT))?;
        Ok(v.and_then(|b| b.try_into().ok()).map(i64::from_le_bytes))
    }

    /// A value: staged if written in the open transaction, else committed.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(v) = lock(&self.staged).get(key) {
            return Ok(v.clone());
        }
        self.engine.get(key)
    }

    /// Every entry whose key starts with `prefix`, staged writes applied, in
    /// key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, StateError> {
        let mut out: BTreeMap<Vec<u8>, Vec<u8>> = self.engine.scan(prefix)?.into_iter().collect();
        for (k, v) in lock(&self.staged).range(prefix.to_vec()..) {
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

    /// One page of [`Store::scan`]: the entries whose key starts with
    /// `prefix`, comes after `after` and before `end` (when given), staged
    /// writes applied, reading at most `limit` committed entries. Also says where the next page starts
    /// (`Some(after)`), or `None` when the prefix is done. A page may be
    /// empty and still not the last (its entries deleted in the open
    /// transaction).
    pub fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<Entry>, Option<Vec<u8>>), StateError> {
        let committed = self.engine.scan_page(prefix, after, end, limit)?;
        // What this page covers: up to its last committed key when the
        // engine has more, else the rest of the prefix.
        let through = (committed.len() == limit)
            .then(|| committed.last().map(|(k, _)| k.clone()))
            .flatten();
        let mut out: BTreeMap<Vec<u8>, Vec<u8>> = committed.into_iter().collect();
        let from = after.map_or(Bound::Included(prefix), Bound::Excluded);
        for (k, v) in lock(&self.staged).range::<[u8], _>((from, Bound::Unbounded)) {
            if !k.starts_with(prefix)
                || through.as_ref().is_some_and(|t| k > t)
                || end.is_some_and(|e| k.as_slice() >= e)
            {
                break;
            }
            match v {
                Some(v) => out.insert(k.clone(), v.clone()),
                None => out.remove(k),
            };
        }
        Ok((out.into_iter().collect(), through))
    }

    /// Whether committed state was written past the task's transactions (a
    /// restore, a wipe) since the last call; asking clears it.
    pub fn written_outside(&self) -> bool {
        self.outside.swap(false, Ordering::AcqRel)
    }

    /// `writes` of a restore, noted as written outside when there are any
    /// (a checkpoint alone changes no entry).
    fn note_outside(&self, writes: impl IntoIterator<Item = Write>) -> Vec<Write> {
        let writes: Vec<Write> = writes.into_iter().collect();
        if !writes.is_empty() {
            self.outside.store(true, Ordering::Release);
        }
        writes
    }

    /// Writes straight to committed state, for state that lives only here
    /// and is not changelogged (timers): not a write "outside".
    fn write_local(&self, writes: Vec<Write>) -> Result<(), StateError> {
        self.engine.write(writes, None, true)
    }

    /// Stages a write of the open transaction.
    pub fn stage(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        lock(&self.staged).insert(key, value);
    }

    /// The transaction committed: apply its writes, and move the checkpoint
    /// to `checkpoint` (the changelog's end after it) when known.
    pub fn commit(&mut self, checkpoint: Option<i64>) -> Result<(), StateError> {
        let staged = std::mem::take(&mut *lock(&self.staged));
        if staged.is_empty() {
            return Ok(());
        }
        self.engine.write(staged.into_iter().collect(), checkpoint, true)
    }

    /// The transaction aborted: forget its writes.
    pub fn discard(&mut self) {
        lock(&self.staged).clear();
    }

    /// Writes committed changes straight to the engine with a new checkpoint,
    /// atomically (restoring from the changelog).
    pub fn apply(&self, writes: impl IntoIterator<Item = Write>, checkpoint: Option<i64>) -> Result<(), StateError> {
        self.engine.write(self.note_outside(writes), checkpoint, true)
    }

    /// Like [`Store::apply`] without the engine's own log, for bulk
    /// restores: faster, and durable only after [`Store::persist`] (a crash
    /// before that loses these writes *and* their checkpoint together, so
    /// the restore simply starts again from the last persisted one).
    pub fn apply_unlogged(
        &self,
        writes: impl IntoIterator<Item = Write>,
        checkpoint: Option<i64>,
    ) -> Result<(), StateError> {
        self.engine.write(self.note_outside(writes), checkpoint, false)
    }

    /// Deletes every entry and the checkpoint, so that the store restores
    /// whole: its changelog no longer holds everything since the
    /// checkpoint (a time-deleted windowed changelog moved its start past it).
    /// Called before the task stages anything (restores run first).
    pub fn wipe(&self) -> Result<(), StateError> {
        self.outside.store(true, Ordering::Release);
        self.engine.wipe()
    }

    /// Makes unlogged writes durable.
    pub fn persist(&self) -> Result<(), StateError> {
        self.engine.persist()
    }

    /// Estimated number of entries.
    pub fn estimated_keys(&self) -> u64 {
        self.engine.estimated_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changelog() -> Changelog {
        Changelog {
            topic: "app-s-changelog".into(),
            partition: 0,
        }
    }

    fn store(dir: &Path) -> Store {
        Store::open(dir, changelog()).unwrap()
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
        for mut s in [store(dir.path()), Store::in_memory(changelog())] {
            scan_merges(&mut s);
        }
    }

    #[test]
    fn memory_and_rocks_agree_on_commit_discard_and_wipe() {
        let dir = tempfile::tempdir().unwrap();
        for mut s in [store(dir.path()), Store::in_memory(changelog())] {
            s.stage(b"a".to_vec(), Some(b"1".to_vec()));
            s.commit(Some(4)).unwrap();
            s.stage(b"a".to_vec(), Some(b"2".to_vec()));
            s.discard();
            assert_eq!(s.get(b"a").unwrap(), Some(b"1".to_vec()), "{}", s.location().display());
            assert_eq!(s.checkpoint().unwrap(), Some(4));
            s.wipe().unwrap();
            assert_eq!(s.checkpoint().unwrap(), None);
            assert!(s.scan(b"").unwrap().is_empty());
        }
    }

    #[test]
    fn scan_pages_walk_a_prefix_with_staged_writes_on_both_engines() {
        let dir = tempfile::tempdir().unwrap();
        for mut s in [store(dir.path()), Store::in_memory(changelog())] {
            let k = |i: u8| vec![b'k', i];
            s.apply((0..10).map(|i| (k(i), Some(vec![i]))), None).unwrap();
            s.apply([(b"l".to_vec(), Some(vec![]))], None).unwrap();
            s.stage(k(0), None);
            s.stage(k(1), None);
            s.stage(k(2), None);
            s.stage(vec![b'k', 4, 0], Some(vec![]));
            s.stage(k(20), Some(vec![]));
            let mut seen = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            let mut pages = 0;
            loop {
                let (page, next) = s.scan_page(b"k", after.as_deref(), Some(b"k\x14\x00"), 3).unwrap();
                pages += 1;
                seen.extend(page.into_iter().map(|(k, _)| k));
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            let mut want: Vec<Vec<u8>> = (3..10).map(k).collect();
            want.insert(2, vec![b'k', 4, 0]);
            want.push(k(20));
            assert_eq!(seen, want, "{}", s.location().display());
            assert_eq!(
                pages, 4,
                "the first page's three were all deleted; 10 committed in pages of 3"
            );
            let (below, next) = s.scan_page(b"k", None, Some(&k(5)), 10).unwrap();
            let below: Vec<Vec<u8>> = below.into_iter().map(|(k, _)| k).collect();
            assert_eq!(
                below,
                vec![k(3), k(4), vec![b'k', 4, 0]],
                "up to the end, staged writes too"
            );
            assert_eq!(next, None);
            assert!(s.written_outside(), "apply is a write outside the task");
            assert!(!s.written_outside(), "asking clears it");
        }
    }

    fn scan_merges(s: &mut Store) {
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
        assert_eq!(s.committed().scan(b"k").unwrap().len(), 2);
    }
}
