"""The operator decorators, run natively through the whole ABI path."""

import sys
import types
import unittest
from unittest import mock

import weir_sdk
from weir_sdk import Event, Failure, Output, Pair, Window, decode_results, encode_events, encode_pairs
from weir_sdk import operators


def run(op, events):
    """Process events through the batch codec, as the host would call the component."""
    return decode_results(op.process(encode_events(events)))


def run_join(op, pairs):
    """Join pairs through the batch codec, as the host would call the component."""
    return decode_results(op.join(encode_pairs(pairs)))


class Filter(unittest.TestCase):
    def setUp(self):
        @weir_sdk.filter
        def errors_only(event):
            return event.json().get("level") == "ERROR"

        self.op = errors_only

    def test_forwards_kept_events_unchanged(self):
        kept = Event(key="k", value='{"level": "ERROR"}', headers=[("h", "v"), ("h", None)], timestamp=9)
        dropped = Event(key="k", value='{"level": "INFO"}')
        [kept_result, dropped_result] = run(self.op, [kept, dropped])
        self.assertEqual(kept_result, [Output(key="k", value='{"level": "ERROR"}', headers=[("h", "v"), ("h", None)])])
        self.assertEqual(dropped_result, [])

    def test_failures_are_per_event(self):
        results = run(self.op, [Event(value="nope"), Event(value="[1]"), Event(value='{"level": "ERROR"}')])
        self.assertEqual(results[0].code, "invalid-json")
        self.assertEqual(results[1].code, "exception")  # a list has no .get
        self.assertIn("AttributeError", results[1].message)
        self.assertEqual(len(results[2]), 1)

    def test_callable_and_named(self):
        self.assertTrue(self.op(Event(value='{"level": "ERROR"}')))
        self.assertEqual(self.op.__name__, "errors_only")


class Map(unittest.TestCase):
    def test_one_output_or_none(self):
        @weir_sdk.map
        def upper(event):
            if event.value is None:
                return None
            return Output(key=event.key, value=event.value.upper(), timestamp=event.timestamp + 1, route="up")

        results = run(upper, [Event(key="a", value="x", timestamp=1), Event(key="b")])
        self.assertEqual(results, [[Output(key="a", value="X", timestamp=2, route="up")], []])

    def test_wrong_return_type_is_a_failure(self):
        op = weir_sdk.map(lambda event: "not an output")
        [result] = run(op, [Event()])
        self.assertEqual(result.code, "exception")
        self.assertIn("Output", result.message)


class FlatMap(unittest.TestCase):
    def test_generator(self):
        @weir_sdk.flat_map
        def split(event):
            for part in event.value_str().split(","):
                yield Output(key=part, value=part)

        [result] = run(split, [Event(value="a,b,c")])
        self.assertEqual([o.value for o in result], [b"a", b"b", b"c"])

    def test_failure_midway_discards_partial_outputs(self):
        @weir_sdk.flat_map
        def explode(event):
            yield Output(value="first")
            raise Failure("boom", "after one output")

        results = run(explode, [Event(), Event()])
        self.assertEqual([(r.code, r.message) for r in results], [("boom", "after one output")] * 2)

    def test_outputs_helper(self):
        op = weir_sdk.flat_map(lambda event: [Output(value="x")] * 2)
        self.assertEqual(op.outputs(Event()), [Output(value="x")] * 2)
        failing = weir_sdk.flat_map(lambda event: 1 / 0)
        with self.assertRaises(Failure) as ctx:
            failing.outputs(Event())
        self.assertEqual(ctx.exception.code, "exception")


class Joiner(unittest.TestCase):
    def test_output_none_or_list(self):
        @weir_sdk.joiner
        def combine(pair):
            if pair.left is None and pair.right is None:
                return None
            if pair.right is None:
                return Output(value=pair.left, headers=pair.headers, timestamp=pair.timestamp + 1)
            return [Output(value=pair.left_json()["a"]), Output(key="r", value=pair.right, route="both")]

        results = run_join(
            combine,
            [
                Pair(key="k", left="L", headers=[("h", "v")], timestamp=1),
                Pair(key="k"),
                Pair(left='{"a": "x"}', right="R"),
            ],
        )
        self.assertEqual(
            results,
            [
                [Output(value="L", headers=[("h", "v")], timestamp=2)],
                [],
                [Output(value="x"), Output(key="r", value="R", route="both")],
            ],
        )

    def test_generator(self):
        @weir_sdk.joiner
        def sides(pair):
            for side in (pair.left, pair.right):
                if side is not None:
                    yield Output(value=side)

        [result] = run_join(sides, [Pair(left="l", right="r")])
        self.assertEqual([o.value for o in result], [b"l", b"r"])

    def test_failures_are_per_pair(self):
        @weir_sdk.joiner
        def strict(pair):
            if pair.key == b"boom":
                raise Failure("boom", "on purpose")
            return Output(value=str(pair.left_json()["n"] + pair.right_json()["n"]))

        results = run_join(
            strict,
            [
                Pair(left='{"n": 1}', right='{"n": 2}'),
                Pair(left="nope", right='{"n": 2}'),
                Pair(left='{"n": 1}'),  # absent right side
                Pair(key="boom"),
                Pair(left="[]", right="[]"),
                Pair(left='{"n": 3}', right='{"n": 4}'),
            ],
        )
        self.assertEqual(results[0], [Output(value="3")])
        self.assertEqual([r.code for r in results[1:5]], ["invalid-json", "invalid-json", "boom", "exception"])
        self.assertEqual(results[3].message, "on purpose")
        self.assertIn("TypeError", results[4].message)
        self.assertEqual(results[5], [Output(value="7")])

    def test_wrong_return_type_is_a_failure(self):
        for wrong in ("not an output", 3, [Output(), "x"]):
            op = weir_sdk.joiner(lambda pair, wrong=wrong: wrong)
            [result] = run_join(op, [Pair()])
            self.assertEqual(result.code, "exception", wrong)

    def test_callable_named_and_outputs_helper(self):
        @weir_sdk.joiner
        def left_value(pair):
            """Forwards the left value."""
            return Output(value=pair.left_json())

        self.assertEqual(left_value(Pair(left='"v"')), Output(value="v"))
        self.assertEqual(left_value.__name__, "left_value")
        self.assertEqual(left_value.__doc__, "Forwards the left value.")
        self.assertEqual(left_value.outputs(Pair(left='"v"')), [Output(value="v")])
        with self.assertRaises(Failure) as ctx:
            left_value.outputs(Pair())
        self.assertEqual(ctx.exception.code, "invalid-json")
        self.assertEqual(weir_sdk.joiner(lambda pair: None).outputs(Pair()), [])


@weir_sdk.aggregator
class Sum:
    """Sums the decimal values of events (one byte per digit is plenty for a test)."""

    def init(self):
        return b"0"

    def add(self, acc, event):
        if event.value == b"bad":
            raise Failure("not-a-number", "bad")
        return str(int(acc) + int(event.value)).encode()

    def merge(self, a, b):
        if a == b"":
            raise ValueError("empty")
        return str(int(a) + int(b))

    def emit(self, key, acc, window):
        if acc == b"-1":
            raise Failure("negative", "no")
        suffix = f"@{window.start}-{window.end}" if window else ""
        return [Output(value=acc.decode() + suffix)]


class Aggregator(unittest.TestCase):
    op = Sum.weir_operator

    def test_fold_from_init_and_existing(self):
        acc, failures = self.op.fold(None, encode_events([Event(value="2"), Event(value="3")]))
        self.assertEqual((acc, failures), (b"5", []))
        acc, failures = self.op.fold(acc, [Event(value="10")])
        self.assertEqual(acc, b"15")

    def test_failed_events_leave_acc_alone(self):
        acc, failures = self.op.fold(b"1", [Event(value="bad"), Event(value="x"), Event(value="2")])
        self.assertEqual(acc, b"3")
        self.assertEqual([(i, f.code) for i, f in failures], [(0, "not-a-number"), (1, "exception")])

    def test_merge(self):
        self.assertEqual(self.op.merge(b"2", b"40"), b"42")
        with self.assertRaises(Failure) as ctx:
            self.op.merge(b"", b"1")
        self.assertEqual(ctx.exception.code, "exception")

    def test_emit(self):
        results = decode_results(self.op.emit([(b"k", b"7", None), (None, b"-1", None), (b"k", b"1", Window(0, 10))]))
        self.assertEqual(results[0], [Output(value="7")])
        self.assertEqual(results[1].code, "negative")
        self.assertEqual(results[2], [Output(value="1@0-10")])

    def test_missing_methods(self):
        with self.assertRaises(TypeError) as ctx:

            @weir_sdk.aggregator
            class Incomplete:
                def init(self):
                    return b""

        self.assertIn("add, merge, emit", str(ctx.exception))


@weir_sdk.aggregator
class Stock:
    """Sums decimal quantities; ``subtract`` takes them back out, never below zero."""

    def init(self):
        return b"0"

    def add(self, acc, event):
        return str(int(acc) + int(event.value)).encode()

    def subtract(self, acc, event):
        left = int(acc) - int(event.value)
        if left < 0:
            raise Failure("negative", f"{acc.decode()} - {event.value_str()} is below zero")
        return str(left).encode()

    def merge(self, a, b):
        return str(int(a) + int(b)).encode()

    def emit(self, key, acc, window):
        return [Output(value=acc)]


class Subtract(unittest.TestCase):
    op = Stock.weir_operator

    def test_only_a_class_with_subtract_subtracts(self):
        self.assertTrue(self.op.subtracts)
        self.assertFalse(Sum.weir_operator.subtracts)
        with self.assertRaises(TypeError) as ctx:
            Sum.weir_operator.subtract(b"1", [])
        self.assertIn("Sum has no subtract", str(ctx.exception))

    def test_takes_events_out_and_failed_ones_change_nothing(self):
        events = encode_events([Event(value="3"), Event(value="x"), Event(value="8"), Event(value="4")])
        acc, failures = self.op.subtract(b"10", events)
        # 10 - 3 = 7; "x" is not a number; 7 - 8 would be negative; 7 - 4 = 3.
        self.assertEqual(acc, b"3")
        self.assertEqual([(i, f.code) for i, f in failures], [(1, "exception"), (2, "negative")])
        self.assertEqual(failures[1][1].message, "7 - 8 is below zero")

    def test_undoes_add(self):
        added, _ = self.op.fold(b"1", [Event(value="4"), Event(value="5")])
        self.assertEqual(self.op.subtract(added, [Event(value="5"), Event(value="4")]), (b"1", []))

    def test_without_an_accumulator_starts_from_init(self):
        acc, failures = self.op.subtract(None, [Event(value="1")])
        self.assertEqual((acc, [f.code for _, f in failures]), (b"0", ["negative"]))


class ExportBinding(unittest.TestCase):
    """In a component build the decorators define the export class in the user's module."""

    def setUp(self):
        self.module = types.ModuleType("weir_test_app")
        sys.modules[self.module.__name__] = self.module
        patcher = mock.patch.object(operators, "_IN_COMPONENT", True)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(sys.modules.pop, self.module.__name__)

    def define(self, name, fn):
        fn.__module__ = self.module.__name__
        fn.__name__ = name
        return fn

    def test_processor_export(self):
        weir_sdk.filter(self.define("keep_all", lambda event: True))
        processor = self.module.Processor()
        results = decode_results(processor.process(encode_events([Event(value="v")])))
        self.assertEqual(results, [[Output(value="v")]])

    def test_joiner_export(self):
        weir_sdk.joiner(self.define("left_only", lambda pair: Output(value=pair.left)))
        joiner = self.module.Joiner()
        self.assertEqual(joiner._weir_operator.__name__, "left_only")
        results = decode_results(joiner.join(encode_pairs([Pair(left="l", right="r"), Pair()])))
        self.assertEqual(results, [[Output(value="l")], [Output()]])
        with self.assertRaises(TypeError) as ctx:
            weir_sdk.joiner(self.define("second", lambda pair: None))
        self.assertIn("already defines Joiner", str(ctx.exception))

    def fake_bindings(self):
        """Stand-ins for the modules componentize-py generates for an aggregate world."""
        bindings = {
            "componentize_py_types": types.SimpleNamespace(Err=Exception),
            "wit_world": types.ModuleType("wit_world"),
            "wit_world.exports": types.ModuleType("wit_world.exports"),
            "wit_world.exports.aggregator": types.SimpleNamespace(
                Folded=lambda acc, failures: types.SimpleNamespace(acc=acc, failures=failures)
            ),
            "wit_world.imports": types.ModuleType("wit_world.imports"),
            "wit_world.imports.types": types.SimpleNamespace(
                Failure=lambda code, message: (code, message)
            ),
        }
        patcher = mock.patch.dict(sys.modules, bindings)
        patcher.start()
        self.addCleanup(patcher.stop)

    def define_aggregator(self, base):
        """Decorate a copy of the aggregator class ``base``, defined in the test module."""
        return weir_sdk.aggregator(type(base.__name__, (base,), {"__module__": self.module.__name__}))

    def test_an_aggregator_with_subtract_exports_the_subtractor(self):
        self.fake_bindings()
        self.define_aggregator(Stock)
        group = types.SimpleNamespace(key=b"k", window=None, acc=b"10", events=encode_events([Event(value="4")]))
        [added] = self.module.Aggregator().add([group])
        self.assertEqual((added.acc, added.failures), (b"14", []))
        subtractor = self.module.Subtractor()
        self.assertEqual(subtractor._weir_operator.__name__, "Stock")
        failing = types.SimpleNamespace(key=b"k", window=None, acc=b"3", events=encode_events([Event(value="4")]))
        [subtracted, failed] = subtractor.subtract([group, failing])
        self.assertEqual((subtracted.acc, subtracted.failures), (b"6", []))
        self.assertEqual((failed.acc, failed.failures), (b"3", [(0, ("negative", "3 - 4 is below zero"))]))

    def test_an_aggregator_without_subtract_exports_no_subtractor(self):
        self.fake_bindings()
        self.define_aggregator(Sum)
        self.assertTrue(hasattr(self.module, "Aggregator"))
        self.assertFalse(hasattr(self.module, "Subtractor"))

    def test_one_operator_per_module(self):
        weir_sdk.filter(self.define("first", lambda event: True))
        with self.assertRaises(TypeError) as ctx:
            weir_sdk.map(self.define("second", lambda event: None))
        self.assertIn("already defines Processor", str(ctx.exception))


class Host(unittest.TestCase):
    def test_native_stand_ins(self):
        weir_sdk.set_native_config({"threshold": "3"})
        self.addCleanup(weir_sdk.set_native_config, {})
        self.assertEqual(weir_sdk.config("threshold"), "3")
        self.assertIsNone(weir_sdk.config("other"))
        self.assertEqual(weir_sdk.config_entries(), {"threshold": "3"})

        counters = weir_sdk.native_counters()
        self.addCleanup(counters.clear)
        weir_sdk.counter_add("seen")
        weir_sdk.counter_add("seen", 2)
        self.assertEqual(counters["seen"], 3)

        with self.assertLogs("weir", "WARNING"):
            weir_sdk.log("warn", "careful")
        with self.assertRaises(ValueError):
            weir_sdk.log("loud", "nope")


if __name__ == "__main__":
    unittest.main()
