//! `weir dev`: what the first five minutes need — sample data flowing into
//! an in-process broker, and a view of what comes out.
//!
//! - [`samples`]: deterministic generators (trades, logs, operations, sentences).
//! - [`Feeder`]: a thread producing samples at a steady rate.
//! - [`Watcher`]: a thread reading the output topics, keeping counts and the
//!   latest records for display.

pub mod samples;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::shutdown::Shutdown;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};

use samples::Samples;

/// Produces samples to a topic at a steady rate until stopped.
pub struct Feeder {
    /// Records sent so far.
    pub sent: Arc<AtomicU64>,
    handle: JoinHandle<()>,
}

impl Feeder {
    /// Starts feeding `topic` on `bootstrap` with `samples` at `rate` records/s.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        mut samples: Samples,
        rate: f64,
        stop: Shutdown,
    ) -> Result<Feeder, KafkaError> {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "5")
            .create()?;
        let sent = Arc::new(AtomicU64::new(0));
        let (count, topic) = (sent.clone(), topic.to_owned());
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            while !stop.requested() {
                // Catch up to where the rate says we should be, then nap.
                let due = (start.elapsed().as_secs_f64() * rate) as u64;
                while count.load(Ordering::Relaxed) < due {
                    let Some(s) = samples.next() else { return };
                    let mut record = BaseRecord::<str, str>::to(&topic);
                    if let Some(v) = &s.value {
                        record = record.payload(v);
                    }
                    if let Some(k) = &s.key {
                        record = record.key(k);
                    }
                    if producer.send(record).is_err() {
                        // Queue full: let the producer drain.
                        std::thread::sleep(Duration::from_millis(10));
                        break;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = producer.flush(Duration::from_secs(2));
        });
        Ok(Feeder { sent, handle })
    }

    /// Waits for the thread after `stop` was set.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

/// One record seen on an output topic.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Topic.
    pub topic: String,
    /// Key, lossy UTF-8.
    pub key: Option<String>,
    /// Value, lossy UTF-8.
    pub value: Option<String>,
}

/// What the watcher has seen.
#[derive(Debug, Default)]
pub struct Seeing {
    /// Records per topic.
    pub counts: BTreeMap<String, u64>,
    /// The latest records, newest last.
    pub latest: VecDeque<Seen>,
}

/// Reads the output topics and keeps counts and the latest records.
pub struct Watcher {
    /// What was seen.
    pub seeing: Arc<Mutex<Seeing>>,
    handle: JoinHandle<()>,
}

impl Watcher {
    /// Starts watching `topics` on `bootstrap`, keeping the latest `keep` records.
    pub fn start(bootstrap: &str, topics: &[&str], keep: usize, stop: Shutdown) -> Result<Watcher, KafkaError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", format!("weir-dev-watcher-{}", std::process::id()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()?;
        consumer.subscribe(topics)?;
        let seeing = Arc::new(Mutex::new(Seeing::default()));
        let shared = seeing.clone();
        let handle = std::thread::spawn(move || {
            while !stop.requested() {
                let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let Ok(mut s) = shared.lock() else { return };
                *s.counts.entry(m.topic().to_owned()).or_default() += 1;
                s.latest.push_back(Seen {
                    topic: m.topic().to_owned(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: m.payload().map(|v| String::from_utf8_lossy(v).into_owned()),
                });
                while s.latest.len() > keep {
                    s.latest.pop_front();
                }
            }
        });
        Ok(Watcher { seeing, handle })
    }

    /// Waits for the thread after `stop` was set.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}
