"""The batch codec against hand-built bytes (the layouts in wit/weir.wit)."""

import struct
import unittest

from weir_sdk import Event, Failure, Output, decode_events, decode_results, encode_events, encode_results

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
