"""Analytics failures: quiet in production, loud in tests.

The rule "an analytics failure never breaks the user's call" must not hide our own bugs, so every
place that swallows an exception goes through :func:`swallow`, which logs (rate-limited, saying what
happened to the data) and re-raises when running under pytest.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

logger = logging.getLogger("wonkalytics")

_RATE_WINDOW = 60.0
_last_logged: dict[str, float] = {}
_lock = threading.Lock()


def under_pytest() -> bool:
    """True when running inside a pytest session (bugs should fail tests, not vanish)."""
    return "pytest" in sys.modules and "PYTEST_VERSION" in os.environ


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
    """Handle the exception being handled now: log ``what`` failed and ``consequence``; raise in tests.

    Call from an ``except`` block only.
    """
    log_limited(what, logging.ERROR, "wonkalytics: %s failed; %s", what, consequence, exc_info=True)
    if under_pytest():
        raise
