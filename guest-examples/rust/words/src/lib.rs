//! Flat-map: one output per word of the value; key = value = the word.
//! Words are split on whitespace, lower-cased, and trimmed of ASCII
//! punctuation; empty words are dropped.

use weir_sdk::{Event, Failure, Output};

/// Splits the value into words.
#[weir_sdk::flat_map]
pub fn words(event: &Event) -> Result<Vec<Output<'static>>, Failure> {
    let Some(value) = event.value() else {
        return Ok(vec![]);
    };
    let text = std::str::from_utf8(value).map_err(|e| Failure::new("invalid-utf8", e.to_string()))?;
    Ok(text
        .split_whitespace()
        .map(|w| w.to_lowercase())
        .map(|w| w.trim_matches(|c: char| c.is_ascii_punctuation()).to_owned())
        .filter(|w| !w.is_empty())
        .map(|w| Output::new().key(w.clone().into_bytes()).value(w.into_bytes()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lowercases_and_trims_punctuation() {
        let out = words(&Event::new(b"  Hello, WORLD!  it's -- \"quoted\"")).unwrap();
        let got: Vec<_> = out.iter().map(|o| o.value_str().unwrap()).collect();
        assert_eq!(got, ["hello", "world", "it's", "quoted"]);
        assert!(out.iter().all(|o| o.key == o.value));
    }

    #[test]
    fn invalid_utf8_fails() {
        assert_eq!(words(&Event::new(&[0xff, 0xfe])).unwrap_err().code, "invalid-utf8");
    }
}
