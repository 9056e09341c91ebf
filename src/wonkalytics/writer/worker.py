"""The background writer: the only place in Wonkalytics that knows about threads.

Callers hand it items (an ``Interaction`` or an event row) with :meth:`BackgroundWriter.submit`, which
costs a deque append and an event set. One daemon thread turns items into rows through the sink,
writes them in batches, retries failed batches with backoff, and spills to the spool instead of
dropping. ``flush(timeout)`` waits for what was submitted before it was called; at interpreter exit
the queue is flushed with a bounded wait and what is left goes to the spool for the next start.
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from wonkalytics.internal_errors import log_limited, swallow
from wonkalytics.writer.spool import Spool, decode_row, encode_row

__all__ = ["BackgroundWriter", "Sink"]

logger = logging.getLogger("wonkalytics")

Row = dict[str, Any]


class Sink(Protocol):
    """Where rows go. The SQL table is one; later sinks (PromptLayer, OpenTelemetry) are others."""

    def to_row(self, item: object) -> Row:
        """Turn a submitted item into a row of our canonical fields (pure; may raise on bad input)."""

    def write(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Exception]]:
        """Write rows; return the rows rejected for good (with why). Raise when the batch failed."""

    def is_transient(self, exc: BaseException) -> bool:
        """True when ``exc`` is worth retrying (the database is down), False for bad data."""

    def after_fork(self) -> None:
        """Drop resources inherited from the parent process (connection pools)."""


class BackgroundWriter:
    """A bounded queue and one worker thread in front of a :class:`Sink`."""

    def __init__(
        self,
        sink: Sink,
        *,
        spool: Spool,
        durability: str = "memory",
        queue_size: int = 10_000,
        batch_size: int = 200,
        flush_interval: float = 0.2,
        exit_timeout: float = 5.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.durability = durability
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.exit_timeout = exit_timeout
        self.max_backoff = max_backoff
        self._init_state()
        _register_fork_handler(self)

    def _init_state(self) -> None:
        self._queue: deque[object] = deque()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._stop = threading.Event()
        self._submitted = 0
        self._done = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False

    # -- caller side -------------------------------------------------------------------------------

    def submit(self, item: object) -> None:
        """Queue one item. Never blocks on the database; never raises into the caller."""
        if self._pid != os.getpid():
            self._after_fork()
        thread = self._thread
        try:
            if thread is None or not thread.is_alive():
                self._start()  # first row, or after shutdown(): a late row still gets written
            if self.durability == "disk":
                self._spool(item)
            elif len(self._queue) >= self.queue_size:
                log_limited(
                    "queue-full", logging.WARNING,
                    "wonkalytics: the row queue is full (%d); spilling rows to %s until the database catches up",
                    self.queue_size, self.spool.directory,
                )
                self._spool(item)
            else:
                self._queue.append(item)
        except RuntimeError:  # interpreter shutdown: no thread can start; the next process replays it
            try:
                self._spool(item)
            except Exception:
                swallow("saving an analytics row at interpreter shutdown", "that row was not recorded")
                return
        except Exception:
            swallow("queueing an analytics row", "that row was not recorded")
            return
        with self._cond:
            self._submitted += 1
        self._wake.set()

    def start(self) -> None:
        """Start the worker thread now, at start-up (otherwise it starts with the first row)."""
        if self._pid != os.getpid():
            self._after_fork()
        self._start()

    def _spool(self, item: object) -> None:
        """Put one item on disk as its row (the writer drains it; the next process replays it)."""
        self.spool.append(encode_row(self.sink.to_row(item)))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is written (or rejected and logged).

        Returns False when ``timeout`` seconds passed first (rows stay queued and keep being retried).
        """
        if self._pid != os.getpid():
            self._after_fork()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            if self._done >= target:
                return True
        if self._thread is None or not self._thread.is_alive():
            self._start()
        self._urgent.set()
        self._wake.set()
        with self._cond:
            while self._done < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def pending(self) -> int:
        """Items submitted and not yet written."""
        with self._cond:
            return self._submitted - self._done

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush (bounded by ``timeout``), stop the thread, and spool whatever is still queued."""
        if self._closed:
            return True
        timeout = self.exit_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        flushed = self.flush(timeout)
        self._closed = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        left = self._spill_queue()
        self.spool.close()
        if left:
            logger.warning(
                "wonkalytics: %d analytics rows were not written before exit; they are saved in %s "
                "and will be written by the next process that starts with this spool directory",
                left, self.spool.directory,
            )
        return flushed and not left

    def _spill_queue(self) -> int:
        spilled = 0
        while self._queue:
            item = self._queue.popleft()
            try:
                self._spool(item)
                spilled += 1
            except Exception:
                swallow("saving a queued row to the spool at exit", "that row was lost")
        return spilled

    # -- worker side -------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._closed = False
            self._adopt_orphans()
            self._thread = threading.Thread(target=self._run, name="wonkalytics-writer", daemon=True)
            self._thread.start()
        _register_exit_handler(self)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval * 5)
            self._wake.clear()
            if len(self._queue) < self.batch_size and not self._urgent.is_set() and not self._stop.is_set():
                self._urgent.wait(self.flush_interval)  # linger so a quiet app still writes in batches
            self._urgent.clear()
            self._drain()

    def _adopt_orphans(self) -> None:
        """Take over rows a crashed process left in the spool (a stat when there are none)."""
        try:
            adopted = self.spool.adopt_orphans()
        except Exception:
            swallow("looking for rows left by a previous process", "they stay on disk for the next start")
            return
        if adopted:
            self._submitted += adopted  # so flush() waits for them too
            logger.info(
                "wonkalytics: writing %d rows left in %s by an earlier process", adopted, self.spool.directory
            )

    def _drain(self) -> None:
        while not self._stop.is_set():
            if self._queue:
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                rows = self._rows_of(batch)
                if not self._write(rows):
                    self._requeue(batch)
                    return
                self._mark_done(len(batch))
            elif not self._drain_one_segment():
                return

    def _rows_of(self, batch: list[object]) -> list[Row]:
        rows: list[Row] = []
        for item in batch:
            try:
                rows.append(self.sink.to_row(item))
            except Exception:
                swallow("building an analytics row", "that row was dropped")
        return rows

    def _requeue(self, batch: list[object]) -> None:
        self._queue.extendleft(reversed(batch))

    def _drain_one_segment(self) -> bool:
        segment = self.spool.take()
        if segment is None:
            return False
        path, count = segment
        try:
            rows = [decode_row(line) for line in self.spool.read(path)]
        except Exception:
            swallow(f"reading spooled rows from {path}", "the file is kept for inspection")
            return True
        for start in range(0, len(rows), self.batch_size):
            if not self._write(rows[start : start + self.batch_size]):
                self.spool.give_back(segment)  # inserts are idempotent: the whole segment is retried
                return False
        self.spool.remove(path)
        self._mark_done(count)
        return True

    def _mark_done(self, count: int) -> None:
        with self._cond:
            self._done += count
            self._cond.notify_all()

    def _write(self, rows: list[Row]) -> bool:
        """Write with retry and backoff; True when every row is written or rejected for good."""
        attempt = 0
        while rows:
            try:
                rejected = self.sink.write(rows)
            except Exception as exc:
                if not self.sink.is_transient(exc) and len(rows) > 1:
                    rows = self._write_one_by_one(rows)
                    continue
                if not self.sink.is_transient(exc):
                    self._reject(rows[0], exc)
                    return True
                attempt += 1
                delay = min(self.max_backoff, 0.25 * 2**attempt) * (0.5 + random.random() / 2)
                log_limited(
                    "write-failed", logging.WARNING,
                    "wonkalytics: writing %d analytics rows failed (%s); they are kept and retried "
                    "(next attempt in %.1fs)", len(rows), exc, delay,
                )
                if self._stop.wait(delay):
                    return False
                continue
            for row, why in rejected:
                self._reject(row, why)
            return True
        return True

    def _write_one_by_one(self, rows: list[Row]) -> list[Row]:
        """Find the rows the database refuses for good; return the rest (to retry as an outage)."""
        left: list[Row] = []
        for row in rows:
            try:
                for bad, why in self.sink.write([row]):
                    self._reject(bad, why)
            except Exception as exc:
                if self.sink.is_transient(exc):
                    left.append(row)
                else:
                    self._reject(row, exc)
        return left

    def _reject(self, row: Mapping[str, Any], why: BaseException) -> None:
        """Keep a row the database will never take, beside the spool, and say so in the log."""
        try:
            self.spool.directory.mkdir(parents=True, exist_ok=True)
            path = self.spool.directory / f"rejected-{os.getpid()}.jsonl"
            with open(path, "ab") as handle:
                handle.write(encode_row({"error": f"{type(why).__name__}: {why}", "row": dict(row)}))
        except OSError:
            path = None
        log_limited(
            f"rejected-{type(why).__name__}", logging.ERROR,
            "wonkalytics: the database refused an analytics row (%s: %s); it was saved to %s",
            type(why).__name__, why, path or "nowhere (the spool directory is not writable)",
        )

    # -- process lifecycle -------------------------------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked child (Gunicorn --preload): start clean; the parent writes its own rows."""
        self._init_state()
        self.spool.reset_after_fork()
        try:
            self.sink.after_fork()
        except Exception:
            swallow("resetting the database pool after fork", "the child may reuse the parent's connections")


_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()
_exit_registered: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


def _register_fork_handler(writer: BackgroundWriter) -> None:
    _writers.add(writer)


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._after_fork()


def _register_exit_handler(writer: BackgroundWriter) -> None:
    _exit_registered.add(writer)


@atexit.register
def _flush_at_exit() -> None:
    for writer in list(_exit_registered):
        try:
            writer.shutdown()
        except Exception:
            swallow("flushing analytics rows at exit", "unwritten rows may be lost")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
