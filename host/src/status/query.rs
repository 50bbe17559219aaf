//! Interactive queries: a key's value in a stateful stage, read from the
//! committed state of this instance's stores and shown through the stage's
//! own `emit` (so a count reads as "3", not as eight bytes).
//!
//! A key lives in the task of its partition; this instance answers for the
//! partitions it owns and says `found: false` otherwise (ask the instance
//! that owns the partition: `/status` lists them).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Queries, QueryError};
use crate::event::EventResult;
use crate::runtime::EmitRequest;
use crate::stage::aggregate;
use crate::state::Reader;
use crate::state::keys::{self, Entry};
use crate::state::row;
use crate::task::Chain;

/// The stores of this instance, by (stage index, partition).
pub struct StoreQueries {
    chain: Arc<Chain>,
    stores: Mutex<BTreeMap<(usize, i32), Arc<dyn Reader>>>,
}

impl StoreQueries {
    /// No stores yet.
    pub fn new(chain: Arc<Chain>) -> Arc<StoreQueries> {
        Arc::new(StoreQueries {
            chain,
            stores: Mutex::new(BTreeMap::new()),
        })
    }

    /// A task opened a store.
    pub fn add(&self, stage: usize, partition: i32, db: Arc<dyn Reader>) {
        if let Ok(mut s) = self.stores.lock() {
            tracing::debug!(stage, partition, "store open for queries");
            s.insert((stage, partition), db);
        }
    }

    /// A task closed its store (its partition went to another instance).
    pub fn remove(&self, stage: usize, partition: i32) {
        if let Ok(mut s) = self.stores.lock() {
            tracing::debug!(stage, partition, "store closed for queries");
            s.remove(&(stage, partition));
        }
    }
}

impl Queries for StoreQueries {
    fn query(&self, stage: &str, key: &[u8], from: i64, to: i64) -> Result<Value, QueryError> {
        let i = self
            .chain
            .stage_index(stage)
            .filter(|i| self.chain.stage_is_stateful(*i))
            .ok_or_else(|| QueryError::NoStage(stage.to_owned()))?;
        let windowed = self.chain.is_windowed(i);
        let stores: Vec<(i32, Arc<dyn Reader>)> = self
            .stores
            .lock()
            .map(|s| {
                s.range((i, i32::MIN)..=(i, i32::MAX))
                    .map(|((_, p), db)| (*p, db.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut found: Vec<(i32, Option<crate::event::Window>, Vec<u8>)> = Vec::new();
        for (p, db) in &stores {
            if windowed {
                for (k, acc) in db
                    .scan(&keys::windows_of(Some(key)))
                    .map_err(|e| QueryError::Store(e.to_string()))?
                {
                    let Some(Entry::Windowed(_, w)) = keys::decode(&k) else {
                        return Err(QueryError::Store(format!(
                            "stage {stage}: corrupt store: a key that is not a window's: {k:02x?}"
                        )));
                    };
                    if w.start >= from && w.start < to {
                        found.push((*p, Some(w), acc));
                    }
                }
            } else if let Some(acc) = db
                .get(&keys::plain(Some(key)))
                .map_err(|e| QueryError::Store(e.to_string()))?
            {
                found.push((*p, None, acc));
            }
        }
        let module = self.chain.stage_module(i);
        let (Some((module, config)), false) = (module, self.chain.is_table(i)) else {
            // A table's rows are values already.
            return table_row(stage, key, &stores, &found);
        };
        let mut op = self.chain.runtime().operator(module, config);
        let requests: Vec<EmitRequest> = found
            .iter()
            .map(|(_, w, acc)| EmitRequest {
                key: Some(key.to_vec()),
                window: *w,
                acc: acc.clone(),
            })
            .collect();
        let results = if requests.is_empty() {
            Vec::new()
        } else {
            op.emit(requests).map_err(|e| QueryError::Emit(e.to_string()))?
        };
        let entries: Vec<Value> = found
            .iter()
            .zip(results)
            .map(|((p, w, acc), r)| {
                let mut v = json!({
                    "partition": p,
                    "accumulator_base64": base64::engine::general_purpose::STANDARD.encode(acc),
                });
                if let Some(w) = w {
                    v["window"] = json!({"start": w.start, "end": w.end});
                }
                match r {
                    EventResult::Outputs(outs) => {
                        v["outputs"] = outs
                            .iter()
                            .map(|o| {
                                json!({
                                    "key": o.key.as_deref().map(bytes),
                                    "value": o.value.as_deref().map(bytes),
                                })
                            })
                            .collect();
                    }
                    EventResult::Failed(f) => v["emit_failed"] = json!(f.to_string()),
                }
                v
            })
            .collect();
        let mut out = json!({
            "stage": stage,
            "key": bytes(key),
            "found": !entries.is_empty(),
            "partitions_here": stores.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        });
        if windowed {
            out["windows"] = Value::Array(entries);
            out["window_headers"] = json!([aggregate::WINDOW_START, aggregate::WINDOW_END]);
        } else {
            out["value"] = entries.into_iter().next().unwrap_or(Value::Null);
        }
        Ok(out)
    }
}

/// A table's answer: the row's value as it is, and its timestamp.
fn table_row(
    stage: &str,
    key: &[u8],
    stores: &[(i32, Arc<dyn Reader>)],
    found: &[(i32, Option<crate::event::Window>, Vec<u8>)],
) -> Result<Value, QueryError> {
    let value = match found.first() {
        None => Value::Null,
        Some((p, _, stored)) => {
            let (ts, v) = row::decode_value(stored)
                .ok_or_else(|| QueryError::Store(format!("a row of table {stage} shorter than its timestamp")))?;
            json!({"partition": p, "timestamp": ts, "value": bytes(v)})
        }
    };
    Ok(json!({
        "stage": stage,
        "key": bytes(key),
        "found": !found.is_empty(),
        "partitions_here": stores.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        "value": value,
    }))
}

/// Bytes as a JSON string when UTF-8, else `{"base64": …}`.
fn bytes(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => json!(s),
        Err(_) => json!({"base64": base64::engine::general_purpose::STANDARD.encode(b)}),
    }
}
