//! Joiner: the two sides of a join as one JSON object,
//! `{"left":L,"right":R}`, each side's value as it came (`null` when that
//! side is absent). A side that is present but not JSON is a typed failure
//! (`invalid-json`). See `guest-examples/SPEC.md`.

use weir_sdk::{Failure, Output, Pair};

/// `{"left":…,"right":…}` from the two sides' JSON values.
#[weir_sdk::joiner]
pub fn pair(pair: &Pair) -> Result<Output<'static>, Failure> {
    let left = side("left", pair.left())?;
    let right = side("right", pair.right())?;
    let mut value = Vec::with_capacity(20 + left.len() + right.len());
    value.extend_from_slice(b"{\"left\":");
    value.extend_from_slice(left);
    value.extend_from_slice(b",\"right\":");
    value.extend_from_slice(right);
    value.push(b'}');
    Ok(Output::new().value(value))
}

/// A side's bytes for the object: its JSON as given, or `null`.
fn side<'a>(name: &str, value: Option<&'a [u8]>) -> Result<&'a [u8], Failure> {
    match value {
        None => Ok(b"null"),
        Some(v) => match serde_json::from_slice::<serde_json::Value>(v) {
            Ok(_) => Ok(v),
            Err(e) => Err(Failure::new(
                "invalid-json",
                format!("the {name} side is not JSON: {e}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(p: &Pair) -> Vec<u8> {
        pair(p).unwrap().value.unwrap().to_vec()
    }

    #[test]
    fn splices_both_sides_as_given() {
        let p = Pair::new(Some(br#"{"id": 1}"#), Some(b"[2]"));
        assert_eq!(value(&p), br#"{"left":{"id": 1},"right":[2]}"#);
    }

    #[test]
    fn an_absent_side_is_null() {
        assert_eq!(value(&Pair::new(Some(b"1"), None)), br#"{"left":1,"right":null}"#);
        assert_eq!(value(&Pair::new(None, Some(b"\"x\""))), br#"{"left":null,"right":"x"}"#);
    }

    #[test]
    fn a_side_that_is_not_json_fails() {
        assert_eq!(pair(&Pair::new(Some(b"{"), None)).unwrap_err().code, "invalid-json");
        assert_eq!(
            pair(&Pair::new(Some(b"1"), Some(&[0xff]))).unwrap_err().code,
            "invalid-json"
        );
    }
}
