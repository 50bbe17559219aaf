"""Weir SDK for Python: write a Weir stream operator in a few lines.

A Weir operator is a WebAssembly component; this package turns a plain Python
function or class into one (built with componentize-py)::

    import weir_sdk

    @weir_sdk.filter
    def errors_only(event: weir_sdk.Event) -> bool:
        doc = event.json()  # raises Failure("invalid-json") for non-JSON values
        return isinstance(doc, dict) and doc.get("level") == "ERROR"

Operators: :func:`filter`, :func:`map`, :func:`flat_map` (world ``process``),
:func:`aggregator` (world ``aggregate``, or ``aggregate-with-subtract`` for a
class with ``subtract``) and :func:`joiner` (world ``join``).
Records: :class:`Event` in (a joiner gets a :class:`Pair`), :class:`Output`
out; :class:`Failure` reports a typed per-event failure.
Host services: :func:`log`, :func:`config`, :func:`counter_add`.
The batch codec (:mod:`weir_sdk.codec`) implements the ABI in ``wit/weir.wit``.
"""

from .codec import (
    Event,
    Failure,
    Output,
    Pair,
    Window,
    decode_events,
    decode_pairs,
    decode_results,
    encode_events,
    encode_pairs,
    encode_results,
)
from .host import config, config_entries, counter_add, log, native_counters, set_native_config
from .operators import AggregateOperator, JoinOperator, ProcessOperator, aggregator, filter, flat_map, joiner, map

__version__ = "0.1.0"

# `filter` and `map` are left out so that `from weir_sdk import *` cannot
# shadow the builtins; use them as `weir_sdk.filter` and `weir_sdk.map`.
__all__ = [
    "AggregateOperator",
    "Event",
    "Failure",
    "JoinOperator",
    "Output",
    "Pair",
    "ProcessOperator",
    "Window",
    "aggregator",
    "config",
    "config_entries",
    "counter_add",
    "decode_events",
    "decode_pairs",
    "decode_results",
    "encode_events",
    "encode_pairs",
    "encode_results",
    "flat_map",
    "joiner",
    "log",
    "native_counters",
    "set_native_config",
]
