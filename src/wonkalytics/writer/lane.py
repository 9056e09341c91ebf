"""One lane per sink: its own queue, thread, batching, retry, spool, rejected ops and counters.

A lane takes ops in submission order and hands them to its sink in that order, in batches. While the
sink fails, the batch is retried with a capped backoff (:mod:`.retry`); an op the sink refuses for
good goes to the rejected-ops file; an update that finds no row is parked and looked at again until
``update_grace`` has passed. When the queue is full, ops spill to the spool, and from then on every
op queues behind them on disk until the spool is drained, so the order survives an overflow, an
outage and a restart. A slow or failing sink holds back only its own lane.

A lane is four concerns, one module each: the queue, its thread and the spill to disk (here),
delivering a batch with retry and isolation (:mod:`.delivery`), updates waiting for their row
(:mod:`.parked`) and draining spooled segments (:mod:`.segments`); the last three are mixins whose
state lives on the lane.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from pathlib import Path

from wonkalytics.internal_errors import log_limited, swallow
from wonkalytics.ops import Builder, Op, Outcome, Update, encode_op
from wonkalytics.sinks.base import Sink
from wonkalytics.writer.delivery import Delivery
from wonkalytics.writer.health import Counters, SinkHealth
from wonkalytics.writer.parked import Parked
from wonkalytics.writer.retry import LANE_ERROR_PAUSE
from wonkalytics.writer.segments import SegmentDrain, describe
from wonkalytics.writer.spool import Spool

__all__ = ["Lane"]

logger = logging.getLogger("wonkalytics")

_Key = tuple[str, object]


class Lane(Delivery, SegmentDrain, Parked):
    """The queue and worker thread in front of one :class:`~wonkalytics.sinks.base.Sink`."""

    def __init__(
        self,
        sink: Sink,
        *,
        spool: Spool,
        build: Builder,
        durability: str = "memory",
        queue_size: int = 10_000,
        batch_size: int = 200,
        flush_interval: float = 0.2,
        update_grace: float = 900.0,
        legacy_spool: Path | None = None,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.spool = spool
        self.build = build
        self.durability = durability
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.update_grace = update_grace
        self.legacy_spool = legacy_spool
        self.counters = Counters(sink.name)
        self._init_state()

    def _init_state(self) -> None:
        self._queue: deque[Op] = deque()
        self._in_flight: list[Op] = []
        self._left: list[Op] = []  # the part of the batch being delivered that is still unwritten
        self._pending: list[Update] = []
        self._retrying = 0  # parked updates in a retry round right now (still pending for health())
        self._pending_keys: dict[_Key, int] = {}
        self._pending_rounds = 0
        self._next_pending_at = math.inf
        self._strikes: dict[int, int] = {}
        self._outcomes: dict[str, Outcome] = {}  # waiters of updates that went through the spool
        self._spilling = self.durability == "disk"
        self._behind_spool = False  # memory holds ops newer than the spool's (it failed): disk first
        self._spill_lock = threading.Lock()
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._stop = threading.Event()
        self._submitted = 0
        self._done = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    # -- caller side -------------------------------------------------------------------------------

    def put(self, op: Op) -> None:
        """Queue one op (memory, or the spool when full / disk durability). Never blocks on the sink."""
        thread = self._thread
        exiting = False  # interpreter shutdown: no thread can start; the next process replays the op
        if thread is None or not thread.is_alive():
            try:
                self._start()  # first op, or after shutdown(): a late op still gets written
            except RuntimeError:
                exiting = True
        if exiting or self._spilling or len(self._queue) >= self.queue_size:
            with self._spill_lock:
                if exiting or self._spilling or len(self._queue) >= self.queue_size:
                    if not exiting and not self._spilling:
                        log_limited(
                            f"queue-full-{self.name}", logging.WARNING,
                            "wonkalytics: the %s queue is full (%d ops); spilling to %s until it catches up",
                            self.name, self.queue_size, self.spool.directory,
                        )
                        self._spilling = True
                    try:
                        self._spool_ops([op])
                    except OSError as exc:
                        if exiting:
                            raise  # no thread to write it from memory: Writer.submit logs it lost
                        self._spool_failed(exc)  # a full or read-only disk: keep it in memory, never drop it
                    else:
                        if not exiting:  # at exit it is the next process's op: no flush waits for it
                            self.counters.spool_ok()
                            self._count_submitted(1)
                        return
        self._queue.append(op)
        self._count_submitted(1)

    def _spool_failed(self, exc: OSError) -> None:
        self._behind_spool = True
        self.counters.spool_failure(describe(exc))
        log_limited(
            f"spool-failed-{self.name}", logging.ERROR,
            "wonkalytics: cannot write to the %s spool %s (%s): ops are kept in memory and written straight "
            "to the sink, without the durability=%r guarantee until the disk takes writes again",
            self.name, self.spool.directory, describe(exc), self.durability,
        )

    def _count_submitted(self, count: int) -> None:
        with self._cond:
            self._submitted += count
        self._wake.set()

    def _spool_ops(self, ops: list[Op], *, first: bool = False) -> int:
        lines = []
        for op in ops:
            if isinstance(op, Update) and op.outcome is not None:
                self._outcomes[op.id] = op.outcome
            lines.append(encode_op(op, self.build))
        count = self.spool.prepend(lines) if first else self.spool.append_many(lines)
        self.counters.add(spooled=count)
        return count

    @property
    def submitted(self) -> int:
        """Ops submitted to this lane so far (the front compares it to see follow-ups arrive)."""
        with self._cond:
            return self._submitted

    def queued(self) -> int:
        """Ops waiting in memory and in this process's spool."""
        return len(self._queue) + len(self._in_flight) + self.spool.pending()

    def health(self) -> SinkHealth:
        """This lane's counters, now."""
        return self.counters.snapshot(queued=self.queued(), pending_updates=len(self._pending) + self._retrying,
                                      other_destinations=self.spool.elsewhere())

    def flush(self, deadline: float | None) -> bool:
        """Wait until every op submitted so far is handled; False when ``deadline`` (monotonic) passed."""
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

    def start(self) -> None:
        """Start the worker thread now (at configure time rather than in the first call)."""
        self._start()

    def shutdown(self, deadline: float) -> int:
        """Flush until ``deadline``, stop the thread, spool what is left; returns how many ops were left."""
        self.flush(deadline)
        self._stop.set()
        self._wake.set()
        self._urgent.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        left: list[Op] = []
        counted_done = 0  # ops in `left` already counted as handled: counted again when read back
        if thread is not None and thread.is_alive():
            # The sink hangs on it: keep a copy (replays are idempotent), less what it already delivered.
            unwritten = {id(op) for op in self._left}
            hung = [op for op in self._in_flight if id(op) in unwritten and not self._was_delivered(op)]
            left.extend(hung)
            counted_done += len(hung)  # the hung thread counts its batch when it returns
        taken = 0  # queued ops the sink had already delivered (a 2xx): handled, never spooled to go again
        while self._queue:
            op = self._queue.popleft()
            if self._was_delivered(op):
                taken += 1
            else:
                left.append(op)
        if taken:
            self._mark_done(taken)
        left.extend(self._pending)  # keeps first_tried: the grace period spans the restart
        counted_done += len(self._pending)
        self._pending.clear()
        self._pending_keys.clear()
        spilled = 0
        if left:
            try:
                spilled = self._spool_ops(left, first=True)  # older than what had spilled already
            except Exception:
                swallow(f"saving {len(left)} queued {self.name} ops to the spool at exit", "they were lost")
            else:
                # A restarted lane counts every line of the segment when it is drained: without this a
                # parked update was counted twice, and flush() returned True with later ops unwritten.
                with self._cond:
                    self._submitted += counted_done
                # Ops submitted after this (a late op restarts the lane) queue behind these on disk, as
                # behind adopted ones: else a newer score ran first and the older one, spooled, won.
                self._spilling = True
        self.spool.close()
        return spilled

    def _was_delivered(self, op: Op) -> bool:
        """True when the sink already delivered ``op`` in a batch that did not complete (``delivered``,
        an optional sink member: PromptLayer must not get a request twice from the next process)."""
        delivered = getattr(self.sink, "delivered", None)
        if delivered is None:
            return False
        try:
            return bool(delivered(op))
        except Exception:
            return False  # spooled: a copy more, never an op less

    # -- worker side -------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._adopt_orphans()
            self._thread = threading.Thread(target=self._run, name=f"wonkalytics-{self.name}", daemon=True)
            self._thread.start()

    def _adopt_orphans(self) -> None:
        try:
            adopted = self.spool.adopt_orphans(self.legacy_spool)
        except Exception:
            swallow("looking for ops left by a previous process", "they stay on disk for the next start")
            return
        if adopted:
            self._submitted += adopted  # so flush() waits for them too
            self._spilling = True  # new ops queue behind the adopted ones: order across the restart
            logger.info(
                "wonkalytics: writing %d %s ops left in %s by an earlier process", adopted, self.name,
                self.spool.directory,
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.flush_interval * 5
            if self._pending:
                wait = max(0.0, min(wait, self._next_pending_at - time.monotonic()))
            self._wake.wait(wait)
            self._wake.clear()
            if len(self._queue) < self.batch_size and not self._urgent.is_set() and not self._stop.is_set():
                self._urgent.wait(self.flush_interval)  # linger so a quiet app still writes in batches
            self._urgent.clear()
            try:
                self._drain()
                self._retry_pending()
            except Exception:
                swallow(f"the {self.name} writer lane", "its ops stay queued and are retried")
                self._stop.wait(LANE_ERROR_PAUSE)

    def _drain(self) -> None:
        while not self._stop.is_set():
            # Ops kept in memory because the spool failed go after what is on disk: order is kept.
            if self._behind_spool and not self.spool.pending():
                self._behind_spool = False
            if self._queue and not self._behind_spool:
                count = min(self.batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                self._in_flight = batch
                if not self._deliver(batch):
                    # Stopped: only what is still unwritten goes back (written, rejected and parked
                    # ops are handled; putting them back wrote them twice, and sent PromptLayer a
                    # request it had taken once more by the next process).
                    left = self._left
                    self._queue.extendleft(reversed(left))
                    self._in_flight = []
                    self._mark_done(count - len(left))
                    return
                self._in_flight = []
                self._mark_done(count)
                continue
            with self._spill_lock:
                segment = self.spool.take()
                if segment is None:
                    if self.durability != "disk":
                        self._spilling = False
                    return
            if not self._drain_segment(*segment):
                return

    def _mark_done(self, count: int) -> None:
        with self._cond:
            self._done += count
            self._cond.notify_all()

    # -- ops refused for good ----------------------------------------------------------------------

    def _reject(self, op: Op, error: BaseException) -> None:
        if self.sink.primary and isinstance(op, Update) and op.outcome is not None:
            op.outcome.set(False)
        try:
            line = encode_op(op, self.build)
        except Exception:
            swallow("encoding a rejected op", "it could not be kept")
            return
        self._reject_line(line, describe(error))

    def _reject_line(self, line: bytes, error: str) -> None:
        try:
            where = str(self.spool.reject(line, error))
        except OSError:
            where = "nowhere (the spool directory is not writable)"
        self.counters.add(rejected=1)
        log_limited(
            f"rejected-{self.name}-{error.split(':', 1)[0]}", logging.ERROR,
            "wonkalytics: %s refused an op (%s); it was saved to %s (`wonkalytics spool replay` writes it "
            "once the cause is fixed)", self.name, error, where,
        )

    # -- process lifecycle -------------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child (Gunicorn --preload): start clean; the parent writes its own ops."""
        self.counters = Counters(self.name)  # its lock may have been held at fork; the counts are the parent's
        self._init_state()
        self.spool.reset_after_fork()
        try:
            self.sink.after_fork()
        except Exception:
            swallow(f"resetting the {self.name} sink after fork", "the child may reuse the parent's connections")

    def __repr__(self) -> str:
        return f"Lane({self.name!r}, queued={len(self._queue)}, pending={len(self._pending)})"

