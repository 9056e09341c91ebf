"""A sink double for the lane tests: keeps what it was given, fails on demand (SQL is in e2e tests)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from wonkalytics.interaction import Record
from wonkalytics.ops import Insert, Op, RowNotFoundError, Update
from wonkalytics.record.build import record_builder
from wonkalytics.sinks.base import Rejection
from wonkalytics.writer.front import Writer
from wonkalytics.writer.lane import Lane
from wonkalytics.writer.spool import Spool

BUILD = record_builder()


class Outage(Exception):
    """Stands for a lost connection."""


class BadData(Exception):
    """Stands for an op the destination refuses for good."""


class ListSink:
    """Rows in a list, updates applied to them; ``down`` fails every write; ``bad`` rows are refused."""

    primary = True
    needs_call = False

    def __init__(self, name: str = "list") -> None:
        self.name = name
        self.rows: list[dict[str, Any]] = []
        self.applied: list[tuple[str, Any, Any]] = []  # (field, key, value) in the order applied
        self.log: list[str] = []  # "insert:<event_id>" / "update:<key>:<value>", in order
        self.batches: list[int] = []
        self.down = threading.Event()
        self.poison: set[str] = set()  # event ids that fail as an outage would (e.g. a too-large packet)
        self.alive = True  # what probe() answers
        self.attempts = 0
        self.forks = 0
        self.gate: threading.Event | None = None  # when set to an unset event, write() blocks on it

    def write(self, ops: Sequence[Op]) -> list[Rejection]:
        self.attempts += 1
        if self.gate is not None:
            self.gate.wait()
        if self.down.is_set():
            raise Outage("database unreachable")
        records = [op.record for op in ops if isinstance(op, Insert)]
        if any(r.event_id in self.poison for r in records):
            raise Outage("server has gone away")
        rejections: list[Rejection] = []
        for op in ops:
            if isinstance(op, Insert):
                record: Record = op.record
                if record.row.get("bad"):
                    rejections.append(Rejection(op, BadData("value too long for column")))
                    continue
                self.rows.append(dict(record.row))
                self.log.append(f"insert:{record.event_id}")
            else:
                assert isinstance(op, Update)
                matched = [row for row in self.rows if row.get(op.key_field) == op.key]
                if not matched:
                    rejections.append(Rejection(op, RowNotFoundError(op.key)))
                    continue
                for row in matched:
                    row[op.field] = op.value
                self.applied.append((op.field, op.key, op.value))
                self.log.append(f"update:{op.key}:{op.value}")
        self.batches.append(len(ops))
        return rejections

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, Outage)

    def probe(self) -> bool:
        return self.alive and not self.down.is_set()

    def close(self, timeout: float) -> None:
        pass

    def after_fork(self) -> None:
        self.forks += 1


def make_lane(tmp_path: Path, sink: ListSink, **options: Any) -> Lane:
    durability = options.pop("durability", "memory")
    options.setdefault("flush_interval", 0.01)
    return Lane(
        sink, spool=Spool(tmp_path / "spool" / sink.name, fsync=durability == "disk"), build=BUILD,
        durability=durability, **options,
    )


def make_writer(tmp_path: Path, *sinks: ListSink, **options: Any) -> Writer:
    return Writer([make_lane(tmp_path, sink, **options) for sink in sinks])


def insert(event_id: str, **fields: Any) -> Insert:
    return Insert(source={"event_id": event_id, **fields})


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries in milliseconds, so outages in these tests cost no wall time."""
    import wonkalytics.writer.delivery as delivery_module
    import wonkalytics.writer.parked as parked_module

    monkeypatch.setattr(delivery_module, "backoff", lambda attempt: 0.01)
    monkeypatch.setattr(parked_module, "update_delay", lambda rounds: min(0.05, 0.01 * 2**rounds))


@pytest.fixture
def sink() -> ListSink:
    return ListSink()
