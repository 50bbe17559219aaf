//! The consumer's rebalance callbacks: partitions that leave commit (or,
//! when the assignment is lost, abort) the open unit of work first, so the
//! next owner starts exactly where this one stopped; assigned partitions are
//! noted for the run loop, which opens (and restores) their tasks.

use std::collections::BTreeMap;
use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};

use super::error::TopicPartition;
use super::txn::Shared;

/// Consumer callbacks: commit (or abort) before partitions leave.
pub(super) struct ConsumerCtx {
    pub(super) shared: Arc<Shared>,
}

impl ClientContext for ConsumerCtx {
    /// librdkafka's statistics (every `statistics.interval.ms`) carry each
    /// partition's end: the last stable offset, which is what a
    /// `read_committed` reader can reach (its own `consumer_lag` is unknown
    /// here: offsets are committed through the producer's transactions).
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut ends = BTreeMap::new();
        for (topic, t) in statistics.topics {
            for (p, part) in t.partitions {
                if p >= 0 && part.ls_offset >= 0 {
                    ends.insert((topic.clone(), p), part.ls_offset);
                }
            }
        }
        if let Ok(mut e) = self.shared.ends.lock() {
            *e = ends;
        }
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            if let Rebalance::Assign(tpl) = rebalance {
                tracing::info!(partitions = %describe(tpl), "partitions assigned");
                let tps: Vec<TopicPartition> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                if let Ok(mut a) = self.shared.assigned.lock() {
                    a.extend(tps.iter().cloned());
                }
                self.shared.lock().assigned.extend(tps);
            }
            return;
        };
        if let Ok(mut a) = self.shared.assigned.lock() {
            for e in tpl.elements() {
                a.remove(&(e.topic().to_owned(), e.partition()));
            }
        }
        tracing::info!(partitions = %describe(tpl), lost = consumer.assignment_lost(), "partitions revoked");
        let shared = &self.shared;
        let mut st = shared.lock();
        let result = if consumer.assignment_lost() {
            // The group has moved on: our offsets would be refused, and the
            // new owner may already be processing. Throw the work away.
            shared.abort(&mut st)
        } else {
            shared.commit(consumer, &mut st)
        };
        if let Err(e) = result
            && st.fatal.is_none()
        {
            st.fatal = Some(e);
        }
        for e in tpl.elements() {
            let tp = (e.topic().to_owned(), e.partition());
            st.resume.remove(&tp);
            st.pending.remove(&tp);
            // Assigned and revoked within one poll: nothing to open.
            st.assigned.retain(|a| *a != tp);
            st.revoked.push(tp);
        }
    }
}

pub(super) fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(", ")
}
