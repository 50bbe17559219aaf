//! Aggregator: per key, the minimum, average and number of prices of JSON
//! stock trades (`{"isinStockCode":…,"symbol":…,"price":190.5,…}`).
//!
//! Prices are kept in integer cents (`(price * 100.0).round()`), so sums and
//! minimums are exact. The accumulator is 24 bytes, all little-endian:
//! `min_cents: i64, sum_cents: i64, count: u64`; the initial value has count 0
//! and `min_cents = i64::MAX`.
//!
//! Emits nothing for an empty accumulator, else one output whose value is
//! `{"avg":190.5,"count":2,"min":190.25}` (`min` and `avg` in currency units,
//! as JSON numbers).
//!
//! Failures: `invalid-json` (no value, or not JSON), `missing-price` (no
//! numeric `"price"` member), `overflow` (the sum of cents leaves i64).

use weir_sdk::{Aggregate, Event, Failure, Output, State, Window};

/// Minimum, average and count of trade prices.
pub struct PriceStats;

/// The running statistics of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// The smallest price in cents; `i64::MAX` while `count` is 0.
    pub min_cents: i64,
    /// The sum of the prices in cents.
    pub sum_cents: i64,
    /// The number of prices.
    pub count: u64,
}

impl Stats {
    /// No prices yet.
    pub const EMPTY: Stats = Stats {
        min_cents: i64::MAX,
        sum_cents: 0,
        count: 0,
    };
}

const LEN: usize = 24;

impl State for Stats {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(LEN);
        b.extend_from_slice(&self.min_cents.to_le_bytes());
        b.extend_from_slice(&self.sum_cents.to_le_bytes());
        b.extend_from_slice(&self.count.to_le_bytes());
        b
    }

    fn decode(bytes: &[u8]) -> Result<Self, Failure> {
        if bytes.len() != LEN {
            return Err(Failure::new(
                "bad-state",
                format!("price-stats: expected {LEN} bytes, got {}", bytes.len()),
            ));
        }
        let word = |i: usize| <[u8; 8]>::try_from(&bytes[i * 8..i * 8 + 8]).expect("8 bytes");
        Ok(Stats {
            min_cents: i64::from_le_bytes(word(0)),
            sum_cents: i64::from_le_bytes(word(1)),
            count: u64::from_le_bytes(word(2)),
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

fn overflow() -> Failure {
    Failure::new("overflow", "the sum of prices in cents does not fit in 64 bits")
}

#[weir_sdk::aggregator]
impl Aggregate for PriceStats {
    type Acc = Stats;

    fn init(_key: Option<&[u8]>) -> Stats {
        Stats::EMPTY
    }

    fn add(acc: &mut Stats, event: &Event<'_>) -> Result<(), Failure> {
        let cents = price_cents(event)?;
        let sum_cents = acc.sum_cents.checked_add(cents).ok_or_else(overflow)?;
        *acc = Stats {
            min_cents: acc.min_cents.min(cents),
            sum_cents,
            count: acc.count + 1,
        };
        Ok(())
    }

    fn merge(_key: Option<&[u8]>, a: Stats, b: Stats) -> Result<Stats, Failure> {
        Ok(Stats {
            min_cents: a.min_cents.min(b.min_cents),
            sum_cents: a.sum_cents.checked_add(b.sum_cents).ok_or_else(overflow)?,
            count: a.count + b.count,
        })
    }

    fn emit(_key: Option<&[u8]>, acc: &Stats, _window: Option<Window>) -> Vec<Output<'static>> {
        if acc.count == 0 {
            return vec![];
        }
        // Members in sorted order: serde_json writes them so whether or not
        // its `preserve_order` feature is on (feature unification).
        let value = serde_json::json!({
            "avg": acc.sum_cents as f64 / acc.count as f64 / 100.0,
            "count": acc.count,
            "min": acc.min_cents as f64 / 100.0,
        });
        vec![Output::new().text(value.to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(price: &str) -> String {
        format!(r#"{{"isinStockCode":"US0378331005","symbol":"AAPL","price":{price}}}"#)
    }

    fn add(acc: &mut Stats, value: &str) -> Result<(), Failure> {
        PriceStats::add(acc, &Event::new(value.as_bytes()))
    }

    #[test]
    fn empty_emits_nothing() {
        let acc = PriceStats::init(None);
        assert_eq!(acc, Stats::EMPTY);
        assert!(PriceStats::emit(None, &acc, None).is_empty());
    }

    #[test]
    fn min_avg_count() {
        let mut acc = PriceStats::init(Some(b"US0378331005"));
        for p in ["190.5", "190.25", "191"] {
            add(&mut acc, &trade(p)).unwrap();
        }
        assert_eq!(
            acc,
            Stats {
                min_cents: 19025,
                sum_cents: 57175,
                count: 3
            }
        );
        let out = PriceStats::emit(None, &acc, None);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].value_str(),
            Some(r#"{"avg":190.58333333333331,"count":3,"min":190.25}"#)
        );
        let avg = serde_json::json!(57175.0 / 3.0 / 100.0).to_string();
        assert_eq!(avg, "190.58333333333331");
        assert_eq!(out[0].key, None);
    }

    #[test]
    fn cents_are_exact() {
        let mut acc = PriceStats::init(None);
        for _ in 0..10 {
            add(&mut acc, &trade("0.1")).unwrap();
        }
        assert_eq!(acc.sum_cents, 100);
        let out = PriceStats::emit(None, &acc, None);
        assert_eq!(out[0].value_str(), Some(r#"{"avg":0.1,"count":10,"min":0.1}"#));
    }

    #[test]
    fn merge_adds_and_takes_the_minimum() {
        let a = Stats {
            min_cents: 500,
            sum_cents: 1500,
            count: 2,
        };
        let b = Stats {
            min_cents: 300,
            sum_cents: 300,
            count: 1,
        };
        let want = Stats {
            min_cents: 300,
            sum_cents: 1800,
            count: 3,
        };
        assert_eq!(PriceStats::merge(None, a, b), Ok(want));
        assert_eq!(PriceStats::merge(None, a, Stats::EMPTY), Ok(a));
        assert_eq!(PriceStats::merge(None, Stats::EMPTY, b), Ok(b));
    }

    #[test]
    fn encode_decode_round_trip() {
        let acc = Stats {
            min_cents: -7,
            sum_cents: 123_456_789,
            count: 42,
        };
        let bytes = acc.encode();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[..8], &(-7i64).to_le_bytes());
        assert_eq!(Stats::decode(&bytes), Ok(acc));
        assert_eq!(Stats::decode(&Stats::EMPTY.encode()), Ok(Stats::EMPTY));
        assert_eq!(Stats::decode(&bytes[..23]).unwrap_err().code, "bad-state");
        assert_eq!(Stats::decode(&[]).unwrap_err().code, "bad-state");
    }

    #[test]
    fn bad_input_fails_and_leaves_the_accumulator() {
        let mut acc = PriceStats::init(None);
        add(&mut acc, &trade("10")).unwrap();
        let before = acc;
        assert_eq!(add(&mut acc, "not json").unwrap_err().code, "invalid-json");
        let tombstone = Event::new(b"").without_value();
        assert_eq!(PriceStats::add(&mut acc, &tombstone).unwrap_err().code, "invalid-json");
        assert_eq!(add(&mut acc, r#"{"symbol":"AAPL"}"#).unwrap_err().code, "missing-price");
        assert_eq!(add(&mut acc, r#"{"price":"190.5"}"#).unwrap_err().code, "missing-price");
        assert_eq!(add(&mut acc, "[1,2]").unwrap_err().code, "missing-price");
        assert_eq!(acc, before);
    }

    #[test]
    fn overflow_fails() {
        let mut acc = PriceStats::init(None);
        add(&mut acc, &trade("9e16")).unwrap();
        let before = acc;
        assert_eq!(add(&mut acc, &trade("9e16")).unwrap_err().code, "overflow");
        assert_eq!(acc, before);
    }
}
