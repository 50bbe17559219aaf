//! librdkafka clients as a pipeline needs them: the settings Weir chooses,
//! merged with the pipeline's `[kafka]` table; the producer side of a task
//! ([`ProducerSink`]); the internal topics ([`topics`]); and waiting out a
//! broker that went away ([`retry`]). Shared by the instance
//! ([`crate::kafka`]) and the module registry ([`crate::registry`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};

use self::retry::Wait;
use crate::pipeline::{Guarantee, Pipeline};
use crate::shutdown::Shutdown;
use crate::task::{OutRecord, Sink, SinkError};
use crate::topology::Topology;

pub mod retry;
pub mod topics;

/// The partition assignor: cooperative-sticky (partitions move one by one,
/// the rest keep working), unless a task keeps state over several topics.
/// Then partition `p` of all of them must go to one instance together:
/// `range` does that for co-partitioned topics of one subscription, as
/// Kafka Streams' own assignor does for its tasks.
fn assignor(pipeline: &Pipeline) -> &'static str {
    if Topology::from_pipeline(pipeline).needs_co_location() {
        "range"
    } else {
        "cooperative-sticky"
    }
}

/// Consumer settings: Weir's choices, then the pipeline's `[kafka]` table.
pub fn consumer_config(pipeline: &Pipeline, instance_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("client.id", format!("weir-{}-{instance_id}", pipeline.application_id))
        .set("group.id", &pipeline.application_id)
        // Kafka Streams starts a new application from the beginning.
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", assignor(pipeline))
        // Bounded prefetch: a slow guest slows consumption, not memory.
        .set("queued.max.messages.kbytes", "16384")
        // Statistics carry the consumer lag the admin API reports.
        .set("statistics.interval.ms", "5000")
        .set(
            "isolation.level",
            match pipeline.guarantee {
                Guarantee::ExactlyOnce => "read_committed",
                Guarantee::AtLeastOnce => "read_uncommitted",
            },
        );
    if pipeline.static_membership {
        c.set("group.instance.id", group_instance_id(pipeline, instance_id));
    }
    apply_user(&mut c, pipeline);
    // The guarantee depends on these; the pipeline parser refuses them in [kafka].
    c.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    if assignor(pipeline) == "range" && c.get("partition.assignment.strategy") != Some("range") {
        // Co-location is what keeps such a task's state whole.
        tracing::warn!(
            "[kafka] partition.assignment.strategy is ignored: a task keeps state over several topics, \
             which needs the range assignor"
        );
        c.set("partition.assignment.strategy", "range");
    }
    c
}

/// Producer settings: Weir's choices, then the pipeline's `[kafka]` table.
pub fn producer_config(pipeline: &Pipeline, instance_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set(
        "client.id",
        format!("weir-{}-{instance_id}-producer", pipeline.application_id),
    )
    // Partition by key the way the Java client does, so that Weir's
    // outputs are co-partitioned with Kafka Streams applications.
    .set("partitioner", "murmur2_random")
    // Bounded in-flight memory: a slow broker slows the pipeline.
    .set("queue.buffering.max.kbytes", "65536")
    // Kafka Streams' producer default: fuller batches, so the client spends
    // about half the CPU per record (BENCHMARKS.md). Every commit flushes
    // at once, whatever the linger, so exactly-once output is not later.
    .set("linger.ms", "100");
    apply_user(&mut c, pipeline);
    c.set("enable.idempotence", "true");
    if pipeline.guarantee == Guarantee::ExactlyOnce {
        c.set("transactional.id", transactional_id(pipeline, instance_id));
    }
    c
}

/// How long one poll round may run: half of the tighter of the consumer's
/// `max.poll.interval.ms` and, exactly-once, the producer's
/// `transaction.timeout.ms` (librdkafka's defaults: 300 s and 60 s), as the
/// settings above make them. Past the first, the instance would leave its
/// group (a rebalance, and another when it rejoins); past the second, a
/// broker aborts the transaction and fences the producer. A slow guest
/// makes a round stop early instead (see `kafka::round`).
pub fn round_budget(pipeline: &Pipeline, instance_id: &str) -> Duration {
    let ms = |c: &ClientConfig, key: &str, default: u64| {
        c.get(key).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(default)
    };
    let poll = ms(&consumer_config(pipeline, instance_id), "max.poll.interval.ms", 300_000);
    let budget = match pipeline.guarantee {
        Guarantee::ExactlyOnce => poll.min(ms(
            &producer_config(pipeline, instance_id),
            "transaction.timeout.ms",
            60_000,
        )),
        Guarantee::AtLeastOnce => poll,
    };
    Duration::from_millis(budget / 2)
}

/// The transactional id of an instance: stable across restarts, so that a
/// restarted instance fences its previous life and aborts its open transaction.
pub fn transactional_id(pipeline: &Pipeline, instance_id: &str) -> String {
    format!("{}-{instance_id}", pipeline.application_id)
}

/// The static group membership id of an instance (KIP-345): a restart
/// within `session.timeout.ms` takes its partitions back at once, with no
/// rebalance. Like the transactional.id it must be stable across restarts and
/// unique among the instances running at once, so it has the same parts.
pub fn group_instance_id(pipeline: &Pipeline, instance_id: &str) -> String {
    format!("{}-{instance_id}", pipeline.application_id)
}

/// The pipeline's `[kafka]` table alone (admin and restore clients).
pub fn base_config(pipeline: &Pipeline) -> ClientConfig {
    let mut c = ClientConfig::new();
    apply_user(&mut c, pipeline);
    c
}

fn apply_user(c: &mut ClientConfig, pipeline: &Pipeline) {
    for (k, v) in &pipeline.kafka {
        c.set(k, v);
    }
    c.set_log_level(RDKafkaLogLevel::Warning);
}

/// Producer callbacks: delivery failures are counted so that at-least-once
/// never commits offsets past a record that did not arrive, and the end of
/// each changelog partition is tracked for store checkpoints.
#[derive(Default)]
pub struct ProducerCtx {
    failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
    /// When a delivery failure was last logged, and the failures so far
    /// then: while the brokers are unreachable every queued record fails,
    /// and one line every 5 s says so.
    failure_logged: Mutex<Option<(std::time::Instant, u64)>>,
    changelog_ends: Mutex<HashMap<(String, i32), i64>>,
}

/// Delivery opaque of a changelog record (others carry 0).
const CHANGELOG: usize = 1;

impl ProducerCtx {
    /// The offset after the last changelog record delivered to this
    /// partition, as far as delivery reports have come in (a lower value is
    /// safe for a checkpoint: restoring replays a little more).
    pub fn changelog_end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.changelog_ends
            .lock()
            .ok()
            .and_then(|m| m.get(&(topic.to_owned(), partition)).copied())
    }

    /// Delivery failures so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    /// The latest delivery failure.
    pub fn last_failure(&self) -> Option<String> {
        self.last_failure.lock().ok().and_then(|g| g.clone())
    }
}

impl ClientContext for ProducerCtx {}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        use rdkafka::Message as _;
        if let (Ok(m), CHANGELOG) = (result, opaque)
            && let Ok(mut ends) = self.changelog_ends.lock()
        {
            let end = ends.entry((m.topic().to_owned(), m.partition())).or_insert(0);
            *end = (*end).max(m.offset() + 1);
        }
        if let Err((e, m)) = result {
            let text = format!("delivery to {}[{}] failed: {e}", m.topic(), m.partition());
            if let Ok(mut g) = self.last_failure.lock() {
                *g = Some(text.clone());
            }
            let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
            if let Ok(mut logged) = self.failure_logged.lock() {
                let (due, since) = match *logged {
                    None => (true, failures - 1),
                    Some((at, seen)) => (at.elapsed() >= Duration::from_secs(5), seen),
                };
                if due {
                    match failures - since {
                        1 => tracing::warn!("{text}"),
                        n => tracing::warn!("{n} deliveries failed in the last seconds; the latest: {text}"),
                    }
                    *logged = Some((std::time::Instant::now(), failures));
                }
            }
        }
    }
}

/// The producer type of an instance.
pub type Producer = ThreadedProducer<ProducerCtx>;

/// Sends a task's records to Kafka. A full producer queue blocks (and so
/// slows consumption) instead of growing memory.
pub struct ProducerSink<'a> {
    /// The instance's producer.
    pub producer: &'a Producer,
    /// The instance's shutdown (a full queue while stopping is logged).
    pub shutdown: &'a Shutdown,
    /// The instance's transactional id (named when a full queue is logged).
    pub transactional_id: &'a str,
}

impl Sink for ProducerSink<'_> {
    fn send(&mut self, r: &OutRecord<'_>) -> Result<(), SinkError> {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (name, value) in r.headers {
            headers = headers.insert(Header {
                key: name,
                value: *value,
            });
        }
        let opaque = if r.changelog { CHANGELOG } else { 0 };
        let mut record: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(r.topic, opaque)
            .timestamp(r.timestamp)
            .headers(headers);
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        if let Some(k) = r.key {
            record = record.key(k);
        }
        if let Some(v) = r.value {
            record = record.payload(v);
        }
        let mut full: Option<Wait<'_>> = None;
        let mut told = false;
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    if let Some(wait) = full {
                        wait.over(None);
                    }
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The producer's own thread serves deliveries; wait for
                    // room (logged if it takes long: the brokers do not take
                    // the records). A stop waits too (the batch must be
                    // written to be committed); say so once, as a second
                    // signal is then the way out.
                    record = back;
                    let wait = full.get_or_insert_with(|| Wait::backpressure(QUEUE_FULL, self.transactional_id));
                    if !told && self.shutdown.requested() && wait.waited() >= Duration::from_secs(1) {
                        told = true;
                        tracing::warn!(
                            topic = r.topic,
                            "stopping, but the producer's queue is full: waiting for the brokers to \
                             take the batch before the final commit (a second signal exits at once)"
                        );
                    }
                    wait.failed(&"the producer's queue is full", None);
                }
                Err((e, _)) => {
                    return Err(SinkError {
                        topic: r.topic.to_owned(),
                        reason: e.to_string(),
                        // librdkafka refuses records while the transaction
                        // is in an abortable error state (e.g. records of it
                        // timed out while the brokers were unreachable).
                        abortable: matches!(e, KafkaError::MessageProduction(RDKafkaErrorCode::State)),
                    });
                }
            }
        }
    }
}

/// What a full producer queue waits for.
const QUEUE_FULL: &str = "take the records in the producer's queue (it is full)";

/// Context of assign-only readers (restore, the module registry): reaching
/// the end of a partition is what they wait for, not an error to log.
pub struct ReaderCtx(pub &'static str);

impl ClientContext for ReaderCtx {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            tracing::warn!("{}: {error}: {reason}", self.0);
        }
    }
}

impl rdkafka::consumer::ConsumerContext for ReaderCtx {}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn pipeline(kafka: &str) -> Pipeline {
        let text = format!(
            "application-id = \"app\"\ninputs = [\"in\"]\n[[stage]]\nmodule = \"m.wasm\"\n\
             [outputs]\ndefault = \"out\"\n[kafka]\n\"bootstrap.servers\" = \"127.0.0.1:9\"\n{kafka}"
        );
        Pipeline::parse(Path::new("/p/pipe.toml"), &text).expect("a valid pipeline")
    }

    #[test]
    fn the_producer_lingers_as_kafka_streams_does_unless_the_pipeline_says_otherwise() {
        let linger = |kafka: &str| {
            producer_config(&pipeline(kafka), "0")
                .get("linger.ms")
                .map(str::to_owned)
        };
        assert_eq!(linger(""), Some("100".into()));
        assert_eq!(linger("\"linger.ms\" = \"5\"\n"), Some("5".into()));
    }
}
