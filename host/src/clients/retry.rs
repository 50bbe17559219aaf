//! Waiting out a broker that went away: a Kafka call whose error is
//! retriable (a timeout, a lost connection, a coordinator that moved) is
//! tried again, with a pause doubling from 100 ms to 5 s, for as long as
//! the error stays retriable. A shutdown request ends the wait.
//!
//! Every wait says what it waits for: at warn when it starts and then at
//! most every 5 s (the operation, the transactional id, how long so far,
//! librdkafka's error), and at info once the operation went through.
//!
//! [`retry`] wraps one call; [`Wait`] is the pacing and logging itself,
//! for loops that wait on something else (a full producer queue).

use std::fmt::Display;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};

use crate::shutdown::Shutdown;

/// The first pause after a retriable failure.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// How often a wait that goes on is logged again.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// The longest a single try waits for the brokers: a wait is logged, and a
/// shutdown seen, within this long. librdkafka resumes a transaction
/// operation that timed out when it is called again.
pub const ATTEMPT: Duration = Duration::from_secs(5);

/// A retried call gave up.
#[derive(Debug, thiserror::Error)]
pub enum GaveUp {
    /// It failed in a way trying again cannot fix.
    #[error(transparent)]
    Failed(KafkaError),
    /// A shutdown was requested while it waited.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// A shutdown was requested while an operation waited for the brokers.
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped while waiting for Kafka to {operation} (transactional.id {transactional_id}) for {:.1} s; \
     last error: {reason}",
    .waited.as_secs_f64()
)]
pub struct Stopped {
    /// What it waited for.
    pub operation: String,
    /// The instance's transactional id.
    pub transactional_id: String,
    /// How long it waited.
    pub waited: Duration,
    /// librdkafka's last error.
    pub reason: String,
}

/// Calls `call` until it succeeds, fails for good, or a shutdown is
/// requested and it has waited `timeout` in all. `call` gets how long it
/// may wait for the brokers: `timeout`, at most [`ATTEMPT`].
pub fn retry<T>(
    operation: &str,
    transactional_id: &str,
    timeout: Duration,
    shutdown: &Shutdown,
    mut call: impl FnMut(Duration) -> KafkaResult<T>,
) -> Result<T, GaveUp> {
    let attempt = timeout.min(ATTEMPT);
    let mut wait = Wait::new(operation, transactional_id);
    loop {
        match call(attempt) {
            Ok(t) => {
                wait.over(None);
                return Ok(t);
            }
            Err(e) if retriable(&e) => {
                // A stop leaves the operation the time one call had
                // (`timeout`: a final commit may be slow), then ends the
                // wait; before it, pauses end early when it comes.
                let stopping = shutdown.requested();
                if stopping && wait.waited() >= timeout {
                    return Err(GaveUp::Stopped(Stopped {
                        operation: operation.to_owned(),
                        transactional_id: transactional_id.to_owned(),
                        waited: wait.waited(),
                        reason: e.to_string(),
                    }));
                }
                wait.failed(&e, (!stopping).then_some(shutdown));
            }
            Err(e) => {
                wait.over(Some(&e));
                return Err(GaveUp::Failed(e));
            }
        }
    }
}

/// Whether trying `e`'s call again may succeed: librdkafka says so of a
/// transaction error (one that needs an abort, or is fatal, is not);
/// otherwise the codes of a broker that is unreachable, slow, or moving a
/// coordinator or leader.
pub fn retriable(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(rd) => rd.is_retriable() && !rd.is_fatal() && !rd.txn_requires_abort(),
        other => other.rdkafka_error_code().is_some_and(transient),
    }
}

/// Codes of a broker that is unreachable or busy for a while.
pub fn transient(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::BrokerTransportFailure
            | C::Resolve
            | C::AllBrokersDown
            | C::OperationTimedOut
            | C::TimedOutQueue
            | C::WaitingForCoordinator
            | C::Retry
            | C::RequestTimedOut
            | C::NetworkException
            | C::CoordinatorLoadInProgress
            | C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::PreferredLeaderNotAvailable
    )
}

/// One wait for the brokers: the pauses between tries (doubling up to a
/// bound) and its log lines.
#[derive(Debug)]
pub struct Wait<'a> {
    operation: &'a str,
    transactional_id: &'a str,
    started: Instant,
    pause: Duration,
    max_pause: Duration,
    /// Nothing is logged before the wait has lasted this long.
    quiet: Duration,
    logged: Option<Instant>,
}

impl<'a> Wait<'a> {
    /// A wait for `operation` (e.g. "commit the transaction"), logged from
    /// its first failure.
    pub fn new(operation: &'a str, transactional_id: &'a str) -> Wait<'a> {
        Wait {
            operation,
            transactional_id,
            started: Instant::now(),
            pause: FIRST_PAUSE,
            max_pause: MAX_PAUSE,
            quiet: Duration::ZERO,
            logged: None,
        }
    }

    /// A wait on backpressure (room in a full queue), which is normally
    /// over in milliseconds: short pauses, logged only once it has lasted
    /// 5 s.
    pub fn backpressure(operation: &'a str, transactional_id: &'a str) -> Wait<'a> {
        Wait {
            pause: Duration::from_millis(1),
            max_pause: Duration::from_millis(50),
            quiet: LOG_EVERY,
            ..Wait::new(operation, transactional_id)
        }
    }

    /// How long it has waited so far.
    pub fn waited(&self) -> Duration {
        self.started.elapsed()
    }

    /// A try failed with `error`, retriably: logs it when due, then sleeps
    /// the next pause, or less if `shutdown` is requested meanwhile.
    pub fn failed(&mut self, error: &dyn Display, shutdown: Option<&Shutdown>) {
        self.note(error);
        let pause = self.next_pause();
        match shutdown {
            Some(s) => {
                s.sleep(pause);
            }
            None => std::thread::sleep(pause),
        }
    }

    /// The pause before the next try, and doubles the one after it.
    fn next_pause(&mut self) -> Duration {
        let pause = self.pause;
        self.pause = (self.pause * 2).min(self.max_pause);
        pause
    }

    /// Logs that it is still waiting, with `error`, if due: at warn, first
    /// once it has lasted its quiet time, then every 5 s.
    fn note(&mut self, error: &dyn Display) {
        let waited = self.waited();
        let due = match self.logged {
            None => waited >= self.quiet,
            Some(at) => at.elapsed() >= LOG_EVERY,
        };
        if !due {
            return;
        }
        self.logged = Some(Instant::now());
        tracing::warn!(
            transactional_id = %self.transactional_id,
            "waiting for Kafka to {}, {:.1} s so far: {error}; retrying",
            self.operation,
            waited.as_secs_f64()
        );
    }

    /// The wait is over: the operation went through (`None`), or failed in
    /// a way trying again cannot fix (`Some(error)`, which the caller
    /// handles); says so at info if the wait was logged.
    pub fn over(&self, failed: Option<&dyn Display>) {
        if self.logged.is_none() {
            return;
        }
        let waited = self.waited().as_secs_f64();
        let (operation, id) = (self.operation, self.transactional_id);
        match failed {
            None => tracing::info!(
                transactional_id = %id,
                "Kafka is back after {waited:.1} s: could {operation}; resuming"
            ),
            Some(e) => tracing::info!(
                transactional_id = %id,
                "stopped waiting for Kafka to {operation} after {waited:.1} s: it failed: {e}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retriable_error_is_tried_again_until_the_call_succeeds() {
        let mut calls = 0;
        let got = retry("test", "app-0", Duration::from_secs(30), &Shutdown::new(), |attempt| {
            assert_eq!(attempt, ATTEMPT, "a try waits at most ATTEMPT");
            calls += 1;
            if calls < 3 {
                Err(KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(got.ok(), Some(3));
    }

    #[test]
    fn other_errors_are_given_back_at_once() {
        let mut calls = 0;
        let got: Result<(), _> = retry("test", "app-0", Duration::from_secs(1), &Shutdown::new(), |attempt| {
            assert_eq!(attempt, Duration::from_secs(1), "a shorter timeout is kept");
            calls += 1;
            Err(KafkaError::MetadataFetch(RDKafkaErrorCode::TopicAuthorizationFailed))
        });
        assert!(matches!(got, Err(GaveUp::Failed(_))), "{got:?}");
        assert_eq!(calls, 1);
        // A seek's error carries no code: not known to be retriable.
        assert!(!retriable(&KafkaError::Seek("Local: Timed out".into())));
    }

    #[test]
    fn a_shutdown_ends_the_wait_once_it_has_lasted_the_timeout() {
        let shutdown = Shutdown::new();
        shutdown.request();
        let mut calls = 0;
        let started = Instant::now();
        let timeout = Duration::from_millis(250);
        let got: Result<(), _> = retry("commit the transaction", "app-0", timeout, &shutdown, |_| {
            calls += 1;
            Err(KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown))
        });
        // Tries after 0, 100 and 300 ms: the last one is past the timeout.
        assert_eq!(calls, 3);
        assert!(started.elapsed() < Duration::from_secs(2));
        match got {
            Err(GaveUp::Stopped(s)) => {
                assert_eq!(s.operation, "commit the transaction");
                assert!(s.to_string().contains("app-0"), "{s}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pauses_double_up_to_the_bound() {
        let mut wait = Wait::new("test", "app-0");
        let pauses: Vec<Duration> = (0..8).map(|_| wait.next_pause()).collect();
        assert_eq!(pauses[..3], [FIRST_PAUSE, FIRST_PAUSE * 2, FIRST_PAUSE * 4]);
        assert_eq!(pauses[7], MAX_PAUSE);
        let mut queue = Wait::backpressure("test", "app-0");
        assert_eq!(queue.next_pause(), Duration::from_millis(1));
    }
}
