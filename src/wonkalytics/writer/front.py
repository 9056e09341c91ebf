"""The front of the writer: the only place callers touch, and the only module here that knows all lanes.

``submit(op)`` hands one op to every lane (a deque append each; never the database), ``flush`` and
``shutdown`` share one deadline across the lanes (each waits only for what is left of it), and a
forked child starts with fresh lanes. At interpreter exit every writer is shut down with its
``exit_timeout``; what is still queued then goes to the spool for the next process.

A ``multiprocessing`` child started with ``fork`` or ``forkserver`` ends with ``os._exit``: no atexit
hook runs there. Its writers are shut down by a ``multiprocessing.util.Finalize`` instead, armed once
multiprocessing has cleared the finalizers inherited from the parent (``register_after_fork``) and
whenever a writer is created in such a child (the task configured it itself).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import multiprocessing.util
import os
import time
import weakref
from collections.abc import Sequence

from wonkalytics.internal_errors import swallow
from wonkalytics.ops import Op
from wonkalytics.writer.health import Health
from wonkalytics.writer.lane import Lane

__all__ = ["Writer"]

logger = logging.getLogger("wonkalytics")


class Writer:
    """Every lane of one configuration, behind submit / flush / shutdown / health."""

    def __init__(self, lanes: Sequence[Lane], *, exit_timeout: float = 5.0, enabled: bool = True) -> None:
        self.lanes = list(lanes)
        self.exit_timeout = exit_timeout
        self.enabled = enabled
        self._pid = os.getpid()
        self._closed = False
        _writers.add(self)
        _arm_child_exit()

    def lane(self, name: str) -> Lane | None:
        """The lane of sink ``name``, if configured."""
        return next((lane for lane in self.lanes if lane.name == name), None)

    def submit(self, op: Op) -> None:
        """Queue ``op`` for every sink. Never blocks on a sink; never raises into the caller."""
        if self._pid != os.getpid():
            self._after_fork()
        self._closed = False
        for lane in self.lanes:
            try:
                lane.put(op)
            except Exception:
                swallow(f"queueing an op for {lane.name}", f"{lane.name} will not get it")

    def start(self) -> None:
        """Start every lane's thread now, at start-up (otherwise they start with the first op)."""
        if self._pid != os.getpid():
            self._after_fork()
        for lane in self.lanes:
            lane.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every op submitted so far is handled by every lane; False when ``timeout`` passed.

        One deadline for all lanes: each waits only for what is left of it.
        """
        if self._pid != os.getpid():
            self._after_fork()
        return self._flush_until(None if timeout is None else time.monotonic() + timeout)

    def _flush_until(self, deadline: float | None) -> bool:
        while True:
            before = [lane.submitted for lane in self.lanes]
            results = [lane.flush(deadline) for lane in self.lanes]
            if not all(results):
                return False
            # A sink may have submitted follow-ups meanwhile (PromptLayer's request id): wait for them too.
            if [lane.submitted for lane in self.lanes] == before:
                return True

    def pending(self) -> int:
        """Ops submitted and not yet handled, summed over the lanes."""
        return sum(lane.queued() for lane in self.lanes)

    def health(self) -> Health:
        """Every lane's counters (plain data; cheap)."""
        return Health(enabled=self.enabled, sinks={lane.name: lane.health() for lane in self.lanes})

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush (all lanes, one deadline), stop the threads, spool what is left; True when nothing was."""
        if self._closed:
            return True
        self._closed = True
        timeout = self.exit_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        # Flush every lane first, while all of them run: a lane's follow-ups (PromptLayer's request id)
        # go to another lane, which must not have stopped yet.
        self._flush_until(deadline)
        left = 0
        stopped_at: dict[int, int] = {}
        # A follow-up can still reach a lane already stopped (PromptLayer answered late): stop that lane
        # again, which writes or spools it. Follow-ups do not beget follow-ups, so this ends; the bound
        # is a guard against a sink that does.
        for _ in range(len(self.lanes) + 1):
            late = [lane for lane in self.lanes if stopped_at.get(id(lane)) != lane.submitted]
            if not late:
                break
            for lane in late:
                spilled = lane.shutdown(deadline)
                stopped_at[id(lane)] = lane.submitted  # after: shutdown counts the ops it spooled back
                if spilled:
                    logger.warning(
                        "wonkalytics: %d %s ops were not written before exit; they are saved in %s and will "
                        "be written by the next process that starts with this spool directory",
                        spilled, lane.name, lane.spool.directory,
                    )
                left += spilled
        self.close_sinks(max(0.0, deadline - time.monotonic()))
        return left == 0

    def release_spools(self) -> None:
        """Hand what the lanes left on disk to the next writer of this process (``configure()``)."""
        for lane in self.lanes:
            lane.spool.release()

    def close_sinks(self, timeout: float) -> None:
        """Release every sink's connections, sharing ``timeout``."""
        deadline = time.monotonic() + timeout
        for lane in self.lanes:
            try:
                lane.sink.close(max(0.0, deadline - time.monotonic()))
            except Exception:
                swallow(f"closing the {lane.name} sink", "its connections are left to the process exit")

    def _after_fork(self) -> None:
        self._pid = os.getpid()
        for lane in self.lanes:
            lane.after_fork()


_writers: weakref.WeakSet[Writer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._after_fork()


@atexit.register
def _flush_at_exit() -> None:
    for writer in list(_writers):
        try:
            writer.shutdown()
        except Exception:
            swallow("flushing analytics ops at exit", "unwritten ops may be lost")


_child_exit: multiprocessing.util.Finalize | None = None


def _arm_child_exit(*_: object) -> None:
    """In a multiprocessing child: run the exit flush when multiprocessing ends it (os._exit skips atexit)."""
    global _child_exit
    if multiprocessing.parent_process() is None:
        return
    if _child_exit is not None and _child_exit.still_active():
        return
    # Priority 10: before multiprocessing's own finalizers (queues, pools) that run at 0 and below.
    _child_exit = multiprocessing.util.Finalize(None, _flush_at_exit, exitpriority=10)


class _AfterFork:
    """multiprocessing calls its after-fork hooks after clearing the parent's finalizers (weakly held)."""


_after_fork_token = _AfterFork()
multiprocessing.util.register_after_fork(_after_fork_token, _arm_child_exit)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
