"""The batch codec against hand-built bytes (the layouts in wit/weir.wit)."""

import struct
import unittest

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

NONE = 0xFFFF_FFFF


def u32(n):
    return struct.pack("<I", n)


def blob(data):
    return u32(len(data)) + data


def opt(data):
    return u32(NONE) if data is None else blob(data)


# Two events: the first with key, value and two headers (one without a
# value); the second with neither key nor value and no headers.
EVENT_BATCH = (
    u32(2)
    + struct.pack("<qiq", 1_700_000_000_123, 3, 42)
    + blob(b"orders")
    + opt(b"k1")
    + opt(b'{"level": "ERROR"}')
    + u32(2)
    + blob(b"trace")
    + opt(b"\x00\xff")
    + blob(b"empty")
    + opt(None)
    + struct.pack("<qiq", -1, 0, 2**63 - 1)
    + blob("tōpic".encode())
    + opt(None)
    + opt(None)
    + u32(0)
)


class DecodeEvents(unittest.TestCase):
    def test_fields(self):
        first, second = decode_events(EVENT_BATCH)
        self.assertEqual(first.timestamp, 1_700_000_000_123)
        self.assertEqual((first.topic, first.partition, first.offset), ("orders", 3, 42))
        self.assertEqual(first.key, b"k1")
        self.assertEqual(first.value, b'{"level": "ERROR"}')
        self.assertEqual(first.headers, [("trace", b"\x00\xff"), ("empty", None)])
        self.assertEqual(first.header("trace"), b"\x00\xff")
        self.assertIsNone(first.header("missing"))
        self.assertEqual((second.timestamp, second.topic, second.offset), (-1, "tōpic", 2**63 - 1))
        self.assertIsNone(second.key)
        self.assertIsNone(second.value)
        self.assertEqual(second.headers, [])

    def test_payloads_view_the_batch(self):
        batch = bytearray(EVENT_BATCH)
        (event, _) = decode_events(batch)
        index = batch.index(b"k1")
        batch[index : index + 2] = b"K2"
        self.assertEqual(event.key, b"K2")

    def test_value_helpers(self):
        (event, empty) = decode_events(EVENT_BATCH)
        self.assertEqual(event.value_str(), '{"level": "ERROR"}')
        self.assertEqual(event.key_str(), "k1")
        self.assertEqual(event.json(), {"level": "ERROR"})
        self.assertIsNone(empty.value_str())
        with self.assertRaises(Failure) as ctx:
            empty.json()
        self.assertEqual(ctx.exception.code, "invalid-json")

    def test_invalid_utf8_and_json(self):
        bad = Event(value=b"\xff")
        with self.assertRaises(Failure) as ctx:
            bad.value_str()
        self.assertEqual(ctx.exception.code, "invalid-utf8")
        with self.assertRaises(Failure) as ctx:
            bad.json()
        self.assertEqual(ctx.exception.code, "invalid-json")
        for text in ["{nope", '{"x": NaN}', "-Infinity", "[" * 100_000]:
            with self.assertRaises(Failure) as ctx:
                Event(value=text).json()
            self.assertEqual(ctx.exception.code, "invalid-json")

    def test_empty_batch(self):
        self.assertEqual(decode_events(u32(0)), [])

    def test_malformed(self):
        with self.assertRaises(ValueError):
            decode_events(EVENT_BATCH[:-3])
        with self.assertRaises(ValueError):
            decode_events(EVENT_BATCH + b"\x00")

    def test_encode_events_round_trip(self):
        self.assertEqual(encode_events(decode_events(EVENT_BATCH)), EVENT_BATCH)


# Three pairs: key, both sides and two headers (one without a value); then no
# key, a left side only and no headers; then a right side only.
JOIN_BATCH = (
    u32(3)
    + struct.pack("<q", 1_700_000_000_123)
    + opt(b"k1")
    + opt(b'{"qty": 2}')
    + opt(b"[1]")
    + u32(2)
    + blob(b"trace")
    + opt(b"\x00\xff")
    + blob(b"empty")
    + opt(None)
    + struct.pack("<q", -1)
    + opt(None)
    + opt(b"\xff")
    + opt(None)
    + u32(0)
    + struct.pack("<q", 2**63 - 1)
    + opt(b"k3")
    + opt(None)
    + opt(b"")
    + u32(0)
)


class DecodePairs(unittest.TestCase):
    def test_fields(self):
        both, left_only, right_only = decode_pairs(JOIN_BATCH)
        self.assertEqual(both.timestamp, 1_700_000_000_123)
        self.assertEqual((both.key, both.left, both.right), (b"k1", b'{"qty": 2}', b"[1]"))
        self.assertEqual(both.headers, [("trace", b"\x00\xff"), ("empty", None)])
        self.assertEqual(both.header("trace"), b"\x00\xff")
        self.assertIsNone(both.header("missing"))
        self.assertEqual(left_only.timestamp, -1)
        self.assertIsNone(left_only.key)
        self.assertEqual(left_only.left, b"\xff")
        self.assertIsNone(left_only.right)
        self.assertEqual(left_only.headers, [])
        self.assertEqual(right_only.timestamp, 2**63 - 1)
        self.assertIsNone(right_only.left)
        self.assertEqual(right_only.right, b"")  # present but empty is not absent

    def test_payloads_view_the_batch(self):
        batch = bytearray(JOIN_BATCH)
        (pair, _, _) = decode_pairs(batch)
        index = batch.index(b"qty")
        batch[index : index + 3] = b"QTY"
        self.assertEqual(pair.left, b'{"QTY": 2}')

    def test_helpers(self):
        both, left_only, right_only = decode_pairs(JOIN_BATCH)
        self.assertEqual((both.key_str(), both.left_str(), both.right_str()), ("k1", '{"qty": 2}', "[1]"))
        self.assertEqual((both.left_json(), both.right_json()), ({"qty": 2}, [1]))
        self.assertIsNone(left_only.key_str())
        self.assertIsNone(left_only.right_str())
        with self.assertRaises(Failure) as ctx:
            left_only.left_str()
        self.assertEqual(ctx.exception.code, "invalid-utf8")
        for side in (left_only.left_json, left_only.right_json, right_only.left_json, right_only.right_json):
            with self.assertRaises(Failure) as ctx:  # not UTF-8, absent, absent, empty
                side()
            self.assertEqual(ctx.exception.code, "invalid-json")
        self.assertEqual(self._failure(left_only.right_json).message, "right is absent")
        self.assertIn("left is not UTF-8", self._failure(left_only.left_json).message)
        for text in ["{nope", '{"x": NaN}', "Infinity"]:
            with self.assertRaises(Failure) as ctx:
                Pair(right=text).right_json()
            self.assertEqual(ctx.exception.code, "invalid-json")

    @staticmethod
    def _failure(fn):
        try:
            fn()
        except Failure as failure:
            return failure
        return None

    def test_constructed(self):
        pair = Pair(key="k", left="l", right=b"r", headers={"h": "v"}, timestamp=5)
        self.assertEqual((pair.key, pair.left, pair.right, pair.headers, pair.timestamp), (b"k", b"l", b"r", [("h", b"v")], 5))
        self.assertEqual(Pair().headers, [])
        with self.assertRaises(TypeError):
            Pair(left=3)

    def test_empty_batch(self):
        self.assertEqual(decode_pairs(u32(0)), [])

    def test_malformed(self):
        with self.assertRaises(ValueError):
            decode_pairs(JOIN_BATCH[:-3])
        with self.assertRaises(ValueError):
            decode_pairs(JOIN_BATCH + b"\x00")

    def test_encode_pairs_round_trip(self):
        self.assertEqual(encode_pairs(decode_pairs(JOIN_BATCH)), JOIN_BATCH)


class EncodeResults(unittest.TestCase):
    def test_layout(self):
        results = [
            [
                Output(key="k", value=b"v", headers=[("h", "x"), ("n", None)]),
                Output(value=None, timestamp=-5, route="errors"),
            ],
            [],
            Failure("invalid-json", "bad ☃"),
        ]
        expected = (
            u32(3)
            # result 0: two outputs
            + b"\x00"
            + u32(2)
            + b"\x00"
            + opt(b"k")
            + opt(b"v")
            + u32(2)
            + blob(b"h")
            + opt(b"x")
            + blob(b"n")
            + opt(None)
            + b"\x03"
            + struct.pack("<q", -5)
            + opt(None)
            + opt(None)
            + u32(0)
            + blob(b"errors")
            # result 1: no outputs
            + b"\x00"
            + u32(0)
            # result 2: a failure
            + b"\x01"
            + blob(b"invalid-json")
            + blob("bad ☃".encode())
        )
        self.assertEqual(encode_results(results), expected)

    def test_round_trip(self):
        results = [[Output(key=b"a", value="b", headers={"h": "v"}, timestamp=7)], Failure("x", "y"), []]
        decoded = decode_results(encode_results(results))
        self.assertEqual(decoded[0], results[0])
        self.assertEqual((decoded[1].code, decoded[1].message), ("x", "y"))
        self.assertEqual(decoded[2], [])

    def test_kept_key_and_headers_come_from_the_events_and_unknown_flags_are_refused(self):
        (event, _) = decode_events(EVENT_BATCH)
        # One result per event: the first keeps its event's key and headers
        # (flags 4 and 8), the second has no outputs.
        kept = u32(2) + b"\x00" + u32(1) + b"\x0c" + blob(b"v") + b"\x00" + u32(0)
        (outputs, none) = decode_results(kept, decode_events(EVENT_BATCH))
        self.assertEqual(outputs, [Output(key=event.key, value=b"v", headers=event.headers)])
        self.assertEqual(none, [])
        with self.assertRaisesRegex(ValueError, "keeps its input's key or headers"):
            decode_results(kept)
        with self.assertRaisesRegex(ValueError, "unknown flags 0x10"):
            decode_results(u32(1) + b"\x00" + u32(1) + b"\x10")

    def test_forward_keeps_key_value_headers(self):
        (event, _) = decode_events(EVENT_BATCH)
        out = Output.forward(event)
        self.assertEqual(out, Output(key=b"k1", value=b'{"level": "ERROR"}', headers=event.headers))
        self.assertIsNone(out.timestamp)
        self.assertIsNone(out.route)

    def test_rejects_bad_types(self):
        with self.assertRaises(TypeError):
            Output(value=3)
        with self.assertRaises(TypeError):
            Output(timestamp="now")
        with self.assertRaises(TypeError):
            encode_results([["not an output"]])


if __name__ == "__main__":
    unittest.main()
