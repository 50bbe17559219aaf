//! The guest's side of a `result-batch`: the SDK's outputs written through
//! [`weir_abi::ResultEncoder`], which owns the layout.

use weir_abi::{HeadersView, InputOr, NoHeaders, OutputFields, OutputHeaders, ResultEncoder, ValueOut};

use crate::{Event, Failure, Headers, Output};

/// Writes a `result-batch`: one result per input, each a list of outputs or a
/// failure, straight into one buffer.
pub struct ResultWriter {
    enc: ResultEncoder,
    /// A joiner's pair key, which outputs without a key get (so the host
    /// need not fill it in); `None` outside a join.
    default_key: Option<Vec<u8>>,
    /// The input event whose result is being written, where it came from
    /// in the batch: its outputs may keep its key and headers by a flag
    /// instead of copying them (the host reads them from the batch it sent).
    input: Option<InputId>,
}

/// Where an event's key and headers are in the batch it was read from: an
/// event the operator made or changed (another key, its own headers) does
/// not match the input it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InputId {
    key: Option<(usize, usize)>,
    headers: (usize, usize),
}

impl InputId {
    /// `None` for an event not read from a batch.
    #[inline(always)]
    fn of(e: &Event<'_>) -> Option<InputId> {
        let at = |s: &[u8]| (s.as_ptr() as usize, s.len());
        let headers = e.headers().view()?.encoded();
        Some(InputId {
            key: e.key().map(at),
            headers: at(headers),
        })
    }
}

/// Headers written in full: those read from a batch copied in one piece,
/// then those given as a list, then `added`.
#[inline(always)]
fn written<'a, I>(
    inherited: Headers<'a>,
    added: I,
) -> OutputHeaders<'a, impl Iterator<Item = (&'a str, Option<&'a [u8]>)>>
where
    I: IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
{
    OutputHeaders {
        copied: inherited.view().unwrap_or(HeadersView::EMPTY),
        added: inherited.list().iter().copied().chain(added),
    }
}

impl ResultWriter {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        ResultWriter {
            enc: ResultEncoder::with_capacity(cap),
            default_key: None,
            input: None,
        }
    }

    /// Outputs without a key get `key` from here on (a joiner's pair key;
    /// `None`: they keep none). The buffer is reused from pair to pair.
    pub(crate) fn default_key(&mut self, key: Option<&[u8]>) {
        match (key, &mut self.default_key) {
            (Some(k), Some(buf)) => {
                buf.clear();
                buf.extend_from_slice(k);
            }
            (Some(k), slot @ None) => *slot = Some(k.to_vec()),
            (None, slot) => *slot = None,
        }
    }

    /// Starts the result of the next input.
    #[inline(always)]
    pub(crate) fn begin(&mut self) {
        self.enc.begin();
        self.input = None;
    }

    /// Starts the result of input event `e`, read from the batch: outputs
    /// that forward it or map its value keep its key and headers by flag.
    #[inline(always)]
    pub(crate) fn begin_event(&mut self, e: &Event<'_>) {
        self.begin();
        self.input = InputId::of(e);
    }

    /// True when `e` is the input being answered, as it came: its key and
    /// headers are the host's already.
    #[inline(always)]
    fn is_input(&self, e: &Event<'_>) -> bool {
        self.input.is_some() && self.input == InputId::of(e)
    }

    /// Appends one output to the current input's result.
    pub fn output(&mut self, o: &Output<'_>) {
        let added = o.headers.iter().map(|(n, v)| (n.as_ref(), v.as_deref()));
        let fields = OutputFields {
            timestamp: o.timestamp,
            key: InputOr::Own(o.key.as_deref().or(self.default_key.as_deref())),
            headers: InputOr::Own(written(o.inherited_headers.unwrap_or(Headers::EMPTY), added)),
            route: o.route.as_deref(),
        };
        self.enc.output(fields, o.value.as_deref());
    }

    /// Appends the event itself (key, value, headers) as an output, optionally
    /// with a new key or a route, without building an [`Output`].
    pub(crate) fn forward(&mut self, e: &Event<'_>, key: Option<Option<&[u8]>>, route: Option<&str>) {
        if self.is_input(e) {
            // The host has the headers, and the key unless a new one is given.
            let fields = OutputFields {
                timestamp: None,
                key: key.map_or(InputOr::Input, InputOr::Own),
                headers: InputOr::<OutputHeaders<'_, NoHeaders>>::Input,
                route,
            };
            return self.enc.output(fields, e.value());
        }
        let fields = OutputFields {
            timestamp: None,
            key: InputOr::Own(key.unwrap_or(e.key())),
            headers: InputOr::Own(written(e.headers(), [])),
            route,
        };
        self.enc.output(fields, e.value());
    }

    /// Appends the event with a new value that `write` puts straight into
    /// the result buffer (a `#[map_value]`): no allocation for the value,
    /// and one pass over it; the input's key and headers are kept by flag,
    /// not copied. A tombstone passes as it is, unwritten.
    pub fn map_value(&mut self, e: &Event<'_>, write: impl FnOnce(&mut ValueOut<'_>) -> Result<(), Failure>) {
        if e.value().is_none() {
            return self.forward(e, None, None);
        }
        // Two calls rather than one with either fields: the input's is the
        // common case, and its fields are a few bytes, not a headers iterator.
        let written = if self.is_input(e) {
            let fields = OutputFields {
                timestamp: None,
                key: InputOr::Input,
                headers: InputOr::<OutputHeaders<'_, NoHeaders>>::Input,
                route: None,
            };
            self.enc.output_with(fields, write)
        } else {
            let fields = OutputFields {
                timestamp: None,
                key: InputOr::Own(e.key()),
                headers: InputOr::Own(written(e.headers(), [])),
                route: None,
            };
            self.enc.output_with(fields, write)
        };
        if let Err(f) = written {
            self.fail(&f);
        }
    }

    /// The current input failed; outputs already written for it are discarded.
    pub fn fail(&mut self, f: &Failure) {
        self.enc.fail(&f.code, &f.message);
    }

    /// The finished buffer.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.enc.finish()
    }
}

#[cfg(test)]
mod tests {
    use weir_abi::{EventResult, ResultBatch};

    use super::*;
    use crate::event::{encode_events, events};

    /// One result: the outputs (owned, with kept keys and headers resolved)
    /// or the failure.
    type Got = Result<Vec<weir_abi::Output>, Failure>;

    /// Decodes results as the host does; outputs that keep their input's key
    /// or headers take them from `input`, the `event-batch` (empty: none).
    fn decode_results(buf: &[u8], input: &[u8]) -> Vec<Got> {
        let batch = if input.is_empty() {
            let n = weir_abi::count(buf).unwrap() as usize;
            ResultBatch::decode(buf.to_vec(), n)
        } else {
            ResultBatch::decode_for_batch(buf.to_vec(), input)
        };
        let results = batch.unwrap().into_owned();
        let result = |r| match r {
            EventResult::Outputs(outs) => Ok(outs),
            EventResult::Failed(f) => Err(Failure::new(f.code, f.message)),
        };
        results.into_iter().map(result).collect()
    }

    fn text(b: &Option<Vec<u8>>) -> Option<&str> {
        b.as_deref().map(|b| std::str::from_utf8(b).unwrap())
    }

    fn headers_of(o: &weir_abi::Output) -> Vec<(&str, Option<&[u8]>)> {
        o.headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_deref()))
            .collect()
    }

    #[test]
    fn forwarded_outputs_write_inherited_then_added_headers() {
        let headers = [("a", Some(&b"1"[..])), ("n", None)];
        let e = Event::new(b"v").with_headers(&headers);
        let mut w = ResultWriter::with_capacity(0);
        w.begin();
        w.output(&Output::forward(&e).header("b", b"2".to_vec()));
        let results = decode_results(&w.finish(), &[]);
        let out = &results[0].as_ref().unwrap()[0];
        assert_eq!(
            headers_of(out),
            [("a", Some(&b"1"[..])), ("n", None), ("b", Some(&b"2"[..]))]
        );
    }

    #[test]
    fn headers_from_a_batch_are_copied_whole_before_added_ones() {
        let list = [("a", Some(&b"1"[..])), ("n", None)];
        let batch = encode_events(&[Event::new(b"v").with_headers(&list).with_source("t", 0, 1)]);
        let e = events(&batch).next().unwrap();
        let mut w = ResultWriter::with_capacity(0);
        w.begin();
        w.output(&Output::forward(&e).header("b", b"2".to_vec()));
        w.forward(&e, None, None);
        let results = decode_results(&w.finish(), &batch);
        let outs = results[0].as_ref().unwrap();
        assert_eq!(
            headers_of(&outs[0]),
            [("a", Some(&b"1"[..])), ("n", None), ("b", Some(&b"2"[..]))]
        );
        assert_eq!(headers_of(&outs[1]), list);
    }

    #[test]
    fn a_value_is_written_in_place_and_a_tombstone_passes() {
        let list = [("h", Some(&b"x"[..]))];
        let batch = encode_events(&[
            Event::new(b"abc").with_key(b"k").with_headers(&list),
            Event::new(b"").with_key(b"gone").without_value(),
            Event::new(b"bad"),
            Event::new(b"def"),
        ]);
        let mut w = ResultWriter::with_capacity(0);
        for e in events(&batch) {
            w.begin();
            w.map_value(&e, |out| {
                if e.value() == Some(b"bad") {
                    out.extend_from_slice(b"half-written");
                    return Err(Failure::new("bad", "no"));
                }
                out.extend(e.value().unwrap_or_default().iter().map(u8::to_ascii_uppercase));
                std::fmt::Write::write_str(out, "!").map_err(|_| Failure::new("fmt", ""))?;
                assert_eq!(out.len(), 4);
                Ok(())
            });
        }
        let results = decode_results(&w.finish(), &batch);
        let first = &results[0].as_ref().unwrap()[0];
        assert_eq!((text(&first.key), text(&first.value)), (Some("k"), Some("ABC!")));
        assert_eq!(headers_of(first), list);
        let tombstone = &results[1].as_ref().unwrap()[0];
        assert_eq!((text(&tombstone.key), tombstone.value.as_deref()), (Some("gone"), None));
        assert_eq!(results[2], Err(Failure::new("bad", "no")));
        assert_eq!(text(&results[3].as_ref().unwrap()[0].value), Some("DEF!"));
    }

    #[test]
    fn every_input_gets_exactly_one_result() {
        let e = Event::new(b"x").with_key(b"k");
        let mut w = ResultWriter::with_capacity(0);
        w.begin(); // no output
        w.begin(); // two outputs
        w.output(&Output::new().text("a"));
        w.forward(&e, None, Some("r"));
        w.begin(); // output, then failure: the failure wins
        w.output(&Output::new().text("dropped"));
        w.fail(&Failure::new("bad", "why"));
        w.output(&Output::new().text("ignored"));
        w.begin(); // failure only
        w.fail(&Failure::new("bad", "again"));
        let results = decode_results(&w.finish(), &[]);
        assert_eq!(results.len(), 4);
        assert_eq!(results[0], Ok(vec![]));
        let two = results[1].as_ref().unwrap();
        assert_eq!(
            (text(&two[0].value), two[1].route.as_deref(), text(&two[1].key)),
            (Some("a"), Some("r"), Some("k"))
        );
        assert_eq!(results[2], Err(Failure::new("bad", "why")));
        assert_eq!(results[3], Err(Failure::new("bad", "again")));
    }

    #[test]
    fn a_joiners_outputs_without_a_key_get_the_pairs() {
        let mut w = ResultWriter::with_capacity(0);
        w.begin();
        w.default_key(Some(b"pair-key"));
        w.output(&Output::new().text("a"));
        w.output(&Output::new().key(b"own".to_vec()).text("b"));
        w.begin();
        w.default_key(None);
        w.output(&Output::new().text("c"));
        let results = decode_results(&w.finish(), &[]);
        let keys: Vec<Vec<Option<&str>>> = results
            .iter()
            .map(|r| r.as_ref().unwrap().iter().map(|o| text(&o.key)).collect())
            .collect();
        assert_eq!(keys, [vec![Some("pair-key"), Some("own")], vec![None]]);
    }

    #[test]
    fn the_input_itself_keeps_its_key_and_headers_by_flag() {
        let list = [("h", Some(&b"x"[..]))];
        let batch = encode_events(&[
            Event::new(b"abc").with_key(b"key-one").with_headers(&list),
            Event::new(b"def").with_key(b"key-two").with_headers(&list),
        ]);
        let mut w = ResultWriter::with_capacity(0);
        let mut inputs = events(&batch);
        let first = inputs.next().unwrap();
        w.begin_event(&first);
        w.map_value(&first, |out| {
            out.extend_from_slice(b"ABC");
            Ok(())
        });
        let second = inputs.next().unwrap();
        w.begin_event(&second);
        w.forward(&second, None, Some("r"));
        w.forward(&second, Some(Some(&b"new"[..])), None);
        let buf = w.finish();
        // Neither input key nor the header is copied; only the new key is.
        let has = |needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
        assert!(!has(b"key-one") && !has(b"key-two") && !has(b"x") && has(b"new"));
        let results = decode_results(&buf, &batch);
        let mapped = &results[0].as_ref().unwrap()[0];
        assert_eq!((text(&mapped.key), text(&mapped.value)), (Some("key-one"), Some("ABC")));
        assert_eq!(headers_of(mapped), list);
        let [routed, rekeyed] = results[1].as_ref().unwrap().as_slice() else {
            panic!("two outputs")
        };
        assert_eq!(
            (text(&routed.key), routed.route.as_deref()),
            (Some("key-two"), Some("r"))
        );
        assert_eq!(headers_of(routed), list);
        assert_eq!((text(&rekeyed.key), text(&rekeyed.value)), (Some("new"), Some("def")));
        assert_eq!(headers_of(rekeyed), list);
    }

    #[test]
    fn an_event_other_than_the_input_is_written_out() {
        let batch = encode_events(&[
            Event::new(b"a").with_key(b"k1").with_source("t", 0, 1),
            Event::new(b"b").with_key(b"k2").with_source("t", 0, 2),
        ]);
        let inputs: Vec<Event<'_>> = events(&batch).collect();
        let mut w = ResultWriter::with_capacity(0);
        // The result of the second input forwards the first, and a copy of
        // the second with another key: neither is the input as it came.
        w.begin_event(&inputs[0]);
        w.begin_event(&inputs[1]);
        w.forward(&inputs[0], None, None);
        w.map_value(&inputs[1].with_key(b"k3"), |out| {
            out.extend_from_slice(b"B");
            Ok(())
        });
        let results = decode_results(&w.finish(), &batch);
        let outs = results[1].as_ref().unwrap();
        assert_eq!((text(&outs[0].key), text(&outs[0].value)), (Some("k1"), Some("a")));
        assert_eq!((text(&outs[1].key), text(&outs[1].value)), (Some("k3"), Some("B")));
    }

    #[test]
    fn events_read_back_as_encoded_and_a_malformed_batch_stops_reading() {
        let headers = [("h", Some(&b"v"[..])), ("n", None)];
        let a = Event::new(b"one")
            .with_key(b"k")
            .with_timestamp(-3)
            .with_headers(&headers)
            .with_source("t", 2, 9);
        let b = Event::new(b"").without_value();
        let batch = encode_events(&[a, b]);
        let got: Vec<Event<'_>> = events(&batch).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].key(), got[0].value(), got[0].timestamp()),
            (Some(&b"k"[..]), Some(&b"one"[..]), -3)
        );
        assert_eq!((got[0].topic(), got[0].partition(), got[0].offset()), ("t", 2, 9));
        assert_eq!(got[0].headers().iter().collect::<Vec<_>>(), headers);
        assert_eq!(got[1].value(), None);
        assert_eq!(events(&batch[..batch.len() - 1]).count(), 1);
    }
}
