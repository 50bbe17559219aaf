//! Kafka side of the integration tests: the shared broker, unique names,
//! producing input, reading committed output, and `weir run` processes.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use weir_test_harness::broker::Broker;
use weir_test_harness::committed::CommittedRecord;

/// The broker every test of this process shares.
pub fn broker() -> &'static Broker {
    Broker::shared()
}

/// A name no other test (or earlier run on an external broker) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a topic with `partitions` partitions.
pub fn create_topic(name: &str, partitions: i32) {
    broker()
        .create_topic(name, partitions)
        .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
}

/// An input record for [`produce`].
#[derive(Debug, Clone, Default)]
pub struct In {
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Timestamp (ms); `None` lets the producer set it.
    pub timestamp: Option<i64>,
    /// Partition; `None` partitions by key.
    pub partition: Option<i32>,
}

impl In {
    /// A record with just a value.
    pub fn value(v: impl Into<Vec<u8>>) -> In {
        In {
            value: Some(v.into()),
            ..In::default()
        }
    }
}

/// A plain (non-transactional) producer on the test broker.
pub fn producer() -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("create a test producer")
}

/// Produces records and waits until all are acknowledged.
pub fn produce(topic: &str, records: &[In]) {
    let p = producer();
    for r in records {
        send(&p, topic, r);
    }
    p.flush(Duration::from_secs(30)).expect("flush test input");
}

/// Sends one record, waiting while the queue is full.
pub fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, r: &In) {
    let mut headers = OwnedHeaders::new();
    for (k, v) in &r.headers {
        headers = headers.insert(Header {
            key: k,
            value: v.as_deref(),
        });
    }
    let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).headers(headers);
    if let Some(k) = &r.key {
        rec = rec.key(k);
    }
    if let Some(v) = &r.value {
        rec = rec.payload(v);
    }
    if let Some(t) = r.timestamp {
        rec = rec.timestamp(t);
    }
    if let Some(p) = r.partition {
        rec = rec.partition(p);
    }
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, back)) => {
                rec = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// What a `read_committed` consumer sees in `topic` now. On nisshi (which
/// does not report aborted transactions) the raw log is read and filtered by
/// the transaction markers; on an external broker a real consumer is used.
pub fn committed(topic: &str) -> Vec<CommittedRecord> {
    if broker().needs_raw_reader() {
        broker()
            .read_committed(topic, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("read {topic}: {e}"))
    } else {
        consume(topic, "read_committed")
    }
}

/// Every record in `topic`, including those of aborted transactions.
pub fn all_records(topic: &str) -> Vec<CommittedRecord> {
    consume(topic, "read_uncommitted")
}

fn consume(topic: &str, isolation: &str) -> Vec<CommittedRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", unique("reader"))
        .set("isolation.level", isolation)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("create a read_committed consumer");
    let meta = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let partitions = meta.topics().first().map_or(0, |t| t.partitions().len());
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let mut at_end = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while at_end.len() < partitions && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(CommittedRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp: m.timestamp().to_millis().unwrap_or(-1),
            }),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            _ => {}
        }
    }
    out
}

/// Waits until `topic` holds at least `n` committed records (or `timeout`
/// passes) and returns what it holds.
pub fn wait_for(topic: &str, n: usize, timeout: Duration) -> Vec<CommittedRecord> {
    let deadline = Instant::now() + timeout;
    loop {
        let records = committed(topic);
        if records.len() >= n || Instant::now() >= deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Values of records as a sorted multiset of strings.
pub fn values(records: &[CommittedRecord]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| r.value_str().unwrap_or("<none>").to_owned())
        .collect();
    v.sort();
    v
}

/// Counts of each value.
pub fn counts(values: &[String]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for v in values {
        *m.entry(v.as_str()).or_default() += 1;
    }
    m
}

/// Writes a pipeline file whose `[kafka]` points at the test broker.
/// `body` is everything but the `[kafka]` table.
pub fn pipeline_file(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    let text = format!(
        "{body}\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\"transaction.timeout.ms\" = 10000\n",
        broker().bootstrap
    );
    std::fs::write(&path, text).expect("write the pipeline file");
    path
}

/// A `weir run` process, killed when dropped.
pub struct WeirProcess {
    child: Child,
    /// Its stderr (logs at info level).
    pub log: PathBuf,
}

impl WeirProcess {
    /// Starts `weir run PIPELINE --instance-id ID EXTRA…`.
    pub fn start(pipeline: &Path, instance: &str, extra: &[&str]) -> WeirProcess {
        let log = pipeline.with_file_name(format!("weir-{instance}-{}.log", unique("run")));
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("run")
            .arg(pipeline)
            .args(["--instance-id", instance])
            .args(extra)
            .env("WEIR_LOG", "info,librdkafka=warn,rdkafka=warn,weir::query=debug")
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create the log file"))
            .spawn()
            .expect("start weir run");
        WeirProcess { child, log }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait(timeout)
    }

    /// Waits for the process to exit by itself, up to `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for weir") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("weir did not exit within {timeout:?}; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WeirProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin address a `weir run` printed.
pub fn admin_addr(w: &mut WeirProcess) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(w.running(), "weir exited:\n{}", w.log_text());
        let log = w.log_text();
        if let Some(addr) = log
            .split("admin API at http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
        {
            return addr.to_owned();
        }
        assert!(Instant::now() < deadline, "no admin address in the log:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads `now()` every half second until it equals `want` or `timeout`
/// passes; returns the last reading (output that is still catching up).
pub fn until<T: PartialEq>(want: &T, timeout: Duration, now: impl Fn() -> T) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let got = now();
        if &got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Feeds `records` into `topic` from a background thread, 100 at a time
/// every `pause`, so that input keeps flowing while instances die.
pub fn feed_slowly(topic: &str, records: Vec<In>, pause: Duration) -> std::thread::JoinHandle<()> {
    let topic = topic.to_owned();
    std::thread::spawn(move || {
        let p = producer();
        for chunk in records.chunks(100) {
            for r in chunk {
                send(&p, &topic, r);
            }
            std::thread::sleep(pause);
        }
        p.flush(Duration::from_secs(30)).expect("flush");
    })
}

pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the admin API");
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}
