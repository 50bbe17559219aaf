//! Keyed aggregation: fold events into an accumulator the host stores.

use crate::{Event, Failure, Output};

/// A time window `[start, end)` in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

/// An aggregator: the host keeps one accumulator per key (and window), calls
/// [`add`](Aggregate::add) for its events, and [`emit`](Aggregate::emit) when
/// it decides to publish. Export one with `#[weir_sdk::aggregator]` on the impl;
/// [`Migrate`] and [`Subtract`] are optional extras.
pub trait Aggregate {
    /// The accumulator; its bytes are what the host stores and changelogs.
    type Acc: State;

    /// The accumulator of a key that has none yet.
    fn init(key: Option<&[u8]>) -> Self::Acc;

    /// Folds one event in. On `Err` the accumulator must be left as it was
    /// (the event goes to the error policy).
    fn add(acc: &mut Self::Acc, event: &Event<'_>) -> Result<(), Failure>;

    /// Merges two accumulators of one key (session windows); `a` is the earlier.
    fn merge(key: Option<&[u8]>, a: Self::Acc, b: Self::Acc) -> Result<Self::Acc, Failure> {
        let _ = (key, a, b);
        Err(Failure::new(
            "merge-unsupported",
            "this aggregator does not implement merge",
        ))
    }

    /// The outputs for an accumulator. An output without a key gets the key.
    fn emit(key: Option<&[u8]>, acc: &Self::Acc, window: Option<Window>) -> Vec<Output<'static>>;
}

/// An aggregator that can read accumulators written by an earlier version
/// (hot swap). Export with `#[weir_sdk::aggregator(migrate)]`.
pub trait Migrate: Aggregate {
    /// Converts `acc`, written by the version named `previous`
    /// (`name@sha256:…`), into this version's accumulator.
    fn migrate(previous: &str, key: Option<&[u8]>, acc: &[u8]) -> Result<Self::Acc, Failure>;
}

/// An aggregator that can take events back out of an accumulator, the
/// inverse of [`add`](Aggregate::add) (Kafka Streams' subtractor). A table
/// aggregation needs it: when a row changes, the host subtracts its old value
/// from the group it was in, then adds its new value to its new group.
/// Export with `#[weir_sdk::aggregator(subtract)]` (or `(migrate, subtract)`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Subtract`",
    label = "#[weir_sdk::aggregator(subtract)] needs `impl Subtract for {Self}`"
)]
pub trait Subtract: Aggregate {
    /// Takes one event out. On `Err` the accumulator must be left as it was
    /// (the event goes to the error policy).
    fn subtract(acc: &mut Self::Acc, event: &Event<'_>) -> Result<(), Failure>;
}

/// How an accumulator becomes bytes and back.
pub trait State: Sized {
    /// Serializes the accumulator.
    fn encode(&self) -> Vec<u8>;
    /// Reads an accumulator back.
    fn decode(bytes: &[u8]) -> Result<Self, Failure>;
}

macro_rules! le_state {
    ($($t:ty),*) => {$(
        impl State for $t {
            fn encode(&self) -> Vec<u8> {
                self.to_le_bytes().to_vec()
            }
            fn decode(bytes: &[u8]) -> Result<Self, Failure> {
                let arr = bytes.try_into().map_err(|_| {
                    Failure::new("bad-state", format!("expected {} bytes of {}, got {}", size_of::<$t>(), stringify!($t), bytes.len()))
                })?;
                Ok(<$t>::from_le_bytes(arr))
            }
        }
    )*};
}

le_state!(u32, u64, i32, i64, f32, f64);

impl State for Vec<u8> {
    fn encode(&self) -> Vec<u8> {
        self.clone()
    }
    fn decode(bytes: &[u8]) -> Result<Self, Failure> {
        Ok(bytes.to_vec())
    }
}

impl State for String {
    fn encode(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<Self, Failure> {
        String::from_utf8(bytes.to_vec()).map_err(|e| Failure::new("bad-state", e.to_string()))
    }
}
