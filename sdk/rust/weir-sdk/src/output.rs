//! Records an operator produces, and failures it reports.

use std::borrow::Cow;

use crate::{Event, Headers};

/// One output header: a name and an optional value, either possibly borrowed.
pub type OutputHeader<'a> = (Cow<'a, str>, Option<Cow<'a, [u8]>>);

/// One output record. Fields may borrow from the input event, so passing a
/// key or headers through copies nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output<'a> {
    /// Record key.
    pub key: Option<Cow<'a, [u8]>>,
    /// Record value.
    pub value: Option<Cow<'a, [u8]>>,
    /// Headers taken over from the input event, written first and copied
    /// straight from the input batch ([`Output::forward`] sets them).
    pub inherited_headers: Option<Headers<'a>>,
    /// Headers, in order (after any inherited ones).
    pub headers: Vec<OutputHeader<'a>>,
    /// Event time in ms; `None` keeps the input's.
    pub timestamp: Option<i64>,
    /// A named route of the stage; `None` is the default next hop.
    pub route: Option<Cow<'a, str>>,
}

impl<'a> Output<'a> {
    /// An empty output: no key, no value, no headers.
    pub fn new() -> Self {
        Output::default()
    }

    /// An output with the event's key, value and headers (borrowed: nothing
    /// is copied until the output is written).
    pub fn forward(e: &Event<'a>) -> Self {
        Output {
            key: e.key().map(Cow::Borrowed),
            value: e.value().map(Cow::Borrowed),
            inherited_headers: Some(e.headers()),
            headers: Vec::new(),
            timestamp: None,
            route: None,
        }
    }

    /// Every header in order: inherited ones, then added ones.
    pub fn all_headers(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> + '_ {
        let inherited = self.inherited_headers.into_iter().flat_map(|h| h.iter());
        inherited.chain(self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_deref())))
    }

    /// An output with the event's key and headers and a new value.
    pub fn with_value_of(e: &Event<'a>, value: impl Into<Cow<'a, [u8]>>) -> Self {
        Output {
            value: Some(value.into()),
            ..Output::forward(e)
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Cow<'a, [u8]>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Cow<'a, [u8]>>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Sets a text value.
    pub fn text(self, value: impl Into<String>) -> Self {
        self.value(value.into().into_bytes())
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, [u8]>>) -> Self {
        self.headers.push((name.into(), Some(value.into())));
        self
    }

    /// Sets the event time (ms).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }

    /// Sends this output to a named route of the stage.
    pub fn route(mut self, route: impl Into<Cow<'a, str>>) -> Self {
        self.route = Some(route.into());
        self
    }

    /// The value as text, when UTF-8 (handy in tests).
    pub fn value_str(&self) -> Option<&str> {
        self.value.as_deref().and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The key as text, when UTF-8 (handy in tests).
    pub fn key_str(&self) -> Option<&str> {
        self.key.as_deref().and_then(|k| std::str::from_utf8(k).ok())
    }
}

/// A failure reported on purpose for one input event (the batch ABI's
/// own, [`weir_abi::Failure`]): the host sends that event to the stage's
/// error policy and carries on with the rest.
pub use weir_abi::Failure;
