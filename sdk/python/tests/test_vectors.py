"""The codec against the golden vectors in sdk/abi/vectors (format: sdk/abi/README.md).

Every vector round-trips byte for byte: decoding ``NAME.bin`` gives what
``NAME.json`` says, and encoding what it says gives ``NAME.bin``. The one
exception is an output that keeps its input's key or headers by flag: the
Python SDK always writes them, so such a vector is only decoded.
"""

import json
import unittest
from pathlib import Path

from weir_sdk import (
    Event,
    Failure,
    Output,
    Pair,
    decode_events,
    decode_pairs,
    decode_results,
    encode_events,
    encode_pairs,
    encode_results,
)

VECTORS = Path(__file__).resolve().parents[2] / "abi" / "vectors"


def load(name):
    """A vector's meaning and bytes."""
    return json.loads((VECTORS / f"{name}.json").read_text("utf-8")), (VECTORS / f"{name}.bin").read_bytes()


def raw(b):
    """Bytes as the JSON gives them: ``null``, ``{"utf8": …}`` or ``{"hex": …}``."""
    if b is None:
        return None
    ((form, text),) = b.items()
    return text.encode("utf-8") if form == "utf8" else bytes.fromhex(text)


def opt(b):
    return None if b is None else bytes(b)


def headers(hs):
    return [(h["name"], raw(h["value"])) for h in hs]


def event_fields(e):
    return (e.timestamp, e.topic, e.partition, e.offset, e.key, e.value, e.headers)


def event_meaning(m):
    fixed = (m["timestamp"], m["topic"], m["partition"], m["offset"])
    return (*fixed, raw(m["key"]), raw(m["value"]), headers(m["headers"]))


def pair_fields(p):
    return (p.timestamp, p.key, p.left, p.right, p.headers)


def pair_meaning(m):
    return (m["timestamp"], raw(m["key"]), raw(m["left"]), raw(m["right"]), headers(m["headers"]))


def result_fields(r):
    if isinstance(r, Failure):
        return ("failure", r.code, r.message)
    return [(opt(o.key), opt(o.value), [(n, opt(v)) for n, v in o.headers], o.timestamp, o.route) for o in r]


def result_meaning(m, event):
    """A result as decoded; a kept key or headers are those of ``event``, the input's meaning."""
    if "failure" in m:
        return ("failure", m["failure"]["code"], m["failure"]["message"])
    return [
        (
            event[4] if o["key"] == "input" else raw(o["key"]),
            raw(o["value"]),
            event[6] if o["headers"] == "input" else headers(o["headers"]),
            o["timestamp"],
            o["route"],
        )
        for o in m["outputs"]
    ]


def keeps_input(m):
    return "outputs" in m and any(o["key"] == "input" or o["headers"] == "input" for o in m["outputs"])


def to_result(m):
    if "failure" in m:
        return Failure(m["failure"]["code"], m["failure"]["message"])
    return [
        Output(raw(o["key"]), raw(o["value"]), headers(o["headers"]), o["timestamp"], o["route"]) for o in m["outputs"]
    ]


class GoldenVectors(unittest.TestCase):
    def test_there_are_vectors_of_every_kind(self):
        kinds = {load(p.stem)[0]["kind"] for p in VECTORS.glob("*.json")}
        self.assertEqual(kinds, {"events", "pairs", "results"})

    def test_every_vector_round_trips_byte_for_byte(self):
        names = sorted(p.stem for p in VECTORS.glob("*.json"))
        for name in names:
            with self.subTest(vector=name):
                self.check(name)

    def check(self, name):
        meaning, data = load(name)
        kind = meaning["kind"]
        if kind == "events":
            self.assertEqual(
                [event_fields(e) for e in decode_events(data)],
                [event_meaning(m) for m in meaning["events"]],
            )
            events = [
                Event(
                    raw(m["key"]),
                    raw(m["value"]),
                    headers(m["headers"]),
                    m["timestamp"],
                    m["topic"],
                    m["partition"],
                    m["offset"],
                )
                for m in meaning["events"]
            ]
            self.assertEqual(encode_events(events), data)
        elif kind == "pairs":
            self.assertEqual(
                [pair_fields(p) for p in decode_pairs(data)],
                [pair_meaning(m) for m in meaning["pairs"]],
            )
            pairs = [
                Pair(raw(m["key"]), raw(m["left"]), raw(m["right"]), headers(m["headers"]), m["timestamp"])
                for m in meaning["pairs"]
            ]
            self.assertEqual(encode_pairs(pairs), data)
        else:
            self.assertEqual(kind, "results")
            inputs, events = [], None
            if meaning["input"] is not None:
                input_meaning, input_data = load(meaning["input"])
                inputs = [event_meaning(m) for m in input_meaning["events"]]
                events = decode_events(input_data)
            decoded = decode_results(data, events)
            want = [result_meaning(m, inputs[i] if inputs else None) for i, m in enumerate(meaning["results"])]
            self.assertEqual([result_fields(r) for r in decoded], want)
            if not any(keeps_input(m) for m in meaning["results"]):
                self.assertEqual(encode_results([to_result(m) for m in meaning["results"]]), data)


if __name__ == "__main__":
    unittest.main()
