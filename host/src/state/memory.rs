//! The in-memory engine: committed state in a sorted map, for tests and the
//! broker-free driver. Nothing survives the process.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Engine, Entry, Reader, StateError, Write, keys};

/// A store's committed state in memory.
#[derive(Default)]
pub struct Memory {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Memory {
    fn map(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // Nothing below panics while holding the lock, so a poisoned lock
        // still guards a whole map.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Reader for Memory {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.map().get(key).cloned())
    }

    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, StateError> {
        Ok(self
            .map()
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn scan_page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError> {
        let from = after.map_or(Bound::Included(prefix), Bound::Excluded);
        Ok(self
            .map()
            .range::<[u8], _>((from, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix) && end.is_none_or(|e| k.as_slice() < e))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl Engine for Memory {
    fn location(&self) -> &Path {
        Path::new("memory")
    }

    fn write(&self, writes: Vec<Write>, checkpoint: Option<i64>, _logged: bool) -> Result<(), StateError> {
        let mut map = self.map();
        for (k, v) in writes {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        if let Some(c) = checkpoint {
            map.insert(keys::meta(keys::CHECKPOINT), c.to_le_bytes().to_vec());
        }
        Ok(())
    }

    fn wipe(&self) -> Result<(), StateError> {
        self.map().clear();
        Ok(())
    }

    fn persist(&self) -> Result<(), StateError> {
        Ok(())
    }

    fn estimated_keys(&self) -> u64 {
        self.map().len() as u64
    }
}
