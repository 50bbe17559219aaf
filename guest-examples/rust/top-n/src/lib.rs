//! Aggregator: the N symbols with the greatest change. Its input is what
//! `daily-change` emits (`{"symbol":"AAPL","change":1.25,…}`), usually
//! re-keyed to one key by `one-key` so that one accumulator sees every symbol.
//!
//! The accumulator keeps the latest change per symbol: a later event for a
//! symbol replaces the earlier one. Encoding, little-endian: `u32` entry
//! count, then per entry `u32` length, the symbol's UTF-8 bytes, the change as
//! an `f64`; entries sorted by symbol (bytewise). Empty: `[0, 0, 0, 0]`.
//!
//! Emits one output whose value is a JSON array of at most N entries,
//! `[{"change":3.5,"symbol":"MSFT"},{"change":1.25,"symbol":"AAPL"}]`, by
//! change descending and then by symbol ascending. N is the config `n`
//! (default 10; a value that is not a non-negative integer logs a warning and
//! counts as 10).
//!
//! Failures: `invalid-json` (no value, or not JSON), `missing-symbol` (no
//! string `"symbol"` member), `missing-change` (no numeric `"change"` member).

use std::collections::BTreeMap;

use weir_sdk::{Aggregate, Event, Failure, Output, State, Window};

/// The top N changes.
pub struct TopN;

/// N when the config sets none.
pub const DEFAULT_N: usize = 10;

/// The latest change per symbol.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes(pub BTreeMap<String, f64>);

impl State for Changes {
    fn encode(&self) -> Vec<u8> {
        let size = 4 + self.0.keys().map(|s| 12 + s.len()).sum::<usize>();
        let mut b = Vec::with_capacity(size);
        b.extend_from_slice(&(self.0.len() as u32).to_le_bytes());
        for (symbol, change) in &self.0 {
            b.extend_from_slice(&(symbol.len() as u32).to_le_bytes());
            b.extend_from_slice(symbol.as_bytes());
            b.extend_from_slice(&change.to_le_bytes());
        }
        b
    }

    fn decode(bytes: &[u8]) -> Result<Self, Failure> {
        let bad = |what: &str| Failure::new("bad-state", format!("top-n: {what}"));
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8], Failure> {
            if rest.len() < n {
                return Err(bad("truncated accumulator"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize;
        let count = u32_at(take(4)?);
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let len = u32_at(take(4)?);
            let symbol = std::str::from_utf8(take(len)?).map_err(|_| bad("a symbol is not UTF-8"))?;
            let change = f64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
            map.insert(symbol.to_owned(), change);
        }
        if !rest.is_empty() {
            return Err(bad("bytes after the last entry"));
        }
        Ok(Changes(map))
    }
}

/// The symbol and change of a `daily-change` output.
pub fn parse(event: &Event<'_>) -> Result<(String, f64), Failure> {
    let value = event
        .value()
        .ok_or_else(|| Failure::new("invalid-json", "the event has no value"))?;
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| Failure::new("invalid-json", e.to_string()))?;
    let symbol = json
        .get("symbol")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Failure::new("missing-symbol", "the event has no string symbol"))?;
    let change = json
        .get("change")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| Failure::new("missing-change", "the event has no numeric change"))?;
    Ok((symbol.to_owned(), change))
}

/// N: the config `n`, else [`DEFAULT_N`].
pub fn n() -> usize {
    match weir_sdk::config::get("n") {
        None => DEFAULT_N,
        Some(text) => text.trim().parse().unwrap_or_else(|_| {
            weir_sdk::log::warn(&format!("top-n: config n = {text:?} is not a count; using {DEFAULT_N}"));
            DEFAULT_N
        }),
    }
}

/// The `n` entries with the greatest change, ties by symbol.
pub fn top(changes: &Changes, n: usize) -> Vec<(&str, f64)> {
    let mut entries: Vec<(&str, f64)> = changes.0.iter().map(|(s, c)| (s.as_str(), *c)).collect();
    entries.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    entries.truncate(n);
    entries
}

#[weir_sdk::aggregator]
impl Aggregate for TopN {
    type Acc = Changes;

    fn init(_key: Option<&[u8]>) -> Changes {
        Changes::default()
    }

    fn add(acc: &mut Changes, event: &Event<'_>) -> Result<(), Failure> {
        let (symbol, change) = parse(event)?;
        acc.0.insert(symbol, change);
        Ok(())
    }

    fn merge(_key: Option<&[u8]>, mut a: Changes, b: Changes) -> Result<Changes, Failure> {
        // `b` is the later accumulator: its changes replace `a`'s.
        a.0.extend(b.0);
        Ok(a)
    }

    fn emit(_key: Option<&[u8]>, acc: &Changes, _window: Option<Window>) -> Vec<Output<'static>> {
        // Members in sorted order: serde_json writes them so whether or not
        // its `preserve_order` feature is on (feature unification).
        let list: Vec<serde_json::Value> = top(acc, n())
            .into_iter()
            .map(|(symbol, change)| serde_json::json!({"change": change, "symbol": symbol}))
            .collect();
        vec![Output::new().text(serde_json::Value::Array(list).to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(acc: &mut Changes, symbol: &str, change: f64) {
        let value = serde_json::json!({"symbol": symbol, "change": change, "open": 1.0}).to_string();
        TopN::add(acc, &Event::new(value.as_bytes())).unwrap();
    }

    fn changes(entries: &[(&str, f64)]) -> Changes {
        Changes(entries.iter().map(|(s, c)| (s.to_string(), *c)).collect())
    }

    fn emitted(acc: &Changes) -> String {
        let out = TopN::emit(Some(b"all"), acc, None);
        assert_eq!(out.len(), 1);
        out[0].value_str().unwrap().to_owned()
    }

    #[test]
    fn empty_emits_an_empty_list() {
        let acc = TopN::init(None);
        assert_eq!(acc, Changes::default());
        assert_eq!(emitted(&acc), "[]");
    }

    #[test]
    fn latest_change_per_symbol_sorted_descending_ties_by_symbol() {
        let mut acc = TopN::init(None);
        add(&mut acc, "MSFT", 9.0);
        add(&mut acc, "AAPL", 1.25);
        add(&mut acc, "MSFT", 3.5); // replaces 9.0
        add(&mut acc, "IBM", -2.0);
        add(&mut acc, "AMZN", 1.25);
        assert_eq!(acc.0.len(), 4);
        assert_eq!(
            emitted(&acc),
            r#"[{"change":3.5,"symbol":"MSFT"},{"change":1.25,"symbol":"AAPL"},{"change":1.25,"symbol":"AMZN"},{"change":-2.0,"symbol":"IBM"}]"#
        );
    }

    #[test]
    fn n_defaults_to_ten() {
        let mut acc = TopN::init(None);
        for i in 0..12 {
            add(&mut acc, &format!("S{i:02}"), f64::from(i));
        }
        let list: Vec<serde_json::Value> = serde_json::from_str(&emitted(&acc)).unwrap();
        assert_eq!(list.len(), 10);
        assert_eq!(list[0]["symbol"], "S11");
        assert_eq!(list[9]["symbol"], "S02");
    }

    #[test]
    fn n_comes_from_config() {
        let acc = changes(&[("A", 1.0), ("B", 2.0), ("C", 3.0)]);
        weir_sdk::testing::set_config("n", "2");
        assert_eq!(
            emitted(&acc),
            r#"[{"change":3.0,"symbol":"C"},{"change":2.0,"symbol":"B"}]"#
        );
        weir_sdk::testing::set_config("n", "0");
        assert_eq!(emitted(&acc), "[]");
        weir_sdk::testing::set_config("n", "lots");
        assert_eq!(n(), DEFAULT_N);
    }

    #[test]
    fn merge_is_a_union_where_b_wins() {
        let a = changes(&[("AAPL", 1.0), ("MSFT", 2.0)]);
        let b = changes(&[("MSFT", -1.0), ("IBM", 0.5)]);
        let want = changes(&[("AAPL", 1.0), ("IBM", 0.5), ("MSFT", -1.0)]);
        assert_eq!(TopN::merge(None, a.clone(), b), Ok(want));
        assert_eq!(TopN::merge(None, a.clone(), Changes::default()), Ok(a));
    }

    #[test]
    fn encode_decode_round_trip() {
        let acc = changes(&[("MSFT", 3.5), ("AAPL", -1.25), ("Ünï", 0.0)]);
        let bytes = acc.encode();
        let mut want = 3u32.to_le_bytes().to_vec();
        for (s, c) in [("AAPL", -1.25f64), ("MSFT", 3.5), ("Ünï", 0.0)] {
            want.extend_from_slice(&(s.len() as u32).to_le_bytes());
            want.extend_from_slice(s.as_bytes());
            want.extend_from_slice(&c.to_le_bytes());
        }
        assert_eq!(bytes, want);
        assert_eq!(Changes::decode(&bytes), Ok(acc));
        assert_eq!(Changes::default().encode(), [0, 0, 0, 0]);
        assert_eq!(Changes::decode(&[0, 0, 0, 0]), Ok(Changes::default()));
    }

    #[test]
    fn bad_state_fails() {
        let bytes = changes(&[("AAPL", 1.0)]).encode();
        for bad in [&bytes[..bytes.len() - 1], &bytes[..3], &[]] {
            assert_eq!(Changes::decode(bad).unwrap_err().code, "bad-state");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Changes::decode(&trailing).unwrap_err().code, "bad-state");
        let mut not_utf8 = bytes;
        not_utf8[4 + 4] = 0xff;
        assert_eq!(Changes::decode(&not_utf8).unwrap_err().code, "bad-state");
        // A count far beyond the bytes fails instead of allocating.
        assert_eq!(Changes::decode(&u32::MAX.to_le_bytes()).unwrap_err().code, "bad-state");
    }

    #[test]
    fn bad_input_fails_and_leaves_the_accumulator() {
        let mut acc = changes(&[("AAPL", 1.0)]);
        let before = acc.clone();
        let mut fail = |v: &[u8]| TopN::add(&mut acc, &Event::new(v)).unwrap_err().code;
        assert_eq!(fail(b"nope"), "invalid-json");
        assert_eq!(fail(br#"{"change":1.0}"#), "missing-symbol");
        assert_eq!(fail(br#"{"symbol":null,"change":1.0}"#), "missing-symbol");
        assert_eq!(fail(br#"{"symbol":"AAPL"}"#), "missing-change");
        assert_eq!(fail(br#"{"symbol":"AAPL","change":"1"}"#), "missing-change");
        let tombstone = Event::new(b"").without_value();
        assert_eq!(TopN::add(&mut acc, &tombstone).unwrap_err().code, "invalid-json");
        assert_eq!(acc, before);
    }
}
