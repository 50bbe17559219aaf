//! Timers kept in a store, beside the entries they fire for.
//!
//! A stage's timers on stream time — a window's close, a join record's
//! window or retention — are entries of its store ordered by time
//! ([`keys::timer`]), not a set in memory: a task with a million open
//! windows keeps a million timers where it keeps the windows, and its
//! memory stays what RocksDB's memtables and cache are.
//!
//! A timer is derived from its entry (a window's close is a function of the
//! window), so timers are written with their entries in the same
//! transaction but never changelogged. When committed state was written
//! past the task (a restore from the changelog, a wipe), or the store was
//! written before timers were kept, the queue is rebuilt from the entries.

use super::{Entry, StateError, Store, keys};

/// How many committed entries one read takes.
const PAGE: usize = 256;

/// One queue of timers in a store, in the order they fire (time, then key).
#[derive(Debug)]
pub struct Timers {
    queue: u8,
    /// Timers in the queue, with the open transaction's changes; as
    /// committed.
    len: usize,
    committed_len: usize,
    /// Every timer in the queue is later than this (`None`: not known), with
    /// the open transaction's changes; as committed. Nothing is due up to
    /// it, so most calls read nothing; and reads start past it: the timers
    /// that fired or were cancelled before it are deleted, and an LSM store
    /// keeps deletes as tombstones that a read from the queue's start would
    /// step over, one by one, until they are compacted away.
    floor: Option<i64>,
    committed_floor: Option<i64>,
    /// Whether the queue was read from this store yet.
    loaded: bool,
}

impl Timers {
    /// Queue `queue` (a stage keeps each of its queues under its own number).
    pub fn new(queue: u8) -> Timers {
        Timers {
            queue,
            len: 0,
            committed_len: 0,
            floor: None,
            committed_floor: None,
            loaded: false,
        }
    }

    /// Timers in the queue.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the queue right for the store's committed state, once the
    /// open transaction's writes are discarded: at the first call, or when
    /// `outside` (committed state was written past the task, see
    /// [`Store::written_outside`]), it is read again — rebuilt from the
    /// entries under `prefix` when `outside` or when the store has never
    /// kept this queue, `timer_of` giving an entry's timer if it has one.
    /// Otherwise (an abort) it is as last committed.
    pub fn reload(
        &mut self,
        store: &Store,
        outside: bool,
        prefix: &[u8],
        timer_of: impl FnMut(&[u8], &[u8]) -> Result<Option<i64>, StateError>,
    ) -> Result<(), StateError> {
        if self.loaded && !outside {
            self.len = self.committed_len;
            self.floor = self.committed_floor;
            return Ok(());
        }
        self.floor = None;
        self.committed_floor = None;
        let kept = store.engine.get(&keys::timers_kept(self.queue))?.is_some();
        self.len = if outside || !kept {
            self.rebuild(store, prefix, timer_of)?
        } else {
            let mut n = 0;
            for_each_page(store, &keys::timers_of(self.queue), |page| {
                n += page.len();
                Ok(())
            })?;
            n
        };
        self.committed_len = self.len;
        self.loaded = true;
        Ok(())
    }

    /// Deletes the queue's committed timers and writes one for every entry
    /// under `prefix` that has one; returns how many.
    fn rebuild(
        &mut self,
        store: &Store,
        prefix: &[u8],
        mut timer_of: impl FnMut(&[u8], &[u8]) -> Result<Option<i64>, StateError>,
    ) -> Result<usize, StateError> {
        for_each_page(store, &keys::timers_of(self.queue), |page| {
            store.write_local(page.into_iter().map(|(k, _)| (k, None)).collect())
        })?;
        let mut n = 0;
        for_each_page(store, prefix, |page| {
            let mut writes = Vec::new();
            for (k, v) in &page {
                if let Some(time) = timer_of(k, v)? {
                    writes.push((keys::timer(self.queue, time, k), Some(Vec::new())));
                }
            }
            n += writes.len();
            store.write_local(writes)
        })?;
        store.write_local(vec![(keys::timers_kept(self.queue), Some(vec![1]))])?;
        Ok(n)
    }

    /// The open transaction committed.
    pub fn commit(&mut self) {
        self.committed_len = self.len;
        self.committed_floor = self.floor;
    }

    /// Sets a timer at `time` for the entry `key` (staged with the open
    /// transaction); says whether it is new.
    pub fn insert(&mut self, store: &mut Store, time: i64, key: &[u8]) -> Result<bool, StateError> {
        let k = keys::timer(self.queue, time, key);
        if store.get(&k)?.is_some() {
            return Ok(false);
        }
        if self.floor.is_some_and(|f| time <= f) {
            self.floor = time.checked_sub(1);
        }
        store.stage(k, Some(Vec::new()));
        self.len += 1;
        Ok(true)
    }

    /// Cancels the timer at `time` for `key`; says whether there was one.
    pub fn remove(&mut self, store: &mut Store, time: i64, key: &[u8]) -> Result<bool, StateError> {
        let k = keys::timer(self.queue, time, key);
        if store.get(&k)?.is_none() {
            return Ok(false);
        }
        self.took(store, &k)?;
        store.stage(k, None);
        Ok(true)
    }

    /// When the first timer fires.
    pub fn first(&self, store: &Store) -> Result<Option<i64>, StateError> {
        let prefix = keys::timers_of(self.queue);
        let mut after = self.start();
        loop {
            let (page, next) = store.scan_page(&prefix, after.as_deref(), None, PAGE)?;
            if let Some((k, _)) = page.first() {
                return timer(store, k).map(|(time, _)| Some(time));
            }
            match next {
                Some(n) => after = Some(n),
                None => return Ok(None),
            }
        }
    }

    /// Takes out up to `limit` of the timers due at `until` (those at or
    /// before it), in order: their time and entry key. Fewer than `limit`
    /// means none is left due.
    pub fn pop_due(&mut self, store: &mut Store, until: i64, limit: usize) -> Result<Vec<(i64, Vec<u8>)>, StateError> {
        // Nothing is due before the floor: no read (stages call this for
        // every record).
        if self.floor.is_some_and(|f| until <= f) {
            return Ok(Vec::new());
        }
        let prefix = keys::timers_of(self.queue);
        let mut after = self.start();
        // Reads stop at the first time past `until`: a cancelled timer past
        // it is a delete that a read would otherwise step over, again at
        // every call, to the next live one.
        let end = until.checked_add(1).map(|t| keys::timer(self.queue, t, b""));
        let mut out = Vec::new();
        loop {
            let (page, next) = store.scan_page(&prefix, after.as_deref(), end.as_deref(), PAGE)?;
            for (k, _) in page {
                let (time, key) = timer(store, &k)?;
                self.took(store, &k)?;
                store.stage(k, None);
                out.push((time, key));
                if out.len() == limit {
                    // More may be due at the same time.
                    if let Some(before) = time.checked_sub(1) {
                        self.raise_floor(before);
                    }
                    return Ok(out);
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => {
                    // Every timer up to `until` has fired.
                    self.raise_floor(until);
                    return Ok(out);
                }
            }
        }
    }

    /// Counts out the timer at `k`, which is in the store: a count that
    /// says there is none left is a broken invariant, not a number to wrap.
    fn took(&mut self, store: &Store, k: &[u8]) -> Result<(), StateError> {
        self.len = self
            .len
            .checked_sub(1)
            .ok_or_else(|| store.corrupt(k, "a timer that its queue's count does not include"))?;
        Ok(())
    }

    /// Every timer at or before `time` has fired.
    fn raise_floor(&mut self, time: i64) {
        self.floor = Some(self.floor.map_or(time, |f| f.max(time)));
    }

    /// Where reads of the queue start: past the floor. A timer's key is the
    /// time then its entry's key, which is never empty, so the key of the
    /// first time past the floor with no entry key comes before them all.
    fn start(&self) -> Option<Vec<u8>> {
        let f = self.floor?;
        Some(keys::timer(self.queue, f.checked_add(1)?, b""))
    }
}

/// A timer's time and entry key, from its key in `store`.
fn timer(store: &Store, k: &[u8]) -> Result<(i64, Vec<u8>), StateError> {
    match keys::decode(k) {
        Some(keys::Entry::Timer(_, time, key)) => Ok((time, key)),
        _ => Err(store.corrupt(k, "a key that is not a timer's")),
    }
}

/// Calls `f` with the committed entries under `prefix`, a page at a time.
fn for_each_page(
    store: &Store,
    prefix: &[u8],
    mut f: impl FnMut(Vec<Entry>) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.engine.scan_page(prefix, after.as_deref(), None, PAGE)?;
        let Some((last, _)) = page.last() else { return Ok(()) };
        after = Some(last.clone());
        let full = page.len() == PAGE;
        f(page)?;
        if !full {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Changelog;

    fn store() -> Store {
        Store::in_memory(Changelog {
            topic: "t".into(),
            partition: 0,
        })
    }

    /// An entry whose value is its timer's time.
    fn entry(s: &mut Store, key: &str, time: i64) {
        s.stage(format!("e{key}").into_bytes(), Some(time.to_le_bytes().to_vec()));
    }

    fn time_of(_: &[u8], v: &[u8]) -> Result<Option<i64>, StateError> {
        Ok(Some(i64::from_le_bytes(v.try_into().expect("8 bytes"))))
    }

    #[test]
    fn pops_in_time_order_across_pages_and_commits() {
        let mut s = store();
        let mut t = Timers::new(0);
        t.reload(&s, false, b"e", time_of).unwrap();
        // More than a page, inserted out of order, half of them committed.
        for i in (0..600).rev() {
            assert!(t.insert(&mut s, i / 2, format!("k{i:03}").as_bytes()).unwrap());
            if i == 300 {
                s.commit(None).unwrap();
                t.commit();
            }
        }
        assert!(!t.insert(&mut s, 0, b"k000").unwrap(), "already set");
        assert_eq!(t.len(), 600);
        assert_eq!(t.first(&s).unwrap(), Some(0));
        let due = t.pop_due(&mut s, 99, 1000).unwrap();
        assert_eq!(due.len(), 200, "times 0..=99, two each");
        assert!(due.windows(2).all(|w| w[0] < w[1]), "in order");
        assert_eq!(t.first(&s).unwrap(), Some(100), "past the staged deletes");
        assert!(t.remove(&mut s, 100, b"k200").unwrap());
        assert!(!t.remove(&mut s, 100, b"k200").unwrap());
        let next = t.pop_due(&mut s, i64::MAX, 3).unwrap();
        assert_eq!(
            next,
            vec![
                (100, b"k201".to_vec()),
                (101, b"k202".to_vec()),
                (101, b"k203".to_vec())
            ]
        );
        // A timer set before the popped ones is still found.
        assert!(t.insert(&mut s, -1, b"early").unwrap());
        assert_eq!(t.first(&s).unwrap(), Some(-1));
        assert_eq!(t.len(), 600 - 200 - 1 - 3 + 1);
    }

    #[test]
    fn an_abort_restores_the_committed_queue() {
        let mut s = store();
        let mut t = Timers::new(3);
        t.reload(&s, false, b"e", time_of).unwrap();
        t.insert(&mut s, 5, b"a").unwrap();
        s.commit(None).unwrap();
        t.commit();
        t.insert(&mut s, 1, b"b").unwrap();
        assert_eq!(t.pop_due(&mut s, 10, 10).unwrap().len(), 2);
        s.discard();
        t.reload(&s, s.written_outside(), b"e", time_of).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.first(&s).unwrap(), Some(5));
    }

    #[test]
    fn rebuilt_from_the_entries_after_a_restore_or_when_never_kept() {
        let mut s = store();
        entry(&mut s, "a", 7);
        entry(&mut s, "b", 3);
        s.commit(None).unwrap();
        // A store written before timers were kept: rebuilt at the first load.
        let mut t = Timers::new(1);
        t.reload(&s, s.written_outside(), b"e", time_of).unwrap();
        assert_eq!((t.len(), t.first(&s).unwrap()), (2, Some(3)));
        // A restore deletes one entry and adds another behind the task's back.
        s.apply(
            [
                (b"eb".to_vec(), None),
                (b"ec".to_vec(), Some(1i64.to_le_bytes().to_vec())),
            ],
            Some(9),
        )
        .unwrap();
        t.reload(&s, s.written_outside(), b"e", time_of).unwrap();
        assert_eq!(
            t.pop_due(&mut s, 100, 10).unwrap(),
            vec![(1, b"ec".to_vec()), (7, b"ea".to_vec())]
        );
        // A new queue object over the same store counts what is kept.
        let mut again = Timers::new(1);
        again.reload(&s, s.written_outside(), b"e", time_of).unwrap();
        assert_eq!(again.len(), 2, "the pops were never committed");
    }
}
