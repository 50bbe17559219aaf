"""What the host lends an operator: logging, deploy-time configuration, counters.

Inside a component these call the WIT imports ``weir:stream/log``,
``weir:stream/config`` and ``weir:stream/metrics``. Run natively (unit
tests), they use stand-ins: logs go to Python's :mod:`logging` (logger
``weir``), configuration comes from :func:`set_native_config`, and counters
add up in :func:`native_counters`.

Call them while processing, not at import time: a component's module is
imported at build time, when there is no host to ask.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Optional

__all__ = [
    "config",
    "config_entries",
    "counter_add",
    "log",
    "native_counters",
    "set_native_config",
]

#: True inside a component (componentize-py runs CPython on WASI); natively
#: (unit tests) the SDK uses stand-ins and binds no export.
_IN_COMPONENT = sys.platform == "wasi"

if _IN_COMPONENT:
    from wit_world.imports import config as _wit_config
    from wit_world.imports import log as _wit_log
    from wit_world.imports import metrics as _wit_metrics

_PY_LEVELS = {
    "trace": logging.DEBUG - 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

_native_config: dict[str, str] = {}
_native_counters: dict[str, int] = {}


def log(level: str, message: str) -> None:
    """Write ``message`` to the host's log at ``level``: trace, debug, info, warn or error."""
    if level not in _PY_LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_PY_LEVELS)}")
    if _IN_COMPONENT:
        _wit_log.log(_wit_log.Level[level.upper()], message)
    else:
        logging.getLogger("weir").log(_PY_LEVELS[level], message)


def config(key: str) -> Optional[str]:
    """The stage's configuration value for ``key``, or ``None`` if unset."""
    if _IN_COMPONENT:
        return _wit_config.get(key)
    return _native_config.get(key)


def config_entries() -> dict[str, str]:
    """The stage's whole configuration."""
    if _IN_COMPONENT:
        return dict(_wit_config.entries())
    return dict(_native_config)


def counter_add(name: str, delta: int = 1) -> None:
    """Add ``delta`` (>= 0) to the counter ``name``, which the host exports as a metric."""
    if delta < 0:
        raise ValueError(f"counter {name!r}: delta must be >= 0, got {delta}")
    if _IN_COMPONENT:
        _wit_metrics.counter_add(name, delta)
    else:
        _native_counters[name] = _native_counters.get(name, 0) + delta


def set_native_config(entries: Mapping[str, str]) -> None:
    """Natively (in unit tests): replace the configuration :func:`config` returns."""
    _native_config.clear()
    _native_config.update(entries)


def native_counters() -> dict[str, int]:
    """Natively (in unit tests): the counters bumped so far (a live dict; clear it between tests)."""
    return _native_counters
