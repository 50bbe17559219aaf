//! The golden vectors in `sdk/abi/vectors/`: for each case `NAME.bin`, the
//! exact bytes, and `NAME.json`, their meaning (format: `sdk/abi/README.md`).
//! The Python, JavaScript and C SDKs' tests read the same files.
//!
//! `WEIR_BLESS=1 cargo test -p weir-abi --test vectors` writes them from the
//! cases below. Without it this test checks that the files are exactly what
//! the cases give (so a change to the ABI or to a case is a change to the
//! files), and that every vector round-trips through this crate byte for
//! byte: decode(bin) == meaning and encode(meaning) == bin.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weir_abi::{
    EventEncoder, EventView, HeadersView, InputOr, OutputFields, OutputHeaders, OutputRef, PairEncoder, ResultBatch,
    ResultEncoder, ResultRef, flags,
};

// ---------------------------------------------------------------------------
// The meaning of a vector, as its JSON file says it.

/// Bytes, losslessly: text when they are UTF-8, else hexadecimal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Bytes {
    Utf8(String),
    Hex(String),
}

impl Bytes {
    fn of(b: &[u8]) -> Bytes {
        match std::str::from_utf8(b) {
            Ok(s) => Bytes::Utf8(s.to_owned()),
            Err(_) => Bytes::Hex(b.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })),
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        match self {
            Bytes::Utf8(s) => s.as_bytes().to_vec(),
            Bytes::Hex(h) => (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex digits"))
                .collect(),
        }
    }
}

fn opt(b: Option<&[u8]>) -> Option<Bytes> {
    b.map(Bytes::of)
}

fn opt_vec(b: &Option<Bytes>) -> Option<Vec<u8>> {
    b.as_ref().map(Bytes::to_vec)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    value: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    timestamp: i64,
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    timestamp: i64,
    key: Option<Bytes>,
    left: Option<Bytes>,
    right: Option<Bytes>,
    headers: Vec<Header>,
}

/// `"input"`: the field is kept from the input event (a flag, no bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Input {
    #[serde(rename = "input")]
    Input,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Key {
    Input(Input),
    Own(Option<Bytes>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum Headers {
    Input(Input),
    Own(Vec<Header>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    timestamp: Option<i64>,
    key: Key,
    value: Option<Bytes>,
    headers: Headers,
    route: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Failure {
    code: String,
    message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Result {
    Outputs(Vec<Output>),
    Failure(Failure),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum Vector {
    Events {
        about: String,
        events: Vec<Event>,
    },
    Pairs {
        about: String,
        pairs: Vec<Pair>,
    },
    Results {
        about: String,
        /// The events vector whose events these are the results of, for
        /// outputs that keep their input's key or headers.
        input: Option<String>,
        results: Vec<Result>,
    },
}

/// Compact JSON.
fn compact<T: Serialize + ?Sized>(x: &T) -> String {
    serde_json::to_string(x).expect("serializable")
}

/// The JSON text of a vector: one event, pair or result per line.
fn to_json(v: &Vector) -> String {
    let (kind, about, input, items) = match v {
        Vector::Events { about, events } => ("events", about, None, events.iter().map(compact).collect()),
        Vector::Pairs { about, pairs } => ("pairs", about, None, pairs.iter().map(compact).collect()),
        Vector::Results { about, input, results } => (
            "results",
            about,
            Some(input),
            results.iter().map(compact).collect::<Vec<_>>(),
        ),
    };
    let mut s = format!("{{\n  \"kind\": {},\n  \"about\": {},\n", compact(kind), compact(about));
    if let Some(input) = input {
        let _ = writeln!(s, "  \"input\": {},", compact(input));
    }
    if items.is_empty() {
        let _ = writeln!(s, "  \"{kind}\": []");
    } else {
        let _ = writeln!(s, "  \"{kind}\": [\n    {}\n  ]", items.join(",\n    "));
    }
    s.push_str("}\n");
    s
}

// ---------------------------------------------------------------------------
// Encoding and decoding a vector with this crate.

fn headers_of(hs: &[Header]) -> Vec<(&str, Option<Vec<u8>>)> {
    hs.iter().map(|h| (h.name.as_str(), opt_vec(&h.value))).collect()
}

fn header_meaning(hs: HeadersView<'_>) -> Vec<Header> {
    hs.iter()
        .map(|(name, value)| Header {
            name: name.to_owned(),
            value: opt(value),
        })
        .collect()
}

/// The bytes of `v`; `input` is its input vector's, for results that keep
/// their input's fields.
fn encode(v: &Vector) -> Vec<u8> {
    match v {
        Vector::Events { events, .. } => {
            let mut enc = EventEncoder::new();
            for e in events {
                let headers = headers_of(&e.headers);
                enc.push(
                    e.timestamp,
                    &e.topic,
                    e.partition,
                    e.offset,
                    opt_vec(&e.key).as_deref(),
                    opt_vec(&e.value).as_deref(),
                    headers.iter().map(|(n, v)| (*n, v.as_deref())),
                );
            }
            enc.into_vec()
        }
        Vector::Pairs { pairs, .. } => {
            let mut enc = PairEncoder::new();
            for p in pairs {
                let headers = headers_of(&p.headers);
                enc.push(
                    p.timestamp,
                    opt_vec(&p.key).as_deref(),
                    opt_vec(&p.left).as_deref(),
                    opt_vec(&p.right).as_deref(),
                    headers.iter().map(|(n, v)| (*n, v.as_deref())),
                );
            }
            enc.into_vec()
        }
        Vector::Results { results, .. } => {
            let mut w = ResultEncoder::new();
            for r in results {
                w.begin();
                match r {
                    Result::Outputs(outs) => {
                        for o in outs {
                            let key = match &o.key {
                                Key::Input(_) => None,
                                Key::Own(k) => Some(opt_vec(k)),
                            };
                            let headers = match &o.headers {
                                Headers::Input(_) => None,
                                Headers::Own(hs) => Some(headers_of(hs)),
                            };
                            let fields = OutputFields {
                                timestamp: o.timestamp,
                                key: key.as_ref().map_or(InputOr::Input, |k| InputOr::Own(k.as_deref())),
                                headers: headers.as_ref().map_or(InputOr::Input, |hs| {
                                    InputOr::Own(OutputHeaders::list(hs.iter().map(|(n, v)| (*n, v.as_deref()))))
                                }),
                                route: o.route.as_deref(),
                            };
                            w.output(fields, opt_vec(&o.value).as_deref());
                        }
                    }
                    Result::Failure(f) => w.fail(&f.code, &f.message),
                }
            }
            w.finish()
        }
    }
}

fn event_meaning(e: &EventView<'_>) -> Event {
    Event {
        timestamp: e.timestamp,
        topic: e.topic.to_owned(),
        partition: e.partition,
        offset: e.offset,
        key: opt(e.key),
        value: opt(e.value),
        headers: header_meaning(e.headers),
    }
}

/// An output's meaning; a field it keeps must resolve to `input`'s.
fn output_meaning(o: &OutputRef<'_>, input: Option<&Event>) -> Output {
    let kept = |flag: u8| o.flags() & flag != 0;
    let key = if kept(flags::INPUT_KEY) {
        let input = input.expect("an output that keeps its input's key has an input");
        assert_eq!(opt(o.key()), input.key, "a kept key reads as its input's");
        Key::Input(Input::Input)
    } else {
        Key::Own(opt(o.key()))
    };
    let headers = if kept(flags::INPUT_HEADERS) {
        let input = input.expect("an output that keeps its input's headers has an input");
        assert_eq!(
            header_meaning(o.headers()),
            input.headers,
            "kept headers read as the input's"
        );
        Headers::Input(Input::Input)
    } else {
        Headers::Own(header_meaning(o.headers()))
    };
    Output {
        timestamp: o.timestamp(),
        key,
        value: opt(o.value()),
        headers,
        route: o.route().map(str::to_owned),
    }
}

/// What `bin` means, read as the kind of `like` says; `input` is the input
/// vector of results that have one.
fn decode(bin: &[u8], like: &Vector, input: Option<(&[u8], &[Event])>) -> Vector {
    match like {
        Vector::Events { about, .. } => Vector::Events {
            about: about.clone(),
            events: weir_abi::events(bin)
                .map(|e| event_meaning(&e.expect("well-formed")))
                .collect(),
        },
        Vector::Pairs { about, .. } => Vector::Pairs {
            about: about.clone(),
            pairs: weir_abi::pairs(bin)
                .map(|p| {
                    let p = p.expect("well-formed");
                    Pair {
                        timestamp: p.timestamp,
                        key: opt(p.key),
                        left: opt(p.left),
                        right: opt(p.right),
                        headers: header_meaning(p.headers),
                    }
                })
                .collect(),
        },
        Vector::Results {
            about,
            input: input_name,
            ..
        } => {
            let n = weir_abi::count(bin).expect("a count") as usize;
            let batch = match input {
                Some((input_bin, _)) => ResultBatch::decode_for_batch(bin.to_vec(), input_bin),
                None => ResultBatch::decode(bin.to_vec(), n),
            }
            .expect("well-formed");
            let events = input.map(|(_, events)| events);
            let results = batch
                .iter()
                .enumerate()
                .map(|(i, r)| match r {
                    ResultRef::Outputs(outs) => {
                        let event = events.and_then(|e| e.get(i));
                        Result::Outputs(outs.iter().map(|o| output_meaning(&o, event)).collect())
                    }
                    ResultRef::Failed { code, message } => Result::Failure(Failure {
                        code: code.to_owned(),
                        message: message.to_owned(),
                    }),
                })
                .collect();
            Vector::Results {
                about: about.clone(),
                input: input_name.clone(),
                results,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The cases.

fn utf8(s: &str) -> Option<Bytes> {
    Some(Bytes::Utf8(s.to_owned()))
}

fn hex(b: &[u8]) -> Option<Bytes> {
    let b = Bytes::of(b);
    assert!(matches!(b, Bytes::Hex(_)), "hex is for bytes that are not UTF-8");
    Some(b)
}

fn h(name: &str, value: Option<Bytes>) -> Header {
    Header {
        name: name.to_owned(),
        value,
    }
}

fn event(timestamp: i64, topic: &str, partition: i32, offset: i64) -> Event {
    Event {
        timestamp,
        topic: topic.to_owned(),
        partition,
        offset,
        key: None,
        value: None,
        headers: vec![],
    }
}

fn pair(timestamp: i64, key: Option<Bytes>, left: Option<Bytes>, right: Option<Bytes>) -> Pair {
    Pair {
        timestamp,
        key,
        left,
        right,
        headers: vec![],
    }
}

/// An output that writes every field, without timestamp or route.
fn out(key: Option<Bytes>, value: Option<Bytes>, headers: Vec<Header>) -> Output {
    Output {
        timestamp: None,
        key: Key::Own(key),
        value,
        headers: Headers::Own(headers),
        route: None,
    }
}

fn failure(code: &str, message: &str) -> Result {
    Result::Failure(Failure {
        code: code.to_owned(),
        message: message.to_owned(),
    })
}

/// `n` bytes of readable text.
fn text(n: usize) -> String {
    "0123456789abcdefghijklmnopqrstuvwxyz".chars().cycle().take(n).collect()
}

/// Above 64 KiB: a length that does not fit in 16 bits.
const LARGE: usize = 70_000;
/// Above 255: a count that does not fit in a byte.
const MANY: usize = 300;
/// The largest integer a JavaScript number holds exactly: event and pair
/// timestamps and offsets stay within it (the JavaScript SDK reads them as
/// numbers); output timestamps (BigInts there) go to the ends of `s64`.
const JS_SAFE: i64 = (1 << 53) - 1;

/// Every byte value, in a value that is not UTF-8.
fn all_bytes() -> Vec<u8> {
    (0..=255).collect()
}

/// Text that JSON must escape, and a byte order mark a UTF-8 decoder could
/// drop.
const ESCAPES: &str = "nul \0 tab \t newline \n quote \" backslash \\ del \x7f bom \u{feff}";

fn cases() -> Vec<(&'static str, Vector)> {
    let events = |about: &str, events: Vec<Event>| Vector::Events {
        about: about.to_owned(),
        events,
    };
    let pairs = |about: &str, pairs: Vec<Pair>| Vector::Pairs {
        about: about.to_owned(),
        pairs,
    };
    let results = |about: &str, input: Option<&str>, results: Vec<Result>| Vector::Results {
        about: about.to_owned(),
        input: input.map(str::to_owned),
        results,
    };
    let one = Event {
        key: utf8("order-1"),
        value: utf8(r#"{"level":"ERROR","qty":2}"#),
        headers: vec![h("trace-id", utf8("abc123"))],
        ..event(1_700_000_000_123, "orders", 3, 42)
    };
    let absent_and_empty = vec![
        event(0, "", 0, 0),
        Event {
            key: utf8(""),
            value: utf8(""),
            headers: vec![h("", utf8("")), h("absent", None), h("empty", utf8(""))],
            ..event(1, "t", 0, 1)
        },
        Event {
            key: utf8("k"),
            value: None,
            headers: vec![],
            ..event(2, "t", 0, 2)
        },
        Event {
            key: None,
            value: utf8("v"),
            headers: vec![h("only-absent", None)],
            ..event(3, "t", 0, 3)
        },
    ];
    let every_flag: Vec<Output> = (0..16u8)
        .map(|f| Output {
            timestamp: (f & flags::TIMESTAMP != 0).then_some(1_000 + i64::from(f)),
            key: if f & flags::INPUT_KEY != 0 {
                Key::Input(Input::Input)
            } else {
                Key::Own(utf8(&format!("key-{f}")))
            },
            value: utf8(&format!("flags {f}")),
            headers: if f & flags::INPUT_HEADERS != 0 {
                Headers::Input(Input::Input)
            } else {
                Headers::Own(vec![h("flags", utf8(&f.to_string()))])
            },
            route: (f & flags::ROUTE != 0).then(|| format!("route-{f}")),
        })
        .collect();
    let kept = |value: &str| Output {
        timestamp: None,
        key: Key::Input(Input::Input),
        value: utf8(value),
        headers: Headers::Input(Input::Input),
        route: None,
    };
    vec![
        ("events-empty", events("an event batch without events", vec![])),
        (
            "events-one",
            events("one event with every field set", vec![one.clone()]),
        ),
        (
            "events-absent-and-empty",
            events(
                "absent and empty keys, values, header values, topic and header name; no headers",
                absent_and_empty.clone(),
            ),
        ),
        (
            "events-repeated-headers",
            events(
                "header names repeat; order is kept, values differ, one is absent",
                vec![Event {
                    key: utf8("k"),
                    value: utf8("v"),
                    headers: vec![
                        h("h", utf8("1")),
                        h("other", utf8("x")),
                        h("h", utf8("2")),
                        h("h", None),
                        h("h", utf8("1")),
                    ],
                    ..event(5, "t", 1, 7)
                }],
            ),
        ),
        (
            "events-non-ascii-and-binary",
            events(
                "UTF-8 beyond ASCII in the topic, keys, values and header names; bytes that are not UTF-8 in keys and values; text that JSON escapes",
                vec![
                    Event {
                        key: utf8("ключ"),
                        value: utf8("日本語のテキスト 🦀"),
                        headers: vec![h("ümlaut-名前", utf8("wert")), h("\u{feff}bom-first", utf8("é"))],
                        ..event(10, "événements-日本", 0, 1)
                    },
                    Event {
                        key: hex(&[0x00, 0xff, 0x80, 0xc0]),
                        value: hex(&all_bytes()),
                        headers: vec![h("binary", hex(&[0xff, 0xfe])), h("escapes", utf8(ESCAPES))],
                        ..event(11, "t", 0, 2)
                    },
                    Event {
                        key: utf8(ESCAPES),
                        value: utf8("\u{10ffff}\u{e000}\u{7ff}\u{800}\u{ffff}\u{10000}"),
                        ..event(12, "t", 0, 3)
                    },
                ],
            ),
        ),
        (
            "events-integers",
            events(
                "negative and extreme timestamps, partitions and offsets (s64 values within ±(2^53-1))",
                vec![
                    event(-1, "t", -1, -1),
                    event(JS_SAFE, "t", i32::MAX, JS_SAFE),
                    event(-JS_SAFE, "t", i32::MIN, 0),
                    event(0, "t", 0, 1 << 32),
                    event(0x0102_0304_0506, "t", 0x0102_0304, 0x0a0b_0c0d_0e0f),
                ],
            ),
        ),
        (
            "events-large",
            events(
                "a value over 64 KiB, a key over 255 bytes, a header value over 255 bytes",
                vec![Event {
                    key: utf8(&text(MANY)),
                    value: utf8(&text(LARGE)),
                    headers: vec![h("big", utf8(&text(1_000)))],
                    ..event(1, "t", 0, 0)
                }],
            ),
        ),
        (
            "events-many-headers",
            events(
                "one event with 300 headers (some repeated, some absent, some empty)",
                vec![Event {
                    key: utf8("k"),
                    value: utf8("v"),
                    headers: (0..MANY)
                        .map(|i| {
                            let value = match i % 3 {
                                0 => utf8(&format!("value {i}")),
                                1 => None,
                                _ => utf8(""),
                            };
                            h(&format!("h{:03}", i % 250), value)
                        })
                        .collect(),
                    ..event(1, "t", 0, 0)
                }],
            ),
        ),
        (
            "events-many",
            events(
                "300 events; every third without a key, every fifth a tombstone",
                (0..MANY)
                    .map(|i| Event {
                        key: (i % 3 != 0).then(|| Bytes::Utf8(format!("k{i}"))),
                        value: (i % 5 != 0).then(|| Bytes::Utf8(format!("v{i}"))),
                        headers: if i % 7 == 0 {
                            vec![h("i", utf8(&i.to_string()))]
                        } else {
                            vec![]
                        },
                        ..event(1_700_000_000_000 + i as i64, "many", (i % 4) as i32, i as i64)
                    })
                    .collect(),
            ),
        ),
        ("pairs-empty", pairs("a join batch without pairs", vec![])),
        (
            "pairs-sides",
            pairs(
                "inner, left, right and outer pairs: each side present or absent; empty sides and keys; headers",
                vec![
                    Pair {
                        headers: vec![h("source", utf8("orders")), h("n", None)],
                        ..pair(100, utf8("c1"), utf8(r#"{"qty":2}"#), utf8(r#"{"name":"Ada"}"#))
                    },
                    pair(101, utf8("c2"), utf8("left only"), None),
                    pair(102, utf8("c3"), None, utf8("right only")),
                    pair(103, None, None, None),
                    Pair {
                        headers: vec![h("", utf8("")), h("h", utf8("1")), h("h", utf8("2"))],
                        ..pair(-JS_SAFE, utf8(""), utf8(""), utf8(""))
                    },
                    Pair {
                        headers: vec![h("名前", hex(&[0xff]))],
                        ..pair(JS_SAFE, hex(&[0x80]), utf8("🦀"), hex(&all_bytes()))
                    },
                ],
            ),
        ),
        (
            "pairs-large",
            pairs(
                "a left value over 64 KiB, then 300 small pairs",
                std::iter::once(pair(0, utf8("big"), utf8(&text(LARGE)), utf8(&text(MANY))))
                    .chain((0..MANY).map(|i| {
                        pair(
                            i as i64,
                            Some(Bytes::Utf8(format!("k{i}"))),
                            (i % 2 == 0).then(|| Bytes::Utf8(format!("l{i}"))),
                            (i % 3 == 0).then(|| Bytes::Utf8(format!("r{i}"))),
                        )
                    }))
                    .collect(),
            ),
        ),
        ("results-empty", results("a result batch without results", None, vec![])),
        (
            "results-no-outputs",
            results(
                "three inputs, none with an output (a filter that dropped them)",
                None,
                vec![
                    Result::Outputs(vec![]),
                    Result::Outputs(vec![]),
                    Result::Outputs(vec![]),
                ],
            ),
        ),
        (
            "results-outputs",
            results(
                "outputs that write every field, one to three per input",
                None,
                vec![
                    Result::Outputs(vec![out(utf8("k"), utf8("v"), vec![h("h", utf8("x"))])]),
                    Result::Outputs(vec![
                        out(utf8("a"), utf8("1"), vec![]),
                        out(utf8("b"), utf8("2"), vec![h("h", utf8("1")), h("h", utf8("2"))]),
                        out(None, utf8("3"), vec![]),
                    ]),
                ],
            ),
        ),
        (
            "results-absent-and-empty",
            results(
                "absent and empty keys, values and header values; an empty header name; an empty route (not the same as none); timestamp 0 (not the same as none)",
                None,
                vec![Result::Outputs(vec![
                    out(None, None, vec![]),
                    out(utf8(""), utf8(""), vec![h("", utf8("")), h("absent", None)]),
                    Output {
                        route: Some(String::new()),
                        ..out(utf8("k"), None, vec![])
                    },
                    Output {
                        timestamp: Some(0),
                        ..out(None, utf8("v"), vec![])
                    },
                ])],
            ),
        ),
        (
            "results-every-flag",
            results(
                "one output for each of the 16 combinations of the flags (timestamp 1, route 2, input key 4, input headers 8), for the event of events-one",
                Some("events-one"),
                vec![Result::Outputs(every_flag)],
            ),
        ),
        (
            "results-kept-fields",
            results(
                "outputs that keep their input's key and headers, for the events of events-absent-and-empty (absent, empty and present keys; none, some headers)",
                Some("events-absent-and-empty"),
                vec![
                    Result::Outputs(vec![kept("0")]),
                    Result::Outputs(vec![kept("1"), kept("1 again")]),
                    Result::Outputs(vec![
                        Output {
                            key: Key::Input(Input::Input),
                            ..out(None, utf8("2, new headers"), vec![h("new", utf8("h"))])
                        },
                        Output {
                            headers: Headers::Input(Input::Input),
                            ..out(utf8("new key"), utf8("2, new key"), vec![])
                        },
                    ]),
                    failure("skipped", "a failure among kept outputs"),
                ],
            ),
        ),
        (
            "results-failures",
            results(
                "typed failures: empty code and message, non-ASCII text, between outputs",
                None,
                vec![
                    failure("invalid-json", "value is not JSON: expected value at line 1 column 1"),
                    Result::Outputs(vec![out(None, utf8("ok"), vec![])]),
                    failure("", ""),
                    failure("échec", "le message: 日本語 🦀"),
                    failure("escapes", ESCAPES),
                    Result::Outputs(vec![]),
                ],
            ),
        ),
        (
            "results-non-ascii-and-binary",
            results(
                "UTF-8 beyond ASCII in keys, values, header names and routes; bytes that are not UTF-8",
                None,
                vec![Result::Outputs(vec![
                    Output {
                        route: Some("маршрут-🦀".to_owned()),
                        ..out(utf8("ключ"), utf8("日本語"), vec![h("ümlaut", utf8("ö"))])
                    },
                    out(
                        hex(&[0xc3, 0x28]),
                        hex(&all_bytes()),
                        vec![h("\u{feff}bom", hex(&[0xff])), h("escapes", utf8(ESCAPES))],
                    ),
                ])],
            ),
        ),
        (
            "results-timestamps",
            results(
                "output timestamps at the ends of s64, zero, negative, and none",
                None,
                vec![Result::Outputs(
                    [
                        Some(i64::MIN),
                        Some(i64::MAX),
                        Some(0),
                        Some(-1),
                        None,
                        Some(1_700_000_000_123),
                    ]
                    .into_iter()
                    .map(|timestamp| Output {
                        timestamp,
                        ..out(None, utf8("t"), vec![])
                    })
                    .collect(),
                )],
            ),
        ),
        (
            "results-large",
            results(
                "an output value over 64 KiB, a key over 255 bytes, an output with 300 headers, a result with 300 outputs",
                None,
                vec![
                    Result::Outputs(vec![out(utf8(&text(MANY)), utf8(&text(LARGE)), vec![])]),
                    Result::Outputs(vec![out(
                        None,
                        utf8("headers"),
                        (0..MANY).map(|i| h(&format!("h{i}"), utf8(&i.to_string()))).collect(),
                    )]),
                    Result::Outputs((0..MANY).map(|i| out(None, utf8(&i.to_string()), vec![])).collect()),
                ],
            ),
        ),
        (
            "results-many",
            results(
                "300 results: zero, one or two outputs, or a failure",
                None,
                (0..MANY)
                    .map(|i| match i % 4 {
                        0 => Result::Outputs(vec![]),
                        1 => Result::Outputs(vec![out(None, Some(Bytes::Utf8(format!("v{i}"))), vec![])]),
                        2 => Result::Outputs(vec![
                            Output {
                                timestamp: Some(i as i64),
                                ..out(Some(Bytes::Utf8(format!("k{i}"))), utf8("a"), vec![])
                            },
                            Output {
                                route: Some("r".to_owned()),
                                ..out(None, utf8("b"), vec![])
                            },
                        ]),
                        _ => failure("odd", &format!("result {i}")),
                    })
                    .collect(),
            ),
        ),
    ]
}

// ---------------------------------------------------------------------------
// The test.

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../abi/vectors")
}

fn bless() -> bool {
    std::env::var_os("WEIR_BLESS").is_some_and(|v| v == "1")
}

fn read(path: &PathBuf) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e} (WEIR_BLESS=1 writes the vectors)", path.display()))
}

#[test]
fn golden_vectors_are_the_cases_and_round_trip_byte_for_byte() {
    let cases = cases();
    let names: BTreeSet<&str> = cases.iter().map(|(n, _)| *n).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    let dir = dir();
    if bless() {
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&dir).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, v) in &cases {
            fs::write(dir.join(format!("{name}.json")), to_json(v)).unwrap();
            fs::write(dir.join(format!("{name}.bin")), encode(v)).unwrap();
        }
    }
    let files: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (WEIR_BLESS=1 writes the vectors)", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let want: BTreeSet<String> = names
        .iter()
        .flat_map(|n| [format!("{n}.bin"), format!("{n}.json")])
        .collect();
    assert_eq!(files, want, "the vectors are the cases (WEIR_BLESS=1 rewrites them)");

    let vector = |name: &str| -> (Vector, Vec<u8>) {
        let json = read(&dir.join(format!("{name}.json")));
        let meaning: Vector = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{name}.json: {e}"));
        (meaning, read(&dir.join(format!("{name}.bin"))))
    };
    for (name, case) in &cases {
        let (meaning, bin) = vector(name);
        let json = String::from_utf8(read(&dir.join(format!("{name}.json")))).unwrap();
        assert!(
            json == to_json(case) && meaning == *case,
            "{name}.json is not what the case says (WEIR_BLESS=1 rewrites it)"
        );
        assert!(encode(&meaning) == bin, "{name}: encode(meaning) != {name}.bin");
        let input = match &meaning {
            Vector::Results { input: Some(input), .. } => {
                let (input_meaning, input_bin) = vector(input);
                let Vector::Events { events, .. } = input_meaning else {
                    panic!("{name}: input {input} is not an events vector")
                };
                Some((input_bin, events))
            }
            _ => None,
        };
        let decoded = decode(&bin, &meaning, input.as_ref().map(|(b, e)| (&b[..], &e[..])));
        assert!(decoded == meaning, "{name}: decode({name}.bin) != meaning");
    }
}

#[test]
fn a_vector_with_one_byte_changed_no_longer_round_trips() {
    let (name, case) = cases().into_iter().find(|(n, _)| *n == "events-one").unwrap();
    let mut bin = encode(&case);
    // The last byte of the header value "abc123".
    *bin.last_mut().unwrap() ^= 1;
    assert_ne!(decode(&bin, &case, None), case, "{name} with a byte changed");
}
