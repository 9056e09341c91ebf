"""Analytics failures: quiet in production, loud in our own tests.

The rule "an analytics failure never breaks the user's call" must not hide our own bugs, so every
place that swallows an exception goes through :func:`swallow`, which logs (rate-limited, saying what
happened to the data) and re-raises only in *strict mode*.

Strict mode is an explicit switch: ``set_strict(True)`` (our test suite's conftest does this) or the
environment variable ``WONKALYTICS_STRICT=1``. It is never inferred from pytest being imported: an
app's own test suite must see what production does (a log line, an unbroken stream).

This ground-floor module reads no environment itself (settings.py is its one reader): settings.py
hands it the reader of ``WONKALYTICS_STRICT`` through :func:`follow_environment` when it is imported,
which ``import wonkalytics`` always does; until then strict mode is off.

>>> set_strict(True); strict()
True
>>> set_strict(None); strict()  # back to the environment's choice
False
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("wonkalytics")

_RATE_WINDOW = 60.0
_last_logged: dict[str, float] = {}
_lock = threading.Lock()


_strict: bool | None = None


def _off() -> bool:
    return False


_from_environment: Callable[[], bool] = _off  # until settings.py is imported


def follow_environment(reader: Callable[[], bool]) -> None:
    """Read the environment's choice through ``reader`` when strict mode is not set in code."""
    global _from_environment
    _from_environment = reader


def set_strict(value: bool | None) -> None:
    """Turn strict mode on or off for this process (``None``: follow ``WONKALYTICS_STRICT``)."""
    global _strict
    _strict = value


def strict() -> bool:
    """True when swallowed internal errors are re-raised (see the module docstring)."""
    if _strict is not None:
        return _strict
    return _from_environment()


def log_limited(key: str, level: int, message: str, *args: object, exc_info: bool = False) -> None:
    """Log at most once per minute per ``key``, so an outage cannot flood the app's logs."""
    now = time.monotonic()
    with _lock:
        last = _last_logged.get(key)
        if last is not None and now - last < _RATE_WINDOW:
            return
        _last_logged[key] = now
    logger.log(level, message, *args, exc_info=exc_info)


def swallow(what: str, consequence: str) -> None:
    """Handle the exception being handled now: log ``what`` failed and ``consequence``; raise if strict.

    Call from an ``except`` block only.
    """
    log_limited(what, logging.ERROR, "wonkalytics: %s failed; %s", what, consequence, exc_info=True)
    if strict():
        raise
