//! Table aggregation: a grouped table's changes folded record by record,
//! each row's old value taken out of its group (`subtract`) before its new
//! value is added, as Kafka Streams' `KTableAggregate`.

use std::collections::HashMap;

use crate::codec::{BatchEncoder, EventRef};
use crate::event::Failure;
use crate::runtime::{Folded, Group, GuestError};
use crate::state::keys;

use super::fold::{AggregateError, Aggregator, Fold, Rejection, Step};

impl Aggregator {
    /// A table aggregation, record by record as Kafka Streams'
    /// `KTableAggregate`: a change's old value (header
    /// [`OLD_VALUE`](crate::stage::table::OLD_VALUE)) is taken out of its
    /// group's accumulator if it has one (`subtract`), then its new value
    /// (the record's value) added, from the initial value if there is no
    /// accumulator. The result's timestamp is the record's, or the
    /// accumulator's if later and there was one. A group whose accumulator
    /// is gone (no new value and nothing to take from) is deleted.
    pub(super) fn fold_table(
        &mut self,
        op: &mut dyn Fold,
        events: &[EventRef<'_>],
        step: &mut Step,
        latest: &mut HashMap<Vec<u8>, i64>,
    ) -> Result<(), AggregateError> {
        // Each key's records in order; a round takes the next one of every
        // key, so that a round's subtractions go to the guest in one call
        // and its additions in another (a key's records must follow one
        // another; different keys do not meet).
        let mut queues: Vec<std::collections::VecDeque<usize>> = Vec::new();
        let mut queue_of: HashMap<Option<&[u8]>, usize> = HashMap::new();
        for (i, ev) in events.iter().enumerate() {
            self.stream_time.observe(ev.timestamp);
            let q = *queue_of.entry(ev.key).or_insert_with(|| {
                queues.push(std::collections::VecDeque::new());
                queues.len() - 1
            });
            queues[q].push_back(i);
        }
        let one = |ev: &EventRef<'_>, value: &[u8]| {
            let mut enc = BatchEncoder::new();
            enc.push(
                ev.timestamp,
                ev.topic,
                ev.partition,
                ev.offset,
                ev.key,
                Some(value),
                ev.headers.iter(),
            );
            enc.as_bytes().to_vec()
        };
        let group = |ev: &EventRef<'_>, acc: Option<Vec<u8>>, events: Vec<u8>| Group {
            key: ev.key.map(<[u8]>::to_vec),
            window: None,
            acc,
            events,
        };
        loop {
            let round: Vec<usize> = queues.iter_mut().filter_map(|q| q.pop_front()).collect();
            if round.is_empty() {
                break;
            }
            // Per record of the round: its accumulator as it is, then as it
            // goes (`None`: refused).
            let mut current = Vec::with_capacity(round.len());
            for &i in &round {
                current.push(self.store.get(&keys::plain(events[i].key))?);
            }
            let mut acc: Vec<Option<Result<Vec<u8>, Rejection>>> = current.iter().map(|c| c.clone().map(Ok)).collect();
            let subtracting: Vec<usize> = (0..round.len())
                .filter(|&r| current[r].is_some() && old_value(&events[round[r]]).is_some())
                .collect();
            let groups = subtracting
                .iter()
                .map(|&r| {
                    let ev = &events[round[r]];
                    group(ev, current[r].clone(), one(ev, old_value(ev).unwrap_or_default()))
                })
                .collect();
            for (&r, result) in subtracting.iter().zip(table_round(op, groups, true)) {
                acc[r] = Some(result);
            }
            let adding: Vec<usize> = (0..round.len())
                .filter(|&r| events[round[r]].value.is_some() && !matches!(acc[r], Some(Err(_))))
                .collect();
            let groups = adding
                .iter()
                .map(|&r| {
                    let ev = &events[round[r]];
                    let base = acc[r].clone().and_then(Result::ok);
                    group(ev, base, one(ev, ev.value.unwrap_or_default()))
                })
                .collect();
            for (&r, result) in adding.iter().zip(table_round(op, groups, false)) {
                acc[r] = Some(result);
            }
            for (r, &i) in round.iter().enumerate() {
                let ev = &events[i];
                let k = keys::plain(ev.key);
                match acc[r].take() {
                    Some(Ok(next)) => {
                        // Kafka Streams: the record's timestamp, or the
                        // accumulator's if there was one and it is later.
                        let ts = match self.stamp(&k)? {
                            Some(stamp) if current[r].is_some() => stamp.max(ev.timestamp),
                            _ => ev.timestamp,
                        };
                        self.put(keys::stamp(&k), Some(ts.to_le_bytes().to_vec()));
                        latest.insert(k.clone(), ts);
                        self.put(k, Some(next));
                    }
                    Some(Err(why)) => step.rejected.push((i, why)),
                    // Nothing to take out of and nothing to add: no change.
                    None => {}
                }
            }
        }
        step.rejected.sort_by_key(|(i, _)| *i);
        Ok(())
    }
}

/// A grouped table's change's old value (header
/// [`OLD_VALUE`](crate::stage::table::OLD_VALUE)).
fn old_value<'a>(ev: &EventRef<'a>) -> Option<&'a [u8]> {
    ev.headers
        .iter()
        .find(|(name, _)| *name == crate::stage::table::OLD_VALUE)
        .and_then(|(_, v)| v)
}

/// One `subtract` or `add` call for a round of one-event groups: each
/// group's accumulator, or why its event was refused. A call that traps
/// is made again group by group, so that only the records that trap fail.
fn table_round(op: &mut dyn Fold, groups: Vec<Group>, subtract: bool) -> Vec<Result<Vec<u8>, Rejection>> {
    if groups.is_empty() {
        return Vec::new();
    }
    let n = groups.len();
    let call = |op: &mut dyn Fold, groups: Vec<Group>| {
        if subtract {
            op.subtract(groups)
        } else {
            op.add(groups).map(Some)
        }
    };
    match call(op, groups.clone()) {
        Ok(Some(folded)) if folded.len() == n => folded
            .into_iter()
            .map(|f| table_fold(Ok(Some(vec![f])), subtract))
            .collect(),
        Ok(None) => (0..n).map(|_| table_fold(Ok(None), subtract)).collect(),
        alone if n == 1 => vec![table_fold(alone, subtract)],
        _ => groups
            .into_iter()
            .map(|g| table_fold(call(op, vec![g]), subtract))
            .collect(),
    }
}

/// The accumulator one `add` or `subtract` of one event made, or why the
/// event was refused.
fn table_fold(folded: Result<Option<Vec<Folded>>, GuestError>, subtract: bool) -> Result<Vec<u8>, Rejection> {
    match folded {
        Ok(None) if subtract => Err(Rejection::Failed(Failure::new(
            "no-subtract",
            "a table aggregation needs the module's subtract",
        ))),
        Ok(folded) => match folded.and_then(|mut f| f.pop()) {
            Some(Folded { failures, .. }) if !failures.is_empty() => {
                let f = failures.into_iter().next().map(|(_, f)| f);
                Err(Rejection::Failed(f.unwrap_or_else(|| Failure::new("failed", ""))))
            }
            Some(f) => Ok(f.acc),
            None => Err(Rejection::Failed(Failure::new(
                "bad-result",
                "no accumulator came back",
            ))),
        },
        Err(e) => Err(Rejection::Trapped(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    use crate::codec;
    use crate::pipeline::{Aggregation, Emit};
    use crate::stage::aggregate::count::Count;
    use crate::stage::aggregate::harness::{Discard, spec};
    use crate::state::{Changelog, Store};

    /// KTableAggregateTest#testCount, as the grouped table sends it (key,
    /// new value, old value in the header, timestamp): a row's old value
    /// leaves its group before its new one is added, one result per
    /// record, stamped with the record's time or the group's if later; a
    /// group that empties counts 0.
    #[test]
    fn a_table_aggregation_subtracts_old_rows_then_adds_new_ones() {
        let spec = Aggregation {
            table: true,
            ..spec(None, Emit::Update)
        };
        let mut agg = Aggregator::open(
            spec,
            Store::in_memory(Changelog {
                topic: "t-changelog".into(),
                partition: 0,
            }),
        )
        .unwrap();
        // (group, new, old, ts): A green@10, B green@10, A blue@12 (green
        // loses A, blue gains it), C yellow@15, D green@11.
        let records: [(&str, Option<&str>, Option<&str>, i64); 6] = [
            ("green", Some("green"), None, 10),
            ("green", Some("green"), None, 10),
            ("green", None, Some("green"), 12),
            ("blue", Some("blue"), None, 12),
            ("yellow", Some("yellow"), None, 15),
            ("green", Some("green"), None, 11),
        ];
        let mut out = Vec::new();
        for (n, (key, new, old, ts)) in records.iter().enumerate() {
            let mut enc = BatchEncoder::new();
            let header = old.map(|o| (crate::stage::table::OLD_VALUE, Some(o.as_bytes())));
            enc.push(
                *ts,
                "repartition",
                0,
                n as i64,
                Some(key.as_bytes()),
                new.map(str::as_bytes),
                header,
            );
            let events = codec::read_events(enc.as_bytes()).unwrap();
            let step = agg
                .step(&mut Count, &events, &n.to_string(), Instant::now(), &mut Discard)
                .unwrap();
            assert!(step.rejected.is_empty());
            for d in step.due {
                let count = Count::read(d.acc.as_deref().unwrap()).unwrap();
                out.push((String::from_utf8(d.key.unwrap()).unwrap(), count, d.timestamp));
            }
            agg.commit(None).unwrap();
        }
        let want: Vec<(String, u64, i64)> = [
            ("green", 1, 10),
            ("green", 2, 10),
            ("green", 1, 12),
            ("blue", 1, 12),
            ("yellow", 1, 15),
            ("green", 2, 12),
        ]
        .into_iter()
        .map(|(k, n, ts)| (k.to_owned(), n, ts))
        .collect();
        assert_eq!(out, want);
        // One record with both values (a row that stays in its group): one
        // result, subtracted then added; a group that empties counts 0.
        let mut enc = BatchEncoder::new();
        enc.push(
            20,
            "r",
            0,
            6,
            Some(b"blue"),
            Some(b"blue"),
            [(crate::stage::table::OLD_VALUE, Some(&b"blue"[..]))],
        );
        enc.push(
            21,
            "r",
            0,
            7,
            Some(b"yellow"),
            None,
            [(crate::stage::table::OLD_VALUE, Some(&b"yellow"[..]))],
        );
        let events = codec::read_events(enc.as_bytes()).unwrap();
        let step = agg
            .step(&mut Count, &events, "8", Instant::now(), &mut Discard)
            .unwrap();
        let got: Vec<(String, u64, i64)> = step
            .due
            .into_iter()
            .map(|d| {
                (
                    String::from_utf8(d.key.unwrap()).unwrap(),
                    Count::read(&d.acc.unwrap()).unwrap(),
                    d.timestamp,
                )
            })
            .collect();
        assert_eq!(got, [("blue".to_owned(), 1, 20), ("yellow".to_owned(), 0, 21)]);
        agg.commit(None).unwrap();
        // In one call for the round: yellow's subtraction below 0 is
        // refused (the count's own failure) and changes nothing; blue's
        // addition, and then blue's second one, go through.
        let mut enc = BatchEncoder::new();
        let old = |v: &'static [u8]| [(crate::stage::table::OLD_VALUE, Some(v))];
        enc.push(30, "r", 0, 8, Some(b"yellow"), None, old(b"yellow"));
        enc.push(31, "r", 0, 9, Some(b"blue"), Some(b"blue"), std::iter::empty());
        enc.push(32, "r", 0, 10, Some(b"blue"), Some(b"blue"), std::iter::empty());
        let events = codec::read_events(enc.as_bytes()).unwrap();
        let step = agg
            .step(&mut Count, &events, "11", Instant::now(), &mut Discard)
            .unwrap();
        assert!(
            matches!(step.rejected.as_slice(), [(0, Rejection::Failed(f))] if f.code == "negative-count"),
            "{:?}",
            step.rejected
        );
        let got: Vec<(String, u64, i64)> = step
            .due
            .into_iter()
            .map(|d| {
                (
                    String::from_utf8(d.key.unwrap()).unwrap(),
                    Count::read(&d.acc.unwrap()).unwrap(),
                    d.timestamp,
                )
            })
            .collect();
        assert_eq!(got, [("blue".to_owned(), 3, 32)], "one result per key and batch");
    }
}
