//! Durations (`"2s"`, `"100ms"`) and sizes (`"256MiB"`) as users write them.

use std::time::Duration;

/// The wall clock in ms since the Unix epoch (0 before it, `i64::MAX` past
/// what an `i64` holds).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration or size that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {text:?}: expected {expected}")]
pub struct UnitError {
    /// "duration" or "size".
    pub what: &'static str,
    /// The text given.
    pub text: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

/// Parses `"250ms"`, `"2s"`, `"1m"`, `"1h"`, `"1d"` (a number, then a unit).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let err = || UnitError {
        what: "duration",
        text: text.to_owned(),
        expected: "a number and a unit: ms, s, m, h or d (e.g. \"2s\")",
    };
    let (num, unit) = split_number(text.trim()).ok_or_else(err)?;
    let ms_per_unit: f64 = match unit {
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3_600e3,
        "d" => 86_400e3,
        _ => return Err(err()),
    };
    let ms = num * ms_per_unit;
    if !ms.is_finite() || ms < 0.0 {
        return Err(err());
    }
    Ok(Duration::from_micros((ms * 1e3).round() as u64))
}

/// Parses `"64MiB"`, `"1GiB"`, `"512KiB"`, `"1000B"` or a plain byte count.
pub fn parse_size(text: &str) -> Result<usize, UnitError> {
    let err = || UnitError {
        what: "size",
        text: text.to_owned(),
        expected: "bytes, or a number with B, KiB, MiB or GiB (e.g. \"256MiB\")",
    };
    let (num, unit) = split_number(text.trim()).ok_or_else(err)?;
    let mult: f64 = match unit {
        "" | "B" => 1.0,
        "KiB" | "K" | "KB" => 1024.0,
        "MiB" | "M" | "MB" => 1024.0 * 1024.0,
        "GiB" | "G" | "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let bytes = num * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > usize::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as usize)
}

fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let num = s[..end].parse().ok()?;
    Some((num, s[end..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("12 parsecs").is_err());
    }
}
