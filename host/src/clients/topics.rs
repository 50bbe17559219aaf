//! Internal topics: Weir creates the repartition and changelog topics of a
//! pipeline (and only those; user topics must exist).

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;

use crate::topology::{InternalKind, InternalTopic};

/// An internal topic could not be created, or exists with the wrong shape.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The broker refused to create it.
    #[error("cannot create internal topic {topic}: {reason}")]
    Create {
        /// Topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },
    /// It exists with another partition count than the pipeline needs.
    #[error(
        "internal topic {topic} has {found} partition(s) but the pipeline needs {expected}; \
         an application's partition counts cannot change (delete the internal topics to start over)"
    )]
    Partitions {
        /// Topic.
        topic: String,
        /// What it has.
        found: usize,
        /// What the pipeline needs.
        expected: i32,
    },
}

/// The partition count internal topics get by default: the largest of the inputs'.
pub fn input_partitions(metadata: &Metadata, inputs: &[String]) -> i32 {
    metadata
        .topics()
        .iter()
        .filter(|t| inputs.iter().any(|i| i == t.name()))
        .map(|t| t.partitions().len() as i32)
        .max()
        .unwrap_or(1)
}

/// Creates the internal topics that do not exist yet and checks the
/// partition counts of those that do.
pub fn ensure(
    config: &ClientConfig,
    metadata: &Metadata,
    wanted: &[InternalTopic],
    default_partitions: i32,
    timeout: Duration,
) -> Result<(), TopicError> {
    let mut missing = Vec::new();
    for t in wanted {
        let partitions = t.partitions.unwrap_or(default_partitions);
        match metadata
            .topics()
            .iter()
            .find(|m| m.name() == t.name && m.error().is_none())
        {
            Some(m) if m.partitions().len() as i32 != partitions => {
                return Err(TopicError::Partitions {
                    topic: t.name.clone(),
                    found: m.partitions().len(),
                    expected: partitions,
                });
            }
            Some(_) => {}
            None => missing.push((t, partitions)),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(|e| TopicError::Create {
        topic: missing[0].0.name.clone(),
        reason: e.to_string(),
    })?;
    let configs: Vec<Vec<(&str, String)>> = missing.iter().map(|(t, _)| topic_config(t.kind)).collect();
    // As Kafka Streams did before broker defaults: up to 3 replicas.
    let replication = metadata.brokers().len().clamp(1, 3) as i32;
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .zip(&configs)
        .map(|((t, partitions), config)| {
            let mut topic = NewTopic::new(&t.name, *partitions, TopicReplication::Fixed(replication));
            for (key, value) in config {
                topic = topic.set(key, value);
            }
            topic
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = block_on(admin.create_topics(&new, &options)).map_err(|e| TopicError::Create {
        topic: missing[0].0.name.clone(),
        reason: e.to_string(),
    })?;
    for r in results {
        match r {
            Ok(name) => tracing::info!(topic = %name, "created internal topic"),
            // Another instance created it first.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(TopicError::Create {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// How long a windowed changelog keeps records past what its windows need,
/// as Kafka Streams' `windowstore.changelog.additional.retention.ms`: a
/// margin for clock drift and for a task that restores late.
pub const CHANGELOG_ADDITIONAL_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// The topic configuration an internal topic is created with, as Kafka
/// Streams creates its own.
///
/// - Repartition topics keep every record whatever its timestamp
///   (`retention.ms = -1`): reprocessing old data must not lose records
///   between two stages to time-based retention. Instances delete what
///   their group has committed instead (`kafka::purge`).
/// - Changelogs are compacted. A windowed store's changelog is also
///   deleted by time (`compact,delete`), keeping each record for the
///   windows' retention plus a day; Weir stamps changelog records with the
///   wall clock, so that this counts from when the state was written, not
///   from the (possibly year-old) event time.
pub fn topic_config(kind: InternalKind) -> Vec<(&'static str, String)> {
    match kind {
        InternalKind::Repartition => vec![
            ("cleanup.policy", "delete".into()),
            ("retention.ms", "-1".into()),
            // Smaller segments, so that purged records leave the disk sooner.
            ("segment.bytes", (50 * 1024 * 1024).to_string()),
        ],
        InternalKind::Changelog {
            window_retention: Some(retention),
        } => vec![
            ("cleanup.policy", "compact,delete".into()),
            (
                "retention.ms",
                retention.saturating_add(CHANGELOG_ADDITIONAL_RETENTION_MS).to_string(),
            ),
        ],
        InternalKind::Changelog { window_retention: None } | InternalKind::Control => {
            vec![("cleanup.policy", "compact".into())]
        }
    }
}

/// Runs a future to completion on this thread. librdkafka's admin calls are
/// futures completed by its own threads; this is all the executor they need.
pub fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}
