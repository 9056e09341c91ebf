"""Retry policies of the writer lanes, each named with its reason.

>>> [round(backoff(n, jitter=1.0), 2) for n in range(1, 6)]
[0.5, 1.0, 2.0, 2.0, 2.0]
>>> [update_delay(n) for n in range(6)]
[0.5, 1.0, 2.0, 4.0, 8.0, 15.0]
"""

from __future__ import annotations

import random

__all__ = [
    "BACKOFF_START",
    "ISOLATE_AFTER",
    "LANE_ERROR_PAUSE",
    "MAX_BACKOFF",
    "POISON_STRIKES",
    "UPDATE_RETRY_MAX",
    "UPDATE_RETRY_START",
    "backoff",
    "update_delay",
]

BACKOFF_START = 0.25
"""Seconds before the first retry of a failed batch: a blip (a failover, a restart) is often over by then."""

MAX_BACKOFF = 2.0
"""The maximum delay between retries, in seconds. One small probe every 2 s costs a recovering database
nothing, and rows land within about 2 s of its return (0.1 capped at 30 s: 15-20 s late after an outage)."""

ISOLATE_AFTER = 3
"""Failed attempts of a batch after which its ops are tried one by one: one op the server cannot take
(a value over MariaDB's max_allowed_packet reads as "server has gone away") must not stall the rest."""

POISON_STRIKES = 3
"""Failures of a lone op, each while the destination answered a probe, after which it is set aside in the
rejected-ops file (replayable) instead of being retried forever."""

LANE_ERROR_PAUSE = 1.0
"""Seconds a lane waits after an unexpected error of its own before its next round: its ops stay queued
and are retried, and a bug that fails every round must not spin a core."""

UPDATE_RETRY_START = 0.5
"""Seconds before an update that found no row looks again (the insert may be a moment behind, in
another worker process)."""

UPDATE_RETRY_MAX = 15.0
"""Longest wait between two looks of such an update, in seconds, until ``update_grace`` has passed."""


def backoff(attempt: int, *, jitter: float | None = None) -> float:
    """Delay before retry ``attempt`` (1, 2, ...): doubling from BACKOFF_START, capped at MAX_BACKOFF.

    ``jitter`` in [0.5, 1] scales it (random when None), so many processes do not retry in step.
    """
    scale = random.uniform(0.5, 1.0) if jitter is None else jitter
    return float(min(MAX_BACKOFF, BACKOFF_START * 2.0**attempt) * scale)


def update_delay(rounds: int) -> float:
    """Wait before the next look of the updates that found no row, after ``rounds`` looks (0: the first):
    doubling from UPDATE_RETRY_START, capped at UPDATE_RETRY_MAX (no jitter: one lane's own timer)."""
    return float(min(UPDATE_RETRY_MAX, UPDATE_RETRY_START * 2**rounds))
