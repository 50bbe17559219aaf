//! The Kafka broker the integration tests run against.
//!
//! [`Broker::shared`] gives every test in a process the same broker:
//!
//! - If `WEIR_TEST_BOOTSTRAP` is set (e.g. `localhost:9092`), that external broker, a real Kafka or
//!   Redpanda, is used and nothing is started.
//! - Otherwise nisshi is started with in-memory storage on a free loopback port. The binary is
//!   `WEIR_NISSHI` if set, else `nisshi` on `PATH`, else `~/.cache/weir-ci/nisshi/bin/nisshi`. Its
//!   output goes to `weir-nisshi-<port>.log` in the temporary directory. A watchdog shell stops it
//!   when the test process exits, since a static is never dropped.
//!
//! The test broker is nisshi 0.7.0 with patches of ours (`tests/broker/`, applied and built by
//! `.ci/setup-broker`): among them, it lists aborted transactions in its Fetch responses, as Kafka does, so a
//! librdkafka `read_committed` consumer sees exactly the committed records on it. Published nisshi
//! 0.7.0 does not. [`Broker::read_committed`] reads committed output a second way, applying the
//! transaction markers itself (see [`crate::committed`]), on any broker.
//!
//! [`Broker::start_nisshi_behind_proxy`] starts a nisshi of its own behind a [`Proxy`], which a
//! test cuts to take the broker away from its clients for a while (an outage) and restores. An
//! external broker cannot be put behind it: it advertises its own address in Metadata responses, so
//! clients would connect to it directly after the bootstrap.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;

use crate::Error;
use crate::committed::{self, CommittedRecord, LogCounts, Pool};
use crate::error::code_name;
use crate::proxy::Proxy;
use crate::wire::{Connection, api_name};

/// The environment variable naming an external broker to use instead of starting nisshi.
pub const BOOTSTRAP_ENV: &str = "WEIR_TEST_BOOTSTRAP";
/// The environment variable naming the nisshi binary.
pub const NISSHI_ENV: &str = "WEIR_NISSHI";
/// How to install the nisshi version the tests expect: patched (see the module documentation).
pub const NISSHI_INSTALL: &str = "bash .ci/setup-broker";

/// How long a started broker may take to answer requests.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long topic creation may take, including waiting for every partition to have a leader.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A Kafka broker for tests: an external one, or a nisshi process this one started.
#[derive(Debug)]
pub struct Broker {
    /// The `host:port` to bootstrap from (`bootstrap.servers`).
    pub bootstrap: String,
    external: bool,
    child: Option<Child>,
    watchdog: Option<Child>,
    log: Option<PathBuf>,
    /// The proxy every client connection goes through, if the broker was started behind one.
    /// Dropped after the broker is stopped.
    proxy: Option<Proxy>,
}

impl Broker {
    /// The broker shared by every test of this process, started on first use.
    ///
    /// # Panics
    ///
    /// If nisshi is needed and not installed (the message says how to install it), or does not
    /// start.
    pub fn shared() -> &'static Broker {
        static SHARED: OnceLock<Broker> = OnceLock::new();
        SHARED.get_or_init(|| match std::env::var(BOOTSTRAP_ENV) {
            Ok(bootstrap) if !bootstrap.trim().is_empty() => Broker::external(bootstrap.trim()),
            _ => Broker::start_nisshi().unwrap_or_else(|error| panic!("starting the test broker: {error}")),
        })
    }

    /// An external broker at `bootstrap`; nothing is started or stopped.
    pub fn external(bootstrap: impl Into<String>) -> Broker {
        Broker {
            bootstrap: bootstrap.into(),
            external: true,
            child: None,
            watchdog: None,
            log: None,
            proxy: None,
        }
    }

    /// Starts a nisshi broker of its own, stopped when the returned value is dropped (or, failing
    /// that, when the test process exits). Tests that kill or restart the broker use this rather
    /// than [`Broker::shared`].
    ///
    /// # Panics
    ///
    /// If the nisshi binary cannot be found; the message says how to install it.
    pub fn start_nisshi() -> Result<Broker, Error> {
        Broker::spawn_nisshi(free_port()?, None)
    }

    /// Starts a nisshi broker of its own like [`Broker::start_nisshi`], behind a [`Proxy`]: nisshi
    /// advertises the proxy's address, so every client connection (the bootstrap one, and those
    /// made after reading Metadata or finding a coordinator) goes through the proxy, and
    /// [`Proxy::cut`] takes the broker away from all its clients, this crate's readers included.
    /// `bootstrap` is the proxy's address.
    ///
    /// # Panics
    ///
    /// If the nisshi binary cannot be found; the message says how to install it.
    pub fn start_nisshi_behind_proxy() -> Result<Broker, Error> {
        let port = free_port()?;
        let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port)))?;
        Broker::spawn_nisshi(port, Some(proxy))
    }

    /// Starts nisshi listening on `port`, advertising that port or the proxy's address.
    fn spawn_nisshi(port: u16, proxy: Option<Proxy>) -> Result<Broker, Error> {
        let program = nisshi_binary();
        let listen = format!("tcp://127.0.0.1:{port}");
        let bootstrap = proxy
            .as_ref()
            .map_or_else(|| format!("127.0.0.1:{port}"), |p| p.addr().to_string());
        let advertised = format!("tcp://{bootstrap}");
        let log = std::env::temp_dir().join(format!("weir-nisshi-{port}.log"));
        let log_file = File::create(&log).map_err(|source| Error::LogFile {
            path: log.clone(),
            source,
        })?;
        let log_file_too = log_file.try_clone().map_err(|source| Error::LogFile {
            path: log.clone(),
            source,
        })?;

        let child = Command::new(&program)
            .args([
                "broker",
                "--listener-url",
                &listen,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", "memory://nisshi/"])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_file_too)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: program.clone(),
                source,
            })?;
        let mut broker = Broker {
            bootstrap,
            external: false,
            child: Some(child),
            watchdog: None,
            log: Some(log.clone()),
            proxy,
        };
        let broker_pid = broker.child.as_ref().map_or(0, Child::id);
        broker.watchdog = Some(watchdog(std::process::id(), broker_pid)?);
        broker.wait_ready(&log)?;
        Ok(broker)
    }

    /// Waits until the broker answers ApiVersions and Metadata, or has exited.
    fn wait_ready(&mut self, log: &Path) -> Result<(), Error> {
        let started = Instant::now();
        let mut last = String::from("not tried yet");
        while started.elapsed() < START_TIMEOUT {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(Error::BrokerExited {
                    bootstrap: self.bootstrap.clone(),
                    status,
                    log: log.to_owned(),
                });
            }
            match ping(&self.bootstrap) {
                Ok(()) => return Ok(()),
                Err(error) => last = error.to_string(),
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(Error::BrokerNotReady {
            bootstrap: self.bootstrap.clone(),
            waited: started.elapsed(),
            last,
            log: log.to_owned(),
        })
    }

    /// Whether this is an external broker (`WEIR_TEST_BOOTSTRAP`) rather than one started here.
    pub fn is_external(&self) -> bool {
        self.external
    }

    /// The proxy in front of the broker, if it was started behind one
    /// ([`Broker::start_nisshi_behind_proxy`]).
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// The log file of a broker started here.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The process id of a broker started here.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Creates `name` with `partitions` partitions and replication factor 1, then waits until every
    /// partition has a leader. A topic that exists already is an error
    /// ([`Error::Topic`] with code 36, `TOPIC_ALREADY_EXISTS`): tests use unique names.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), Error> {
        self.create_topic_with_config(name, partitions, &[])
    }

    /// Creates `name` like [`Broker::create_topic`], with `cleanup.policy=compact`.
    pub fn create_compacted_topic(&self, name: &str, partitions: i32) -> Result<(), Error> {
        self.create_topic_with_config(name, partitions, &[("cleanup.policy", "compact")])
    }

    /// Creates `name` like [`Broker::create_topic`], with topic `config` entries (name, value).
    pub fn create_topic_with_config(&self, name: &str, partitions: i32, config: &[(&str, &str)]) -> Result<(), Error> {
        let deadline = Instant::now() + ADMIN_TIMEOUT;
        let mut pool = Pool::new(committed::io_timeout(ADMIN_TIMEOUT));
        let connection = pool.bootstrap(&self.bootstrap)?;
        let version = connection.version::<CreateTopicsRequest>(ApiKey::CreateTopics, 2, 7)?;
        let topic = CreatableTopic::default()
            .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                name.to_owned(),
            )))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                config
                    .iter()
                    .map(|(key, value)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string((*key).to_owned()))
                            .with_value(Some(StrBytes::from_string((*value).to_owned())))
                    })
                    .collect(),
            );
        let timeout_ms = i32::try_from(ADMIN_TIMEOUT.as_millis()).unwrap_or(i32::MAX);
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(timeout_ms);
        let response: CreateTopicsResponse = connection.call(ApiKey::CreateTopics, version, &request)?;
        let result = response.topics.iter().find(|topic| topic.name.0.as_str() == name);
        let result = result.ok_or_else(|| Error::MissingTopic {
            addr: connection.addr().to_owned(),
            topic: name.to_owned(),
        })?;
        if result.error_code != 0 {
            return Err(Error::Topic {
                topic: name.to_owned(),
                api: api_name(ApiKey::CreateTopics),
                code: result.error_code,
                name: code_name(result.error_code),
                message: result.error_message.as_ref().map(|message| message.as_str().to_owned()),
            });
        }

        // Wait until the metadata shows every partition with a leader, so that a producer started
        // right away finds them.
        committed::retry(deadline, || {
            let leaders = committed::partition_leaders(pool.bootstrap(&self.bootstrap)?, name)?;
            if leaders.len() < usize::try_from(partitions).unwrap_or(0) {
                // Reported as the retriable LEADER_NOT_AVAILABLE until all partitions show up.
                return Err(Error::Topic {
                    topic: name.to_owned(),
                    api: api_name(ApiKey::Metadata),
                    code: 5,
                    name: code_name(5),
                    message: Some(format!("{} of {partitions} partitions in the metadata", leaders.len())),
                });
            }
            Ok(())
        })
    }

    /// What a `read_committed` consumer would see in `topic`, read from the raw log (see
    /// [`committed::read_committed`]): partition by partition, each in offset order.
    pub fn read_committed(&self, topic: &str, timeout: Duration) -> Result<Vec<CommittedRecord>, Error> {
        committed::read_committed(&self.bootstrap, topic, timeout)
    }

    /// The records in `topic`'s raw log counted by fate (committed, aborted, open) with the
    /// transaction markers, summed over its partitions (see [`committed::read_log_counts`]).
    /// Works on any broker: the markers are in every broker's log.
    pub fn log_counts(&self, topic: &str, timeout: Duration) -> Result<LogCounts, Error> {
        committed::read_log_counts(&self.bootstrap, topic, timeout)
    }

    /// [`Broker::log_counts`] partition by partition, in partition order.
    pub fn partition_log_counts(&self, topic: &str, timeout: Duration) -> Result<Vec<(i32, LogCounts)>, Error> {
        committed::read_partition_log_counts(&self.bootstrap, topic, timeout)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        for child in [self.child.take(), self.watchdog.take()].into_iter().flatten() {
            let mut child = child;
            // The process may have exited already; there is nothing to do about an error here.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends ApiVersions (on connecting) and a Metadata request for no topics to `bootstrap`.
fn ping(bootstrap: &str) -> Result<(), Error> {
    let mut connection = Connection::open(bootstrap, Duration::from_secs(2))?;
    let version = connection.version::<MetadataRequest>(ApiKey::Metadata, 4, 12)?;
    let request = MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .with_allow_auto_topic_creation(false);
    let _: MetadataResponse = connection.call(ApiKey::Metadata, version, &request)?;
    Ok(())
}

/// The nisshi binary: `WEIR_NISSHI`, else `nisshi` on `PATH`, else the CI cache.
///
/// # Panics
///
/// If none exists, with instructions to install it.
fn nisshi_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(NISSHI_ENV).filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{NISSHI_ENV}={} is not a file", path.display());
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nisshi"))
        .find(|candidate| candidate.is_file());
    if let Some(path) = on_path {
        return path;
    }
    let cached = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/weir-ci/nisshi/bin/nisshi"));
    match cached {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "the test broker nisshi is not installed: set {BOOTSTRAP_ENV}=host:port to use a running Kafka, \
             set {NISSHI_ENV} to the nisshi binary, or install it with\n    {NISSHI_INSTALL}"
        ),
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| Error::FreePort { source })?;
    let port = listener
        .local_addr()
        .map_err(|source| Error::FreePort { source })?
        .port();
    Ok(port)
}

/// Starts a shell that stops process `broker` once process `owner` is gone. It runs in a process
/// group of its own, so a Ctrl-C to the test run does not stop it before it has done its work.
fn watchdog(owner: u32, broker: u32) -> Result<Child, Error> {
    let script = format!("while kill -0 {owner} 2>/dev/null; do sleep 1; done; kill {broker} 2>/dev/null");
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: PathBuf::from("sh"),
            source,
        })
}
