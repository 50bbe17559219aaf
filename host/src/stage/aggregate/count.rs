//! [`Count`], a native [`Fold`]: the stage's semantics can be tested
//! without a guest.

use crate::codec;
use crate::event::Failure;
use crate::runtime::{Folded, Group, GuestError};

use super::fold::Fold;

/// A native count: the accumulator is a little-endian u64 of the events
/// folded in (the same format as the example `count` guests), sessions
/// merge by adding. For tests of the stage's semantics without a guest.
#[derive(Debug, Default, Clone, Copy)]
pub struct Count;

impl Count {
    /// An accumulator's count; `None` for bytes that are not one.
    pub fn read(acc: &[u8]) -> Option<u64> {
        acc.try_into().ok().map(u64::from_le_bytes)
    }
}

impl Fold for Count {
    fn version_label(&self) -> String {
        "native-count@0".to_owned()
    }

    fn add(&mut self, groups: Vec<Group>) -> Result<Vec<Folded>, GuestError> {
        Ok(groups
            .into_iter()
            .map(|g| {
                let n = codec::batch_len(&g.events);
                match g.acc.as_deref().map_or(Some(0), Count::read) {
                    Some(before) => Folded {
                        acc: (before + u64::from(n)).to_le_bytes().to_vec(),
                        failures: Vec::new(),
                    },
                    None => Folded {
                        acc: g.acc.unwrap_or_default(),
                        failures: (0..n)
                            .map(|i| (i, Failure::new("bad-accumulator", "not a little-endian u64")))
                            .collect(),
                    },
                }
            })
            .collect())
    }

    fn merge(&mut self, _key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Result<Vec<u8>, Failure>, GuestError> {
        Ok(match (Count::read(a), Count::read(b)) {
            (Some(a), Some(b)) => Ok((a + b).to_le_bytes().to_vec()),
            _ => Err(Failure::new("bad-accumulator", "not a little-endian u64")),
        })
    }

    fn subtract(&mut self, groups: Vec<Group>) -> Result<Option<Vec<Folded>>, GuestError> {
        Ok(Some(
            groups
                .into_iter()
                .map(|g| {
                    let n = codec::batch_len(&g.events);
                    match g.acc.as_deref().and_then(Count::read) {
                        Some(before) if before >= u64::from(n) => Folded {
                            acc: (before - u64::from(n)).to_le_bytes().to_vec(),
                            failures: Vec::new(),
                        },
                        _ => Folded {
                            acc: g.acc.unwrap_or_default(),
                            failures: (0..n)
                                .map(|i| (i, Failure::new("negative-count", "a count below 0")))
                                .collect(),
                        },
                    }
                })
                .collect(),
        ))
    }
}
