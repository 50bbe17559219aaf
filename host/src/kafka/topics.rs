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

use crate::task::InternalTopic;

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
    // As Kafka Streams did before broker defaults: up to 3 replicas.
    let replication = metadata.brokers().len().clamp(1, 3) as i32;
    let new: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|(t, partitions)| {
            let topic = NewTopic::new(&t.name, *partitions, TopicReplication::Fixed(replication));
            if t.compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
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

/// Runs a future to completion on this thread. librdkafka's admin calls are
/// futures completed by its own threads; this is all the executor they need.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
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
