//! Route: each event goes to the route named by its JSON `type` field
//! (`unknown` when absent), splitting one topic into category topics.

use weir_sdk::{Event, Failure};

/// The route for an event.
#[weir_sdk::route]
pub fn route_by_type(event: &Event) -> Result<String, Failure> {
    let value = event
        .value()
        .ok_or_else(|| Failure::new("invalid-json", "the event has no value"))?;
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| Failure::new("invalid-json", e.to_string()))?;
    Ok(match json.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(other) => other.to_string(),
        None => "unknown".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_type() {
        assert_eq!(route_by_type(&Event::new(br#"{"type":"payment"}"#)).unwrap(), "payment");
        assert_eq!(route_by_type(&Event::new(br#"{"id":1}"#)).unwrap(), "unknown");
        assert!(route_by_type(&Event::new(b"nope")).is_err());
    }
}
