//! Aggregator: per key (a user), a summary of a session: when it started and
//! ended and how many events it had. Any value is accepted (only event times
//! are used); meant for session windows, where the host merges sessions that
//! an event bridges.
//!
//! The accumulator is 24 bytes, all little-endian: `first_ts: i64,
//! last_ts: i64, count: u64`, the smallest and greatest event timestamp and
//! the number of events; the initial value is `i64::MAX, i64::MIN, 0`.
//!
//! Emits one output whose value is
//! `{"end":1500,"events":3,"start":1000,"user":"alice"}`: `start` and `end`
//! are the window's bounds, or without a window the first timestamp and the
//! last plus 1 (an empty accumulator without a window emits nothing); `user`
//! is the key as UTF-8, or `null` when it is absent or not UTF-8.
//!
//! Never fails on input.

use weir_sdk::{Aggregate, Event, Failure, Output, State, Window};

/// Session start, end and size.
pub struct SessionSummary;

/// The time span and size of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// The smallest event timestamp; `i64::MAX` while `count` is 0.
    pub first_ts: i64,
    /// The greatest event timestamp; `i64::MIN` while `count` is 0.
    pub last_ts: i64,
    /// The number of events.
    pub count: u64,
}

impl Session {
    /// No events yet.
    pub const EMPTY: Session = Session {
        first_ts: i64::MAX,
        last_ts: i64::MIN,
        count: 0,
    };
}

const LEN: usize = 24;

impl State for Session {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(LEN);
        b.extend_from_slice(&self.first_ts.to_le_bytes());
        b.extend_from_slice(&self.last_ts.to_le_bytes());
        b.extend_from_slice(&self.count.to_le_bytes());
        b
    }

    fn decode(bytes: &[u8]) -> Result<Self, Failure> {
        if bytes.len() != LEN {
            return Err(Failure::new(
                "bad-state",
                format!("session-summary: expected {LEN} bytes, got {}", bytes.len()),
            ));
        }
        let word = |i: usize| <[u8; 8]>::try_from(&bytes[i * 8..i * 8 + 8]).expect("8 bytes");
        Ok(Session {
            first_ts: i64::from_le_bytes(word(0)),
            last_ts: i64::from_le_bytes(word(1)),
            count: u64::from_le_bytes(word(2)),
        })
    }
}

#[weir_sdk::aggregator]
impl Aggregate for SessionSummary {
    type Acc = Session;

    fn init(_key: Option<&[u8]>) -> Session {
        Session::EMPTY
    }

    fn add(acc: &mut Session, event: &Event<'_>) -> Result<(), Failure> {
        let ts = event.timestamp();
        *acc = Session {
            first_ts: acc.first_ts.min(ts),
            last_ts: acc.last_ts.max(ts),
            count: acc.count + 1,
        };
        Ok(())
    }

    fn merge(_key: Option<&[u8]>, a: Session, b: Session) -> Result<Session, Failure> {
        Ok(Session {
            first_ts: a.first_ts.min(b.first_ts),
            last_ts: a.last_ts.max(b.last_ts),
            count: a.count + b.count,
        })
    }

    fn emit(key: Option<&[u8]>, acc: &Session, window: Option<Window>) -> Vec<Output<'static>> {
        let (start, end) = match window {
            Some(w) => (w.start, w.end),
            None if acc.count == 0 => return vec![],
            None => (acc.first_ts, acc.last_ts.saturating_add(1)),
        };
        let user = key.and_then(|k| std::str::from_utf8(k).ok());
        // Members in sorted order: serde_json writes them so whether or not
        // its `preserve_order` feature is on (feature unification).
        let value = serde_json::json!({
            "end": end,
            "events": acc.count,
            "start": start,
            "user": user,
        });
        vec![Output::new().text(value.to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(first_ts: i64, last_ts: i64, count: u64) -> Session {
        Session {
            first_ts,
            last_ts,
            count,
        }
    }

    fn value(out: &[Output<'static>]) -> String {
        assert_eq!(out.len(), 1);
        out[0].value_str().unwrap().to_owned()
    }

    #[test]
    fn init_is_empty() {
        assert_eq!(SessionSummary::init(Some(b"alice")), session(i64::MAX, i64::MIN, 0));
        assert!(SessionSummary::emit(Some(b"alice"), &Session::EMPTY, None).is_empty());
    }

    #[test]
    fn spans_the_event_times() {
        let mut acc = SessionSummary::init(Some(b"alice"));
        for ts in [1200, 1000, 1499] {
            let event = Event::new(b"anything").with_key(b"alice").with_timestamp(ts);
            SessionSummary::add(&mut acc, &event).unwrap();
        }
        SessionSummary::add(&mut acc, &Event::new(b"").without_value().with_timestamp(1100)).unwrap();
        assert_eq!(acc, session(1000, 1499, 4));
        assert_eq!(
            value(&SessionSummary::emit(Some(b"alice"), &acc, None)),
            r#"{"end":1500,"events":4,"start":1000,"user":"alice"}"#
        );
    }

    #[test]
    fn the_window_gives_start_and_end() {
        let acc = session(1000, 1499, 3);
        let window = Some(Window { start: 1000, end: 1800 });
        assert_eq!(
            value(&SessionSummary::emit(None, &acc, window)),
            r#"{"end":1800,"events":3,"start":1000,"user":null}"#
        );
        assert_eq!(
            value(&SessionSummary::emit(Some(b"\xff"), &Session::EMPTY, window)),
            r#"{"end":1800,"events":0,"start":1000,"user":null}"#
        );
    }

    #[test]
    fn merge_spans_both() {
        let a = session(1000, 1200, 2);
        let b = session(1100, 2000, 5);
        assert_eq!(SessionSummary::merge(None, a, b), Ok(session(1000, 2000, 7)));
        assert_eq!(SessionSummary::merge(None, a, Session::EMPTY), Ok(a));
        assert_eq!(SessionSummary::merge(None, Session::EMPTY, b), Ok(b));
    }

    #[test]
    fn encode_decode_round_trip() {
        for acc in [session(-5, 1 << 40, 9), Session::EMPTY] {
            let bytes = acc.encode();
            assert_eq!(bytes.len(), 24);
            assert_eq!(Session::decode(&bytes), Ok(acc));
        }
        assert_eq!(&Session::EMPTY.encode()[..8], &i64::MAX.to_le_bytes());
    }

    #[test]
    fn bad_state_fails() {
        assert_eq!(Session::decode(&[0; 23]).unwrap_err().code, "bad-state");
        assert_eq!(Session::decode(&[0; 25]).unwrap_err().code, "bad-state");
        assert_eq!(Session::decode(&[]).unwrap_err().code, "bad-state");
    }
}
