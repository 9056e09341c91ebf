"""Draining one spool segment through a lane: read its lines, deliver them in batches, keep the position.

A segment is written back with how far it got when the lane stops (``give_back``), so a restart goes
on from the first line not yet handled, and removed only once every line is handled: ``flush()``
returning means the segment is gone from disk too. Mixed into :class:`~wonkalytics.writer.lane.Lane`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from wonkalytics.internal_errors import swallow
from wonkalytics.ops import Op, Outcome, Update, decode_op
from wonkalytics.writer.spool import Spool

__all__ = ["SegmentDrain", "describe"]


def describe(exc: BaseException) -> str:
    """An exception as one short line (type and message) for logs, counters and rejected-op files."""
    return f"{type(exc).__name__}: {exc}"


class SegmentDrain:
    """The part of a lane that writes spooled segments (its state lives on the lane)."""

    spool: Spool
    batch_size: int
    _left: list[Op]
    _outcomes: dict[str, Outcome]

    if TYPE_CHECKING:
        def _deliver(self, ops: list[Op]) -> bool: ...
        def _mark_done(self, count: int) -> None: ...
        def _reject_line(self, line: bytes, error: str) -> None: ...
        def _was_delivered(self, op: Op) -> bool: ...

    def _drain_segment(self, path: Path, count: int, done: int) -> bool:
        try:
            lines = list(self.spool.read(path))
        except OSError:
            swallow(f"reading spooled ops from {path}", "the file is kept for inspection")
            self._mark_done(count - done)
            return True
        position = done
        while position < len(lines):
            chunk = lines[position : position + self.batch_size]
            ops: list[Op] = []
            for line in chunk:
                try:
                    op = decode_op(line)
                except Exception as exc:
                    self._reject_line(line, f"unreadable spool line: {describe(exc)}")
                    continue
                if isinstance(op, Update):
                    op.outcome = self._outcomes.pop(op.id, None)
                ops.append(op)
            if ops and not self._deliver(ops):
                left = self._left
                for op in left:  # put the waiters back: the same lines are read again later
                    if isinstance(op, Update) and op.outcome is not None:
                        self._outcomes[op.id] = op.outcome
                if left and len(ops) == len(chunk):  # line i is op i: the lines before are handled
                    position += next(i for i, op in enumerate(ops) if op is left[0])
                    # A sink that is not idempotent (PromptLayer) may have taken the first of them
                    # before it failed: those are handled too, never sent again by the next process.
                    for op in left:
                        if not self._was_delivered(op):
                            break
                        position += 1
                self.spool.give_back(path, count, position)
                self._mark_done(position - done)  # progress so far; the rest is counted when written
                return False
            position += len(chunk)
        self.spool.remove(path)
        # Counted only now, so that flush() returning means the segment is gone from disk too (a torn
        # last line of a crash is counted here as well: there is nothing to write for it).
        self._mark_done(count - done)
        return True

