//! Crash tests: SIGKILL a `weir run` instance only once it has committed
//! progress in its current life, a seeded random delay after that, and check
//! afterwards that the kills left open transactions behind.
//!
//! A *life* runs from a (re)start to its SIGKILL. *Progress* is the sum of
//! the input-topic offsets that the pipeline's consumer group (its group id
//! is the application id) has committed, read by a consumer that joins no
//! group. A kill before that sum grows in the life proves nothing: the
//! instance may still have been joining the group or restoring its stores.
//! (A multi-stage pipeline's group commits its repartition topics' offsets
//! too; the input topics are enough to see a life work.)
//!
//! A life's baseline is read once the instance has connected (`weir:
//! running` in its log): by then its producer has fenced the previous life,
//! so that life's last transaction is settled and cannot count as this
//! life's progress, and the new life has not processed anything yet.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use weir::pipeline::{Guarantee, Pipeline};
use weir_test_harness::committed::LogCounts;

use super::kafka::{Feeder, WeirProcess, broker, log_counts};

/// How long a life may take to commit progress: start-up, joining the group,
/// restoring stores, catching up with what arrived while it was down.
pub const PROGRESS_WAIT: Duration = Duration::from_secs(90);

/// `weir run` arguments for crash tests: consumer fetches that wait at most
/// 50 ms for data. A broker holds a Fetch with nothing to return for up to
/// `fetch.wait.max.ms` (librdkafka's default: 500 ms); nisshi 0.7.0 then
/// looks for new data only now and then (after half the time left, and so
/// on), so by default input reaches the instance in bursts some 250 ms
/// apart, each transaction is open for a fraction of that, and most random
/// kills land between transactions. With short fetches input arrives as it
/// flows and a transaction is open most of the time.
pub const CRASH_ARGS: &[&str] = &["--kafka", "fetch.wait.max.ms=50"];

/// How long an aimed kill waits for the raw log to show an open transaction.
pub const AIM_WAIT: Duration = Duration::from_secs(10);

/// How long an aimed kill lets requests already sent by a frozen process
/// land before it checks that the transaction it saw is still open.
const FREEZE_SETTLE: Duration = Duration::from_millis(300);

/// Seeded random kill delays. The seed is printed, and `WEIR_TEST_SEED`
/// replays it.
pub struct KillRng(u64);

impl KillRng {
    /// Seeded from `WEIR_TEST_SEED`, else from the clock.
    pub fn seeded() -> KillRng {
        let seed = std::env::var("WEIR_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("kill-time seed: {seed} (WEIR_TEST_SEED={seed} replays it)");
        KillRng(seed | 1)
    }

    /// A delay from `lo` to `hi` milliseconds (xorshift).
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(lo + self.0 % (hi - lo).max(1))
    }
}

/// The offsets a consumer group has committed on some partitions, read
/// without joining the group.
pub struct GroupProgress {
    group: String,
    consumer: BaseConsumer,
    partitions: TopicPartitionList,
}

impl GroupProgress {
    /// Every partition of `topics`, as committed by `group`.
    pub fn of_topics(group: &str, topics: &[&str]) -> GroupProgress {
        let consumer = group_reader(group);
        let mut partitions = TopicPartitionList::new();
        for topic in topics {
            let meta = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
            let n = meta.topics().first().map_or(0, |t| t.partitions().len());
            assert!(n > 0, "topic {topic} has no partitions");
            for p in 0..n {
                partitions.add_partition(topic, p as i32);
            }
        }
        GroupProgress {
            group: group.to_owned(),
            consumer,
            partitions,
        }
    }

    /// Only these `(topic, partition)`s, as committed by `group` (e.g. one
    /// instance's share of the partitions).
    pub fn of_partitions(group: &str, partitions: &[(String, i32)]) -> GroupProgress {
        let mut list = TopicPartitionList::new();
        for (topic, p) in partitions {
            list.add_partition(topic, *p);
        }
        GroupProgress {
            group: group.to_owned(),
            consumer: group_reader(group),
            partitions: list,
        }
    }

    /// The sum of the committed offsets (a partition without one counts 0).
    pub fn committed(&self) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self
                .consumer
                .committed_offsets(self.partitions.clone(), Duration::from_secs(10))
            {
                Ok(list) => {
                    return list
                        .elements()
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(n) => Some(n),
                            _ => None,
                        })
                        .sum();
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("committed offsets of group {}: {e}; retrying", self.group);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot read the committed offsets of group {}: {e}", self.group),
            }
        }
    }
}

/// A consumer with `group.id = group` that never subscribes, so never joins
/// the group: it only asks the coordinator for committed offsets. Under
/// read_uncommitted it is given the stable offsets at once (a
/// read_committed one would be told to retry while a transaction holds
/// pending offsets).
fn group_reader(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_uncommitted")
        .create()
        .unwrap_or_else(|e| panic!("create a reader of group {group}'s offsets: {e}"))
}

/// Waits until `w` has connected to Kafka (its producer initialised, so a
/// previous life with its transactional id is fenced) and logged that it runs.
pub fn wait_connected(w: &mut WeirProcess) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !w.log_text().contains("weir: running ") {
        assert!(w.running(), "weir exited before it was running:\n{}", w.log_text());
        assert!(
            Instant::now() < deadline,
            "weir did not connect within 90 s:\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `w` has been assigned partitions (after a SIGKILL without
/// static membership, that takes its dead self's session timeout).
pub fn wait_assigned(w: &mut WeirProcess) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !w.log_text().contains("partitions assigned") {
        assert!(
            w.running(),
            "weir exited before it was assigned partitions:\n{}",
            w.log_text()
        );
        assert!(
            Instant::now() < deadline,
            "weir was not assigned partitions within 90 s:\n{}",
            w.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One life of an instance, from the moment it connected.
#[derive(Debug)]
pub struct Life {
    /// Which life of the test (0 is the first).
    pub index: usize,
    /// The group's committed progress when the life began.
    pub baseline: i64,
    began: Instant,
}

/// What one SIGKILL hit.
#[derive(Debug, Clone)]
pub struct Kill {
    /// The life it ended.
    pub life: usize,
    /// The committed progress when the life began.
    pub baseline: i64,
    /// The first committed progress seen above the baseline.
    pub progressed: i64,
    /// How long after the life began that progress was seen.
    pub waited: Duration,
    /// The random delay between seeing progress and the SIGKILL.
    pub delay: Duration,
    /// The committed progress read right after the SIGKILL.
    pub after: i64,
    /// Whether the kill waited, after the delay, until the raw log showed an
    /// open transaction (see [`Life::kill_after_progress`]).
    pub aimed: bool,
    /// Whether that open transaction was seen (always `false` unaimed).
    pub open_seen: bool,
}

impl Life {
    /// A life beginning now, measured against `progress`.
    pub fn begin(index: usize, progress: &GroupProgress) -> Life {
        Life {
            index,
            baseline: progress.committed(),
            began: Instant::now(),
        }
    }

    /// Waits (at most [`PROGRESS_WAIT`]) until the group's committed progress
    /// has grown in this life, then `delay`, then SIGKILLs `w`. Fails the test
    /// if the instance exits by itself or commits nothing in time.
    ///
    /// With `aim`, a predicate saying whether the raw log shows an open
    /// transaction of this life now, the kill also waits after the delay
    /// (at most [`AIM_WAIT`]) until it does, so that the kill leaves an open
    /// transaction behind (a test that must prove it did aims its last kill
    /// if no earlier one did).
    pub fn kill_after_progress(
        self,
        w: &mut WeirProcess,
        progress: &GroupProgress,
        delay: Duration,
        aim: Option<&dyn Fn() -> bool>,
    ) -> Kill {
        let progressed = loop {
            assert!(
                w.running(),
                "weir exited by itself in life {}:\n{}",
                self.index,
                w.log_text()
            );
            let now = progress.committed();
            if now > self.baseline {
                break now;
            }
            assert!(
                self.began.elapsed() < PROGRESS_WAIT,
                "life {} committed no progress within {PROGRESS_WAIT:?} (committed offsets stay at {}); \
                 a kill now would prove nothing. Log:\n{}",
                self.index,
                self.baseline,
                w.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let waited = self.began.elapsed();
        std::thread::sleep(delay);
        let mut open_seen = false;
        if let Some(open_now) = aim {
            // Seeing a transaction open and then killing races its commit,
            // so the process is frozen first: a transaction still open a
            // moment after SIGSTOP (time for requests already sent to land)
            // stays open, and the kill leaves it behind for certain.
            let until = Instant::now() + AIM_WAIT;
            while !open_seen && Instant::now() < until && w.running() {
                if open_now() {
                    w.signal("STOP");
                    std::thread::sleep(FREEZE_SETTLE);
                    open_seen = open_now();
                    if !open_seen {
                        w.signal("CONT");
                    }
                }
                if !open_seen {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        assert!(
            w.running(),
            "weir exited by itself in life {}:\n{}",
            self.index,
            w.log_text()
        );
        w.kill();
        let after = progress.committed();
        let kill = Kill {
            life: self.index,
            baseline: self.baseline,
            progressed,
            waited,
            delay,
            after,
            aimed: aim.is_some(),
            open_seen,
        };
        eprintln!(
            "kill {}: committed offsets {} → {} {:.1?} into the life, SIGKILL {:.1?} later{} ({} committed then)",
            kill.life,
            kill.baseline,
            kill.progressed,
            kill.waited,
            kill.delay,
            match (kill.aimed, kill.open_seen) {
                (false, _) => "",
                (true, true) => ", at an open transaction",
                (true, false) => ", aimed at an open transaction but saw none",
            },
            kill.after
        );
        assert!(
            kill.progressed > kill.baseline && kill.after >= kill.progressed,
            "kill {} did not land after committed progress in its life: {kill:?}",
            kill.life
        );
        kill
    }
}

/// Runs `weir run FILE --instance-id 0 EXTRA…` and SIGKILLs it `kills` times,
/// restarting it at once: each kill once the life has committed progress,
/// plus a seeded random delay of `delay_ms` (from, to). When a life `k > 0`
/// has been assigned its partitions, the feeder's hold `k - 1` opens (see [`Feeder::for_lives`]), so
/// that every life has input to work on.
///
/// Exactly-once, if no earlier kill has left an aborted transaction in the
/// pipeline's `outputs` or internal topics, the last kill is aimed at an
/// open transaction (see [`Life::kill_after_progress`]); the others land
/// where the random delay puts them, and so do all at-least-once (which
/// has no transactions). Returns the last life's process, still
/// running, and the kills.
pub fn run_with_kills(
    file: &Path,
    extra: &[&str],
    kills: usize,
    feeder: &Feeder,
    delay_ms: (u64, u64),
    outputs: &[&str],
) -> (WeirProcess, Vec<Kill>) {
    assert_eq!(feeder.holds(), kills, "the feeder needs one hold per restart");
    let pipeline = Pipeline::load(file).unwrap_or_else(|e| panic!("load {}: {e}", file.display()));
    let inputs: Vec<&str> = pipeline.inputs.iter().map(String::as_str).collect();
    let progress = GroupProgress::of_topics(&pipeline.application_id, &inputs);
    let evidence_topics = || {
        let mut topics: Vec<String> = outputs.iter().map(|t| (*t).to_owned()).collect();
        topics.extend(internal_topics(&pipeline.application_id));
        topics
    };
    let mut rng = KillRng::seeded();
    let mut w = WeirProcess::start(file, "0", extra);
    wait_connected(&mut w);
    let mut life = Life::begin(0, &progress);
    let mut done = Vec::with_capacity(kills);
    for k in 0..kills {
        let delay = rng.millis(delay_ms.0, delay_ms.1);
        let topics = evidence_topics();
        let must_show = k + 1 == kills && pipeline.guarantee == Guarantee::ExactlyOnce;
        let aborted_before = must_show && topics.iter().any(|t| log_counts(t).shows_an_abort());
        let open_now = || topics.iter().any(|t| log_counts(t).open > 0);
        let aim: Option<&dyn Fn() -> bool> = if must_show && !aborted_before {
            Some(&open_now)
        } else {
            None
        };
        done.push(life.kill_after_progress(&mut w, &progress, delay, aim));
        w = WeirProcess::start(file, "0", extra);
        wait_connected(&mut w);
        life = Life::begin(k + 1, &progress);
        // Fed once it works: input piled up while it waits for the group
        // would be done in one go, and the kill would find nothing open.
        wait_assigned(&mut w);
        feeder.open(k);
    }
    (w, done)
}

/// The changelog and repartition topics of application `app`, as the broker
/// lists them.
pub fn internal_topics(app: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .create()
        .expect("create a metadata client");
    let meta = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("the broker's topics");
    let prefix = format!("{app}-");
    let mut topics: Vec<String> = meta
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .filter(|t| t.starts_with(&prefix) && (t.ends_with("-changelog") || t.ends_with("-repartition")))
        .collect();
    topics.sort();
    topics
}

/// The raw logs of `topics` counted by fate, once no transaction is open in
/// them any more (a broker may write the markers of a commit or abort a
/// moment after it answered), or after 15 s; each topic's counts are printed.
pub fn settled_log_counts(topics: &[String]) -> Vec<(String, LogCounts)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    topics
        .iter()
        .map(|topic| {
            let counts = loop {
                let counts = log_counts(topic);
                if counts.open == 0 || Instant::now() > deadline {
                    break counts;
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            eprintln!("{topic}: {counts}");
            (topic.clone(), counts)
        })
        .collect()
}

/// Asserts that the kills left open transactions behind, which the broker
/// aborted when the next life fenced the killed one: aborted records or
/// ABORT markers in at least one of `topics` (outputs, changelogs,
/// repartition topics); and that no transaction is open in them now.
/// Returns the counts per topic.
#[track_caller]
pub fn assert_kills_left_open_transactions(topics: &[String], kills: &[Kill]) -> Vec<(String, LogCounts)> {
    let counts = settled_log_counts(topics);
    let open: Vec<&(String, LogCounts)> = counts.iter().filter(|(_, c)| c.open > 0).collect();
    assert!(
        open.is_empty(),
        "transactions still open after the last life stopped cleanly: {open:?}"
    );
    assert!(
        counts.iter().any(|(_, c)| c.shows_an_abort()),
        "none of the {} kill(s) left an open transaction behind (no aborted records or ABORT markers in {topics:?}); \
         the kills prove nothing about recovery. Kills: {kills:?}",
        kills.len()
    );
    counts
}
