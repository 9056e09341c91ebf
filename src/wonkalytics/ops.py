"""Operations (data types below every stage): what the writer queues, spools, retries and hands to every sink.

Two kinds, one queue, one order:

* :class:`Insert` -- a new row: an interaction (an LLM call) or an event (``log()``). It carries the
  source object until its :class:`~wonkalytics.interaction.Record` is built, once, for every sink.
* :class:`Update` -- set one field of the row(s) whose ``key_field`` equals ``key`` (``score()`` and
  ``update_row_property()``, and follow-ups of sinks such as PromptLayer's ``pl_request_id``).

An update is applied after every insert submitted before it, because both travel in one FIFO
lane per sink, through memory and the spool alike. The spool holds ops as versioned JSON lines::

    {"v": 1, "op": "insert", "record": {"kind": ..., "event_id": ..., "row": {...}, "call": {...}}}
    {"v": 1, "op": "update", "id": ..., "key_field": "response_id", "key": ..., "field": "score",
     "value": 87.6, "first_tried": 1764620000.0}

A line without ``"v"`` is a row spooled by release 0.1 (a plain row dict): it is read as an insert.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Literal

from wonkalytics.access import json_text
from wonkalytics.interaction import Record, RecordKind, new_event_id

__all__ = [
    "SPOOL_VERSION",
    "Builder",
    "Insert",
    "Op",
    "Outcome",
    "RowNotFoundError",
    "Update",
    "decode_op",
    "encode_op",
]

SPOOL_VERSION = 1
"""Version of the spool line format written now (release 0.1 wrote bare rows, read as version 0)."""

Builder = Callable[[object], Record]
"""Turns an insert's source (an Interaction or an event row) into its Record (see ``Insert.record``)."""


class RowNotFoundError(LookupError):
    """An update found no row with its key (yet): the row may still come, from another process."""


class Outcome:
    """The result of one op, for a caller that waits on it (``score(..., wait=True)``).

    Set once, by the lane of the primary sink (the SQL table): True when a row was updated, False
    when none had the key or the update was refused.
    """

    __slots__ = ("_event", "result")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.result: bool | None = None

    def set(self, result: bool) -> None:
        """Record the result (the first one wins) and wake the waiter."""
        if not self._event.is_set():
            self.result = result
            self._event.set()

    def wait(self, timeout: float | None) -> bool | None:
        """The result, or None when ``timeout`` seconds passed first."""
        return self.result if self._event.wait(timeout) else None


@dataclass(eq=False, slots=True)
class Insert:
    """Insert one row. ``source`` is an ``Interaction`` or an event row until the record is built.

    Each lane builds the record of an insert before it hands the insert to its sink
    (:meth:`build`); every lane reads the same insert, so the first one to reach it builds it and the
    others take that record. Sinks read :attr:`record`, never the source.
    """

    source: object = None
    built: Record | None = None
    kind: Literal["insert"] = "insert"
    # One lock per insert, not one per process: lanes that build different inserts never wait for
    # each other (a slow ``redact`` in one lane holds back only the lanes reading that very insert),
    # and a forked child inherits no lock held by a parent's lane, as the child's lanes start with
    # empty queues (the parent's inserts are unreachable there).
    _lock: threading.Lock = dataclass_field(default_factory=threading.Lock, repr=False)

    def build(self, builder: Builder) -> Record:
        """The record: built by the first lane that asks, then shared by every lane (built once)."""
        built = self.built
        if built is None:
            with self._lock:
                built = self.built
                if built is None:
                    built = self.built = builder(self.source)
                    self.source = None  # the record is all that is needed from now on
        return built

    @property
    def record(self) -> Record:
        """The finished record (the lane built it before handing the insert to a sink)."""
        built = self.built
        if built is None:
            raise RuntimeError("Insert.record was read before the lane built the record")
        return built


@dataclass(eq=False, slots=True)
class Update:
    """Set ``field`` to ``value`` on the row(s) whose ``key_field`` is ``key``.

    ``field`` and ``key_field`` are our field names (or a team's column names); the table sink
    resolves them to columns. ``value`` has been checked against the column's type at submit time.
    ``first_tried`` is when a sink first found no row for it (epoch seconds): data, spooled so that
    ``update_grace`` spans a restart. The deadline itself runs on the monotonic clock
    (``missing_since``), so a wall-clock step neither gives an update up at once nor keeps it a day.
    """

    key: Any
    field: str
    value: Any
    key_field: str = "response_id"
    id: str = dataclass_field(default_factory=new_event_id)
    first_tried: float | None = None
    optional: bool = False
    """A sink's follow-up (e.g. ``pl_request_id``): skipped, not refused, on a table without that column."""
    outcome: Outcome | None = None
    """Set by the primary sink's lane; not spooled (a waiter lives only in this process)."""
    missing_since: float | None = dataclass_field(default=None, repr=False)
    """``time.monotonic()`` when this process first found no row (back-dated by what the spool says)."""
    kind: Literal["update"] = "update"

    def note_missing(self) -> float:
        """Remember when the row was first missing; returns how long it has been missing (seconds)."""
        now = time.monotonic()
        if self.missing_since is None:
            wall = time.time()
            if self.first_tried is None:
                self.first_tried = wall
            # Missing in an earlier process already (spooled): only that part is measured by the wall
            # clock, as the processes share no other; never negative.
            self.missing_since = now - max(0.0, wall - self.first_tried)
        return now - self.missing_since


Op = Insert | Update


def encode_op(op: Op, build: Builder | None = None) -> bytes:
    """One op as one versioned JSON line (an insert not built yet is built with ``build`` first)."""
    if isinstance(op, Insert):
        record = op.record if build is None else op.build(build)
        data: dict[str, Any] = {"v": SPOOL_VERSION, "op": "insert", "record": record.to_json()}
    else:
        data = {
            "v": SPOOL_VERSION, "op": "update", "id": op.id, "key_field": op.key_field, "key": op.key,
            "field": op.field, "value": op.value, "first_tried": op.first_tried, "optional": op.optional,
        }
    # Odd values become text, a circular one a placeholder (access.json_text): never lose the row.
    return json_text(data, compact=True).encode("utf-8", "surrogatepass") + b"\n"


def decode_op(line: bytes) -> Op:
    """The op of one spooled line (a release-0.1 bare row becomes an event insert)."""
    data = json.loads(line.decode("utf-8", "surrogatepass"))
    if not isinstance(data, dict):
        raise ValueError("spooled line is not a JSON object")
    version = data.get("v")
    if version is None:  # release 0.1: the line is the row itself
        kind: RecordKind = "interaction" if data.get("model") is not None else "event"
        return Insert(built=Record(kind=kind, event_id=str(data.get("event_id") or ""), row=data))
    if version != SPOOL_VERSION:
        raise ValueError(f"spool line version {version!r} is newer than this Wonkalytics (reads v{SPOOL_VERSION})")
    if data.get("op") == "insert":
        return Insert(built=Record.from_json(data["record"]))
    if data.get("op") == "update":
        return Update(
            key=data["key"], field=str(data["field"]), value=data.get("value"),
            key_field=str(data.get("key_field") or "response_id"), id=str(data.get("id") or new_event_id()),
            first_tried=data.get("first_tried"), optional=bool(data.get("optional", False)),
        )
    raise ValueError(f"unknown spooled op {data.get('op')!r}")
