//! The harness against a real broker: the shared one (nisshi, or `WEIR_TEST_BOOTSTRAP`).
//!
//! Records are written with raw Produce requests (and, for transactions, the transaction
//! coordinator's requests) over [`weir_test_harness::wire`]. kcat is not used: the kcat in Debian
//! 12 links librdkafka 2.0.2, which cannot parse nisshi's ApiVersions v3 response (librdkafka
//! before 2.2.0 mis-skips tagged fields, and nisshi sends the optional ones that Kafka leaves out).

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, DeleteRecordsRequest, DeleteRecordsResponse,
    EndTxnRequest, EndTxnResponse, FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, Record, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};
use weir_test_harness::Error;
use weir_test_harness::broker::Broker;
use weir_test_harness::committed::{CommittedRecord, LogCounts};
use weir_test_harness::wire::Connection;

const READ_TIMEOUT: Duration = Duration::from_secs(30);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A name no other test (or earlier run against an external broker) uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The producer a batch is written as: none, or a transactional one.
#[derive(Clone, Copy)]
struct Producer {
    id: i64,
    epoch: i16,
}

/// One record batch of `key:value` lines, written by `producer` (transactional) or by a plain
/// producer, starting at `sequence`.
fn batch(lines: &[&str], producer: Option<Producer>, sequence: i32, compression: Compression) -> Bytes {
    let timestamp = now_ms();
    let records: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let (key, value) = line.split_once(':').expect("key:value");
            Record {
                transactional: producer.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: producer.map_or(NO_PRODUCER_ID, |p| p.id),
                producer_epoch: producer.map_or(NO_PRODUCER_EPOCH, |p| p.epoch),
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: sequence + i as i32,
                timestamp,
                key: Some(Bytes::from(key.to_owned())),
                value: Some(Bytes::from(value.to_owned())),
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encodes");
    buf.freeze()
}

/// Writes `batch` to `topic`/`partition` with acks=all, as `transactional_id` if given.
fn produce(connection: &mut Connection, topic: &str, partition: i32, batch: Bytes, transactional_id: Option<&str>) {
    let version = connection.version::<ProduceRequest>(ApiKey::Produce, 3, 12).unwrap();
    let request = ProduceRequest::default()
        .with_transactional_id(transactional_id.map(|id| TransactionalId(str_bytes(id))))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch)),
                ]),
        ]);
    let response: ProduceResponse = connection.call(ApiKey::Produce, version, &request).unwrap();
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 0, "Produce to {topic}/{partition}: {answer:?}");
}

/// A transactional producer speaking to its transaction coordinator.
struct Transactional {
    id: String,
    producer: Producer,
    coordinator: Connection,
    /// The next sequence number per partition.
    sequences: Vec<i32>,
}

impl Transactional {
    /// Finds the coordinator of `id` and initialises the producer id.
    fn new(broker: &Broker, id: &str, partitions: usize) -> Self {
        let mut bootstrap = Connection::open(&broker.bootstrap, IO_TIMEOUT).unwrap();
        let version = bootstrap
            .version::<FindCoordinatorRequest>(ApiKey::FindCoordinator, 1, 3)
            .unwrap();
        let request = FindCoordinatorRequest::default()
            .with_key(str_bytes(id))
            .with_key_type(1);
        let found: FindCoordinatorResponse = retry_code("FindCoordinator", || {
            let response: FindCoordinatorResponse = bootstrap.call(ApiKey::FindCoordinator, version, &request).unwrap();
            (response.error_code, response)
        });
        let mut coordinator = Connection::open(&format!("{}:{}", found.host, found.port), IO_TIMEOUT).unwrap();

        let version = coordinator
            .version::<InitProducerIdRequest>(ApiKey::InitProducerId, 0, 4)
            .unwrap();
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(str_bytes(id))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let init: InitProducerIdResponse = retry_code("InitProducerId", || {
            let response: InitProducerIdResponse = coordinator.call(ApiKey::InitProducerId, version, &request).unwrap();
            (response.error_code, response)
        });
        Transactional {
            id: id.to_owned(),
            producer: Producer {
                id: init.producer_id.0,
                epoch: init.producer_epoch,
            },
            coordinator,
            sequences: vec![0; partitions],
        }
    }

    /// Adds `topic`/`partition` to the transaction and writes `lines` to it. The partition leader
    /// is taken to be the coordinator (a single broker).
    fn send(&mut self, topic: &str, partition: i32, lines: &[&str]) {
        let version = self
            .coordinator
            .version::<AddPartitionsToTxnRequest>(ApiKey::AddPartitionsToTxn, 0, 3)
            .unwrap();
        let request = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(str_bytes(&self.id)))
            .with_v3_and_below_producer_id(ProducerId(self.producer.id))
            .with_v3_and_below_producer_epoch(self.producer.epoch)
            .with_v3_and_below_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partitions(vec![partition]),
            ]);
        let coordinator = &mut self.coordinator;
        retry_code("AddPartitionsToTxn", || {
            let response: AddPartitionsToTxnResponse =
                coordinator.call(ApiKey::AddPartitionsToTxn, version, &request).unwrap();
            let code = response
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|topic| &topic.results_by_partition)
                .map(|partition| partition.partition_error_code)
                .find(|&code| code != 0)
                .unwrap_or(response.error_code);
            (code, ())
        });

        let sequence = &mut self.sequences[partition as usize];
        let data = batch(lines, Some(self.producer), *sequence, Compression::None);
        *sequence += lines.len() as i32;
        produce(&mut self.coordinator, topic, partition, data, Some(&self.id));
    }

    /// Commits or aborts the transaction; the coordinator writes the markers.
    fn end(&mut self, commit: bool) {
        let version = self.coordinator.version::<EndTxnRequest>(ApiKey::EndTxn, 0, 3).unwrap();
        let request = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(str_bytes(&self.id)))
            .with_producer_id(ProducerId(self.producer.id))
            .with_producer_epoch(self.producer.epoch)
            .with_committed(commit);
        let coordinator = &mut self.coordinator;
        retry_code("EndTxn", || {
            let response: EndTxnResponse = coordinator.call(ApiKey::EndTxn, version, &request).unwrap();
            (response.error_code, ())
        });
    }
}

/// Calls `attempt` until its error code is 0, while the code is one a client retries
/// (coordinator loading or not available, concurrent transactions).
fn retry_code<T>(what: &str, mut attempt: impl FnMut() -> (i16, T)) -> T {
    const RETRIABLE: [i16; 4] = [14, 15, 16, 51];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, value) = attempt();
        if code == 0 {
            return value;
        }
        assert!(
            RETRIABLE.contains(&code) && Instant::now() < deadline,
            "{what}: error code {code}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn key_values(records: &[CommittedRecord]) -> Vec<(&str, &str)> {
    records
        .iter()
        .map(|r| (r.key_str().expect("utf-8 key"), r.value_str().expect("utf-8 value")))
        .collect()
}

fn connect(broker: &Broker) -> Connection {
    Connection::open(&broker.bootstrap, IO_TIMEOUT).unwrap()
}

#[test]
fn reads_records_produced_non_transactionally() {
    let broker = Broker::shared();
    let topic = unique("harness-plain");
    broker.create_topic(&topic, 1).unwrap();

    let mut connection = connect(broker);
    produce(
        &mut connection,
        &topic,
        0,
        batch(&["k1:one", "k2:two"], None, -1, Compression::None),
        None,
    );
    produce(
        &mut connection,
        &topic,
        0,
        batch(&["k3:three"], None, -1, Compression::None),
        None,
    );
    let records = broker.read_committed(&topic, READ_TIMEOUT).unwrap();

    assert_eq!(key_values(&records), [("k1", "one"), ("k2", "two"), ("k3", "three")]);
    let offsets: Vec<_> = records.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(offsets, [(0, 0), (0, 1), (0, 2)]);
    assert!(records.iter().all(|r| r.timestamp > 1_600_000_000_000), "{records:?}");
}

#[test]
fn reads_only_committed_transactions() {
    let broker = Broker::shared();
    let topic = unique("harness-txn");
    broker.create_topic(&topic, 2).unwrap();
    let mut plain = connect(broker);

    let mut producer = Transactional::new(broker, &unique("harness-txn-id"), 2);
    producer.send(&topic, 0, &["a:aborted-1", "a:aborted-2"]);
    producer.send(&topic, 1, &["a:aborted-3"]);
    producer.end(false);
    produce(
        &mut plain,
        &topic,
        0,
        batch(&["p:plain"], None, -1, Compression::None),
        None,
    );
    producer.send(&topic, 0, &["c:committed-1"]);
    producer.send(&topic, 1, &["c:committed-2"]);
    producer.end(true);
    let records = broker.read_committed(&topic, READ_TIMEOUT).unwrap();

    let seen: Vec<_> = records.iter().map(|r| (r.partition, r.value_str().unwrap())).collect();
    assert_eq!(seen, [(0, "plain"), (0, "committed-1"), (1, "committed-2")]);
}

#[test]
fn stops_at_an_open_transaction() {
    let broker = Broker::shared();
    let topic = unique("harness-open");
    broker.create_topic(&topic, 1).unwrap();
    let mut plain = connect(broker);

    produce(
        &mut plain,
        &topic,
        0,
        batch(&["p:before"], None, -1, Compression::None),
        None,
    );
    let mut producer = Transactional::new(broker, &unique("harness-open-id"), 1);
    producer.send(&topic, 0, &["o:open"]);
    produce(
        &mut plain,
        &topic,
        0,
        batch(&["p:after"], None, -1, Compression::None),
        None,
    );
    let while_open = broker.read_committed(&topic, READ_TIMEOUT).unwrap();
    producer.end(false);
    let after_abort = broker.read_committed(&topic, READ_TIMEOUT).unwrap();

    // A read_committed consumer stops at the last stable offset, the open transaction's first.
    assert_eq!(key_values(&while_open), [("p", "before")]);
    assert_eq!(key_values(&after_abort), [("p", "before"), ("p", "after")]);
}

#[test]
fn counts_committed_aborted_and_open_records_with_their_markers() {
    let broker = Broker::shared();
    let topic = unique("harness-counts");
    broker.create_topic(&topic, 2).unwrap();
    let mut plain = connect(broker);

    produce(
        &mut plain,
        &topic,
        0,
        batch(&["p:plain"], None, -1, Compression::None),
        None,
    );
    let mut producer = Transactional::new(broker, &unique("harness-counts-id"), 2);
    producer.send(&topic, 0, &["a:aborted-1", "a:aborted-2"]);
    producer.send(&topic, 1, &["a:aborted-3"]);
    producer.end(false);
    producer.send(&topic, 1, &["c:committed"]);
    producer.end(true);
    producer.send(&topic, 0, &["o:open-1", "o:open-2"]);
    let counts = broker.log_counts(&topic, READ_TIMEOUT).unwrap();
    producer.end(false);
    let after = broker.log_counts(&topic, READ_TIMEOUT).unwrap();

    // One marker per partition in the transaction: the aborted one spanned both.
    assert_eq!(
        counts,
        LogCounts {
            committed: 2,
            aborted: 3,
            open: 2,
            commit_markers: 1,
            abort_markers: 2,
        },
        "{counts}"
    );
    assert_eq!(
        after,
        LogCounts {
            committed: 2,
            aborted: 5,
            open: 0,
            commit_markers: 1,
            abort_markers: 3,
        },
        "{after}"
    );
}

#[test]
fn reads_from_the_log_start_after_records_were_deleted() {
    let broker = Broker::shared();
    let topic = unique("harness-deleted");
    broker.create_topic(&topic, 1).unwrap();
    let mut connection = connect(broker);
    produce(
        &mut connection,
        &topic,
        0,
        batch(&["k1:one", "k2:two", "k3:three"], None, -1, Compression::None),
        None,
    );
    let version = connection
        .version::<DeleteRecordsRequest>(ApiKey::DeleteRecords, 0, 2)
        .unwrap();
    let request = DeleteRecordsRequest::default()
        .with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(TopicName(str_bytes(&topic)))
                .with_partitions(vec![
                    DeleteRecordsPartition::default().with_partition_index(0).with_offset(2),
                ]),
        ])
        .with_timeout_ms(30_000);
    let response: DeleteRecordsResponse = connection.call(ApiKey::DeleteRecords, version, &request).unwrap();
    let answer = &response.topics[0].partitions[0];
    assert_eq!((answer.error_code, answer.low_watermark), (0, 2), "{answer:?}");

    let records = broker.read_committed(&topic, READ_TIMEOUT).unwrap();
    let counts = broker.log_counts(&topic, READ_TIMEOUT).unwrap();

    assert_eq!(key_values(&records), [("k3", "three")]);
    assert_eq!(records[0].offset, 2);
    assert_eq!(
        counts,
        LogCounts {
            committed: 1,
            ..LogCounts::default()
        }
    );
}

#[test]
fn reads_every_partition_in_partition_order() {
    let broker = Broker::shared();
    let topic = unique("harness-partitions");
    broker.create_topic(&topic, 3).unwrap();

    let mut connection = connect(broker);
    produce(
        &mut connection,
        &topic,
        2,
        batch(&["c:2a", "c:2b"], None, -1, Compression::None),
        None,
    );
    produce(
        &mut connection,
        &topic,
        0,
        batch(&["a:0a"], None, -1, Compression::None),
        None,
    );
    produce(
        &mut connection,
        &topic,
        1,
        batch(&["b:1a"], None, -1, Compression::None),
        None,
    );
    let records = broker.read_committed(&topic, READ_TIMEOUT).unwrap();

    let seen: Vec<_> = records
        .iter()
        .map(|r| (r.partition, r.offset, r.value_str().unwrap()))
        .collect();
    assert_eq!(seen, [(0, 0, "0a"), (1, 0, "1a"), (2, 0, "2a"), (2, 1, "2b")]);
}

#[test]
fn an_empty_topic_reads_as_empty() {
    let broker = Broker::shared();
    let topic = unique("harness-empty");
    broker.create_topic(&topic, 2).unwrap();

    assert_eq!(broker.read_committed(&topic, READ_TIMEOUT).unwrap(), []);
}

#[test]
fn decodes_compressed_batches() {
    let broker = Broker::shared();
    let mut connection = connect(broker);
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = unique(&format!("harness-{compression:?}").to_lowercase());
        broker.create_topic(&topic, 1).unwrap();

        let data = batch(&["k1:one", "k2:two", "k3:three"], None, -1, compression);
        produce(&mut connection, &topic, 0, data, None);
        let records = broker
            .read_committed(&topic, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("{compression:?}: {e}"));

        assert_eq!(
            key_values(&records),
            [("k1", "one"), ("k2", "two"), ("k3", "three")],
            "{compression:?}"
        );
    }
}

#[test]
fn reads_many_batches() {
    let broker = Broker::shared();
    let topic = unique("harness-many");
    broker.create_topic(&topic, 1).unwrap();

    let mut connection = connect(broker);
    let value = "x".repeat(10_000);
    let lines: Vec<String> = (0..50).map(|i| format!("k{i}:{value}")).collect();
    for chunk in lines.chunks(5) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        produce(
            &mut connection,
            &topic,
            0,
            batch(&chunk, None, -1, Compression::None),
            None,
        );
    }
    let records = broker.read_committed(&topic, READ_TIMEOUT).unwrap();

    assert_eq!(records.len(), 50);
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == i as i64 && r.key_str() == Some(&format!("k{i}")))
    );
}

#[test]
fn creates_compacted_topics() {
    let broker = Broker::shared();
    let topic = unique("harness-compacted");
    broker.create_compacted_topic(&topic, 1).unwrap();

    let mut connection = connect(broker);
    produce(
        &mut connection,
        &topic,
        0,
        batch(&["k:v1", "k:v2"], None, -1, Compression::None),
        None,
    );
    let records = broker.read_committed(&topic, READ_TIMEOUT).unwrap();

    // Compaction runs later, if at all: both versions are still there.
    assert_eq!(key_values(&records), [("k", "v1"), ("k", "v2")]);
}

#[test]
fn creating_a_topic_twice_is_an_error() {
    let broker = Broker::shared();
    let topic = unique("harness-twice");
    broker.create_topic(&topic, 1).unwrap();

    let error = broker.create_topic(&topic, 1).unwrap_err();

    assert!(
        matches!(&error, Error::Topic { code: 36, topic: t, .. } if *t == topic),
        "{error}"
    );
}

#[test]
fn reading_a_missing_topic_is_an_error() {
    let broker = Broker::shared();
    let topic = unique("harness-missing");

    let error = broker.read_committed(&topic, Duration::from_secs(2)).unwrap_err();

    assert_eq!(
        error.code(),
        Some(3),
        "UNKNOWN_TOPIC_OR_PARTITION expected, got {error}"
    );
}
