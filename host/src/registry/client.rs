//! Reading and writing the registry's control topics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, FromClientConfigAndContext as _};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{
    ACTIVE_TOPIC, Activation, CHUNKS_TOPIC, MODULES_TOPIC, ModuleRecord, ResolveError, Snapshot, active_key, chunk,
    reassemble,
};
use crate::clients::ReaderCtx;
use crate::clients::topics::{self, TopicError};
use crate::module::ModuleInfo;
use crate::topology::{InternalKind, InternalTopic};
use crate::units::now_ms;

/// The registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A Kafka operation failed.
    #[error("module registry: cannot {what}: {reason}")]
    Kafka {
        /// What was being done.
        what: String,
        /// librdkafka's message.
        reason: String,
    },
    /// A control topic could not be created.
    #[error("module registry: {0}")]
    Topics(#[from] TopicError),
    /// A version's bytes are missing or do not match its digest.
    #[error("module {label} in the registry is damaged: {reason}; push the file again")]
    Damaged {
        /// `name@digest`.
        label: String,
        /// What is wrong.
        reason: String,
    },
    /// A name or version does not exist.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// Where reading a control topic starts. Offset 0 rather than `Beginning`:
/// a logical offset costs librdkafka an offset query that it first delays
/// by half a second; compaction keeps offset 0 valid (and
/// `auto.offset.reset` covers a log that starts later).
const FIRST: Offset = Offset::Offset(0);

/// A control-topic record: key (UTF-8) and value.
type Record = (String, Option<Vec<u8>>);

fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> RegistryError {
    let what = what.into();
    move |e| RegistryError::Kafka {
        what,
        reason: e.to_string(),
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed {
    /// A new version.
    New(ModuleRecord),
    /// These bytes were already there under this name: nothing changed.
    Existing(ModuleRecord),
}

/// A client of the registry's control topics.
#[derive(Clone)]
pub struct Registry {
    config: ClientConfig,
    timeout: Duration,
    /// Idle readers per topic, reused: a new consumer costs a connection
    /// and metadata round trips, which a swap would otherwise wait for (and
    /// a consumer that moves to another topic waits for its metadata too).
    readers: Arc<Mutex<HashMap<String, Vec<BaseConsumer<ReaderCtx>>>>>,
}

/// Remembers the first delivery failure of a producer, and the offset of
/// each record (by the index it was sent with).
#[derive(Default)]
struct Deliveries {
    failure: Mutex<Option<String>>,
    offsets: Mutex<Vec<(usize, i64)>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        match result {
            Ok(m) => {
                if let Ok(mut o) = self.offsets.lock() {
                    o.push((index, m.offset()));
                }
            }
            Err((e, _)) => {
                if let Ok(mut f) = self.failure.lock() {
                    f.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

impl Registry {
    /// A client over `config` (at least `bootstrap.servers`).
    pub fn new(config: ClientConfig, timeout: Duration) -> Registry {
        Registry {
            config,
            timeout,
            readers: Arc::default(),
        }
    }

    /// Creates the control topics if they do not exist.
    pub fn ensure_topics(&self) -> Result<(), RegistryError> {
        let consumer: BaseConsumer = self.consumer_config("metadata").create().map_err(kafka("connect"))?;
        let metadata = consumer
            .fetch_metadata(None, self.timeout)
            .map_err(kafka("read cluster metadata"))?;
        let wanted: Vec<InternalTopic> = [MODULES_TOPIC, CHUNKS_TOPIC, ACTIVE_TOPIC]
            .into_iter()
            .map(|name| InternalTopic {
                name: name.to_owned(),
                partitions: Some(1),
                kind: InternalKind::Control,
            })
            .collect();
        topics::ensure(&self.config, &metadata, &wanted, 1, self.timeout)?;
        Ok(())
    }

    /// Whether the control topics exist (reading commands do not create them).
    pub fn exists(&self) -> Result<bool, RegistryError> {
        let consumer = self.reader("metadata")?;
        let metadata = consumer
            .fetch_metadata(None, self.timeout)
            .map_err(kafka("read cluster metadata"))?;
        Ok([MODULES_TOPIC, CHUNKS_TOPIC, ACTIVE_TOPIC]
            .iter()
            .all(|t| metadata.topics().iter().any(|m| m.name() == *t && m.error().is_none())))
    }

    /// Everything in the registry now.
    pub fn snapshot(&self) -> Result<Snapshot, RegistryError> {
        let mut snap = Snapshot::default();
        for (key, value) in self.read_topic(MODULES_TOPIC, FIRST, |_| false)? {
            let Some(value) = value else { continue };
            match serde_json::from_slice::<ModuleRecord>(&value) {
                Ok(m) => snap.add_module(m),
                Err(e) => tracing::warn!(key, "ignoring an unreadable module record: {e}"),
            }
        }
        for (key, value) in self.read_topic(ACTIVE_TOPIC, FIRST, |_| false)? {
            if let Some((app, stage, a)) = parse_activation(&key, value.as_deref()) {
                snap.active.insert((app, stage), a);
            }
        }
        Ok(snap)
    }

    /// Stores a validated module under `name`: a no-op when these bytes are
    /// already there under that name.
    pub fn push(&self, name: &str, bytes: &[u8], info: &ModuleInfo) -> Result<Pushed, RegistryError> {
        let snap = self.snapshot()?;
        if let Some(m) = snap.by_digest(name, &info.digest) {
            return Ok(Pushed::Existing(m.clone()));
        }
        let chunks = chunk(bytes).map_err(|e| RegistryError::Damaged {
            label: format!("{name}@{}", info.digest),
            reason: format!("cannot compress it: {e}"),
        })?;
        let compressed = chunks.iter().map(Vec::len).sum();
        let mut record = ModuleRecord::new(name, snap.next_version(name), info, compressed, now_ms());
        let producer = self.producer()?;
        // The same bytes under another name share their chunks.
        match snap.any_by_digest(&info.digest) {
            Some(other) => record.first_chunk = other.first_chunk,
            None => {
                for (i, c) in chunks.iter().enumerate() {
                    send(&producer, CHUNKS_TOPIC, &format!("{}/{i:06}", info.digest), Some(c), i)?;
                }
                self.flush(&producer, "store the module's bytes")?;
                record.first_chunk = producer
                    .context()
                    .offsets
                    .lock()
                    .ok()
                    .and_then(|o| o.iter().map(|(_, offset)| *offset).min());
            }
        }
        let value = serde_json::to_vec(&record).unwrap_or_default();
        send(&producer, MODULES_TOPIC, &record.key(), Some(&value), 0)?;
        self.flush(&producer, "store the module's record")?;
        Ok(Pushed::New(record))
    }

    /// The bytes of a version, reassembled from its chunks and checked.
    /// Reading starts at its first chunk, when the record knows where that is.
    /// A short read is tried once more with new readers before it counts as damage.
    pub fn fetch(&self, record: &ModuleRecord) -> Result<Vec<u8>, RegistryError> {
        self.fetch_once(record).or_else(|e| {
            tracing::debug!("{e}; reading once more");
            if let Ok(mut r) = self.readers.lock() {
                r.clear();
            }
            self.fetch_once(record)
        })
    }

    fn fetch_once(&self, record: &ModuleRecord) -> Result<Vec<u8>, RegistryError> {
        let prefix = format!("{}/", record.digest);
        let start = Offset::Offset(record.first_chunk.unwrap_or(0));
        // Distinct indices: a retried write may have stored a chunk twice.
        let mut found = std::collections::BTreeSet::new();
        let mut chunks: Vec<(u32, Vec<u8>)> = self
            .read_topic(CHUNKS_TOPIC, start, |(k, _)| {
                if let Some(i) = k.strip_prefix(&prefix) {
                    found.insert(i.to_owned());
                }
                found.len() >= record.chunks as usize
            })?
            .into_iter()
            .filter_map(|(k, v)| {
                let index = k.strip_prefix(&prefix)?.parse().ok()?;
                Some((index, v?))
            })
            .collect();
        chunks.sort_by_key(|(i, _)| *i);
        chunks.dedup_by_key(|(i, _)| *i);
        let chunks: Vec<Vec<u8>> = chunks.into_iter().map(|(_, c)| c).collect();
        reassemble(record, &chunks).map_err(|reason| RegistryError::Damaged {
            label: record.label(),
            reason,
        })
    }

    /// Writes a stage's activation.
    pub fn write_activation(&self, application: &str, stage: &str, a: &Activation) -> Result<(), RegistryError> {
        let producer = self.producer()?;
        let value = serde_json::to_vec(a).unwrap_or_default();
        send(
            &producer,
            ACTIVE_TOPIC,
            &active_key(application, stage),
            Some(&value),
            0,
        )?;
        self.flush(&producer, "write the activation")
    }

    fn producer(&self) -> Result<ThreadedProducer<Deliveries>, RegistryError> {
        let mut c = self.config.clone();
        // Not idempotent: a retried record is harmless here (chunks and
        // activations are rewritten as they were), and an idempotent producer
        // waits for a producer id before its first send.
        c.set("acks", "all")
            // Chunks are compressed already.
            .set("compression.type", "none")
            .set("linger.ms", "1");
        ThreadedProducer::from_config_and_context(&c, Deliveries::default()).map_err(kafka("create a producer"))
    }

    fn flush(&self, p: &ThreadedProducer<Deliveries>, what: &str) -> Result<(), RegistryError> {
        p.flush(self.timeout).map_err(kafka(what))?;
        let failure = p.context().failure.lock().ok().and_then(|mut f| f.take());
        match failure {
            Some(reason) => Err(RegistryError::Kafka {
                what: what.to_owned(),
                reason,
            }),
            None => Ok(()),
        }
    }

    fn reader(&self, purpose: &str) -> Result<BaseConsumer<ReaderCtx>, RegistryError> {
        BaseConsumer::from_config_and_context(&self.consumer_config(purpose), ReaderCtx("module registry"))
            .map_err(kafka("connect"))
    }

    fn consumer_config(&self, purpose: &str) -> ClientConfig {
        let mut c = self.config.clone();
        c.set("group.id", format!("weir-registry-{purpose}"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50")
            // librdkafka backs off after reaching the end of a partition
            // (500 ms by default), which would delay noticing an activation.
            .set("fetch.error.backoff.ms", "10");
        c
    }

    /// The records of a single-partition control topic from `start`, oldest
    /// first, until `done` says so or the consumer reports the end of the
    /// partition (a fetch's high watermark; the one ListOffsets answers can
    /// lag behind on some brokers).
    fn read_topic(
        &self,
        topic: &str,
        start: Offset,
        mut done: impl FnMut(&Record) -> bool,
    ) -> Result<Vec<Record>, RegistryError> {
        let pooled = self
            .readers
            .lock()
            .ok()
            .and_then(|mut r| r.get_mut(topic).and_then(Vec::pop));
        let consumer = match pooled {
            Some(c) => c,
            None => self.reader("read")?,
        };
        assign(&consumer, topic, start)?;
        let out = self.read_assigned(&consumer, topic, &mut done);
        // Idle readers fetch nothing: the next read assigns afresh (and
        // librdkafka drops what the old assignment had queued).
        if out.is_ok()
            && consumer.unassign().is_ok()
            && let Ok(mut r) = self.readers.lock()
        {
            r.entry(topic.to_owned()).or_default().push(consumer);
        }
        out
    }

    fn read_assigned(
        &self,
        consumer: &BaseConsumer<ReaderCtx>,
        topic: &str,
        done: &mut impl FnMut(&Record) -> bool,
    ) -> Result<Vec<Record>, RegistryError> {
        let deadline = Instant::now() + self.timeout;
        let mut out = Vec::new();
        loop {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let key = m
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .unwrap_or_default();
                    let record = (key, m.payload().map(<[u8]>::to_vec));
                    let stop = done(&record);
                    out.push(record);
                    if stop {
                        return Ok(out);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => return Ok(out),
                Some(Err(e)) => return Err(kafka(format!("read {topic}"))(e)),
                None if Instant::now() > deadline => {
                    return Err(RegistryError::Kafka {
                        what: format!("read {topic}"),
                        reason: format!("timed out after {:?}", self.timeout),
                    });
                }
                None => {}
            }
        }
    }
}

fn assign(consumer: &BaseConsumer<ReaderCtx>, topic: &str, offset: Offset) -> Result<(), RegistryError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, offset)
        .map_err(kafka(format!("read {topic}")))?;
    consumer.assign(&tpl).map_err(kafka(format!("read {topic}")))
}

fn send(
    producer: &ThreadedProducer<Deliveries>,
    topic: &str,
    key: &str,
    value: Option<&[u8]>,
    index: usize,
) -> Result<(), RegistryError> {
    let mut record: BaseRecord<'_, str, [u8], usize> = BaseRecord::with_opaque_to(topic, index).key(key).partition(0);
    if let Some(v) = value {
        record = record.payload(v);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(kafka(format!("write to {topic}"))(e)),
        }
    }
}

fn parse_activation(key: &str, value: Option<&[u8]>) -> Option<(String, String, Activation)> {
    let (app, stage) = key.rsplit_once('/')?;
    match serde_json::from_slice::<Activation>(value?) {
        Ok(a) => Some((app.to_owned(), stage.to_owned(), a)),
        Err(e) => {
            tracing::warn!(key, "ignoring an unreadable activation: {e}");
            None
        }
    }
}

/// What changed in the registry.
#[derive(Debug, Clone)]
pub enum Update {
    /// A version was pushed.
    Module(ModuleRecord),
    /// A stage got an activation: (application, stage, activation).
    Activation(String, String, Activation),
}

/// Follows the registry as it changes (one per running instance): the
/// activation table and the version records (not the chunks).
pub struct ActiveTail {
    consumer: BaseConsumer<ReaderCtx>,
    timeout: Duration,
}

const TAILED: [&str; 2] = [MODULES_TOPIC, ACTIVE_TOPIC];

impl ActiveTail {
    /// Starts reading the registry from its beginning.
    pub fn open(registry: &Registry) -> Result<ActiveTail, RegistryError> {
        registry.ensure_topics()?;
        let consumer = registry.reader("tail")?;
        let mut tpl = TopicPartitionList::new();
        for topic in TAILED {
            tpl.add_partition_offset(topic, 0, FIRST)
                .map_err(kafka(format!("read {topic}")))?;
        }
        consumer.assign(&tpl).map_err(kafka("follow the registry"))?;
        Ok(ActiveTail {
            consumer,
            timeout: registry.timeout,
        })
    }

    /// What arrived, waiting up to `wait` for the first.
    pub fn poll(&self, wait: Duration) -> Result<Vec<Update>, RegistryError> {
        let mut out = Vec::new();
        let mut next = self.consumer.poll(wait);
        while let Some(item) = next {
            match item {
                Ok(m) => {
                    let key = m
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .unwrap_or_default();
                    if m.topic() == ACTIVE_TOPIC {
                        out.extend(
                            parse_activation(&key, m.payload())
                                .map(|(app, stage, a)| Update::Activation(app, stage, a)),
                        );
                    } else if let Some(Ok(record)) = m.payload().map(serde_json::from_slice::<ModuleRecord>) {
                        out.push(Update::Module(record));
                    }
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => return Err(kafka("follow the registry")(e)),
            }
            next = self.consumer.poll(Duration::ZERO);
        }
        Ok(out)
    }

    /// Reads until everything written before this call has been seen: past
    /// the end ListOffsets reports, and until fetches find nothing new.
    pub fn catch_up(&self) -> Result<Vec<Update>, RegistryError> {
        let mut highs = Vec::new();
        for topic in TAILED {
            let (_, high) = self
                .consumer
                .fetch_watermarks(topic, 0, self.timeout)
                .map_err(kafka(format!("read the end of {topic}")))?;
            highs.push(high);
        }
        let deadline = Instant::now() + self.timeout;
        let mut out = Vec::new();
        let mut quiet = 0;
        loop {
            let news = self.poll(Duration::from_millis(50))?;
            quiet = if news.is_empty() { quiet + 1 } else { 0 };
            out.extend(news);
            let positions = self.consumer.position().ok();
            let reached = TAILED.iter().zip(&highs).all(|(topic, high)| {
                let at = positions
                    .as_ref()
                    .and_then(|tpl| tpl.find_partition(topic, 0))
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(0);
                at >= *high
            });
            if reached && quiet >= 2 {
                return Ok(out);
            }
            if Instant::now() > deadline {
                return Err(RegistryError::Kafka {
                    what: "read the registry to its end".into(),
                    reason: format!("timed out after {:?}", self.timeout),
                });
            }
        }
    }
}
