//! Re-key: every event gets the same key, the stage's config `key` (default
//! `all`); value, headers and timestamp are unchanged. Put it before an
//! aggregate that must see the whole stream as one group (a global top-N).
//! No accumulator (a stateless processor); never fails.

use weir_sdk::Event;

/// The key used when the config sets none.
pub const DEFAULT_KEY: &str = "all";

/// The configured key.
#[weir_sdk::rekey]
pub fn one_key(_event: &Event) -> String {
    weir_sdk::config::get("key").unwrap_or_else(|| DEFAULT_KEY.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_key_is_all() {
        assert_eq!(one_key(&Event::new(b"x").with_key(b"old")), "all");
        assert_eq!(one_key(&Event::new(b"").without_value()), "all");
    }

    #[test]
    fn key_comes_from_config() {
        weir_sdk::testing::set_config("key", "everything");
        assert_eq!(one_key(&Event::new(b"x").with_key(b"old")), "everything");
    }
}
