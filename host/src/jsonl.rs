//! Events and outputs as JSON lines, the format of `weir test`.
//!
//! An input line is an object with optional fields `key`, `value`, `headers`,
//! `timestamp` (ms, default 0), `topic` (default `weir-test`), `partition`
//! (default 0) and `offset` (default: the 0-based line index). A bytes field
//! is a string (its UTF-8), `{"base64": "…"}` (raw bytes), `null` (absent), or
//! any other JSON value, which stands for its compact JSON text — so
//! `"value": {"level": "ERROR"}` is a JSON-encoded value. `headers` is an
//! object of name to bytes field, or a list of `[name, value]` pairs when
//! names repeat.
//!
//! A joiner's input line has `key`, `left`, `right` (bytes fields; `null`
//! or missing: that side is absent), `headers` and `timestamp`.
//!
//! An output line has `key`, `value`, `headers`, `timestamp` and, when routed,
//! `route`; bytes print as a string when they are UTF-8, else as
//! `{"base64": "…"}`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::event::{Event, Header, Output, Pair};

/// A JSON line that is not a valid event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonlError {
    /// Not JSON.
    #[error("line {line}: not JSON: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// serde_json's message.
        reason: String,
    },
    /// JSON, but not an event.
    #[error("line {line}: {field}: {problem}")]
    Field {
        /// 1-based line number.
        line: usize,
        /// The field at fault.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

/// Parses one input line (1-based `line` for messages; `line - 1` is the
/// default offset).
pub fn parse_event(text: &str, line: usize) -> Result<Event, JsonlError> {
    let obj = object(text, line)?;
    let err = field_error(line);
    let mut event = Event {
        topic: "weir-test".into(),
        offset: line as i64 - 1,
        ..Event::default()
    };
    for (name, v) in obj {
        match name.as_str() {
            "key" => event.key = bytes_field(&v).map_err(|p| err("key", &p))?,
            "value" => event.value = bytes_field(&v).map_err(|p| err("value", &p))?,
            "headers" => event.headers = headers_field(&v).map_err(|p| err("headers", &p))?,
            "timestamp" => event.timestamp = v.as_i64().ok_or_else(|| err("timestamp", "expected an integer (ms)"))?,
            "topic" => event.topic = v.as_str().ok_or_else(|| err("topic", "expected a string"))?.to_owned(),
            "partition" => {
                event.partition = v
                    .as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .ok_or_else(|| err("partition", "expected a 32-bit integer"))?;
            }
            "offset" => event.offset = v.as_i64().ok_or_else(|| err("offset", "expected an integer"))?,
            other => {
                return Err(err(
                    other,
                    "unknown field (expected key, value, headers, timestamp, topic, partition, offset)",
                ));
            }
        }
    }
    Ok(event)
}

/// Parses one joiner input line (1-based `line` for messages).
pub fn parse_pair(text: &str, line: usize) -> Result<Pair, JsonlError> {
    let obj = object(text, line)?;
    let err = field_error(line);
    let mut pair = Pair::default();
    for (name, v) in obj {
        match name.as_str() {
            "key" => pair.key = bytes_field(&v).map_err(|p| err("key", &p))?,
            "left" => pair.left = bytes_field(&v).map_err(|p| err("left", &p))?,
            "right" => pair.right = bytes_field(&v).map_err(|p| err("right", &p))?,
            "headers" => pair.headers = headers_field(&v).map_err(|p| err("headers", &p))?,
            "timestamp" => pair.timestamp = v.as_i64().ok_or_else(|| err("timestamp", "expected an integer (ms)"))?,
            other => {
                return Err(err(
                    other,
                    "unknown field (a joiner's line has key, left, right, headers, timestamp)",
                ));
            }
        }
    }
    Ok(pair)
}

/// A line as a JSON object.
fn object(text: &str, line: usize) -> Result<Map<String, Value>, JsonlError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(field_error(line)("line", "expected a JSON object")),
        Err(e) => Err(JsonlError::Syntax {
            line,
            reason: e.to_string(),
        }),
    }
}

/// Makes the error of one field of line `line`.
fn field_error(line: usize) -> impl Fn(&str, &str) -> JsonlError {
    move |field, problem| JsonlError::Field {
        line,
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

fn bytes_field(v: &Value) -> Result<Option<Vec<u8>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_bytes().to_vec())),
        Value::Object(o) if o.len() == 1 && o.contains_key("base64") => {
            let s = o["base64"].as_str().ok_or("base64 must be a string")?;
            B64.decode(s).map(Some).map_err(|e| format!("invalid base64: {e}"))
        }
        other => Ok(Some(other.to_string().into_bytes())),
    }
}

fn headers_field(v: &Value) -> Result<Vec<Header>, String> {
    match v {
        Value::Null => Ok(vec![]),
        Value::Object(o) => o
            .iter()
            .map(|(name, value)| {
                Ok(Header {
                    name: name.clone(),
                    value: bytes_field(value)?,
                })
            })
            .collect(),
        Value::Array(pairs) => pairs
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(name), value]) => Ok(Header {
                    name: name.clone(),
                    value: bytes_field(value)?,
                }),
                _ => Err("expected [name, value] pairs".to_owned()),
            })
            .collect(),
        _ => Err("expected an object or a list of [name, value] pairs".to_owned()),
    }
}

/// Bytes as JSON: a string when UTF-8, else `{"base64": …}`; `null` when absent.
pub fn bytes_json(b: Option<&[u8]>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => json!({ "base64": B64.encode(b) }),
        },
    }
}

fn headers_json(headers: &[Header]) -> Value {
    let unique = headers
        .iter()
        .enumerate()
        .all(|(i, h)| headers[..i].iter().all(|o| o.name != h.name));
    if unique {
        let map: Map<String, Value> = headers
            .iter()
            .map(|h| (h.name.clone(), bytes_json(h.value.as_deref())))
            .collect();
        Value::Object(map)
    } else {
        Value::Array(
            headers
                .iter()
                .map(|h| json!([h.name, bytes_json(h.value.as_deref())]))
                .collect(),
        )
    }
}

/// One output as a JSON line; `timestamp` is the effective timestamp.
pub fn output_json(o: &Output, timestamp: i64) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), bytes_json(o.key.as_deref()));
    m.insert("value".into(), bytes_json(o.value.as_deref()));
    m.insert("headers".into(), headers_json(&o.headers));
    m.insert("timestamp".into(), json!(timestamp));
    if let Some(route) = &o.route {
        m.insert("route".into(), json!(route));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_field_form() {
        let e = parse_event(
            r#"{"key":"k","value":{"level":"ERROR"},"headers":{"h":{"base64":"AAE="}},"timestamp":5,"partition":2}"#,
            3,
        )
        .unwrap();
        assert_eq!(e.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(e.value.as_deref(), Some(&br#"{"level":"ERROR"}"#[..]));
        assert_eq!(e.headers, vec![Header::new("h", vec![0u8, 1])]);
        assert_eq!((e.timestamp, e.partition, e.offset), (5, 2, 2));
    }

    #[test]
    fn unknown_fields_and_bad_types_are_named() {
        let e = parse_event(r#"{"vaule":"x"}"#, 7).unwrap_err();
        assert!(e.to_string().starts_with("line 7: vaule: unknown field"), "{e}");
        let e = parse_event(r#"{"timestamp":"soon"}"#, 1).unwrap_err();
        assert!(e.to_string().contains("timestamp"), "{e}");
        assert!(matches!(
            parse_event("not json", 2),
            Err(JsonlError::Syntax { line: 2, .. })
        ));
    }

    #[test]
    fn pairs_parse_with_absent_sides() {
        let p = parse_pair(r#"{"key":"k","left":{"id":1},"timestamp":4}"#, 1).unwrap();
        assert_eq!(p.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(p.left.as_deref(), Some(&br#"{"id":1}"#[..]));
        assert_eq!((p.right, p.timestamp), (None, 4));
        let e = parse_pair(r#"{"value":"x"}"#, 2).unwrap_err();
        assert!(e.to_string().starts_with("line 2: value: unknown field"), "{e}");
    }

    #[test]
    fn outputs_print_bytes_readably() {
        let o = Output {
            key: None,
            value: Some(vec![0xff]),
            headers: vec![Header::new("a", "1"), Header::new("a", "2")],
            timestamp: None,
            route: Some("r".into()),
        };
        assert_eq!(
            output_json(&o, 9),
            json!({"key": null, "value": {"base64": "/w=="}, "headers": [["a","1"],["a","2"]], "timestamp": 9, "route": "r"})
        );
    }
}
