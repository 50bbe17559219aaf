//! Filter: keeps events whose value is a JSON object with `"level": "ERROR"`.
//! A value that is not JSON is a typed failure (`invalid-json`).

use weir_sdk::{Event, Failure};

/// True for JSON log lines at level ERROR.
#[weir_sdk::filter]
pub fn errors_only(event: &Event) -> Result<bool, Failure> {
    let value = event
        .value()
        .ok_or_else(|| Failure::new("invalid-json", "the event has no value"))?;
    let json: serde_json::Value =
        serde_json::from_slice(value).map_err(|e| Failure::new("invalid-json", e.to_string()))?;
    Ok(json.get("level").and_then(|l| l.as_str()) == Some("ERROR"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_errors_and_drops_the_rest() {
        assert_eq!(errors_only(&Event::new(br#"{"level":"ERROR","msg":"disk"}"#)), Ok(true));
        assert_eq!(errors_only(&Event::new(br#"{"level":"INFO"}"#)), Ok(false));
        assert_eq!(errors_only(&Event::new(br#"["level","ERROR"]"#)), Ok(false));
        assert_eq!(errors_only(&Event::new(br#"{"nested":{"level":"ERROR"}}"#)), Ok(false));
    }

    #[test]
    fn non_json_is_a_typed_failure() {
        assert_eq!(
            errors_only(&Event::new(b"ERROR: not json")).unwrap_err().code,
            "invalid-json"
        );
        assert_eq!(
            errors_only(&Event::new(b"").without_value()).unwrap_err().code,
            "invalid-json"
        );
    }
}
