//! Migration: after a hot swap, or a restart into a new version, the
//! stored accumulators become the new version's, through its `migrate`
//! when another version wrote them.

use crate::state::keys;

use super::fold::{AggregateError, Aggregator, Fold, Step};
use super::store::split;

impl Aggregator {
    /// Makes the stored accumulators `op`'s (the first step after a hot swap,
    /// or after a restart into a new version). When another version wrote
    /// them and `op` exports `migrate`, every accumulator passes through it,
    /// in this step's transaction: eagerly, so that the changelog, the store
    /// and the outputs change together and a crash redoes all of it. Without
    /// `migrate` the state is kept as it is (the versions share a format).
    pub(super) fn adopt(&mut self, op: &mut dyn Fold, step: &mut Step) -> Result<(), AggregateError> {
        let label = op.version_label();
        // The same bytes may go by several names (a file, a registry name).
        let digest = |l: &str| l.rsplit_once('@').map_or(l, |(_, d)| d).to_owned();
        if self.format.as_deref().map(digest) == Some(digest(&label)) {
            return Ok(());
        }
        if let Some(previous) = self.format.clone()
            && op.migrates()
        {
            let mut migrated = 0u64;
            for prefix in [[1u8], [2u8]] {
                for (k, acc) in self.store.scan(&prefix)? {
                    let (key, _) = split(&self.store, &k)?;
                    match op.migrate(&previous, key.as_deref(), &acc) {
                        Ok(Some(Ok(new))) => {
                            self.put(k, Some(new));
                            migrated += 1;
                        }
                        Ok(Some(Err(f))) => step.unmigrated.push((key, format!("{}: {}", f.code, f.message))),
                        Ok(None) => {}
                        Err(e) => step.unmigrated.push((key, e.to_string())),
                    }
                }
            }
            tracing::info!(from = %previous, to = %label, migrated, failed = step.unmigrated.len(),
                "migrated the stage's accumulators");
        }
        self.put(keys::meta(keys::FORMAT), Some(label.clone().into_bytes()));
        self.format = Some(label);
        Ok(())
    }
}
