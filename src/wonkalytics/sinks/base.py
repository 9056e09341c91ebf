"""What a sink is: one destination of ops, driven by one writer lane.

Adding a destination is one class with these five members (and a settings block); the lane around
it supplies batching, retry with backoff, the spool ``spool_dir/<name>/``, the rejected-ops file and
the counters of ``wonkalytics.health()``::

    class MySink:
        name = "mine"            # lane, spool directory and health key
        primary = False          # True only for the SQL table: its update results answer score()
        needs_call = False       # True when write() reads Record.call (the structured call)

        def write(self, ops):   # -> list of Rejection; raise when the whole batch failed
            ...
        def is_transient(self, exc): ...   # retry the batch later (True) or isolate the bad op (False)
        def close(self, timeout): ...
        def after_fork(self): ...

``write`` receives the ops in submission order and must apply them in that order. Every
:class:`~wonkalytics.ops.Insert` comes with its record built (``op.record``: the one record every
sink reads; the lane builds it). It returns the ops it refuses for good, each with the reason; an
:class:`~wonkalytics.ops.Update` that finds no row is returned with
:class:`~wonkalytics.ops.RowNotFoundError`, and the lane keeps retrying it for ``update_grace``
seconds. Ops a sink has nothing to do with are simply skipped (not rejected).

Optional: ``delivered(op) -> bool``, for a sink whose writes are not idempotent (PromptLayer): True for
an op it already delivered in a batch that is still being retried; the lane does not spool such an op
at exit, so the next process does not send it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

from wonkalytics.ops import Op

__all__ = ["ColumnCheck", "Rejection", "Sink"]


class Rejection(NamedTuple):
    """An op a sink will not take (now or ever), and why."""

    op: Op
    error: BaseException


@runtime_checkable
class Sink(Protocol):
    """One destination. See the module docstring for the contract of each member."""

    name: str
    primary: bool
    needs_call: bool

    def write(self, ops: Sequence[Op]) -> list[Rejection]:
        """Apply ``ops`` in order; return the refused ones; raise when the batch as a whole failed."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """True when retrying later may succeed (the destination is down or busy)."""
        ...

    def close(self, timeout: float) -> None:
        """Release connections; never wait longer than ``timeout`` seconds."""
        ...

    def after_fork(self) -> None:
        """In a forked child: drop what belongs to the parent (pools, sockets, files)."""
        ...


class ColumnCheck(Protocol):
    """Checks one update before it is queued: ``check(field, value, key_field, timeout) -> value``.

    Raises ``UnknownColumnError`` when ``field`` or ``key_field`` is no column of the destination and
    ``ValueError`` when the column cannot hold ``value`` exactly; returns the value as it will be
    stored. :func:`wonkalytics.recorder.assemble` hands the recorder the primary sink's checker, so
    the recorder checks ``score()`` without knowing which sink that is.
    """

    def __call__(self, field: str, value: Any, key_field: str, timeout: float) -> Any:
        """The checked value (raising as described above)."""
        ...
