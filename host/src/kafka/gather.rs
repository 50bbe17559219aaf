//! Gathering a round: what the consumer has ready, polled in one go and
//! filed by topic partition (each partition's records in offset order);
//! consumer errors are logged, at most once per 5 s each, or, when fatal,
//! explained.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};

use super::error::{InstanceError, TopicPartition};
use super::instance::Instance;
use crate::clients;

/// A round's records by topic partition, each partition's in offset order.
pub(super) type Gathered<'c> = BTreeMap<TopicPartition, Vec<BorrowedMessage<'c>>>;

impl Instance {
    /// Polls what the consumer has ready: waits at most `wait` for the
    /// first record, then takes the ones already fetched, up to `max`.
    pub(super) fn gather(
        &self,
        wait: Duration,
        max: usize,
        errors: &mut ErrorLog,
    ) -> Result<Gathered<'_>, InstanceError> {
        let mut gathered: Gathered<'_> = BTreeMap::new();
        // Records come in runs of one partition: a run is filed under its
        // partition once, not each record (no topic name copied per record).
        let mut run: Vec<BorrowedMessage<'_>> = Vec::new();
        let mut count = 0;
        let mut next = self.consumer.poll(wait);
        while let Some(item) = next {
            match item {
                Ok(m) => {
                    if run
                        .first()
                        .is_some_and(|f| f.partition() != m.partition() || f.topic() != m.topic())
                    {
                        file_run(&mut gathered, &mut run);
                    }
                    run.push(m);
                    count += 1;
                }
                Err(e @ KafkaError::MessageConsumptionFatal(_)) => return Err(self.consumer_fatal(&e)),
                Err(e) => errors.log(&e),
            }
            if count >= max {
                break;
            }
            next = self.consumer.poll(Duration::ZERO);
        }
        file_run(&mut gathered, &mut run);
        Ok(gathered)
    }

    /// A fatal consumer error, explained: being fenced out of the group by
    /// a static member with our id says what to do.
    fn consumer_fatal(&self, e: &KafkaError) -> InstanceError {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::FencedInstanceId) => InstanceError::FencedMember {
                group_instance_id: clients::group_instance_id(&self.pipeline, &self.options.instance_id),
                reason: e.to_string(),
            },
            _ => InstanceError::Consumer { reason: e.to_string() },
        }
    }
}

/// Files a run of one partition's records under that partition, after any
/// of its records gathered before.
fn file_run<'c>(gathered: &mut Gathered<'c>, run: &mut Vec<BorrowedMessage<'c>>) {
    let Some(first) = run.first() else {
        return;
    };
    let tp = (first.topic().to_owned(), first.partition());
    match gathered.entry(tp) {
        std::collections::btree_map::Entry::Vacant(slot) => {
            slot.insert(std::mem::take(run));
        }
        std::collections::btree_map::Entry::Occupied(mut slot) => slot.get_mut().append(run),
    }
}

/// Consumer errors, logged at most once per 5 s each so that an outage does
/// not flood the log.
#[derive(Default)]
pub(super) struct ErrorLog {
    last: HashMap<String, Instant>,
}

impl ErrorLog {
    pub(super) fn log(&mut self, e: &KafkaError) {
        if matches!(e, KafkaError::PartitionEOF(_)) {
            return;
        }
        let text = e.to_string();
        let now = Instant::now();
        let due = self
            .last
            .get(&text)
            .is_none_or(|t| now.duration_since(*t) > Duration::from_secs(5));
        if due {
            tracing::warn!("consumer: {text}");
            self.last.insert(text, now);
        }
    }
}
