//! Kafka side of the integration tests: the shared broker, unique names,
//! producing input, reading committed output, and `weir run` processes.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use weir_test_harness::broker::Broker;
use weir_test_harness::committed::{CommittedRecord, LogCounts};

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

/// Produces records partitioned by key as Java clients (and Kafka Streams,
/// and Weir's repartition topics) do — murmur2 — rather than librdkafka's
/// default, and waits until all are acknowledged: for topics that must be
/// co-partitioned with a topic Weir repartitions into.
pub fn produce_as_java(topic: &str, records: &[In]) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("linger.ms", "5")
        .set("partitioner", "murmur2_random")
        .create()
        .expect("create a test producer");
    for r in records {
        send(&p, topic, r);
    }
    p.flush(Duration::from_secs(30)).expect("flush test input");
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

/// What a `read_committed` consumer sees in `topic` now, read as a user
/// would: with librdkafka under `isolation.level=read_committed`, which drops
/// aborted records by the aborted transactions listed in each Fetch
/// response. The test broker is a nisshi patched to list them
/// (`tests/broker/`); published nisshi 0.7.0 does not.
///
/// The harness's marker-aware reader, which applies the transaction markers
/// itself, gives a second opinion, read just after: each partition's records
/// as librdkafka read them must be the first of those it reads (more may
/// have been committed in between). A difference fails the test: the broker
/// lists aborted transactions wrongly, or the records are not what
/// `read_committed` promises.
pub fn committed(topic: &str) -> Vec<CommittedRecord> {
    committed_on(broker(), topic)
}

/// [`committed`] on broker `b` (a test's own, e.g. one behind a proxy).
pub fn committed_on(b: &Broker, topic: &str) -> Vec<CommittedRecord> {
    let read = consume(&b.bootstrap, topic);
    let second = b
        .read_committed(topic, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("read {topic} with the marker-aware reader: {e}"));
    assert_same_prefix(topic, &read, &second);
    read
}

/// Panics unless each partition's records in `first` are the first records
/// of that partition in `later`, by offset, key and value.
fn assert_same_prefix(topic: &str, first: &[CommittedRecord], later: &[CommittedRecord]) {
    type Seen<'a> = BTreeMap<i32, Vec<(i64, Option<&'a [u8]>, Option<&'a [u8]>)>>;
    fn by_partition(records: &[CommittedRecord]) -> Seen<'_> {
        let mut seen: Seen<'_> = BTreeMap::new();
        for r in records {
            seen.entry(r.partition)
                .or_default()
                .push((r.offset, r.key.as_deref(), r.value.as_deref()));
        }
        seen
    }
    let (first, later) = (by_partition(first), by_partition(later));
    for (partition, records) in &first {
        let theirs = later.get(partition).map_or(&[][..], Vec::as_slice);
        let n = records.len().min(theirs.len());
        let differ = records[..n].iter().zip(&theirs[..n]).position(|(a, b)| a != b);
        assert!(
            differ.is_none() && records.len() <= theirs.len(),
            "{topic} partition {partition}: librdkafka read_committed read {} records, the \
             marker-aware reader {} afterwards; first difference at #{:?}: {:?} vs {:?}",
            records.len(),
            theirs.len(),
            differ.unwrap_or(n),
            records.get(differ.unwrap_or(n)),
            theirs.get(differ.unwrap_or(n)),
        );
    }
}

/// The records in `topic`'s raw log counted by fate (committed, aborted,
/// still open) with the transaction markers (see the harness's `log_counts`).
pub fn log_counts(topic: &str) -> LogCounts {
    broker()
        .log_counts(topic, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("count the records of {topic}: {e}"))
}

/// [`log_counts`] partition by partition.
pub fn partition_log_counts(topic: &str) -> Vec<(i32, LogCounts)> {
    broker()
        .partition_log_counts(topic, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("count the records of {topic}: {e}"))
}

/// Reads every partition of `topic` from its start to where its committed
/// records end when the read starts (its last stable offset), with a
/// librdkafka `read_committed` consumer that is assigned the partitions (no
/// group), in partition and offset order.
fn consume(bootstrap: &str, topic: &str) -> Vec<CommittedRecord> {
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("create a read_committed consumer");
    let meta = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let partitions: Vec<i32> = meta
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        assignment
            .add_partition_offset(topic, *p, Offset::Beginning)
            .expect("assign a partition");
    }
    consumer.assign(&assignment).expect("assign");
    // Where each partition's committed records end now (a read_committed
    // consumer's watermark is the last stable offset): a partition that is
    // written all the time never shows its end (EOF) to a reader that
    // chases it, so the read ends at a record at or past this end too.
    let ends: BTreeMap<i32, i64> = partitions
        .iter()
        .map(|p| {
            let (_, end) = consumer
                .fetch_watermarks(topic, *p, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{topic}[{p}]: watermarks: {e}"));
            (*p, end)
        })
        .collect();
    let mut out = Vec::new();
    let mut at_end = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while at_end.len() < partitions.len() {
        if Instant::now() >= deadline {
            let stuck: Vec<String> = partitions
                .iter()
                .filter(|p| !at_end.contains(*p))
                .map(|p| {
                    let position = consumer
                        .position()
                        .ok()
                        .and_then(|l| l.find_partition(topic, *p).map(|e| e.offset()));
                    let marks = consumer.fetch_watermarks(topic, *p, Duration::from_secs(5)).ok();
                    format!("{p} (at {position:?}, watermarks {marks:?})")
                })
                .collect();
            panic!(
                "{topic}: librdkafka did not reach the end of partitions {stuck:?} in 30 s ({} records read)",
                out.len()
            );
        }
        match consumer.poll(Duration::from_millis(200)) {
            // Past the end: that partition is read.
            Some(Ok(m))
                if at_end.contains(&m.partition())
                    || ends.get(&m.partition()).is_some_and(|end| m.offset() >= *end) =>
            {
                at_end.insert(m.partition());
            }
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
            Some(Err(e)) => panic!("{topic}: reading read_committed: {e}"),
            None => {}
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
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
///
/// Its `linger.ms` is librdkafka's 5 ms, not Weir's 100 (as in every test
/// pipeline that is killed or aborted on purpose): the crash and abort
/// tests prove their point by finding a transaction's records on the broker
/// while it was open, and at 100 ms they mostly wait in the producer until
/// the commit's flush, or are purged unsent by an abort.
pub fn pipeline_file(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    let text = format!(
        "{body}\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n\"transaction.timeout.ms\" = 10000\n\"linger.ms\" = 5\n",
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
    /// Starts `weir run PIPELINE --instance-id ID EXTRA…`, with two
    /// processing threads unless `EXTRA` says otherwise: tasks run in
    /// parallel in every test, on any machine, as on a many-core one.
    pub fn start(pipeline: &Path, instance: &str, extra: &[&str]) -> WeirProcess {
        let log = pipeline.with_file_name(format!("weir-{instance}-{}.log", unique("run")));
        let threads: &[&str] = if extra.contains(&"--threads") {
            &[]
        } else {
            &["--threads", "2"]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("run")
            .arg(pipeline)
            .args(["--instance-id", instance])
            .args(threads)
            .args(extra)
            .env(
                "WEIR_LOG",
                "info,librdkafka=warn,rdkafka=warn,weir::status::query=debug",
            )
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

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `kill -SIG` (e.g. `STOP`, `CONT`) to the process.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status();
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

/// Produces records into a topic at a steady pace on a thread, 100 at a time
/// every `pause`. Before record `at` of each hold it waits until that hold's
/// gate opens, so that input is still flowing when the test's next step
/// happens, however slow the machine.
pub struct Feeder {
    gates: Vec<(usize, Arc<AtomicBool>)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Feeder {
    /// Starts feeding `records` into `topic`, 100 every `pause`, holding
    /// before each index in `holds`.
    pub fn start(topic: &str, records: Vec<In>, pause: Duration, holds: &[usize]) -> Feeder {
        Feeder::paced(topic, records, 100, pause, holds)
    }

    /// Starts feeding `records` into `topic`, `chunk` every `pause`, holding
    /// before each index in `holds`.
    pub fn paced(topic: &str, records: Vec<In>, chunk: usize, pause: Duration, holds: &[usize]) -> Feeder {
        let records = records.into_iter().map(|r| (topic.to_owned(), r)).collect();
        Feeder::paced_to(records, chunk, pause, holds)
    }

    /// [`Feeder::for_lives`] for records of several topics, each with its
    /// topic, fed in the order given (so that, e.g., both sides of a join
    /// flow together and pause together).
    pub fn for_lives_to(records: Vec<(String, In)>, pause: Duration, lives: usize) -> Feeder {
        let n = records.len();
        let holds: Vec<usize> = (1..lives).map(|k| k * n / lives).collect();
        Feeder::paced_to(records, 10, pause / 10, &holds)
    }

    /// [`Feeder::paced`] for records each with its topic.
    pub fn paced_to(records: Vec<(String, In)>, chunk: usize, pause: Duration, holds: &[usize]) -> Feeder {
        Feeder::feed(producer, records, chunk, pause, holds)
    }

    /// [`Feeder::paced`] into broker `b` (a test's own), with an idempotent
    /// producer: one that sends each record once even when the broker's
    /// connections drop while it sends (as through a cut proxy).
    pub fn paced_into(b: &Broker, topic: &str, records: Vec<In>, chunk: usize, pause: Duration) -> Feeder {
        let bootstrap = b.bootstrap.clone();
        let records = records.into_iter().map(|r| (topic.to_owned(), r)).collect();
        let idempotent = move || {
            ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("linger.ms", "5")
                .set("enable.idempotence", "true")
                .create()
                .expect("create an idempotent test producer")
        };
        Feeder::feed(idempotent, records, chunk, pause, &[])
    }

    /// Feeds `records` with the producer `make` returns (made on the
    /// feeding thread), `chunk` every `pause`, holding before each index in
    /// `holds`.
    fn feed(
        make: impl FnOnce() -> ThreadedProducer<DefaultProducerContext> + Send + 'static,
        records: Vec<(String, In)>,
        chunk: usize,
        pause: Duration,
        holds: &[usize],
    ) -> Feeder {
        let chunk = chunk.max(1);
        let gates: Vec<(usize, Arc<AtomicBool>)> = holds.iter().map(|at| (*at, Arc::default())).collect();
        let mine = gates.clone();
        let handle = std::thread::spawn(move || {
            let p = make();
            for (i, (topic, r)) in records.iter().enumerate() {
                for (at, gate) in &mine {
                    while i == *at && !gate.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                send(&p, topic, r);
                if i % chunk == chunk - 1 {
                    std::thread::sleep(pause);
                }
            }
            // Long enough to outlast a broker outage a test makes.
            p.flush(Duration::from_secs(120)).expect("flush the fed records");
        });
        Feeder {
            gates,
            handle: Some(handle),
        }
    }

    /// A feeder for a crash test of `lives` lives, at 100 records per
    /// `pause` but smoothly (10 every tenth of it), so that a transaction is
    /// open most of the time: the records in `lives` equal segments, segment
    /// `k` (from 1) held until [`Feeder::open`]`(k - 1)`, which the crash
    /// loop calls once life `k` has started. So every life has input arriving
    /// while it runs, and can commit progress with it.
    pub fn for_lives(topic: &str, records: Vec<In>, pause: Duration, lives: usize) -> Feeder {
        let n = records.len();
        let holds: Vec<usize> = (1..lives).map(|k| k * n / lives).collect();
        Feeder::paced(topic, records, 10, pause / 10, &holds)
    }

    /// How many holds it has.
    pub fn holds(&self) -> usize {
        self.gates.len()
    }

    /// Opens hold `n`.
    pub fn open(&self, n: usize) {
        self.gates[n].1.store(true, Ordering::SeqCst);
    }

    /// Opens every hold and waits until every record is acknowledged.
    pub fn finish(mut self) {
        for (_, g) in &self.gates {
            g.store(true, Ordering::SeqCst);
        }
        if let Some(h) = self.handle.take() {
            h.join().expect("the feeder thread");
        }
    }
}

impl Drop for Feeder {
    /// A test that failed half-way lets the thread run out instead of
    /// waiting at a hold for ever.
    fn drop(&mut self) {
        for (_, g) in &self.gates {
            g.store(true, Ordering::SeqCst);
        }
    }
}

/// The body of `GET path` from the admin API at `addr`, with the status line and headers.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the admin API");
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap_or_else(|e| panic!("GET {path} from {addr}: {e}"));
    let mut body = String::new();
    s.read_to_string(&mut body)
        .unwrap_or_else(|e| panic!("read the answer to GET {path} from {addr}: {e}"));
    body
}

/// `(log start, end)` of each partition of `topic`: where a reader can
/// start (after DeleteRecords, the first record kept) and the high watermark.
pub fn watermarks(topic: &str) -> Vec<(i64, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .create()
        .expect("create a metadata consumer");
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len() as i32);
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, timeout)
                .unwrap_or_else(|e| panic!("watermarks of {topic}[{p}]: {e}"))
        })
        .collect()
}

/// The configuration `topic` was created with, as DescribeConfigs reports it.
pub fn topic_config(topic: &str) -> BTreeMap<String, String> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .create()
        .expect("create an admin client");
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let results = weir::clients::topics::block_on(admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &options))
        .unwrap_or_else(|e| panic!("describe the configuration of {topic}: {e}"));
    let resource = results
        .into_iter()
        .next()
        .expect("one result per resource")
        .unwrap_or_else(|e| panic!("describe the configuration of {topic}: {e:?}"));
    resource
        .entries
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}

/// Deletes every record of every partition of `topic` (DeleteRecords to the
/// high watermark), as a broker's retention may.
pub fn delete_records_to_end(topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::{Offset, TopicPartitionList};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .create()
        .expect("create an admin client");
    let mut tpl = TopicPartitionList::new();
    for (p, (_, high)) in watermarks(topic).into_iter().enumerate() {
        tpl.add_partition_offset(topic, p as i32, Offset::Offset(high))
            .expect("a valid offset");
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let done = weir::clients::topics::block_on(admin.delete_records(&tpl, &options))
        .unwrap_or_else(|e| panic!("delete the records of {topic}: {e}"));
    for e in done.elements() {
        e.error()
            .unwrap_or_else(|err| panic!("delete the records of {topic}[{}]: {err}", e.partition()));
    }
}

/// The words of [`sentences`].
pub const VOCABULARY: [&str; 12] = [
    "kafka", "weir", "wasm", "stream", "state", "offset", "commit", "abort", "broker", "proxy", "outage", "retry",
];

/// `n` sentences of one to four words, keyed `s0`, `s1`, …, and how often
/// each word occurs in them: the word-count example's input and reference.
pub fn sentences(n: usize) -> (Vec<In>, BTreeMap<String, u64>) {
    let mut counts = BTreeMap::new();
    let records = (0..n)
        .map(|i| {
            let words: Vec<&str> = (0..1 + i % 4)
                .map(|j| VOCABULARY[(i * 7 + j * 5) % VOCABULARY.len()])
                .collect();
            for w in &words {
                *counts.entry((*w).to_owned()).or_default() += 1;
            }
            In {
                key: Some(format!("s{i}").into_bytes()),
                ..In::value(words.join(" "))
            }
        })
        .collect();
    (records, counts)
}
