"""The batch encodings of the Weir ABI (see ``wit/weir.wit``).

Events arrive as one ``event-batch`` buffer (a joiner's pairs as one
``join-batch``) and results leave as one ``result-batch`` buffer::

    event-batch  := u32 count, event{count}
    event        := s64 timestamp, s32 partition, s64 offset, str topic,
                    opt-bytes key, opt-bytes value, headers
    headers      := u32 count, (str name, opt-bytes value){count}

    join-batch   := u32 count, pair{count}
    pair         := s64 timestamp, opt-bytes key, opt-bytes left,
                    opt-bytes right, headers

    result-batch := u32 count, result{count}
    result       := u8 0, u32 n, output{n} | u8 1, str code, str message
    output       := u8 flags, [s64 timestamp], opt-bytes key, opt-bytes value,
                    headers, [str route]

Integers are little-endian; ``str``/``bytes`` are ``u32 len`` then the bytes;
``opt-bytes`` uses ``len = 0xffffffff`` for none.

Decoding does not copy payloads: an :class:`Event` (or :class:`Pair`) holds
``memoryview`` slices of the batch and only materialises ``bytes`` when asked.
:func:`encode_events`, :func:`encode_pairs` and :func:`decode_results` are the
reverse directions, for tests.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Optional, Union

__all__ = [
    "BytesLike",
    "Event",
    "Failure",
    "Output",
    "Pair",
    "Result",
    "Window",
    "decode_events",
    "decode_pairs",
    "decode_results",
    "encode_events",
    "encode_pairs",
    "encode_results",
]

#: What the SDK accepts wherever it needs bytes; ``str`` is encoded as UTF-8.
BytesLike = Union[bytes, bytearray, memoryview, str]

_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_S64 = struct.Struct("<q")
_EVENT_FIXED = struct.Struct("<qiq")  # timestamp, partition, offset
_NONE = 0xFFFF_FFFF

_FLAG_TIMESTAMP = 1
_FLAG_ROUTE = 2
_FLAG_INPUT_KEY = 4  # no key follows: the input event's is kept
_FLAG_INPUT_HEADERS = 8  # no headers follow: the input event's are kept
_FLAGS = _FLAG_TIMESTAMP | _FLAG_ROUTE | _FLAG_INPUT_KEY | _FLAG_INPUT_HEADERS


class Failure(Exception):
    """A typed failure for one input event.

    Raise it from an operator to send the event to the stage's error policy
    (fail, skip or dead-letter) while the rest of the batch goes on::

        raise weir_sdk.Failure("invalid-json", "value is not JSON")

    ``code`` is short and machine-readable; ``message`` is for people.
    """

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class Window(NamedTuple):
    """A time window, ``[start, end)`` in milliseconds since the Unix epoch."""

    start: int
    end: int


def _as_bytes_like(value: Optional[BytesLike], what: str) -> Optional[Union[bytes, bytearray, memoryview]]:
    """Normalise an optional payload: ``str`` becomes UTF-8, buffers are kept as they are."""
    if value is None or isinstance(value, (bytes, bytearray, memoryview)):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{what} must be bytes, str or None, not {type(value).__name__}")


def _as_headers(headers: Any) -> list:
    """Normalise headers given as a mapping or an iterable of ``(name, value)`` pairs."""
    if headers is None:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for pair in pairs:
        name, value = pair
        if not isinstance(name, str):
            raise TypeError(f"header names must be str, not {type(name).__name__}")
        out.append((name, _as_bytes_like(value, f"header {name!r}")))
    return out


class Event:
    """One input record.

    Attributes ``timestamp`` (ms since the epoch), ``topic``, ``partition`` and
    ``offset`` describe where it came from. ``key`` and ``value`` are ``bytes``
    or ``None``; ``headers`` is a list of ``(name, bytes | None)`` in record
    order. Payloads are decoded lazily from the batch buffer.

    Events are normally made by the SDK; constructing one directly is meant for
    unit tests (``str`` payloads are encoded as UTF-8)::

        Event(key="k", value='{"level": "ERROR"}', headers={"h": "v"})
    """

    __slots__ = ("timestamp", "topic", "partition", "offset", "_key", "_value", "_headers")

    def __init__(
        self,
        key: Optional[BytesLike] = None,
        value: Optional[BytesLike] = None,
        headers: Any = None,
        timestamp: int = 0,
        topic: str = "",
        partition: int = 0,
        offset: int = 0,
    ) -> None:
        self.timestamp = timestamp
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self._key = _as_bytes_like(key, "key")
        self._value = _as_bytes_like(value, "value")
        self._headers = _as_headers(headers)

    @property
    def key(self) -> Optional[bytes]:
        """The record key, or ``None`` if it has none."""
        return None if self._key is None else bytes(self._key)

    @property
    def value(self) -> Optional[bytes]:
        """The record value, or ``None`` if it has none (a tombstone)."""
        return None if self._value is None else bytes(self._value)

    @property
    def headers(self) -> list[tuple[str, Optional[bytes]]]:
        """The headers as ``(name, value)`` pairs, in record order."""
        return [(name, None if v is None else bytes(v)) for name, v in self._headers]

    def header(self, name: str) -> Optional[bytes]:
        """The value of the first header called ``name``, or ``None``."""
        for header_name, value in self._headers:
            if header_name == name:
                return None if value is None else bytes(value)
        return None

    def key_str(self) -> Optional[str]:
        """The key decoded as UTF-8, or ``None`` if absent.

        Raises :class:`Failure` ``invalid-utf8`` if the key is not UTF-8.
        """
        return _utf8(self._key, "key")

    def value_str(self) -> Optional[str]:
        """The value decoded as UTF-8, or ``None`` if absent.

        Raises :class:`Failure` ``invalid-utf8`` if the value is not UTF-8.
        """
        return _utf8(self._value, "value")

    def json(self) -> Any:
        """The value parsed as JSON.

        Raises :class:`Failure` ``invalid-json`` if the value is absent, not
        UTF-8 or not JSON, so an operator can simply call it and let the SDK
        report the failure.
        """
        return _parse_json(self._value, "value")

    def __repr__(self) -> str:
        return (
            f"Event(key={self.key!r}, value={self.value!r}, headers={self.headers!r}, "
            f"timestamp={self.timestamp}, topic={self.topic!r}, "
            f"partition={self.partition}, offset={self.offset})"
        )


def _parse_json(data: Optional[memoryview], what: str) -> Any:
    """``data`` parsed as JSON; :class:`Failure` ``invalid-json`` if absent, not UTF-8 or not JSON."""
    if data is None:
        raise Failure("invalid-json", f"{what} is absent")
    try:
        text = str(data, "utf-8")
    except UnicodeDecodeError as err:
        raise Failure("invalid-json", f"{what} is not UTF-8: {err}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        raise Failure("invalid-json", f"{what} is not JSON: {err}") from None


def _reject_constant(name: str) -> Any:
    """Refuse ``NaN`` and ``Infinity``, which Python's json module accepts but JSON does not."""
    raise ValueError(f"{name} is not valid JSON")


def _utf8(data: Optional[memoryview], what: str) -> Optional[str]:
    if data is None:
        return None
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as err:
        raise Failure("invalid-utf8", f"{what} is not UTF-8: {err}") from None


class Pair:
    """The two sides of one join result, for a joiner.

    ``left`` and ``right`` are the two sides' values (``bytes``), or ``None``
    when that side has no record (in a left or outer join) or its record has
    no value. ``key`` is the join key, ``timestamp`` (ms since the epoch) the
    join result's, the default of its outputs, and ``headers`` a list of
    ``(name, bytes | None)``: those of the record that caused the join.
    Payloads are decoded lazily from the batch buffer.

    Pairs are normally made by the SDK; constructing one directly is meant for
    unit tests (``str`` payloads are encoded as UTF-8)::

        Pair(key="k", left='{"qty": 2}', right=None, timestamp=5)
    """

    __slots__ = ("timestamp", "_key", "_left", "_right", "_headers")

    def __init__(
        self,
        key: Optional[BytesLike] = None,
        left: Optional[BytesLike] = None,
        right: Optional[BytesLike] = None,
        headers: Any = None,
        timestamp: int = 0,
    ) -> None:
        self.timestamp = timestamp
        self._key = _as_bytes_like(key, "key")
        self._left = _as_bytes_like(left, "left")
        self._right = _as_bytes_like(right, "right")
        self._headers = _as_headers(headers)

    @property
    def key(self) -> Optional[bytes]:
        """The join key, or ``None`` if it has none."""
        return None if self._key is None else bytes(self._key)

    @property
    def left(self) -> Optional[bytes]:
        """The left side's value, or ``None`` if that side is absent."""
        return None if self._left is None else bytes(self._left)

    @property
    def right(self) -> Optional[bytes]:
        """The right side's value, or ``None`` if that side is absent."""
        return None if self._right is None else bytes(self._right)

    @property
    def headers(self) -> list[tuple[str, Optional[bytes]]]:
        """The headers as ``(name, value)`` pairs, in record order."""
        return [(name, None if v is None else bytes(v)) for name, v in self._headers]

    def header(self, name: str) -> Optional[bytes]:
        """The value of the first header called ``name``, or ``None``."""
        for header_name, value in self._headers:
            if header_name == name:
                return None if value is None else bytes(value)
        return None

    def key_str(self) -> Optional[str]:
        """The key decoded as UTF-8, or ``None`` if absent.

        Raises :class:`Failure` ``invalid-utf8`` if the key is not UTF-8.
        """
        return _utf8(self._key, "key")

    def left_str(self) -> Optional[str]:
        """The left value decoded as UTF-8, or ``None`` if absent.

        Raises :class:`Failure` ``invalid-utf8`` if it is not UTF-8.
        """
        return _utf8(self._left, "left")

    def right_str(self) -> Optional[str]:
        """The right value decoded as UTF-8, or ``None`` if absent.

        Raises :class:`Failure` ``invalid-utf8`` if it is not UTF-8.
        """
        return _utf8(self._right, "right")

    def left_json(self) -> Any:
        """The left value parsed as JSON.

        Raises :class:`Failure` ``invalid-json`` if it is absent, not UTF-8 or
        not JSON (like :meth:`Event.json`); check ``pair.left is None`` first
        where an absent side is expected (left and outer joins).
        """
        return _parse_json(self._left, "left")

    def right_json(self) -> Any:
        """The right value parsed as JSON.

        Raises :class:`Failure` ``invalid-json`` if it is absent, not UTF-8 or
        not JSON (like :meth:`Event.json`); check ``pair.right is None`` first
        where an absent side is expected (left and outer joins).
        """
        return _parse_json(self._right, "right")

    def __repr__(self) -> str:
        return (
            f"Pair(key={self.key!r}, left={self.left!r}, right={self.right!r}, "
            f"headers={self.headers!r}, timestamp={self.timestamp})"
        )


class Output:
    """A record an operator produces.

    ``key``, ``value`` and header values may be ``bytes``-like, ``str``
    (encoded as UTF-8) or ``None``. ``headers`` is a mapping or an iterable of
    ``(name, value)`` pairs. ``timestamp`` (ms) defaults to the input event's
    (a joiner's: the pair's); ``route`` names one of the stage's routes and
    defaults to its next hop or default sink.
    """

    __slots__ = ("key", "value", "headers", "timestamp", "route")

    def __init__(
        self,
        key: Optional[BytesLike] = None,
        value: Optional[BytesLike] = None,
        headers: Any = None,
        timestamp: Optional[int] = None,
        route: Optional[str] = None,
    ) -> None:
        if timestamp is not None and not isinstance(timestamp, int):
            raise TypeError(f"timestamp must be int or None, not {type(timestamp).__name__}")
        if route is not None and not isinstance(route, str):
            raise TypeError(f"route must be str or None, not {type(route).__name__}")
        self.key = _as_bytes_like(key, "key")
        self.value = _as_bytes_like(value, "value")
        self.headers = _as_headers(headers)
        self.timestamp = timestamp
        self.route = route

    @classmethod
    def forward(cls, event: Event, *, timestamp: Optional[int] = None, route: Optional[str] = None) -> "Output":
        """An output with the event's key, value and headers (without copying them)."""
        out = cls(timestamp=timestamp, route=route)
        out.key = event._key
        out.value = event._value
        out.headers = list(event._headers)
        return out

    def _normalised(self) -> tuple:
        def norm(v: Any) -> Optional[bytes]:
            return None if v is None else bytes(v)

        return (
            norm(self.key),
            norm(self.value),
            [(name, norm(v)) for name, v in self.headers],
            self.timestamp,
            self.route,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Output):
            return NotImplemented
        return self._normalised() == other._normalised()

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        key, value, headers, timestamp, route = self._normalised()
        return f"Output(key={key!r}, value={value!r}, headers={headers!r}, timestamp={timestamp!r}, route={route!r})"


#: The outcome for one input: its outputs, or a failure.
Result = Union[list, Failure]


class _Reader:
    """A cursor over a little-endian buffer."""

    __slots__ = ("buf", "pos")

    def __init__(self, data: Union[bytes, bytearray, memoryview]) -> None:
        self.buf = memoryview(data).cast("B")
        self.pos = 0

    def fixed(self, st: struct.Struct) -> tuple:
        try:
            values = st.unpack_from(self.buf, self.pos)
        except struct.error:
            raise ValueError(f"truncated batch: need {st.size} bytes at offset {self.pos}, have {len(self.buf) - self.pos}") from None
        self.pos += st.size
        return values

    def u8(self) -> int:
        return self.fixed(_U8)[0]

    def u32(self) -> int:
        return self.fixed(_U32)[0]

    def s64(self) -> int:
        return self.fixed(_S64)[0]

    def _take(self, n: int) -> memoryview:
        end = self.pos + n
        if end > len(self.buf):
            raise ValueError(f"truncated batch: need {n} bytes at offset {self.pos}, have {len(self.buf) - self.pos}")
        view = self.buf[self.pos : end]
        self.pos = end
        return view

    def string(self) -> str:
        return str(self._take(self.u32()), "utf-8")

    def opt_bytes(self) -> Optional[memoryview]:
        n = self.u32()
        return None if n == _NONE else self._take(n)

    def headers(self) -> list:
        return [(self.string(), self.opt_bytes()) for _ in range(self.u32())]

    def finish(self) -> None:
        if self.pos != len(self.buf):
            raise ValueError(f"{len(self.buf) - self.pos} trailing bytes after the batch")


def decode_events(batch: Union[bytes, bytearray, memoryview]) -> list[Event]:
    """Decode an ``event-batch`` into events that view (not copy) ``batch``.

    Raises ``ValueError`` if the buffer is malformed.
    """
    r = _Reader(batch)
    events = []
    new = Event.__new__
    for _ in range(r.u32()):
        e = new(Event)
        e.timestamp, e.partition, e.offset = r.fixed(_EVENT_FIXED)
        e.topic = r.string()
        e._key = r.opt_bytes()
        e._value = r.opt_bytes()
        e._headers = r.headers()
        events.append(e)
    r.finish()
    return events


def decode_pairs(batch: Union[bytes, bytearray, memoryview]) -> list[Pair]:
    """Decode a ``join-batch`` into pairs that view (not copy) ``batch``.

    Raises ``ValueError`` if the buffer is malformed.
    """
    r = _Reader(batch)
    pairs = []
    new = Pair.__new__
    for _ in range(r.u32()):
        p = new(Pair)
        p.timestamp = r.s64()
        p._key = r.opt_bytes()
        p._left = r.opt_bytes()
        p._right = r.opt_bytes()
        p._headers = r.headers()
        pairs.append(p)
    r.finish()
    return pairs


class _Writer:
    """Appends little-endian values to a ``bytearray``."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, v: int) -> None:
        self.buf += _U8.pack(v)

    def u32(self, v: int) -> None:
        self.buf += _U32.pack(v)

    def s64(self, v: int) -> None:
        self.buf += _S64.pack(v)

    def string(self, s: str) -> None:
        data = s.encode("utf-8")
        self.buf += _U32.pack(len(data))
        self.buf += data

    def opt_bytes(self, data: Optional[Union[bytes, bytearray, memoryview]]) -> None:
        if data is None:
            self.buf += _U32.pack(_NONE)
        else:
            self.buf += _U32.pack(data.nbytes if isinstance(data, memoryview) else len(data))
            self.buf += data

    def headers(self, headers: list) -> None:
        self.u32(len(headers))
        for name, value in headers:
            self.string(name)
            self.opt_bytes(value)

    def output(self, out: Output) -> None:
        if not isinstance(out, Output):
            raise TypeError(f"operators must produce weir_sdk.Output, not {type(out).__name__}")
        flags = (_FLAG_TIMESTAMP if out.timestamp is not None else 0) | (_FLAG_ROUTE if out.route is not None else 0)
        self.u8(flags)
        if out.timestamp is not None:
            self.s64(out.timestamp)
        self.opt_bytes(out.key)
        self.opt_bytes(out.value)
        self.headers(out.headers)
        if out.route is not None:
            self.string(out.route)

    def outputs(self, outputs: Iterable[Output]) -> None:
        """Write ``u8 0, u32 n, output{n}``; on an exception nothing stays written."""
        start = len(self.buf)
        self.buf += b"\0\0\0\0\0"
        n = 0
        try:
            for out in outputs:
                self.output(out)
                n += 1
        except BaseException:
            del self.buf[start:]
            raise
        _U32.pack_into(self.buf, start + 1, n)

    def failure(self, failure: Failure) -> None:
        self.u8(1)
        self.string(str(failure.code))
        self.string(str(failure.message))


def encode_results(results: Iterable[Result]) -> bytes:
    """Encode a ``result-batch``: each item is a list of :class:`Output` or a :class:`Failure`."""
    results = list(results)
    w = _Writer()
    w.u32(len(results))
    for result in results:
        if isinstance(result, Failure):
            w.failure(result)
        else:
            w.outputs(result)
    return bytes(w.buf)


def decode_results(
    batch: Union[bytes, bytearray, memoryview], events: Optional[list[Event]] = None
) -> list[Result]:
    """Decode a ``result-batch`` (for tests): one list of outputs or :class:`Failure` per input.

    An output may keep its input event's key or headers instead of writing
    them (flags 4 and 8, which the Rust SDK writes): they are taken from
    ``events``, the decoded ``event-batch`` the results answer. Without
    ``events`` such an output raises ``ValueError``, as do unknown flags.
    """
    r = _Reader(batch)
    results: list[Result] = []
    for index in range(r.u32()):
        tag = r.u8()
        if tag == 1:
            results.append(Failure(r.string(), r.string()))
        elif tag == 0:
            outputs = []
            for _ in range(r.u32()):
                at = r.pos
                flags = r.u8()
                if flags & ~_FLAGS:
                    raise ValueError(f"output at offset {at} has unknown flags {flags:#04x}")
                event = None
                if flags & (_FLAG_INPUT_KEY | _FLAG_INPUT_HEADERS):
                    if events is None or index >= len(events):
                        raise ValueError(
                            f"output at offset {at} keeps its input's key or headers, but there is no input event {index}"
                        )
                    event = events[index]
                timestamp = r.s64() if flags & _FLAG_TIMESTAMP else None
                key = event._key if flags & _FLAG_INPUT_KEY else r.opt_bytes()
                value = r.opt_bytes()
                headers = list(event._headers) if flags & _FLAG_INPUT_HEADERS else r.headers()
                route = r.string() if flags & _FLAG_ROUTE else None
                outputs.append(Output(key, value, headers, timestamp, route))
            results.append(outputs)
        else:
            raise ValueError(f"unknown result tag {tag}")
    r.finish()
    return results


def encode_events(events: Iterable[Event]) -> bytes:
    """Encode events as an ``event-batch`` (for tests: what the host would send)."""
    events = list(events)
    w = _Writer()
    w.u32(len(events))
    for e in events:
        w.buf += _EVENT_FIXED.pack(e.timestamp, e.partition, e.offset)
        w.string(e.topic)
        w.opt_bytes(e._key)
        w.opt_bytes(e._value)
        w.headers(e._headers)
    return bytes(w.buf)


def encode_pairs(pairs: Iterable[Pair]) -> bytes:
    """Encode pairs as a ``join-batch`` (for tests: what the host would send a joiner)."""
    pairs = list(pairs)
    w = _Writer()
    w.u32(len(pairs))
    for p in pairs:
        w.s64(p.timestamp)
        w.opt_bytes(p._key)
        w.opt_bytes(p._left)
        w.opt_bytes(p._right)
        w.headers(p._headers)
    return bytes(w.buf)
