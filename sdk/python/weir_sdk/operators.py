"""Decorators that turn a plain function or class into a Weir operator.

Each decorator wraps the user's code in an operator object and, when the
module is being built into a component, also defines in the user's module the
class that componentize-py binds to the component's export: ``Processor``
(interface ``weir:stream/processor`` of world ``process``), ``Aggregator``
(``weir:stream/aggregator`` of world ``aggregate``; with ``Subtractor``,
``weir:stream/subtractor``, for an aggregator with ``subtract``: world
``aggregate-with-subtract``) or ``Joiner`` (``weir:stream/joiner`` of world
``join``). So a whole operator is::

    import weir_sdk

    @weir_sdk.filter
    def errors_only(event):
        ...

built with ``componentize-py -d wit -w process componentize app -p <sdk> -o op.wasm``
(``-w join`` for a :func:`joiner`, ``-w aggregate`` for an :func:`aggregator`,
``-w aggregate-with-subtract`` for one with ``subtract``).

Every failure is per event (per pair, for a joiner): a
:class:`~weir_sdk.Failure` raised by user code becomes that code, any other
exception becomes code ``exception``. Only malformed batches from the host (a
host bug) trap.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, Optional, Union

from .codec import Event, Failure, Output, Pair, Window, _as_bytes_like, _Writer, decode_events, decode_pairs
from .host import _IN_COMPONENT

__all__ = [
    "AggregateOperator",
    "JoinOperator",
    "ProcessOperator",
    "aggregator",
    "filter",
    "flat_map",
    "joiner",
    "map",
]


def _as_failure(err: Exception) -> Failure:
    """The failure reported for an exception raised by user code."""
    if isinstance(err, Failure):
        return err
    return Failure("exception", f"{type(err).__name__}: {err}")


def _bind_export(module_name: str, export_name: str, export_class: type, what: str) -> None:
    """Define ``export_name`` in the user's module, refusing a second operator there."""
    module = sys.modules.get(module_name)
    if module is None:
        raise RuntimeError(f"cannot find module {module_name!r} to define the {export_name} export in")
    existing = getattr(module, export_name, None)
    if existing is not None:
        raise TypeError(
            f"module {module_name!r} already defines {export_name} "
            f"({getattr(existing, '_weir_operator', existing)!r}); "
            f"a component holds one operator, so {what} must go in its own module"
        )
    setattr(module, export_name, export_class)


def _result_batch(outputs: Callable[[Any], Iterable[Output]], records: list) -> bytes:
    """The ``result-batch`` for ``records``: each one's outputs, or its failure."""
    w = _Writer()
    w.u32(len(records))
    for record in records:
        try:
            w.outputs(outputs(record))
        except Exception as err:
            w.failure(_as_failure(err))
    return bytes(w.buf)


class ProcessOperator:
    """A stateless operator: one function applied to each event of a batch.

    Calling it calls the wrapped function, so it can be unit-tested directly;
    :meth:`process` runs the whole ABI path (decode, call, encode) natively.
    """

    def __init__(self, outputs: Callable[[Event], Iterable[Output]], wrapped: Callable[..., Any]) -> None:
        self._outputs = outputs
        self.__wrapped__ = wrapped
        self.__name__ = getattr(wrapped, "__name__", "operator")
        self.__doc__ = getattr(wrapped, "__doc__", None)

    def __call__(self, event: Event) -> Any:
        """Call the wrapped function on one event."""
        return self.__wrapped__(event)

    def outputs(self, event: Event) -> list[Output]:
        """The outputs for one event; raises :class:`Failure` like the operator would report it."""
        try:
            return list(self._outputs(event))
        except Exception as err:
            raise _as_failure(err) from err

    def process(self, events: Union[bytes, bytearray, memoryview]) -> bytes:
        """Process an ``event-batch``; returns the ``result-batch`` (the ``process`` export)."""
        return _result_batch(self._outputs, decode_events(events))

    def __repr__(self) -> str:
        return f"<weir operator {self.__name__}>"


def _process_operator(wrapped: Callable[..., Any], outputs: Callable[[Event], Iterable[Output]]) -> ProcessOperator:
    op = ProcessOperator(outputs, wrapped)
    if _IN_COMPONENT:
        _bind_export(wrapped.__module__, "Processor", _processor_export(op), op.__name__)
    return op


def _processor_export(op: ProcessOperator) -> type:
    """The ``weir:stream/processor`` export class for ``op``."""

    class Processor:
        """The ``weir:stream/processor`` export, bound by componentize-py."""

        _weir_operator = op

        def process(self, events: bytes) -> bytes:
            return op.process(events)

    return Processor


def filter(fn: Callable[[Event], bool]) -> ProcessOperator:  # noqa: A001 - the SDK's vocabulary
    """Keep the events for which ``fn(event)`` is true, unchanged (key, value, headers)."""

    def outputs(event: Event) -> Iterable[Output]:
        return (Output.forward(event),) if fn(event) else ()

    return _process_operator(fn, outputs)


def map(fn: Callable[[Event], Optional[Output]]) -> ProcessOperator:  # noqa: A001 - the SDK's vocabulary
    """One output per event: ``fn(event)`` returns an :class:`Output` (or ``None`` to drop the event)."""

    def outputs(event: Event) -> Iterable[Output]:
        out = fn(event)
        return () if out is None else (out,)

    return _process_operator(fn, outputs)


def flat_map(fn: Callable[[Event], Iterable[Output]]) -> ProcessOperator:
    """Zero or more outputs per event: ``fn(event)`` returns (or yields) :class:`Output` values."""
    return _process_operator(fn, fn)


class JoinOperator:
    """A joiner: one function applied to each pair of a ``join-batch``.

    Calling it calls the wrapped function, so it can be unit-tested directly;
    :meth:`join` runs the whole ABI path (decode, call, encode) natively.
    """

    def __init__(self, fn: Callable[[Pair], Any]) -> None:
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", "joiner")
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, pair: Pair) -> Any:
        """Call the wrapped function on one pair."""
        return self.__wrapped__(pair)

    def _outputs(self, pair: Pair) -> Iterable[Output]:
        out = self.__wrapped__(pair)
        if out is None:
            return ()
        if isinstance(out, Output):
            return (out,)
        return out

    def outputs(self, pair: Pair) -> list[Output]:
        """The outputs for one pair; raises :class:`Failure` like the operator would report it."""
        try:
            return list(self._outputs(pair))
        except Exception as err:
            raise _as_failure(err) from err

    def join(self, pairs: Union[bytes, bytearray, memoryview]) -> bytes:
        """Join a ``join-batch``; returns the ``result-batch`` (the ``join`` export)."""
        return _result_batch(self._outputs, decode_pairs(pairs))

    def __repr__(self) -> str:
        return f"<weir joiner {self.__name__}>"


def joiner(fn: Callable[[Pair], Any]) -> JoinOperator:
    """Make ``fn`` the component's joiner (world ``join``): it combines each pair's two sides.

    ``fn(pair)`` gets a :class:`~weir_sdk.Pair` and returns an
    :class:`Output`, ``None`` (no output), or a list (any iterable, a generator
    too) of outputs. An output without a key gets the pair's key, and one
    without a timestamp the pair's. Raising fails that pair only.
    """
    op = JoinOperator(fn)
    if _IN_COMPONENT:
        _bind_export(fn.__module__, "Joiner", _joiner_export(op), op.__name__)
    return op


def _joiner_export(op: JoinOperator) -> type:
    """The ``weir:stream/joiner`` export class for ``op``."""

    class Joiner:
        """The ``weir:stream/joiner`` export, bound by componentize-py."""

        _weir_operator = op

        def join(self, pairs: bytes) -> bytes:
            return op.join(pairs)

    return Joiner


def _acc_bytes(acc: Any, what: str) -> bytes:
    data = _as_bytes_like(acc, what)
    if data is None:
        raise TypeError(f"{what} must return bytes, not None")
    return bytes(data)


class AggregateOperator:
    """A keyed aggregator built from a class with ``init``, ``add``, ``merge`` and ``emit``
    (and optionally ``subtract``).

    The class is instantiated once, on first use (not at build time, when host
    imports such as config are unavailable). The methods below are the native
    form of the WIT ``aggregator`` (and ``subtractor``) interfaces, for tests.
    """

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.__name__ = cls.__name__
        self._instance: Any = None
        #: Whether the class has ``subtract``, so the component exports ``weir:stream/subtractor``.
        self.subtracts = callable(getattr(cls, "subtract", None))

    @property
    def instance(self) -> Any:
        """The user's aggregator object (created on first access)."""
        if self._instance is None:
            self._instance = self.cls()
        return self._instance

    def fold(
        self, acc: Optional[bytes], events: Union[bytes, bytearray, memoryview, Iterable[Event]]
    ) -> tuple[bytes, list[tuple[int, Failure]]]:
        """Fold a group's events (an ``event-batch`` or events) into ``acc`` (the ``add`` export).

        ``acc`` ``None`` starts from ``init()``. Returns the new accumulator and the failed events' ``(index, failure)``;
        a failed event leaves the accumulator as it was.
        """
        return self._fold(acc, events, self.instance.add, "add")

    def subtract(
        self, acc: Optional[bytes], events: Union[bytes, bytearray, memoryview, Iterable[Event]]
    ) -> tuple[bytes, list[tuple[int, Failure]]]:
        """Take a group's events (an ``event-batch`` or events) out of ``acc`` (the ``subtract`` export).

        The host always gives ``acc``; ``None`` starts from ``init()`` as in :meth:`fold`. Returns the new
        accumulator and the failed events' ``(index, failure)``; a failed event leaves the accumulator as it was.
        """
        if not self.subtracts:
            raise TypeError(f"aggregator {self.__name__} has no subtract")
        return self._fold(acc, events, self.instance.subtract, "subtract")

    def _fold(
        self,
        acc: Optional[bytes],
        events: Union[bytes, bytearray, memoryview, Iterable[Event]],
        step: Callable[[bytes, Event], Any],
        what: str,
    ) -> tuple[bytes, list[tuple[int, Failure]]]:
        """Apply ``step`` (``add`` or ``subtract``) to ``acc`` for each event, in order."""
        acc = _acc_bytes(self.instance.init(), "init") if acc is None else bytes(acc)
        if isinstance(events, (bytes, bytearray, memoryview)):
            events = decode_events(events)
        failures = []
        for index, event in enumerate(events):
            try:
                acc = _acc_bytes(step(acc, event), what)
            except Exception as err:
                failures.append((index, _as_failure(err)))
        return acc, failures

    def merge(self, a: bytes, b: bytes) -> bytes:
        """Merge two accumulators of one key (``a`` is the earlier); raises :class:`Failure`."""
        try:
            return _acc_bytes(self.instance.merge(bytes(a), bytes(b)), "merge")
        except Exception as err:
            raise _as_failure(err) from err

    def emit(self, requests: Iterable[tuple[Optional[bytes], bytes, Optional[Window]]]) -> bytes:
        """Encode a ``result-batch`` for ``(key, acc, window)`` requests (the ``emit`` export)."""
        requests = list(requests)
        w = _Writer()
        w.u32(len(requests))
        for key, acc, window in requests:
            try:
                w.outputs(self.instance.emit(key, bytes(acc), window))
            except Exception as err:
                w.failure(_as_failure(err))
        return bytes(w.buf)

    def __repr__(self) -> str:
        return f"<weir aggregator {self.__name__}>"


def _window(wit_window: Any) -> Optional[Window]:
    return None if wit_window is None else Window(wit_window.start, wit_window.end)


def aggregator(cls: type) -> type:
    """Make a class the component's keyed aggregator.

    The class needs four methods (accumulators are ``bytes``)::

        init(self) -> bytes                    # the initial accumulator
        add(self, acc, event) -> bytes         # fold one event in
        merge(self, a, b) -> bytes             # merge two (session windows)
        emit(self, key, acc, window) -> list[Output]

    ``window`` is a :class:`Window` or ``None``; an output without a key gets
    the accumulator's key. Raising in ``add`` fails that event only; raising
    in ``emit`` fails that request only. The class is returned unchanged, with
    ``cls.weir_operator`` set to the :class:`AggregateOperator` for tests.

    A class that also has ``subtract(self, acc, event) -> bytes``, the inverse
    of ``add`` (take one event out; Kafka Streams' subtractor, for table
    aggregations), exports it too: build it for world
    ``aggregate-with-subtract``. Raising in ``subtract`` fails that event only,
    and the accumulator stays as it was.
    """
    missing = [m for m in ("init", "add", "merge", "emit") if not callable(getattr(cls, m, None))]
    if missing:
        raise TypeError(f"aggregator {cls.__name__} lacks {', '.join(missing)}")
    op = AggregateOperator(cls)
    if _IN_COMPONENT:
        _bind_export(cls.__module__, "Aggregator", _aggregator_export(op), cls.__name__)
        if op.subtracts:
            _bind_export(cls.__module__, "Subtractor", _subtractor_export(op), cls.__name__)
    cls.weir_operator = op
    return cls


def _folded(folded_type: type, failure_type: type, acc: bytes, failures: list[tuple[int, Failure]]) -> Any:
    """A WIT ``folded`` record from a fold's result."""
    return folded_type(acc, [(i, failure_type(f.code, f.message)) for i, f in failures])


def _aggregator_export(op: AggregateOperator) -> type:
    """The ``weir:stream/aggregator`` export class for ``op`` (needs the generated bindings)."""
    from componentize_py_types import Err
    from wit_world.exports.aggregator import Folded
    from wit_world.imports.types import Failure as WitFailure

    class Aggregator:
        """The ``weir:stream/aggregator`` export, bound by componentize-py."""

        _weir_operator = op

        def add(self, groups: list) -> list:
            return [_folded(Folded, WitFailure, *op.fold(g.acc, g.events)) for g in groups]

        def merge(self, key: Optional[bytes], a: bytes, b: bytes) -> bytes:
            try:
                return op.merge(a, b)
            except Failure as f:
                raise Err(WitFailure(f.code, f.message)) from None

        def emit(self, requests: list) -> bytes:
            return op.emit((r.key, r.acc, _window(r.window)) for r in requests)

    return Aggregator


def _subtractor_export(op: AggregateOperator) -> type:
    """The ``weir:stream/subtractor`` export class for ``op`` (needs the generated bindings)."""
    from wit_world.exports.aggregator import Folded
    from wit_world.imports.types import Failure as WitFailure

    class Subtractor:
        """The ``weir:stream/subtractor`` export, bound by componentize-py."""

        _weir_operator = op

        def subtract(self, groups: list) -> list:
            return [_folded(Folded, WitFailure, *op.subtract(g.acc, g.events)) for g in groups]

    return Subtractor
