//! Aggregator: per key, the value with the greatest timestamp; a later
//! arrival wins ties. Emits that value with its timestamp.

use weir_sdk::{Aggregate, Event, Failure, Output, State, Window};

/// Keeps the latest value per key.
pub struct Latest;

/// The latest value seen and its timestamp; `None` before the first event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen(Option<(i64, Option<Vec<u8>>)>);

// Encoding: empty = nothing seen; else 8-byte LE timestamp, a presence byte,
// then the value bytes.
impl State for Seen {
    fn encode(&self) -> Vec<u8> {
        let Some((ts, value)) = &self.0 else {
            return vec![];
        };
        let mut b = ts.to_le_bytes().to_vec();
        b.push(u8::from(value.is_some()));
        b.extend_from_slice(value.as_deref().unwrap_or_default());
        b
    }

    fn decode(bytes: &[u8]) -> Result<Self, Failure> {
        if bytes.is_empty() {
            return Ok(Seen(None));
        }
        if bytes.len() < 9 {
            return Err(Failure::new(
                "bad-state",
                format!("latest: {} bytes is too short", bytes.len()),
            ));
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&bytes[..8]);
        let value = (bytes[8] == 1).then(|| bytes[9..].to_vec());
        Ok(Seen(Some((i64::from_le_bytes(ts), value))))
    }
}

#[weir_sdk::aggregator]
impl Aggregate for Latest {
    type Acc = Seen;

    fn init(_key: Option<&[u8]>) -> Seen {
        Seen(None)
    }

    fn add(acc: &mut Seen, event: &Event<'_>) -> Result<(), Failure> {
        let newer = match &acc.0 {
            None => true,
            Some((ts, _)) => event.timestamp() >= *ts,
        };
        if newer {
            acc.0 = Some((event.timestamp(), event.value().map(<[u8]>::to_vec)));
        }
        Ok(())
    }

    fn merge(_key: Option<&[u8]>, a: Seen, b: Seen) -> Result<Seen, Failure> {
        // `b` is the later accumulator, so it wins ties.
        Ok(match (&a.0, &b.0) {
            (Some((ta, _)), Some((tb, _))) if ta > tb => a,
            (_, None) => a,
            _ => b,
        })
    }

    fn emit(_key: Option<&[u8]>, acc: &Seen, _window: Option<Window>) -> Vec<Output<'static>> {
        match &acc.0 {
            None => vec![],
            Some((ts, value)) => {
                let mut out = Output::new().timestamp(*ts);
                out.value = value.clone().map(Into::into);
                vec![out]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greatest_timestamp_wins_and_later_arrival_wins_ties() {
        let mut acc = Latest::init(None);
        for (ts, v) in [(5, "a"), (9, "b"), (7, "c"), (9, "d")] {
            Latest::add(&mut acc, &Event::new(v.as_bytes()).with_timestamp(ts)).unwrap();
        }
        let out = Latest::emit(None, &acc, None);
        assert_eq!((out[0].value_str(), out[0].timestamp), (Some("d"), Some(9)));
        assert_eq!(Seen::decode(&acc.encode()).unwrap(), acc);
    }
}
