"""Updates waiting for their row: parked, retried on a backoff, given up after ``update_grace``.

An update that finds no row (its insert not written yet, or written by another process) is parked
rather than rejected; later updates of the same key wait behind it, so their order is kept. The
parked ones go again on :func:`~wonkalytics.writer.retry.update_delay`'s schedule until the grace
period has passed, then into the rejected-ops file. Mixed into :class:`~wonkalytics.writer.lane.Lane`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from wonkalytics.ops import Op, RowNotFoundError, Update
from wonkalytics.sinks.base import Sink
from wonkalytics.writer.retry import update_delay

__all__ = ["Parked"]

logger = logging.getLogger("wonkalytics")

_Key = tuple[str, object]


class Parked:
    """The part of a lane that keeps updates waiting for their row (its state lives on the lane)."""

    sink: Sink
    name: str
    update_grace: float
    _pending: list[Update]
    _pending_keys: dict[_Key, int]
    _pending_rounds: int
    _next_pending_at: float
    _retrying: int
    _stop: threading.Event

    if TYPE_CHECKING:
        def _deliver(self, ops: list[Op]) -> bool: ...
        def _reject(self, op: Op, error: BaseException) -> None: ...


    def _divert_to_pending(self, ops: list[Op]) -> list[Op]:
        """Updates of a key that already has parked updates wait behind them (their order is kept)."""
        if not self._pending_keys:
            return ops
        kept: list[Op] = []
        for op in ops:
            if isinstance(op, Update) and (op.key_field, op.key) in self._pending_keys:
                if self.sink.primary and op.outcome is not None:
                    op.outcome.set(False)
                self._park(op)
            else:
                kept.append(op)
        return kept

    def _park(self, op: Update) -> None:
        missing_for = op.note_missing()
        if missing_for > self.update_grace:
            key = (op.key_field, op.key)
            logger.warning(
                "wonkalytics: giving up %s update of %s for %s=%r: no such row after %.0f s (update_grace); it "
                "is kept in the rejected-ops file", self.name, op.field, key[0], key[1], missing_for,
            )
            self._reject(op, RowNotFoundError(f"no row with {key[0]}={key[1]!r} after {missing_for:.0f} s"))
            return
        key = (op.key_field, op.key)
        self._pending.append(op)
        self._pending_keys[key] = self._pending_keys.get(key, 0) + 1
        if self._next_pending_at == math.inf:
            self._pending_rounds = 0
            self._next_pending_at = time.monotonic() + update_delay(0)

    def _retry_pending(self) -> None:
        if not self._pending or time.monotonic() < self._next_pending_at or self._stop.is_set():
            return
        ops: list[Op] = list(self._pending)
        self._pending.clear()
        self._pending_keys.clear()
        self._next_pending_at = math.inf
        self._pending_rounds += 1
        rounds = self._pending_rounds
        self._retrying = len(ops)
        try:
            delivered = self._deliver(ops)
        finally:
            self._retrying = 0
        if not delivered:  # stopped: keep them for the spool
            for op in ops:
                if isinstance(op, Update):
                    self._park(op)
            return
        if self._pending:
            self._pending_rounds = rounds
            self._next_pending_at = time.monotonic() + update_delay(rounds)
