"""The lane builds each insert's record once, before ``sink.write``; every lane reads that one record.

No process-wide lock: a slow build (an app's ``redact``) in one writer holds back no other writer,
and an insert whose record cannot be built is refused alone.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.writer.conftest import insert

from wonkalytics.interaction import Record
from wonkalytics.ops import Insert, Op
from wonkalytics.record.build import record_builder
from wonkalytics.sinks.base import Rejection
from wonkalytics.writer.front import Writer
from wonkalytics.writer.lane import Lane
from wonkalytics.writer.spool import Spool


class Records:
    """A sink that keeps the records it is handed (and fails if one comes unbuilt)."""

    primary = False
    needs_call = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.records: list[Record] = []

    def write(self, ops: Sequence[Op]) -> list[Rejection]:
        for op in ops:
            if isinstance(op, Insert):
                assert op.built is not None, "the sink was handed an insert whose record is not built"
                self.records.append(op.record)
        return []

    def is_transient(self, exc: BaseException) -> bool:
        return False

    def close(self, timeout: float) -> None:
        pass

    def after_fork(self) -> None:
        pass


class Counting:
    """A builder that counts its calls, and can be made to wait (a slow redact) or fail."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.gate: threading.Event | None = None
        self.inside = threading.Event()
        self.build = record_builder()

    def __call__(self, source: object) -> Record:
        assert isinstance(source, dict)
        with self.lock:
            self.calls.append(str(source["event_id"]))
        if source.get("fail"):
            raise TypeError("the redact callable returned None")
        if self.gate is not None:
            self.inside.set()
            assert self.gate.wait(10)
        return self.build(source)


def _writer(tmp_path: Path, build: Counting, *sinks: Records) -> Writer:
    return Writer([
        Lane(s, spool=Spool(tmp_path / s.name, fsync=False), build=build, flush_interval=0.01) for s in sinks
    ])


def test_each_record_is_built_once_and_shared_by_every_lane(tmp_path: Path) -> None:
    build = Counting()
    sinks = [Records("one"), Records("two"), Records("three")]
    writer = _writer(tmp_path, build, *sinks)
    for n in range(50):
        writer.submit(insert(f"e{n}", action="a"))
    assert writer.flush(10)
    assert sorted(build.calls) == sorted(f"e{n}" for n in range(50))  # once each, not once per lane
    first = sinks[0].records
    assert [r.event_id for r in first] == [f"e{n}" for n in range(50)]
    for other in sinks[1:]:
        assert all(a is b for a, b in zip(first, other.records, strict=True))  # the same object
    writer.shutdown(5)


def test_a_slow_build_in_one_writer_holds_back_no_other(tmp_path: Path) -> None:
    slow, quick = Counting(), Counting()
    slow.gate = threading.Event()
    held = _writer(tmp_path / "a", slow, Records("held"))
    free_sink = Records("free")
    free = _writer(tmp_path / "b", quick, free_sink)
    try:
        held.submit(insert("slow", action="a"))
        assert slow.inside.wait(10), "the lane never started building"
        free.submit(insert("quick", action="a"))
        # With one lock per process the second writer's build waited for the first's 10 s gate.
        assert free.flush(5)
        assert [r.event_id for r in free_sink.records] == ["quick"]
    finally:
        slow.gate.set()
    assert held.flush(10)
    held.shutdown(5)
    free.shutdown(5)


def test_an_insert_whose_record_cannot_be_built_is_refused_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build = Counting()
    sink = Records("feed")
    writer = _writer(tmp_path, build, sink)
    for n, fields in enumerate([{}, {"fail": True, "email": "ada@example.com"}, {}]):
        writer.submit(insert(f"e{n}", action="a", **fields))
    assert writer.flush(10)
    assert [r.event_id for r in sink.records] == ["e0", "e2"]
    assert writer.health()["feed"].rejected == 1
    assert "could not be built" in caplog.text
    # Not kept unredacted anywhere on disk (its redaction failed).
    assert not any("ada@example.com" in p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    writer.shutdown(5)


def test_an_unbuilt_insert_has_no_record_to_read() -> None:
    op = Insert(source={"event_id": "e", "action": "a"})
    with pytest.raises(RuntimeError, match="before the lane built"):
        op.record  # noqa: B018 - the property is the test
    record: Any = op.build(record_builder())
    assert op.record is record and op.source is None
    assert op.build(lambda source: pytest.fail("built twice")) is record
