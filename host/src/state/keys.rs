//! How store entries are keyed. The same bytes key the changelog records.
//!
//! ```text
//! meta      := 0x00 name                       (checkpoint, stream time)
//! plain     := 0x01 rkey                       (unwindowed accumulator)
//! windowed  := 0x02 rkey start end             (one window of a key)
//! event     := 0x03 rkey ts offset             (an event kept for sliding windows)
//! stamp     := 0x04 (plain | windowed)         (the largest event time folded
//!                                               into that accumulator, i64 LE)
//! joined    := 0x05 side rkey ts offset        (a record kept by a windowed
//!                                               stream-stream join; side 0 is
//!                                               the left input, 1 the right;
//!                                               its input offset keeps equal
//!                                               keys and times apart)
//! timer     := 0x06 queue time key             (a timer of one of a stage's
//!                                               queues, for the entry `key`;
//!                                               local only, never changelogged)
//! rkey      := 0x00                            (no key)
//!            | 0x01 u32be len, bytes           (a key)
//! start/end/ts/offset := i64 big-endian with the sign bit flipped, so
//!              that byte order is numeric order
//! ```
//!
//! A key's windows are contiguous and sorted by start, so "the windows of a
//! key" and "its sessions" are prefix scans.

use crate::event::Window;

/// Meta entry: the changelog offset local state is complete up to (local
/// only, never in the changelog).
pub const CHECKPOINT: &str = "checkpoint";
/// Meta entry: the task's stream time (changelogged, so that lateness and
/// `final` emission survive a restore).
pub const STREAM_TIME: &str = "stream-time";
/// Meta entry: the module version (`name@digest`) whose format the
/// accumulators are in (changelogged, so a restore knows whether to migrate).
pub const FORMAT: &str = "format";

const META: u8 = 0;
const PLAIN: u8 = 1;
const WINDOWED: u8 = 2;
const EVENT: u8 = 3;
const STAMP: u8 = 4;
const JOINED: u8 = 5;
const TIMER: u8 = 6;

/// What a store key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Bookkeeping.
    Meta(String),
    /// A key's accumulator.
    Plain(Option<Vec<u8>>),
    /// A key's accumulator in one window.
    Windowed(Option<Vec<u8>>, Window),
    /// An event of a key kept for sliding windows: its time and offset.
    Event(Option<Vec<u8>>, i64, i64),
    /// The timestamp of an accumulator (whose store key it holds): the
    /// largest event time folded into it, the timestamp of its results.
    Stamp(Vec<u8>),
    /// A record a stream-stream join keeps: its side (0 left, 1 right),
    /// key, time and input offset.
    Joined(u8, Option<Vec<u8>>, i64, i64),
    /// A timer: its queue, when it fires, and the store key it is for.
    Timer(u8, i64, Vec<u8>),
}

/// The key of a meta entry.
pub fn meta(name: &str) -> Vec<u8> {
    let mut k = vec![META];
    k.extend_from_slice(name.as_bytes());
    k
}

/// The key of an unwindowed accumulator.
pub fn plain(key: Option<&[u8]>) -> Vec<u8> {
    let mut k = vec![PLAIN];
    record_key(&mut k, key);
    k
}

/// The prefix of every windowed accumulator.
pub const WINDOWS_PREFIX: [u8; 1] = [WINDOWED];

/// The prefix of every window of `key`.
pub fn windows_of(key: Option<&[u8]>) -> Vec<u8> {
    let mut k = vec![WINDOWED];
    record_key(&mut k, key);
    k
}

/// The key of one window's accumulator.
pub fn windowed(key: Option<&[u8]>, window: Window) -> Vec<u8> {
    let mut k = windows_of(key);
    k.extend_from_slice(&ordered(window.start));
    k.extend_from_slice(&ordered(window.end));
    k
}

/// The prefix of every event kept for `key`.
pub fn events_of(key: Option<&[u8]>) -> Vec<u8> {
    let mut k = vec![EVENT];
    record_key(&mut k, key);
    k
}

/// The key of an event kept for sliding windows, ordered by time, then offset.
pub fn event(key: Option<&[u8]>, ts: i64, offset: i64) -> Vec<u8> {
    let mut k = events_of(key);
    k.extend_from_slice(&ordered(ts));
    k.extend_from_slice(&ordered(offset));
    k
}

/// The prefix of every record a stream-stream join keeps.
pub const JOINED_PREFIX: [u8; 1] = [JOINED];

/// The prefix of the records of `side` with `key` a stream-stream join keeps.
pub fn joined_of(side: u8, key: Option<&[u8]>) -> Vec<u8> {
    let mut k = vec![JOINED, side];
    record_key(&mut k, key);
    k
}

/// The prefix of the records of `side` with `key` at time `ts` that a
/// stream-stream join keeps: every record of theirs at `ts` or later sorts
/// after it.
pub fn joined_at(side: u8, key: Option<&[u8]>, ts: i64) -> Vec<u8> {
    let mut k = joined_of(side, key);
    k.extend_from_slice(&ordered(ts));
    k
}

/// The key of a record a stream-stream join keeps, ordered by time, then
/// input offset.
pub fn joined(side: u8, key: Option<&[u8]>, ts: i64, offset: i64) -> Vec<u8> {
    let mut k = joined_at(side, key, ts);
    k.extend_from_slice(&ordered(offset));
    k
}

/// The key of the timestamp of the accumulator at `store_key` (a plain or
/// windowed key).
pub fn stamp(store_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(store_key.len() + 1);
    k.push(STAMP);
    k.extend_from_slice(store_key);
    k
}

/// The prefix of every timer of `queue`, in the order they fire.
pub fn timers_of(queue: u8) -> [u8; 2] {
    [TIMER, queue]
}

/// The key of a timer of `queue` that fires at `time` for the entry `key`.
pub fn timer(queue: u8, time: i64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + key.len());
    k.extend_from_slice(&timers_of(queue));
    k.extend_from_slice(&ordered(time));
    k.extend_from_slice(key);
    k
}

/// The meta entry that says the timers of `queue` are kept (local only):
/// a store written by a version that kept them in memory has none.
pub fn timers_kept(queue: u8) -> Vec<u8> {
    meta(&format!("timers.{queue}"))
}

/// Reads a store key back; `None` for bytes no store writes.
pub fn decode(bytes: &[u8]) -> Option<Entry> {
    let (&tag, rest) = bytes.split_first()?;
    match tag {
        META => Some(Entry::Meta(String::from_utf8(rest.to_vec()).ok()?)),
        PLAIN => {
            let (key, rest) = read_record_key(rest)?;
            rest.is_empty().then_some(Entry::Plain(key))
        }
        WINDOWED | EVENT => {
            let (key, rest) = read_record_key(rest)?;
            if rest.len() != 16 {
                return None;
            }
            let a = from_ordered(rest[..8].try_into().ok()?);
            let b = from_ordered(rest[8..].try_into().ok()?);
            Some(if tag == WINDOWED {
                Entry::Windowed(key, Window { start: a, end: b })
            } else {
                Entry::Event(key, a, b)
            })
        }
        JOINED => {
            let (&side, rest) = rest.split_first()?;
            let (key, rest) = read_record_key(rest)?;
            if rest.len() != 16 || side > 1 {
                return None;
            }
            let ts = from_ordered(rest[..8].try_into().ok()?);
            let seq = from_ordered(rest[8..].try_into().ok()?);
            Some(Entry::Joined(side, key, ts, seq))
        }
        TIMER => {
            let (&queue, rest) = rest.split_first()?;
            let time = from_ordered(rest.get(..8)?.try_into().ok()?);
            Some(Entry::Timer(queue, time, rest[8..].to_vec()))
        }
        STAMP => match decode(rest)? {
            Entry::Plain(_) | Entry::Windowed(..) => Some(Entry::Stamp(rest.to_vec())),
            _ => None,
        },
        _ => None,
    }
}

fn record_key(k: &mut Vec<u8>, key: Option<&[u8]>) {
    match key {
        None => k.push(0),
        Some(key) => {
            k.push(1);
            k.extend_from_slice(&(key.len() as u32).to_be_bytes());
            k.extend_from_slice(key);
        }
    }
}

fn read_record_key(b: &[u8]) -> Option<(Option<Vec<u8>>, &[u8])> {
    let (&tag, rest) = b.split_first()?;
    match tag {
        0 => Some((None, rest)),
        1 => {
            let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let key = rest.get(4..4 + len)?;
            Some((Some(key.to_vec()), &rest[4 + len..]))
        }
        _ => None,
    }
}

fn ordered(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn from_ordered(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let w = Window { start: -5, end: 2000 };
        for key in [None, Some(&b""[..]), Some(&b"AAPL"[..])] {
            assert_eq!(decode(&plain(key)), Some(Entry::Plain(key.map(<[u8]>::to_vec))));
            assert_eq!(
                decode(&windowed(key, w)),
                Some(Entry::Windowed(key.map(<[u8]>::to_vec), w))
            );
        }
        assert_eq!(decode(&meta(STREAM_TIME)), Some(Entry::Meta(STREAM_TIME.into())));
        assert_eq!(
            decode(&event(Some(b"k"), -3, 7)),
            Some(Entry::Event(Some(b"k".to_vec()), -3, 7))
        );
        let acc = windowed(Some(b"k"), w);
        assert_eq!(decode(&stamp(&acc)), Some(Entry::Stamp(acc.clone())));
        assert_eq!(
            decode(&stamp(&meta(STREAM_TIME))),
            None,
            "only accumulators have stamps"
        );
        assert_eq!(
            decode(&joined(1, Some(b"k"), -3, 7)),
            Some(Entry::Joined(1, Some(b"k".to_vec()), -3, 7))
        );
        assert_eq!(decode(&timer(1, -3, &acc)), Some(Entry::Timer(1, -3, acc.clone())));
        assert_eq!(decode(&[9, 1]), None);
        assert_eq!(decode(&[PLAIN, 1, 0, 0, 0, 9]), None, "length past the end");
    }

    #[test]
    fn timers_sort_by_time_under_their_queue() {
        let mut ks = [
            timer(0, 5, b"a"),
            timer(0, -5, b"z"),
            timer(1, -9, b"a"),
            timer(0, 5, b""),
        ];
        ks.sort();
        assert_eq!(
            ks,
            [
                timer(0, -5, b"z"),
                timer(0, 5, b""),
                timer(0, 5, b"a"),
                timer(1, -9, b"a")
            ]
        );
    }

    #[test]
    fn a_keys_windows_sort_by_start_under_its_prefix() {
        let at = |s| windowed(Some(b"k"), Window { start: s, end: s + 10 });
        let mut ks = [
            at(20),
            at(-10),
            at(0),
            windowed(Some(b"kk"), Window { start: 0, end: 1 }),
        ];
        ks.sort();
        assert_eq!(&ks[..3], &[at(-10), at(0), at(20)]);
        let prefix = windows_of(Some(b"k"));
        assert_eq!(ks.iter().filter(|k| k.starts_with(&prefix)).count(), 3, "kk is not k");
    }
}
