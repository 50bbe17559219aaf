//! Re-key: a JSON stock trade gets its `isinStockCode` as key, so that a
//! downstream aggregate sees every trade of one instrument in one task.

use weir_sdk::{Event, Failure};

/// The trade's ISIN.
#[weir_sdk::rekey]
pub fn isin_key(event: &Event) -> Result<String, Failure> {
    let value = event
        .value()
        .ok_or_else(|| Failure::new("invalid-json", "the event has no value"))?;
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| Failure::new("invalid-json", e.to_string()))?;
    match json.get("isinStockCode").and_then(|v| v.as_str()) {
        Some(isin) => Ok(isin.to_owned()),
        None => Err(Failure::new("missing-isin", "the trade has no string isinStockCode")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_by_isin() {
        let trade = br#"{"isinStockCode":"US0378331005","price":190.5}"#;
        assert_eq!(isin_key(&Event::new(trade)).unwrap(), "US0378331005");
        assert_eq!(
            isin_key(&Event::new(br#"{"price":1}"#)).unwrap_err().code,
            "missing-isin"
        );
    }
}
