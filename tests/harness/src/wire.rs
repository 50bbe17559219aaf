//! A minimal blocking Kafka protocol client: one TCP connection, one request in flight.
//!
//! Requests and responses are `kafka-protocol`'s message types. Each connection asks the broker
//! for its API versions on opening, and [`Connection::version`] picks the newest version both
//! sides support:
//!
//! ```no_run
//! use std::time::Duration;
//! use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
//! use weir_test_harness::wire::Connection;
//!
//! let mut connection = Connection::open("127.0.0.1:9092", Duration::from_secs(5))?;
//! let version = connection.version::<MetadataRequest>(ApiKey::Metadata, 4, 12)?;
//! let request = MetadataRequest::default().with_topics(None).with_allow_auto_topic_creation(false);
//! let response: MetadataResponse = connection.call(ApiKey::Metadata, version, &request)?;
//! println!("{} topics", response.topics.len());
//! # Ok::<(), weir_test_harness::Error>(())
//! ```

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes, VersionRange};

use crate::Error;
use crate::error::code_name;

/// The `client.id` sent with every request.
const CLIENT_ID: &str = "weir-test-harness";

/// ApiVersions v2: the newest version without flexible fields, supported by every broker since
/// Kafka 2.0. A broker answers an unsupported ApiVersions version with v0 and an error.
const API_VERSIONS_VERSION: i16 = 2;

/// A response larger than this is treated as a framing error rather than allocated.
const MAX_RESPONSE_BYTES: i32 = 512 * 1024 * 1024;

/// A connection to one broker.
pub struct Connection {
    addr: String,
    stream: TcpStream,
    correlation_id: i32,
    /// API key → the (min, max) versions the broker supports.
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `addr` (`host:port`) and reads the broker's API versions. `io_timeout` bounds
    /// the connect and every later read and write.
    pub fn open(addr: &str, io_timeout: Duration) -> Result<Self, Error> {
        let stream = connect(addr, io_timeout).map_err(|source| Error::Connect {
            addr: addr.to_owned(),
            source,
        })?;
        let mut connection = Connection {
            addr: addr.to_owned(),
            stream,
            correlation_id: 0,
            versions: HashMap::new(),
        };
        let response: ApiVersionsResponse = connection.call(
            ApiKey::ApiVersions,
            API_VERSIONS_VERSION,
            &ApiVersionsRequest::default(),
        )?;
        if response.error_code != 0 {
            return Err(Error::Api {
                addr: addr.to_owned(),
                api: api_name(ApiKey::ApiVersions),
                code: response.error_code,
                name: code_name(response.error_code),
            });
        }
        connection.versions = response
            .api_keys
            .iter()
            .map(|api| (api.api_key, (api.min_version, api.max_version)))
            .collect();
        Ok(connection)
    }

    /// The broker's `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The newest version of request `M` (API `key`) within `min..=max` that the broker and
    /// `kafka-protocol` both support.
    pub fn version<M: Message>(&self, key: ApiKey, min: i16, max: i16) -> Result<i16, Error> {
        let api = api_name(key);
        let client = M::VERSIONS.intersect(&VersionRange { min, max });
        let &(broker_min, broker_max) = self.versions.get(&(key as i16)).ok_or_else(|| Error::ApiMissing {
            addr: self.addr.clone(),
            api,
        })?;
        let common = client.intersect(&VersionRange {
            min: broker_min,
            max: broker_max,
        });
        if common.is_empty() {
            return Err(Error::NoCommonVersion {
                addr: self.addr.clone(),
                api,
                broker_min,
                broker_max,
                client_min: client.min,
                client_max: client.max,
            });
        }
        Ok(common.max)
    }

    /// Sends `request` as API `key` at `version` and reads the response.
    pub fn call<Req, Resp>(&mut self, key: ApiKey, version: i16, request: &Req) -> Result<Resp, Error>
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let api = api_name(key);
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let correlation_id = self.correlation_id;

        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&[0; 4]);
        let encoded = header
            .encode(&mut frame, Req::header_version(version))
            .and_then(|()| request.encode(&mut frame, version));
        if let Err(e) = encoded {
            return Err(Error::Encode {
                api,
                version,
                detail: format!("{e:#}"),
            });
        }
        let size = i32::try_from(frame.len() - 4).map_err(|_| Error::Encode {
            api,
            version,
            detail: format!("{} bytes is too large", frame.len()),
        })?;
        frame[..4].copy_from_slice(&size.to_be_bytes());

        let io_error = |source| Error::Io {
            addr: self.addr.clone(),
            api,
            version,
            source,
        };
        self.stream.write_all(&frame).map_err(io_error)?;
        let mut size = [0; 4];
        self.stream.read_exact(&mut size).map_err(io_error)?;
        let size = i32::from_be_bytes(size);
        let decode_error = |detail: String| Error::Decode {
            addr: self.addr.clone(),
            api,
            version,
            detail,
        };
        if !(0..=MAX_RESPONSE_BYTES).contains(&size) {
            return Err(decode_error(format!("response size {size} is out of range")));
        }
        let mut body = vec![0; size as usize];
        self.stream.read_exact(&mut body).map_err(io_error)?;
        let mut body = Bytes::from(body);

        let header = ResponseHeader::decode(&mut body, Resp::header_version(version))
            .map_err(|e| decode_error(format!("header: {e:#}")))?;
        if header.correlation_id != correlation_id {
            return Err(Error::Correlation {
                addr: self.addr.clone(),
                api,
                expected: correlation_id,
                found: header.correlation_id,
            });
        }
        Resp::decode(&mut body, version).map_err(|e| decode_error(format!("{e:#}")))
    }
}

/// Connects to the first address `addr` resolves to that accepts, within `timeout` each.
fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing");
    for socket_addr in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&socket_addr, timeout) {
            Ok(stream) => {
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The name of an API for errors, e.g. `Fetch`.
pub(crate) fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::Metadata => "Metadata",
        ApiKey::Fetch => "Fetch",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::Produce => "Produce",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::ListOffsets => "ListOffsets",
        _ => "request",
    }
}
