//! What the attribute macros expand to call: the batch loops and the
//! conversions from an operator's return value to results. Not public API.

use std::borrow::Cow;

use crate::event::events;
use crate::pair::pairs;
use crate::writer::ResultWriter;
use crate::{Aggregate, Event, Failure, Migrate, Output, Pair, State, Subtract, ValueOut, Window};

/// Runs `f` on every event of an `event-batch` and returns the `result-batch`.
pub fn process_batch(batch: &[u8], mut f: impl FnMut(&Event<'_>, &mut ResultWriter)) -> Vec<u8> {
    install_panic_hook();
    let mut w = ResultWriter::with_capacity(batch.len() + batch.len() / 4);
    for e in events(batch) {
        w.begin_event(&e);
        f(&e, &mut w);
    }
    w.finish()
}

/// Runs `f` on every pair of a `join-batch` and returns the `result-batch`.
pub fn join_batch(batch: &[u8], mut f: impl FnMut(&Pair<'_>, &mut ResultWriter)) -> Vec<u8> {
    install_panic_hook();
    let mut w = ResultWriter::with_capacity(batch.len() + batch.len() / 4);
    for p in pairs(batch) {
        w.begin();
        // An output without a key gets the pair's (the contract).
        w.default_key(p.key());
        f(&p, &mut w);
    }
    w.finish()
}

/// Sends a panic's message to the host's log before the trap, so the host's
/// error says why the guest stopped.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| crate::log::error(&info.to_string())));
    });
}

/// What a `#[filter]` function may return.
#[diagnostic::on_unimplemented(
    message = "a #[weir_sdk::filter] function must return `bool` or `Result<bool, Failure>`, not `{Self}`"
)]
pub trait IntoKeep {
    /// Keep the event?
    fn into_keep(self) -> Result<bool, Failure>;
}

impl IntoKeep for bool {
    fn into_keep(self) -> Result<bool, Failure> {
        Ok(self)
    }
}

impl IntoKeep for Result<bool, Failure> {
    fn into_keep(self) -> Result<bool, Failure> {
        self
    }
}

/// Writes a filter's verdict.
pub fn write_filter(e: &Event<'_>, keep: impl IntoKeep, w: &mut ResultWriter) {
    match keep.into_keep() {
        Ok(true) => w.forward(e, None, None),
        Ok(false) => {}
        Err(f) => w.fail(&f),
    }
}

/// What a `#[map]` or `#[flat_map]` function may return.
#[diagnostic::on_unimplemented(
    message = "a #[weir_sdk::map] or #[weir_sdk::flat_map] function must return `Output`, `Option<Output>`, `Vec<Output>`, or a `Result` of one of those with `Failure`, not `{Self}`"
)]
pub trait IntoOutputs {
    /// Writes the outputs (or the failure) of the current event.
    fn write_to(self, w: &mut ResultWriter);
}

impl IntoOutputs for Output<'_> {
    fn write_to(self, w: &mut ResultWriter) {
        w.output(&self);
    }
}

impl IntoOutputs for Option<Output<'_>> {
    fn write_to(self, w: &mut ResultWriter) {
        if let Some(o) = self {
            w.output(&o);
        }
    }
}

impl IntoOutputs for Vec<Output<'_>> {
    fn write_to(self, w: &mut ResultWriter) {
        for o in &self {
            w.output(o);
        }
    }
}

impl<T: IntoOutputs> IntoOutputs for Result<T, Failure> {
    fn write_to(self, w: &mut ResultWriter) {
        match self {
            Ok(t) => t.write_to(w),
            Err(f) => w.fail(&f),
        }
    }
}

/// Writes a map's outputs.
pub fn write_outputs(outputs: impl IntoOutputs, w: &mut ResultWriter) {
    outputs.write_to(w);
}

/// What a `#[map_value]` function may return.
#[diagnostic::on_unimplemented(
    message = "a #[weir_sdk::map_value] function must return nothing or `Result<(), Failure>`, not `{Self}`"
)]
pub trait IntoWritten {
    /// The value is written, or the event failed.
    fn into_written(self) -> Result<(), Failure>;
}

impl IntoWritten for () {
    fn into_written(self) -> Result<(), Failure> {
        Ok(())
    }
}

impl IntoWritten for Result<(), Failure> {
    fn into_written(self) -> Result<(), Failure> {
        self
    }
}

/// Writes a `#[map_value]`'s output: the event, with the value `f` writes.
pub fn write_value<R: IntoWritten>(e: &Event<'_>, w: &mut ResultWriter, f: impl FnOnce(&mut ValueOut<'_>) -> R) {
    w.map_value(e, |out| f(out).into_written());
}

/// What a `#[rekey]` function may return: the new key.
#[diagnostic::on_unimplemented(
    message = "a #[weir_sdk::rekey] function must return the new key (`Vec<u8>`, `String`, `&str`, `&[u8]`, an `Option` of one, or a `Result` of those with `Failure`), not `{Self}`"
)]
pub trait IntoKey<'a> {
    /// The new key, or a failure.
    fn into_key(self) -> Result<Option<Cow<'a, [u8]>>, Failure>;
}

impl<'a> IntoKey<'a> for Vec<u8> {
    fn into_key(self) -> Result<Option<Cow<'a, [u8]>>, Failure> {
        Ok(Some(Cow::Owned(self)))
    }
}
impl<'a> IntoKey<'a> for String {
    fn into_key(self) -> Result<Option<Cow<'a, [u8]>>, Failure> {
        Ok(Some(Cow::Owned(self.into_bytes())))
    }
}
impl<'a> IntoKey<'a> for &'a str {
    fn into_key(self) -> Result<Option<Cow<'a, [u8]>>, Failure> {
        Ok(Some(Cow::Borrowed(self.as_bytes())))
    }
}
impl<'a> IntoKey<'a> for &'a [u8] {
    fn into_key(self) -> Result<Option<Cow<'a, [u8]>>, Failure> {
        Ok(Some(Cow::Borrowed(self)))
    }
}
impl<'a, T: IntoKey<'a>> IntoKey<'a> for Option<T> {
    fn into_key(self) -> Result<Option<Cow<'a, [u8]>>, Failure> {
        match self {
            Some(k) => k.into_key(),
            None => Ok(None),
        }
    }
}
impl<'a, T: IntoKey<'a>> IntoKey<'a> for Result<T, Failure> {
    fn into_key(self) -> Result<Option<Cow<'a, [u8]>>, Failure> {
        self?.into_key()
    }
}

/// Writes a re-keyed event.
pub fn write_rekey<'a>(e: &Event<'_>, key: impl IntoKey<'a>, w: &mut ResultWriter) {
    match key.into_key() {
        Ok(k) => w.forward(e, Some(k.as_deref()), None),
        Err(f) => w.fail(&f),
    }
}

/// What a `#[route]` function may return: the route name.
#[diagnostic::on_unimplemented(
    message = "a #[weir_sdk::route] function must return the route name (`&str`, `String`, or a `Result` of one with `Failure`), not `{Self}`"
)]
pub trait IntoRoute<'a> {
    /// The route, or a failure.
    fn into_route(self) -> Result<Cow<'a, str>, Failure>;
}

impl<'a> IntoRoute<'a> for &'a str {
    fn into_route(self) -> Result<Cow<'a, str>, Failure> {
        Ok(Cow::Borrowed(self))
    }
}
impl<'a> IntoRoute<'a> for String {
    fn into_route(self) -> Result<Cow<'a, str>, Failure> {
        Ok(Cow::Owned(self))
    }
}
impl<'a, T: IntoRoute<'a>> IntoRoute<'a> for Result<T, Failure> {
    fn into_route(self) -> Result<Cow<'a, str>, Failure> {
        self?.into_route()
    }
}

/// Writes a routed event.
pub fn write_route<'a>(e: &Event<'_>, route: impl IntoRoute<'a>, w: &mut ResultWriter) {
    match route.into_route() {
        Ok(r) => w.forward(e, None, Some(&r)),
        Err(f) => w.fail(&f),
    }
}

/// Folds one group: returns the new accumulator bytes and the failed events.
pub fn fold<A: Aggregate>(key: Option<&[u8]>, acc: Option<&[u8]>, events: &[u8]) -> (Vec<u8>, Vec<(u32, Failure)>) {
    fold_with::<A>(key, acc, events, A::add)
}

/// Takes one group's events out of its accumulator (`subtract`): returns the
/// new accumulator bytes and the failed events. The host always sends an
/// accumulator; without one, subtraction starts from `init`, as `add` does.
pub fn subtract<A: Subtract>(key: Option<&[u8]>, acc: Option<&[u8]>, events: &[u8]) -> (Vec<u8>, Vec<(u32, Failure)>) {
    fold_with::<A>(key, acc, events, A::subtract)
}

/// Applies `step` to the accumulator for each event of the group, in order.
/// An accumulator that cannot be decoded fails every event and is returned
/// unchanged.
fn fold_with<A: Aggregate>(
    key: Option<&[u8]>,
    acc: Option<&[u8]>,
    events: &[u8],
    step: fn(&mut A::Acc, &Event<'_>) -> Result<(), Failure>,
) -> (Vec<u8>, Vec<(u32, Failure)>) {
    install_panic_hook();
    let mut state = match acc.map(A::Acc::decode) {
        None => A::init(key),
        Some(Ok(s)) => s,
        Some(Err(f)) => {
            let failures = (0..weir_abi::count(events).unwrap_or(0))
                .map(|i| (i, f.clone()))
                .collect();
            return (acc.unwrap_or_default().to_vec(), failures);
        }
    };
    let mut failures = Vec::new();
    for (i, e) in crate::event::events(events).enumerate() {
        if let Err(f) = step(&mut state, &e) {
            failures.push((i as u32, f));
        }
    }
    (state.encode(), failures)
}

/// Merges two encoded accumulators.
pub fn merge<A: Aggregate>(key: Option<&[u8]>, a: &[u8], b: &[u8]) -> Result<Vec<u8>, Failure> {
    install_panic_hook();
    Ok(A::merge(key, A::Acc::decode(a)?, A::Acc::decode(b)?)?.encode())
}

/// Emits for each `(key, window, acc)`; returns a `result-batch`.
pub fn emit<'r, A: Aggregate>(requests: impl Iterator<Item = (Option<&'r [u8]>, Option<Window>, &'r [u8])>) -> Vec<u8> {
    install_panic_hook();
    let mut w = ResultWriter::with_capacity(256);
    for (key, window, acc) in requests {
        w.begin();
        match A::Acc::decode(acc) {
            Ok(state) => {
                for o in A::emit(key, &state, window) {
                    w.output(&o);
                }
            }
            Err(f) => w.fail(&f),
        }
    }
    w.finish()
}

/// Migrates an accumulator written by an earlier version.
pub fn migrate<A: Migrate>(previous: &str, key: Option<&[u8]>, acc: &[u8]) -> Result<Vec<u8>, Failure> {
    install_panic_hook();
    Ok(A::migrate(previous, key, acc)?.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums decimal values; `x` is not a number, and subtracting below zero fails.
    struct Sum;

    impl Aggregate for Sum {
        type Acc = i64;
        fn init(_key: Option<&[u8]>) -> i64 {
            0
        }
        fn add(acc: &mut i64, event: &Event<'_>) -> Result<(), Failure> {
            *acc += number(event)?;
            Ok(())
        }
        fn emit(_key: Option<&[u8]>, acc: &i64, _window: Option<Window>) -> Vec<Output<'static>> {
            vec![Output::new().text(acc.to_string())]
        }
    }

    impl Subtract for Sum {
        fn subtract(acc: &mut i64, event: &Event<'_>) -> Result<(), Failure> {
            let n = number(event)?;
            if n > *acc {
                return Err(Failure::new("negative", format!("{acc} - {n} is below zero")));
            }
            *acc -= n;
            Ok(())
        }
    }

    fn number(event: &Event<'_>) -> Result<i64, Failure> {
        event
            .value_str()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Failure::new("nan", "not a number"))
    }

    fn batch(values: &[&str]) -> Vec<u8> {
        let events: Vec<Event<'_>> = values.iter().map(|v| Event::new(v.as_bytes())).collect();
        crate::event::encode_events(&events)
    }

    fn codes(failures: &[(u32, Failure)]) -> Vec<(u32, &str)> {
        failures.iter().map(|(i, f)| (*i, f.code.as_str())).collect()
    }

    #[test]
    fn add_folds_from_init_or_the_given_accumulator() {
        let (acc, failures) = fold::<Sum>(None, None, &batch(&["2", "3"]));
        assert_eq!((i64::decode(&acc), failures), (Ok(5), vec![]));
        let (acc, _) = fold::<Sum>(None, Some(&acc), &batch(&["10"]));
        assert_eq!(i64::decode(&acc), Ok(15));
    }

    #[test]
    fn subtract_takes_events_out_and_failed_ones_change_nothing() {
        let (acc, failures) = subtract::<Sum>(None, Some(&10i64.encode()), &batch(&["3", "x", "8", "4"]));
        // 10 - 3 = 7; "x" is not a number; 7 - 8 would be negative; 7 - 4 = 3.
        assert_eq!(i64::decode(&acc), Ok(3));
        assert_eq!(codes(&failures), [(1, "nan"), (2, "negative")]);
    }

    #[test]
    fn subtract_undoes_add() {
        let (added, _) = fold::<Sum>(None, Some(&1i64.encode()), &batch(&["4", "5"]));
        let (back, failures) = subtract::<Sum>(None, Some(&added), &batch(&["5", "4"]));
        assert_eq!((i64::decode(&back), failures), (Ok(1), vec![]));
    }

    #[test]
    fn subtract_without_an_accumulator_starts_from_init() {
        let (acc, failures) = subtract::<Sum>(None, None, &batch(&["1"]));
        assert_eq!((i64::decode(&acc), codes(&failures)), (Ok(0), vec![(0, "negative")]));
    }

    #[test]
    fn an_unreadable_accumulator_fails_every_event_and_is_kept() {
        let (acc, failures) = subtract::<Sum>(None, Some(b"bad"), &batch(&["1", "2"]));
        assert_eq!(acc, b"bad");
        assert_eq!(codes(&failures), [(0, "bad-state"), (1, "bad-state")]);
    }
}
