//! What a `read_committed` consumer sees in a topic, worked out from the raw log.
//!
//! A Kafka consumer with `isolation.level=read_committed` relies on the broker to list, in each
//! Fetch response, the transactions that were aborted in the fetched range; it then skips their
//! records. Published nisshi 0.7.0 always sends that list empty (the test broker is patched to
//! send it), so a reader that does not depend on the list is a second opinion on both the broker
//! and the producer.
//!
//! This module reads the record batches and applies the markers itself:
//!
//! - [`committed_records`] is the pure part: raw record batches in, visible records out.
//! - [`read_committed`] fetches every partition of a topic from offset 0 to its end over the
//!   Kafka protocol (blocking, one request at a time) and applies [`committed_records`].
//! - [`log_counts`] and [`read_log_counts`] (or [`read_partition_log_counts`]) count what the log
//!   holds by the fate of each record
//!   (committed, aborted, still open) and the markers that decided it: the evidence a crash test
//!   needs that a SIGKILL left an open transaction behind, which the broker then aborted.
//!
//! The rules, from the Kafka consumer's:
//!
//! - A record of a non-transactional batch is visible.
//! - A record of a transactional batch of producer `P` is held until a control batch of `P`
//!   carries a marker: COMMIT makes the held records visible, ABORT drops them.
//! - A transaction without a marker by the end of the data is still open. Its records are not
//!   returned, and neither is anything at or after its first offset: a `read_committed` consumer
//!   stops at the last stable offset, the first offset of the oldest open transaction.
//! - Control records are never returned.
//!
//! Records come back in offset order, the order a consumer delivers them in, whatever order the
//! transactions committed in: two producers' interleaved transactions come back interleaved.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};

use crate::Error;
use crate::error::code_name;
use crate::wire::{Connection, api_name};

/// A record as a `read_committed` consumer would receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedRecord {
    /// The partition the record is in.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
    /// The key, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// The value, `None` for a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// The headers in record order. `kafka-protocol` decodes headers into a map, so of several
    /// headers with the same key only the last value is kept, at the first one's position.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The timestamp in milliseconds since the epoch, create time or log-append time as the topic
    /// is configured.
    pub timestamp: i64,
}

impl CommittedRecord {
    /// The key as UTF-8 text, if it is present and valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key.as_deref().and_then(|key| std::str::from_utf8(key).ok())
    }

    /// The value as UTF-8 text, if it is present and valid UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        self.value.as_deref().and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The value of the header `name`, if the record has it. `Some(None)` is a header with a
    /// null value.
    pub fn header(&self, name: &str) -> Option<Option<&[u8]>> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_deref())
    }
}

/// Control record type of an ABORT marker.
const MARKER_ABORT: i16 = 0;
/// Control record type of a COMMIT marker.
const MARKER_COMMIT: i16 = 1;

/// The records of `partition` that a `read_committed` consumer would see in `batches`: record
/// batches (format v2, magic 2) laid end to end, as in the `records` field of a Fetch response.
///
/// See the [module documentation](self) for the rules. An incomplete batch at the end, as a
/// broker may send when a response reaches its size limit, is ignored like a consumer does.
/// Records at offsets already seen earlier in `batches` (overlapping batches) are skipped.
pub fn committed_records(partition: i32, batches: &[u8]) -> Result<Vec<CommittedRecord>, Error> {
    Ok(read_log(partition, 0, batches)?.0)
}

/// Applies `batches` of `partition` from offset `start` on (records below it are skipped, as a
/// consumer skips them in a batch that begins before its position): the visible records and the
/// counts.
fn read_log(partition: i32, start: i64, batches: &[u8]) -> Result<(Vec<CommittedRecord>, LogCounts), Error> {
    let data = Bytes::copy_from_slice(batches);
    let (complete, _) = split_batches(partition, &data)?;
    let mut log = CommittedLog::new(partition, start);
    for batch in complete {
        log.push(&batch)?;
    }
    Ok(log.finish())
}

/// What a topic's raw log holds, counted by the fate of each data record, and the transaction
/// markers that decided it. See [`log_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCounts {
    /// Records of non-transactional batches and of transactions that a COMMIT marker ended.
    /// Unlike [`committed_records`], this counts committed records past the last stable offset
    /// too.
    pub committed: usize,
    /// Records of transactions that an ABORT marker ended.
    pub aborted: usize,
    /// Records of transactions with no marker yet (still open at the end of the data).
    pub open: usize,
    /// COMMIT markers.
    pub commit_markers: usize,
    /// ABORT markers.
    pub abort_markers: usize,
}

impl LogCounts {
    /// Whether the log shows an aborted transaction: aborted records or an ABORT marker.
    pub fn shows_an_abort(&self) -> bool {
        self.aborted > 0 || self.abort_markers > 0
    }
}

impl std::ops::AddAssign for LogCounts {
    fn add_assign(&mut self, other: LogCounts) {
        self.committed += other.committed;
        self.aborted += other.aborted;
        self.open += other.open;
        self.commit_markers += other.commit_markers;
        self.abort_markers += other.abort_markers;
    }
}

impl std::fmt::Display for LogCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} committed, {} aborted and {} open record(s); {} COMMIT and {} ABORT marker(s)",
            self.committed, self.aborted, self.open, self.commit_markers, self.abort_markers
        )
    }
}

/// The records in `batches` (as for [`committed_records`]) counted by fate, with the markers.
///
/// The rules are those of [`committed_records`]: a transactional record's fate is decided by the
/// next marker of its producer; one with no marker by the end of the data is open. A marker of a
/// producer with no records held is counted all the same (its transaction may have started
/// before the data given). Control records are not data records: they are counted as markers
/// only.
pub fn log_counts(partition: i32, batches: &[u8]) -> Result<LogCounts, Error> {
    Ok(read_log(partition, 0, batches)?.1)
}

/// Reads every partition of `topic` from the broker(s) at `bootstrap` (as [`read_committed`]
/// does, but `read_uncommitted`, so that open transactions are read too) and returns the sum of
/// [`log_counts`] over the partitions.
///
/// A partition whose first records were deleted (DeleteRecords, retention) is read from its log
/// start offset: the counts are of what the log still holds.
pub fn read_log_counts(bootstrap: &str, topic: &str, timeout: Duration) -> Result<LogCounts, Error> {
    let mut sum = LogCounts::default();
    for (_, counts) in read_partition_log_counts(bootstrap, topic, timeout)? {
        sum += counts;
    }
    Ok(sum)
}

/// [`read_log_counts`] partition by partition, in partition order.
pub fn read_partition_log_counts(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<(i32, LogCounts)>, Error> {
    read_partitions(bootstrap, topic, timeout, Isolation::ReadUncommitted)?
        .into_iter()
        .map(|(partition, fetched)| Ok((partition, read_log(partition, fetched.start, &fetched.batches)?.1)))
        .collect()
}

/// Fetches every partition of `topic` from its leader with `isolation`, from its log start to its
/// end (see [`read_committed`] for the rules and the timeout), in partition order.
fn read_partitions(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    isolation: Isolation,
) -> Result<Vec<(i32, Fetched)>, Error> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut pool = Pool::new(io_timeout(timeout));
    let leaders = retry(deadline, || partition_leaders(pool.bootstrap(bootstrap)?, topic))?;
    let mut fetched = Vec::with_capacity(leaders.len());
    for (partition, leader) in leaders {
        let read = Read {
            topic,
            partition,
            isolation,
            started,
            deadline,
        };
        fetched.push((partition, fetch_partition(pool.get(&leader)?, &read)?));
    }
    Ok(fetched)
}

/// Reads every partition of `topic` from the broker(s) at `bootstrap` (`host:port`, or several
/// separated by commas) from offset 0 (or its log start offset, if records were deleted) to its
/// end, and returns what a `read_committed` consumer
/// would see: partition by partition, each in offset order (see [`committed_records`]).
///
/// Each partition is fetched from its leader with `isolation_level` read_committed until the
/// fetch offset reaches the high watermark, or, once the broker has nothing more to send, the
/// last stable offset. `timeout` bounds the whole read, including waiting for the topic's
/// metadata; a partition not read to its end by then is an [`Error::Timeout`].
pub fn read_committed(bootstrap: &str, topic: &str, timeout: Duration) -> Result<Vec<CommittedRecord>, Error> {
    let mut records = Vec::new();
    for (partition, fetched) in read_partitions(bootstrap, topic, timeout, Isolation::ReadCommitted)? {
        records.extend(read_log(partition, fetched.start, &fetched.batches)?.0);
    }
    Ok(records)
}

/// The timeout of each connect, read and write within an operation bounded by `timeout`.
pub(crate) fn io_timeout(timeout: Duration) -> Duration {
    timeout.max(Duration::from_secs(5))
}

/// Runs `attempt` until it succeeds, fails with an error that is not
/// [retriable](Error::is_retriable), or `deadline` passes.
pub(crate) fn retry<T>(deadline: Instant, mut attempt: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    loop {
        match attempt() {
            Err(error) if error.is_retriable() && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(100))
            }
            result => return result,
        }
    }
}

/// Open connections by broker address.
pub(crate) struct Pool {
    io_timeout: Duration,
    connections: HashMap<String, Connection>,
}

impl Pool {
    pub(crate) fn new(io_timeout: Duration) -> Self {
        Pool {
            io_timeout,
            connections: HashMap::new(),
        }
    }

    /// The connection to `addr`, opened if need be.
    pub(crate) fn get(&mut self, addr: &str) -> Result<&mut Connection, Error> {
        if !self.connections.contains_key(addr) {
            let connection = Connection::open(addr, self.io_timeout)?;
            self.connections.insert(addr.to_owned(), connection);
        }
        Ok(self.connections.get_mut(addr).expect("inserted above"))
    }

    /// A connection to the first broker of the comma-separated `bootstrap` list that accepts one.
    pub(crate) fn bootstrap(&mut self, bootstrap: &str) -> Result<&mut Connection, Error> {
        let addrs = || bootstrap.split(',').map(str::trim).filter(|addr| !addr.is_empty());
        if let Some(open) = addrs().find(|addr| self.connections.contains_key(*addr)) {
            return Ok(self.connections.get_mut(open).expect("checked above"));
        }
        let mut last = None;
        for addr in addrs() {
            match Connection::open(addr, self.io_timeout) {
                Ok(connection) => return Ok(self.connections.entry(addr.to_owned()).or_insert(connection)),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| Error::Connect {
            addr: bootstrap.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no broker address given"),
        }))
    }
}

/// The partitions of `topic` and each one's leader (`host:port`), in partition order, from a
/// Metadata request to `connection`.
pub(crate) fn partition_leaders(connection: &mut Connection, topic: &str) -> Result<Vec<(i32, String)>, Error> {
    // v4 is the first with `allow_auto_topic_creation`, which must be false here: reading a topic
    // must not create it. v12 is the newest this crate needs; v13 only adds a top-level error.
    let version = connection.version::<MetadataRequest>(ApiKey::Metadata, 4, 12)?;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
        ]))
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = connection.call(ApiKey::Metadata, version, &request)?;
    let api = api_name(ApiKey::Metadata);

    let found = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|name| name.0.as_str() == topic));
    let found = found.ok_or_else(|| Error::MissingTopic {
        addr: connection.addr().to_owned(),
        topic: topic.to_owned(),
    })?;
    if found.error_code != 0 {
        return Err(Error::Topic {
            topic: topic.to_owned(),
            api,
            code: found.error_code,
            name: code_name(found.error_code),
            message: None,
        });
    }

    let mut leaders = Vec::with_capacity(found.partitions.len());
    for partition in &found.partitions {
        let index = partition.partition_index;
        if partition.error_code != 0 {
            return Err(Error::Partition {
                topic: topic.to_owned(),
                partition: index,
                api,
                code: partition.error_code,
                name: code_name(partition.error_code),
            });
        }
        let leader = partition.leader_id;
        let broker = response.brokers.iter().find(|broker| broker.node_id == leader);
        let broker = broker.ok_or(Error::UnknownLeader {
            topic: topic.to_owned(),
            partition: index,
            leader: leader.0,
        })?;
        leaders.push((index, host_port(broker.host.as_str(), broker.port)));
    }
    leaders.sort();
    Ok(leaders)
}

/// `host:port`, with an IPv6 host in brackets.
fn host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// How long the broker may hold a Fetch that has nothing to return yet.
const FETCH_MAX_WAIT_MS: i32 = 100;
/// The first per-partition byte limit; doubled when one batch does not fit.
const FETCH_PARTITION_MAX_BYTES: i32 = 4 * 1024 * 1024;
/// The largest per-partition byte limit to grow to.
const FETCH_PARTITION_MAX_BYTES_LIMIT: i32 = 256 * 1024 * 1024;

/// Which records a Fetch may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// Up to the high watermark, open transactions included.
    ReadUncommitted,
    /// Up to the last stable offset.
    ReadCommitted,
}

impl Isolation {
    /// The Fetch request's `isolation_level`.
    fn level(self) -> i8 {
        match self {
            Isolation::ReadUncommitted => 0,
            Isolation::ReadCommitted => 1,
        }
    }
}

/// One partition to read to its end.
struct Read<'a> {
    topic: &'a str,
    partition: i32,
    isolation: Isolation,
    /// When the whole operation started (for the timeout error).
    started: Instant,
    /// When it must have finished.
    deadline: Instant,
}

/// Kafka's `OFFSET_OUT_OF_RANGE`.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// What [`fetch_partition`] read.
struct Fetched {
    /// The log start offset the read began at: records below it in the first batch are not part
    /// of the log any more.
    start: i64,
    /// The complete record batches, laid end to end.
    batches: Vec<u8>,
}

/// The complete record batches of `read.topic`/`read.partition`, fetched from `connection` (its
/// leader) from its log start offset (0 unless records were deleted) to the end of the
/// partition: the high watermark, or under read_committed, the last stable offset once the
/// broker has nothing more to send.
fn fetch_partition(connection: &mut Connection, read: &Read<'_>) -> Result<Fetched, Error> {
    let Read {
        topic,
        partition,
        isolation,
        started,
        deadline,
    } = *read;
    // v12 is the last version that names topics (v13 and later identify them by topic id).
    let version = connection.version::<FetchRequest>(ApiKey::Fetch, 4, 12)?;
    let api = api_name(ApiKey::Fetch);
    let mut data = Vec::new();
    // From offset 0, not from ListOffsets(earliest): nisshi 0.7.0 answers that with the base
    // offset of the batch written first in time, which is not the first batch once two producers
    // (or two in-flight requests) write a partition at once. Deleted records answer
    // OFFSET_OUT_OF_RANGE below, and the read moves to the log start then.
    let mut start = 0;
    let mut next = start;
    let mut high_watermark = -1;
    let mut last_stable = -1;
    let mut partition_max_bytes = FETCH_PARTITION_MAX_BYTES;

    loop {
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                topic: topic.to_owned(),
                partition,
                offset: next,
                high_watermark,
                last_stable,
                waited: started.elapsed(),
            });
        }

        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(FETCH_MAX_WAIT_MS)
            .with_min_bytes(1)
            .with_max_bytes(partition_max_bytes)
            .with_isolation_level(isolation.level())
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(next)
                            .with_partition_max_bytes(partition_max_bytes),
                    ]),
            ]);
        let response: FetchResponse = connection.call(ApiKey::Fetch, version, &request)?;
        if response.error_code != 0 {
            return Err(Error::Api {
                addr: connection.addr().to_owned(),
                api,
                code: response.error_code,
                name: code_name(response.error_code),
            });
        }
        let data_of_partition = response
            .responses
            .into_iter()
            .filter(|t| t.topic.0.as_str() == topic)
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition);
        let Some(answer) = data_of_partition else {
            // No answer for the partition: nothing to send yet.
            thread::sleep(Duration::from_millis(50));
            continue;
        };

        // Records before the log start offset were deleted: read from there (Fetch v5 and later
        // may say where it is; ListOffsets does).
        if answer.error_code == OFFSET_OUT_OF_RANGE {
            start = if answer.log_start_offset > next {
                answer.log_start_offset
            } else {
                log_start_offset(connection, topic, partition)?
            };
            // Deleted while this read went on: only what is left counts.
            if start > next {
                data.clear();
                next = start;
                continue;
            }
        }
        if answer.error_code != 0 {
            let error = Error::Partition {
                topic: topic.to_owned(),
                partition,
                api,
                code: answer.error_code,
                name: code_name(answer.error_code),
            };
            if error.is_retriable() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(100));
                continue;
            }
            return Err(error);
        }
        high_watermark = answer.high_watermark;
        last_stable = answer.last_stable_offset;

        let records = answer.records.unwrap_or_default();
        let (complete, consumed) = split_batches(partition, &records)?;
        let mut progressed = false;
        for batch in complete {
            if batch.last_offset >= next {
                data.extend_from_slice(&batch.bytes);
                next = batch.last_offset + 1;
                progressed = true;
            }
        }

        if high_watermark >= 0 && next >= high_watermark {
            return Ok(Fetched { start, batches: data });
        }
        if !progressed {
            if consumed < records.len() && partition_max_bytes < FETCH_PARTITION_MAX_BYTES_LIMIT {
                // One batch is larger than the limit and came back cut off: ask for more.
                partition_max_bytes = partition_max_bytes
                    .saturating_mul(2)
                    .min(FETCH_PARTITION_MAX_BYTES_LIMIT);
                continue;
            }
            // Under read_committed the broker sends nothing past the last stable offset.
            let stable_end = if isolation == Isolation::ReadCommitted && last_stable >= 0 {
                last_stable
            } else {
                high_watermark
            };
            if stable_end >= 0 && next >= stable_end {
                return Ok(Fetched { start, batches: data });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// ListOffsets' timestamp asking for the earliest offset.
const EARLIEST_TIMESTAMP: i64 = -2;

/// The log start offset of `topic`/`partition` (ListOffsets for the earliest offset), asked of
/// `connection`, its leader.
fn log_start_offset(connection: &mut Connection, topic: &str, partition: i32) -> Result<i64, Error> {
    // v1 is the first with one offset per partition; v7 the last before the request timeout.
    let version = connection.version::<ListOffsetsRequest>(ApiKey::ListOffsets, 1, 7)?;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(EARLIEST_TIMESTAMP),
                ]),
        ]);
    let response: ListOffsetsResponse = connection.call(ApiKey::ListOffsets, version, &request)?;
    let api = api_name(ApiKey::ListOffsets);
    let answer = response
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition);
    let answer = answer.ok_or_else(|| Error::Partition {
        topic: topic.to_owned(),
        partition,
        api,
        code: UNKNOWN_TOPIC_OR_PARTITION,
        name: code_name(UNKNOWN_TOPIC_OR_PARTITION),
    })?;
    if answer.error_code != 0 {
        return Err(Error::Partition {
            topic: topic.to_owned(),
            partition,
            api,
            code: answer.error_code,
            name: code_name(answer.error_code),
        });
    }
    Ok(answer.offset)
}

/// Kafka's `UNKNOWN_TOPIC_OR_PARTITION`, for a response that leaves the partition out.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// One complete record batch within a buffer.
#[derive(Debug)]
struct RawBatch {
    /// The offset of its first record.
    base_offset: i64,
    /// The offset of its last record, or for a batch older than v2, its base offset.
    last_offset: i64,
    /// The magic byte (record format version).
    magic: i8,
    /// The whole batch, header included.
    bytes: Bytes,
}

/// Bytes before a batch's magic byte: base offset (8), length (4), partition leader epoch (4).
const MAGIC_OFFSET: usize = 16;
/// Bytes before a v2 batch's last offset delta: up to the magic byte, magic (1), crc (4),
/// attributes (2).
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
/// The size of a v2 batch header, up to and including the record count.
const V2_HEADER_SIZE: usize = 61;

/// Splits `data` into complete batches. Returns them and how many bytes of `data` they take; any
/// rest is an incomplete batch.
fn split_batches(partition: i32, data: &Bytes) -> Result<(Vec<RawBatch>, usize), Error> {
    let mut batches = Vec::new();
    let mut at = 0;
    // Base offset (8), length (4), and the magic byte at the same place in every format.
    while data.len() - at > MAGIC_OFFSET {
        let base_offset = i64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(data[at + 8..at + 12].try_into().expect("4 bytes"));
        let magic = data[at + MAGIC_OFFSET] as i8;
        let minimum = if magic >= 2 {
            V2_HEADER_SIZE - 12
        } else {
            MAGIC_OFFSET - 12 + 1
        };
        let Some(length) = usize::try_from(length).ok().filter(|&length| length >= minimum) else {
            return Err(Error::Batch {
                partition,
                offset: base_offset,
                detail: format!("batch length {length} is shorter than a batch header"),
            });
        };
        let end = at + 12 + length;
        if end > data.len() {
            break;
        }
        let last_offset = if magic >= 2 {
            let delta = &data[at + LAST_OFFSET_DELTA_OFFSET..at + LAST_OFFSET_DELTA_OFFSET + 4];
            base_offset + i64::from(i32::from_be_bytes(delta.try_into().expect("4 bytes")))
        } else {
            base_offset
        };
        batches.push(RawBatch {
            base_offset,
            last_offset,
            magic,
            bytes: data.slice(at..end),
        });
        at = end;
    }
    Ok((batches, at))
}

/// An open transaction: a producer's records since its last marker.
struct OpenTransaction {
    /// The offset of its first record.
    first_offset: i64,
    /// Its records so far.
    records: Vec<CommittedRecord>,
}

/// The state of reading one partition's log in order.
struct CommittedLog {
    partition: i32,
    /// Records visible so far: non-transactional ones and those of committed transactions.
    visible: Vec<CommittedRecord>,
    /// Open transactions by producer id.
    open: HashMap<i64, OpenTransaction>,
    /// The offset after the last record pushed; records below it were seen already.
    next_offset: i64,
    /// Records and markers by fate so far (open records are counted at the end).
    counts: LogCounts,
}

impl CommittedLog {
    /// Reading `partition` from offset `start`.
    fn new(partition: i32, start: i64) -> Self {
        CommittedLog {
            partition,
            visible: Vec::new(),
            open: HashMap::new(),
            next_offset: start,
            counts: LogCounts::default(),
        }
    }

    /// Applies the next batch of the log.
    fn push(&mut self, batch: &RawBatch) -> Result<(), Error> {
        let partition = self.partition;
        if batch.magic != 2 {
            return Err(Error::Magic {
                partition,
                offset: batch.base_offset,
                magic: batch.magic,
            });
        }
        let batch_error = |detail: String| Error::Batch {
            partition,
            offset: batch.base_offset,
            detail,
        };
        let info = RecordBatchDecoder::decode_batch_info(&mut batch.bytes.clone())
            .map_err(|e| batch_error(format!("{e:#}")))?
            .into_iter()
            .next()
            .ok_or_else(|| batch_error("no batch header".to_owned()))?;
        let records = RecordBatchDecoder::decode(&mut batch.bytes.clone())
            .map_err(|e| batch_error(format!("{e:#}")))?
            .records;
        let seen = self.next_offset;
        let records = records.into_iter().filter(move |record| record.offset >= seen);
        self.next_offset = self.next_offset.max(batch.last_offset + 1);

        if info.control {
            for record in records {
                match marker_type(partition, &record)? {
                    MARKER_COMMIT => {
                        self.counts.commit_markers += 1;
                        if let Some(transaction) = self.open.remove(&info.producer_id) {
                            self.counts.committed += transaction.records.len();
                            self.visible.extend(transaction.records);
                        }
                    }
                    MARKER_ABORT => {
                        self.counts.abort_markers += 1;
                        if let Some(transaction) = self.open.remove(&info.producer_id) {
                            self.counts.aborted += transaction.records.len();
                        }
                    }
                    // Other control records (e.g. KRaft's leader change) end no transaction.
                    _ => {}
                }
            }
        } else if info.transactional {
            for record in records {
                let offset = record.offset;
                self.open
                    .entry(info.producer_id)
                    .or_insert_with(|| OpenTransaction {
                        first_offset: offset,
                        records: Vec::new(),
                    })
                    .records
                    .push(committed(partition, record));
            }
        } else {
            let before = self.visible.len();
            self.visible.extend(records.map(|record| committed(partition, record)));
            self.counts.committed += self.visible.len() - before;
        }
        Ok(())
    }

    /// The visible records below the last stable offset, in offset order, and the counts of
    /// the whole log.
    fn finish(mut self) -> (Vec<CommittedRecord>, LogCounts) {
        self.counts.open = self.open.values().map(|transaction| transaction.records.len()).sum();
        if let Some(last_stable) = self.open.values().map(|transaction| transaction.first_offset).min() {
            self.visible.retain(|record| record.offset < last_stable);
        }
        self.visible.sort_by_key(|record| record.offset);
        (self.visible, self.counts)
    }
}

/// The type of a control record: the second i16 of its key (the first is the key's version).
fn marker_type(partition: i32, record: &Record) -> Result<i16, Error> {
    let key = record.key.as_deref().unwrap_or_default();
    match key {
        [_, _, high, low, ..] => Ok(i16::from_be_bytes([*high, *low])),
        _ => Err(Error::ControlKey {
            partition,
            offset: record.offset,
            len: key.len(),
        }),
    }
}

fn committed(partition: i32, record: Record) -> CommittedRecord {
    CommittedRecord {
        partition,
        offset: record.offset,
        key: record.key.map(|key| key.to_vec()),
        value: record.value.map(|value| value.to_vec()),
        headers: record
            .headers
            .into_iter()
            .map(|(key, value)| (key.as_str().to_owned(), value.map(|value| value.to_vec())))
            .collect(),
        timestamp: record.timestamp,
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, RecordBatchEncoder,
        RecordEncodeOptions, TimestampType,
    };

    use super::*;

    const P1: i64 = 1001;
    const P2: i64 = 1002;
    const P9: i64 = 1009;

    /// A data record at `offset`; `producer` makes it transactional.
    fn record(offset: i64, producer: Option<i64>, value: &str) -> Record {
        Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: producer.unwrap_or(NO_PRODUCER_ID),
            producer_epoch: if producer.is_some() { 0 } else { NO_PRODUCER_EPOCH },
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder puts records in one batch only if their offsets and sequences advance
            // together.
            sequence: offset as i32,
            timestamp: 1_700_000_000_000 + offset,
            key: Some(Bytes::from(format!("k{offset}"))),
            value: Some(Bytes::from(value.to_owned())),
            headers: Default::default(),
        }
    }

    /// One record batch holding `records` (which must share the batch-level fields).
    fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encodes");
        buf.to_vec()
    }

    /// A batch of `values` at `base` onward; `producer` makes it transactional.
    fn batch(base: i64, producer: Option<i64>, values: &[&str]) -> Vec<u8> {
        let records: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, value)| record(base + i as i64, producer, value))
            .collect();
        encode(&records, Compression::None)
    }

    /// A control batch at `offset` with one transaction marker of `producer`, as a transaction
    /// coordinator writes it: transactional and control attributes, key (version 0, type),
    /// value (version 0, coordinator epoch).
    fn marker(offset: i64, producer: i64, commit: bool) -> Vec<u8> {
        let kind = if commit { MARKER_COMMIT } else { MARKER_ABORT };
        let mut key = 0i16.to_be_bytes().to_vec();
        key.extend_from_slice(&kind.to_be_bytes());
        let mut value = 0i16.to_be_bytes().to_vec();
        value.extend_from_slice(&3i32.to_be_bytes());
        let control = Record {
            transactional: true,
            control: true,
            producer_id: producer,
            producer_epoch: 0,
            sequence: NO_SEQUENCE,
            key: Some(Bytes::from(key)),
            value: Some(Bytes::from(value)),
            ..record(offset, Some(producer), "")
        };
        encode(&[control], Compression::None)
    }

    fn log(batches: &[Vec<u8>]) -> Vec<u8> {
        batches.concat()
    }

    fn offsets(records: &[CommittedRecord]) -> Vec<i64> {
        records.iter().map(|record| record.offset).collect()
    }

    #[test]
    fn non_transactional_records_pass() {
        let mut with_headers = record(2, None, "c");
        with_headers
            .headers
            .insert("trace".into(), Some(Bytes::from_static(b"t1")));
        with_headers.headers.insert("empty".into(), None);
        with_headers.key = None;
        let data = log(&[batch(0, None, &["a", "b"]), encode(&[with_headers], Compression::None)]);

        let records = committed_records(4, &data).unwrap();

        assert_eq!(offsets(&records), [0, 1, 2]);
        assert_eq!(
            records[0],
            CommittedRecord {
                partition: 4,
                offset: 0,
                key: Some(b"k0".to_vec()),
                value: Some(b"a".to_vec()),
                headers: vec![],
                timestamp: 1_700_000_000_000,
            }
        );
        assert_eq!(records[2].key, None);
        assert_eq!(records[2].value_str(), Some("c"));
        assert_eq!(
            records[2].headers,
            [("trace".to_owned(), Some(b"t1".to_vec())), ("empty".to_owned(), None)]
        );
        assert_eq!(records[2].header("trace"), Some(Some(&b"t1"[..])));
        assert_eq!(records[2].header("empty"), Some(None));
        assert_eq!(records[2].header("missing"), None);
    }

    #[test]
    fn committed_transaction_passes() {
        let data = log(&[batch(0, Some(P1), &["a", "b"]), marker(2, P1, true)]);

        let records = committed_records(0, &data).unwrap();

        assert_eq!(offsets(&records), [0, 1]);
        assert_eq!(records[1].value_str(), Some("b"));
    }

    #[test]
    fn aborted_transaction_is_dropped() {
        let data = log(&[
            batch(0, Some(P1), &["a", "b"]),
            marker(2, P1, false),
            batch(3, None, &["c"]),
        ]);

        let records = committed_records(0, &data).unwrap();

        assert_eq!(offsets(&records), [3]);
    }

    #[test]
    fn interleaved_producers_one_aborting_one_committing() {
        let data = log(&[
            batch(0, Some(P1), &["p1-a"]),
            batch(1, Some(P2), &["p2-a"]),
            batch(2, Some(P1), &["p1-b"]),
            batch(3, Some(P2), &["p2-b"]),
            marker(4, P1, false),
            batch(5, None, &["plain"]),
            marker(6, P2, true),
        ]);

        let records = committed_records(0, &data).unwrap();

        assert_eq!(offsets(&records), [1, 3, 5]);
        let values: Vec<_> = records.iter().filter_map(CommittedRecord::value_str).collect();
        assert_eq!(values, ["p2-a", "p2-b", "plain"]);
    }

    #[test]
    fn transactions_come_back_in_offset_order_not_commit_order() {
        let data = log(&[
            batch(0, Some(P1), &["p1-a"]),
            batch(1, Some(P2), &["p2-a"]),
            batch(2, Some(P1), &["p1-b"]),
            marker(3, P2, true),
            marker(4, P1, true),
        ]);

        let records = committed_records(0, &data).unwrap();

        assert_eq!(offsets(&records), [0, 1, 2]);
    }

    #[test]
    fn open_transaction_at_the_end_is_dropped() {
        let data = log(&[batch(0, None, &["before"]), batch(1, Some(P1), &["a", "b"])]);

        let records = committed_records(0, &data).unwrap();

        assert_eq!(offsets(&records), [0]);
    }

    #[test]
    fn nothing_after_the_last_stable_offset_is_returned() {
        // P1's transaction is open, so a read_committed consumer stops at offset 1, its first
        // record, and does not deliver P2's committed transaction or the plain record after it.
        let data = log(&[
            batch(0, None, &["before"]),
            batch(1, Some(P1), &["open"]),
            batch(2, Some(P2), &["p2"]),
            marker(3, P2, true),
            batch(4, None, &["after"]),
        ]);

        let records = committed_records(0, &data).unwrap();

        assert_eq!(offsets(&records), [0]);
    }

    #[test]
    fn a_marker_of_another_producer_changes_nothing() {
        let data = log(&[
            batch(0, Some(P1), &["a", "b"]),
            marker(2, P9, true),
            marker(3, P9, false),
            batch(4, None, &["plain"]),
            marker(5, P1, true),
        ]);
        assert_eq!(offsets(&committed_records(0, &data).unwrap()), [0, 1, 4]);

        let data = log(&[batch(0, Some(P1), &["a"]), marker(1, P9, true)]);
        assert_eq!(offsets(&committed_records(0, &data).unwrap()), Vec::<i64>::new());
    }

    #[test]
    fn a_producer_can_run_one_transaction_after_another() {
        let data = log(&[
            batch(0, Some(P1), &["first"]),
            marker(1, P1, false),
            batch(2, Some(P1), &["second"]),
            marker(3, P1, true),
            batch(4, Some(P1), &["third"]),
            marker(5, P1, false),
        ]);

        let records = committed_records(0, &data).unwrap();

        assert_eq!(offsets(&records), [2]);
    }

    #[test]
    fn counts_records_by_fate_with_the_markers() {
        let data = log(&[
            batch(0, None, &["plain"]),
            batch(1, Some(P1), &["aborted-1", "aborted-2"]),
            batch(3, Some(P2), &["committed"]),
            marker(4, P1, false),
            marker(5, P2, true),
            batch(6, Some(P1), &["open-1", "open-2", "open-3"]),
        ]);

        let counts = log_counts(0, &data).unwrap();

        assert_eq!(
            counts,
            LogCounts {
                committed: 2,
                aborted: 2,
                open: 3,
                commit_markers: 1,
                abort_markers: 1,
            }
        );
        assert!(counts.shows_an_abort());
        // The committed reader stops at the open transaction; the counts do not.
        assert_eq!(offsets(&committed_records(0, &data).unwrap()), [0, 3]);
    }

    #[test]
    fn counts_committed_records_past_an_open_transaction() {
        let data = log(&[
            batch(0, Some(P1), &["open"]),
            batch(1, Some(P2), &["p2"]),
            marker(2, P2, true),
            batch(3, None, &["after"]),
        ]);

        let counts = log_counts(0, &data).unwrap();

        assert_eq!((counts.committed, counts.open, counts.commit_markers), (2, 1, 1));
        assert!(!counts.shows_an_abort());
    }

    #[test]
    fn an_abort_marker_without_records_counts_as_evidence() {
        // The transaction's records were before the data given (e.g. deleted records).
        let data = log(&[marker(0, P1, false), batch(1, None, &["plain"])]);

        let counts = log_counts(0, &data).unwrap();

        assert_eq!(
            counts,
            LogCounts {
                committed: 1,
                abort_markers: 1,
                ..LogCounts::default()
            }
        );
        assert!(counts.shows_an_abort());
    }

    #[test]
    fn a_producer_running_transactions_one_after_another_is_counted_per_transaction() {
        let data = log(&[
            batch(0, Some(P1), &["first"]),
            marker(1, P1, false),
            batch(2, Some(P1), &["second-a", "second-b"]),
            marker(4, P1, true),
            batch(5, Some(P1), &["third"]),
            marker(6, P1, false),
        ]);
        let mut counts = log_counts(0, &data).unwrap();
        counts += log_counts(1, &batch(0, None, &["other partition"])).unwrap();

        assert_eq!(
            counts,
            LogCounts {
                committed: 3,
                aborted: 2,
                open: 0,
                commit_markers: 1,
                abort_markers: 2,
            }
        );
        assert_eq!(
            counts.to_string(),
            "3 committed, 2 aborted and 0 open record(s); 1 COMMIT and 2 ABORT marker(s)"
        );
    }

    #[test]
    fn compressed_batches_decode() {
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let records = [record(0, Some(P1), "a"), record(1, Some(P1), "b")];
            let data = log(&[encode(&records, compression), marker(2, P1, true)]);

            let committed = committed_records(0, &data).unwrap_or_else(|e| panic!("{compression:?}: {e}"));

            assert_eq!(offsets(&committed), [0, 1], "{compression:?}");
        }
    }

    #[test]
    fn an_incomplete_last_batch_is_ignored() {
        let whole = batch(0, None, &["a"]);
        let cut = batch(1, None, &["b", "c"]);
        let data = log(&[whole.clone(), cut[..cut.len() - 3].to_vec()]);

        assert_eq!(offsets(&committed_records(0, &data).unwrap()), [0]);
        let (complete, consumed) = split_batches(0, &Bytes::from(data)).unwrap();
        assert_eq!(complete.len(), 1);
        assert_eq!(consumed, whole.len());
        assert_eq!(complete[0].last_offset, 0);
    }

    #[test]
    fn split_reads_the_last_offset_of_each_batch() {
        let data = Bytes::from(log(&[batch(0, None, &["a", "b", "c"]), marker(3, P1, true)]));

        let (complete, consumed) = split_batches(0, &data).unwrap();

        let ranges: Vec<_> = complete
            .iter()
            .map(|batch| (batch.base_offset, batch.last_offset))
            .collect();
        assert_eq!(ranges, [(0, 2), (3, 3)]);
        assert_eq!(consumed, data.len());
    }

    #[test]
    fn overlapping_batches_are_read_once() {
        let data = log(&[
            batch(0, None, &["a", "b"]),
            batch(0, None, &["a", "b"]),
            batch(2, None, &["c"]),
        ]);

        assert_eq!(offsets(&committed_records(0, &data).unwrap()), [0, 1, 2]);
    }

    #[test]
    fn a_control_record_with_a_short_key_is_an_error() {
        let bad = Record {
            control: true,
            key: Some(Bytes::from_static(&[0, 0])),
            sequence: NO_SEQUENCE,
            ..record(1, Some(P1), "")
        };
        let data = log(&[batch(0, Some(P1), &["a"]), encode(&[bad], Compression::None)]);

        let error = committed_records(7, &data).unwrap_err();

        assert!(
            matches!(
                error,
                Error::ControlKey {
                    partition: 7,
                    offset: 1,
                    len: 2
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn an_old_message_format_is_an_error() {
        let mut data = batch(5, None, &["a"]);
        data[MAGIC_OFFSET] = 1;

        let error = committed_records(0, &data).unwrap_err();

        assert!(
            matches!(
                error,
                Error::Magic {
                    partition: 0,
                    offset: 5,
                    magic: 1
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_corrupt_batch_is_an_error() {
        let mut data = batch(0, None, &["value"]);
        let last = data.len() - 1;
        data[last] ^= 0xff;

        let error = committed_records(3, &data).unwrap_err();

        assert!(
            matches!(
                error,
                Error::Batch {
                    partition: 3,
                    offset: 0,
                    ..
                }
            ),
            "{error}"
        );
    }
}
