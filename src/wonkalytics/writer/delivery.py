"""Delivering one batch to a lane's sink: retry with backoff, isolate the op it cannot take, settle.

While the sink fails, the batch is retried with a capped backoff (:mod:`.retry`); after
``ISOLATE_AFTER`` attempts, or at once when the failure is not transient, the ops are tried one by
one to find the one the sink refuses (rejected) or that fails while the sink answers a probe
(``POISON_STRIKES``). Each insert's record is built here, before the sink sees it. Mixed into
:class:`~wonkalytics.writer.lane.Lane`.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from wonkalytics.internal_errors import log_limited
from wonkalytics.ops import Builder, Insert, Op, RowNotFoundError, Update
from wonkalytics.sinks.base import Rejection, Sink
from wonkalytics.writer.health import Counters
from wonkalytics.writer.retry import ISOLATE_AFTER, POISON_STRIKES, backoff
from wonkalytics.writer.segments import describe

__all__ = ["Delivery"]


class Delivery:
    """The part of a lane that hands batches to its sink (its state lives on the lane)."""

    sink: Sink
    build: Builder
    name: str
    counters: Counters
    _left: list[Op]
    _strikes: dict[int, int]
    _stop: threading.Event

    if TYPE_CHECKING:
        def _divert_to_pending(self, ops: list[Op]) -> list[Op]: ...
        def _park(self, op: Update) -> None: ...
        def _reject(self, op: Op, error: BaseException) -> None: ...

    def _deliver(self, ops: list[Op]) -> bool:
        """Write ``ops`` with retry; True when each is written, rejected or parked, False when stopped."""
        ops = self._built(self._divert_to_pending(ops))
        self._left = ops
        attempt = 0
        while ops:
            self._left = ops  # what is still unwritten: the caller keeps it when stopped
            try:
                rejections = self.sink.write(ops)
            except Exception as exc:
                if not self.sink.is_transient(exc):
                    remaining = self._one_by_one(ops, transient=False)
                    if len(remaining) < len(ops):
                        ops = remaining
                        continue
                    # No progress: the first op failed as an outage does; back off like one.
                attempt += 1
                self.counters.failure(describe(exc))
                if attempt >= ISOLATE_AFTER:
                    ops = self._left = self._one_by_one(ops, transient=True)
                    if not ops:
                        return True
                delay = backoff(attempt)
                log_limited(
                    f"write-failed-{self.name}", logging.WARNING,
                    "wonkalytics: writing %d ops to %s failed (%s); they are kept and retried (next in %.1fs)",
                    len(ops), self.name, describe(exc), delay,
                )
                if self._stop.wait(delay):
                    return False
                continue
            self._settle(ops, rejections)
            return True
        return True

    def _built(self, ops: list[Op]) -> list[Op]:
        """Build the record of each insert not built yet (once for every lane): sinks get finished records.

        An insert whose record cannot be built (the builder keeps a minimal row of an interaction, so
        this is an event a ``redact`` step fails on) is refused alone and the rest of the batch goes
        on. It cannot be kept in the rejected-ops file: unredacted, it must not leave the process.
        """
        kept: list[Op] = []
        for op in ops:
            if isinstance(op, Insert) and op.built is None:
                try:
                    op.build(self.build)
                except Exception as exc:
                    self.counters.add(rejected=1)
                    log_limited(
                        f"unbuildable-{self.name}", logging.ERROR,
                        "wonkalytics: an analytics row could not be built (%s) and was not stored: a row "
                        "whose redaction fails is never stored nor spooled unredacted", describe(exc),
                    )
                    continue
            kept.append(op)
        return kept

    def _one_by_one(self, ops: list[Op], *, transient: bool) -> list[Op]:
        """Find the ops the sink cannot take, in order; returns the ops still to retry.

        An op refused for good is rejected and the rest go on. An op that fails as an outage does
        while the sink answers a probe gets a strike (after POISON_STRIKES it is rejected); otherwise
        the sink is down and everything from that op on is retried later, in order.
        """
        for index, op in enumerate(ops):
            try:
                self._settle([op], self.sink.write([op]))
                self._strikes.pop(id(op), None)
            except Exception as exc:
                if not self.sink.is_transient(exc):
                    self._reject(op, exc)
                    continue
                if not transient or not self._probe():
                    return ops[index:]
                strikes = self._strikes[id(op)] = self._strikes.get(id(op), 0) + 1
                if strikes < POISON_STRIKES:
                    return ops[index:]
                self._strikes.pop(id(op), None)
                self._reject(op, exc)
        return []

    def _probe(self) -> bool:
        probe = getattr(self.sink, "probe", None)
        if probe is None:
            return False
        try:
            return bool(probe())
        except Exception:
            return False

    def _settle(self, ops: list[Op], rejections: list[Rejection]) -> None:
        refused = {id(r.op): r.error for r in rejections}
        written = 0
        primary = self.sink.primary
        for op in ops:
            error = refused.get(id(op))
            if error is None:
                written += 1
                if primary and isinstance(op, Update) and op.outcome is not None:
                    op.outcome.set(True)
            elif isinstance(op, Update) and isinstance(error, RowNotFoundError):
                if primary and op.outcome is not None:
                    op.outcome.set(False)
                self._park(op)
            else:
                self._reject(op, error)
        if written or not refused:
            self.counters.success(written)

