//! Aggregator: per key (a symbol), the first and last price of JSON stock
//! trades (`{"symbol":"AAPL","price":190.5,…}`) and the change between them.
//!
//! "First" is the trade with the smallest timestamp (on ties the earlier
//! arrival stays), "last" the one with the greatest (on ties the later arrival
//! wins). Prices are kept in integer cents (`(price * 100.0).round()`). The
//! accumulator is 40 bytes, all little-endian: `first_ts: i64,
//! first_cents: i64, last_ts: i64, last_cents: i64, count: u64`; the initial
//! value is all zeros (count 0: no trade yet).
//!
//! Emits nothing for an empty accumulator, else one output whose value is
//! `{"change":1.25,"close":191.75,"open":190.5,"symbol":"AAPL"}` (prices as
//! JSON numbers in currency units; `symbol` is the key as UTF-8, or `null`
//! when the key is absent or not UTF-8).
//!
//! Failures: `invalid-json` (no value, or not JSON), `missing-price` (no
//! numeric `"price"` member).

use weir_sdk::{Aggregate, Event, Failure, Output, State, Window};

/// Opening and closing price per key.
pub struct DailyChange;

/// The first and last trade of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Timestamp of the first trade.
    pub first_ts: i64,
    /// Price of the first trade, in cents.
    pub first_cents: i64,
    /// Timestamp of the last trade.
    pub last_ts: i64,
    /// Price of the last trade, in cents.
    pub last_cents: i64,
    /// The number of trades; 0 means the other fields mean nothing.
    pub count: u64,
}

const LEN: usize = 40;

impl State for Span {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(LEN);
        for word in [self.first_ts, self.first_cents, self.last_ts, self.last_cents] {
            b.extend_from_slice(&word.to_le_bytes());
        }
        b.extend_from_slice(&self.count.to_le_bytes());
        b
    }

    fn decode(bytes: &[u8]) -> Result<Self, Failure> {
        if bytes.len() != LEN {
            return Err(Failure::new(
                "bad-state",
                format!("daily-change: expected {LEN} bytes, got {}", bytes.len()),
            ));
        }
        let word = |i: usize| <[u8; 8]>::try_from(&bytes[i * 8..i * 8 + 8]).expect("8 bytes");
        Ok(Span {
            first_ts: i64::from_le_bytes(word(0)),
            first_cents: i64::from_le_bytes(word(1)),
            last_ts: i64::from_le_bytes(word(2)),
            last_cents: i64::from_le_bytes(word(3)),
            count: u64::from_le_bytes(word(4)),
        })
    }
}

/// The trade's price in cents.
pub fn price_cents(event: &Event<'_>) -> Result<i64, Failure> {
    let value = event
        .value()
        .ok_or_else(|| Failure::new("invalid-json", "the event has no value"))?;
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| Failure::new("invalid-json", e.to_string()))?;
    match json.get("price").and_then(serde_json::Value::as_f64) {
        Some(price) => Ok((price * 100.0).round() as i64),
        None => Err(Failure::new("missing-price", "the trade has no numeric price")),
    }
}

#[weir_sdk::aggregator]
impl Aggregate for DailyChange {
    type Acc = Span;

    fn init(_key: Option<&[u8]>) -> Span {
        Span::default()
    }

    fn add(acc: &mut Span, event: &Event<'_>) -> Result<(), Failure> {
        let cents = price_cents(event)?;
        let ts = event.timestamp();
        let one = Span {
            first_ts: ts,
            first_cents: cents,
            last_ts: ts,
            last_cents: cents,
            count: 1,
        };
        *acc = combine(*acc, one);
        Ok(())
    }

    fn merge(_key: Option<&[u8]>, a: Span, b: Span) -> Result<Span, Failure> {
        Ok(combine(a, b))
    }

    fn emit(key: Option<&[u8]>, acc: &Span, _window: Option<Window>) -> Vec<Output<'static>> {
        if acc.count == 0 {
            return vec![];
        }
        let symbol = key.and_then(|k| std::str::from_utf8(k).ok());
        // i128: the difference of two i64 may not fit in one.
        let change = (i128::from(acc.last_cents) - i128::from(acc.first_cents)) as f64;
        // Members in sorted order: serde_json writes them so whether or not
        // its `preserve_order` feature is on (feature unification).
        let value = serde_json::json!({
            "change": change / 100.0,
            "close": acc.last_cents as f64 / 100.0,
            "open": acc.first_cents as f64 / 100.0,
            "symbol": symbol,
        });
        vec![Output::new().text(value.to_string())]
    }
}

/// `a` then `b` (`a` arrived earlier): the earliest first, the latest last.
fn combine(a: Span, b: Span) -> Span {
    if a.count == 0 {
        return b;
    }
    if b.count == 0 {
        return a;
    }
    let (first_ts, first_cents) = if b.first_ts < a.first_ts {
        (b.first_ts, b.first_cents)
    } else {
        (a.first_ts, a.first_cents)
    };
    let (last_ts, last_cents) = if b.last_ts >= a.last_ts {
        (b.last_ts, b.last_cents)
    } else {
        (a.last_ts, a.last_cents)
    };
    Span {
        first_ts,
        first_cents,
        last_ts,
        last_cents,
        count: a.count + b.count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(acc: &mut Span, ts: i64, price: &str) -> Result<(), Failure> {
        let value = format!(r#"{{"symbol":"AAPL","price":{price}}}"#);
        DailyChange::add(acc, &Event::new(value.as_bytes()).with_timestamp(ts))
    }

    fn span(first_ts: i64, first_cents: i64, last_ts: i64, last_cents: i64, count: u64) -> Span {
        Span {
            first_ts,
            first_cents,
            last_ts,
            last_cents,
            count,
        }
    }

    #[test]
    fn empty_emits_nothing() {
        let acc = DailyChange::init(Some(b"AAPL"));
        assert_eq!(acc.count, 0);
        assert!(DailyChange::emit(Some(b"AAPL"), &acc, None).is_empty());
    }

    #[test]
    fn open_close_change() {
        let mut acc = DailyChange::init(Some(b"AAPL"));
        add(&mut acc, 100, "190.5").unwrap();
        add(&mut acc, 300, "191").unwrap();
        add(&mut acc, 200, "189").unwrap();
        add(&mut acc, 300, "191.75").unwrap(); // tie on last: the later arrival wins
        add(&mut acc, 100, "150").unwrap(); // tie on first: the earlier arrival stays
        assert_eq!(acc, span(100, 19050, 300, 19175, 5));
        let out = DailyChange::emit(Some(b"AAPL"), &acc, None);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].value_str(),
            Some(r#"{"change":1.25,"close":191.75,"open":190.5,"symbol":"AAPL"}"#)
        );
    }

    #[test]
    fn symbol_is_null_without_a_utf8_key() {
        let mut acc = DailyChange::init(None);
        add(&mut acc, 5, "10").unwrap();
        add(&mut acc, 1, "12.5").unwrap();
        let want = Some(r#"{"change":-2.5,"close":10.0,"open":12.5,"symbol":null}"#);
        assert_eq!(DailyChange::emit(None, &acc, None)[0].value_str(), want);
        assert_eq!(DailyChange::emit(Some(b"\xff"), &acc, None)[0].value_str(), want);
    }

    #[test]
    fn merge_keeps_earliest_first_and_latest_last() {
        let a = span(10, 100, 20, 200, 2);
        let b = span(5, 50, 20, 250, 3);
        assert_eq!(DailyChange::merge(None, a, b), Ok(span(5, 50, 20, 250, 5)));
        // Ties: `a` (earlier) keeps first, `b` (later) wins last.
        let c = span(10, 111, 15, 150, 1);
        assert_eq!(DailyChange::merge(None, a, c), Ok(span(10, 100, 20, 200, 3)));
        let d = span(10, 111, 20, 222, 1);
        assert_eq!(DailyChange::merge(None, a, d), Ok(span(10, 100, 20, 222, 3)));
        assert_eq!(DailyChange::merge(None, a, Span::default()), Ok(a));
        assert_eq!(DailyChange::merge(None, Span::default(), b), Ok(b));
    }

    #[test]
    fn encode_decode_round_trip() {
        let acc = span(-1, 19050, i64::MAX, -3, 7);
        let bytes = acc.encode();
        assert_eq!(bytes.len(), 40);
        assert_eq!(&bytes[32..], &7u64.to_le_bytes());
        assert_eq!(Span::decode(&bytes), Ok(acc));
        assert_eq!(Span::decode(&Span::default().encode()), Ok(Span::default()));
        assert_eq!(Span::decode(&bytes[..39]).unwrap_err().code, "bad-state");
    }

    #[test]
    fn bad_input_fails_and_leaves_the_accumulator() {
        let mut acc = DailyChange::init(None);
        add(&mut acc, 1, "10").unwrap();
        let before = acc;
        let fail = |acc: &mut Span, v: &[u8]| DailyChange::add(acc, &Event::new(v)).unwrap_err().code;
        assert_eq!(fail(&mut acc, b"{"), "invalid-json");
        assert_eq!(fail(&mut acc, br#"{"symbol":"AAPL"}"#), "missing-price");
        assert_eq!(fail(&mut acc, br#"{"price":null}"#), "missing-price");
        let tombstone = Event::new(b"").without_value();
        assert_eq!(DailyChange::add(&mut acc, &tombstone).unwrap_err().code, "invalid-json");
        assert_eq!(acc, before);
    }
}
