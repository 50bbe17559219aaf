//! Aggregator: a key's values joined into one string in the order they
//! were folded, `"0+v1+v2"`; two accumulators merge as `"a+b"`. It is the
//! aggregation of Kafka Streams' own window and join tests
//! (`MockInitializer.STRING_INIT` with `MockAggregator.TOSTRING_ADDER`, and
//! the session merger `agg1 + "+" + agg2`), so that `tests/kstreams` can
//! compare Weir's results with theirs: any difference in fold order or in
//! how sessions merge shows in the string. `subtract` appends `"-v"`
//! (`MockAggregator.TOSTRING_REMOVER`), for its table aggregation tests.

use weir_sdk::{Aggregate, Event, Failure, Output, Subtract, Window};

/// Joins values with `+`.
pub struct Concat;

#[weir_sdk::aggregator(subtract)]
impl Aggregate for Concat {
    type Acc = String;

    fn init(_key: Option<&[u8]>) -> String {
        "0".to_owned()
    }

    fn add(acc: &mut String, event: &Event<'_>) -> Result<(), Failure> {
        push(acc, '+', event);
        Ok(())
    }

    fn merge(_key: Option<&[u8]>, a: String, b: String) -> Result<String, Failure> {
        Ok(format!("{a}+{b}"))
    }

    fn emit(_key: Option<&[u8]>, acc: &String, _window: Option<Window>) -> Vec<Output<'static>> {
        vec![Output::new().text(acc.clone())]
    }
}

impl Subtract for Concat {
    fn subtract(acc: &mut String, event: &Event<'_>) -> Result<(), Failure> {
        push(acc, '-', event);
        Ok(())
    }
}

/// Appends `sign` and the event's value; Kafka Streams prints a null value as "null".
fn push(acc: &mut String, sign: char, event: &Event<'_>) {
    acc.push(sign);
    acc.push_str(&event.value().map_or("null".into(), String::from_utf8_lossy));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_values_in_the_order_they_come() {
        let mut acc = Concat::init(None);
        for v in [b"1", b"3", b"2"] {
            Concat::add(&mut acc, &Event::new(v)).unwrap();
        }
        assert_eq!(Concat::emit(None, &acc, None)[0].value_str(), Some("0+1+3+2"));
        assert_eq!(Concat::merge(None, "0".into(), "0+1".into()), Ok("0+0+1".into()));
    }

    #[test]
    fn subtracting_appends_minus_the_value() {
        let mut acc = "0+1+3".to_owned();
        Concat::subtract(&mut acc, &Event::new(b"1")).unwrap();
        Concat::subtract(&mut acc, &Event::new(b"").without_value()).unwrap();
        assert_eq!(acc, "0+1+3-1-null");
    }
}
