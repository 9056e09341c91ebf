"""The writer's lifecycle (issue 15, issue 18 structure item 5): shutdown closes every sink in time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.sinks.conftest import build

from wonkalytics.ops import Builder, Insert, Op
from wonkalytics.sinks.base import Rejection
from wonkalytics.writer.front import Writer
from wonkalytics.writer.lane import Lane
from wonkalytics.writer.spool import Spool


class Keeping:
    """A sink that keeps what it is given and when it was closed."""

    primary = False
    needs_call = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.ops: list[Op] = []
        self.closed: list[float] = []

    def write(self, ops: Sequence[Op], build: Builder) -> list[Rejection]:
        self.ops.extend(ops)
        return []

    def is_transient(self, exc: BaseException) -> bool:
        return False

    def close(self, timeout: float) -> None:
        self.closed.append(timeout)

    def after_fork(self) -> None:
        pass


def test_shutdown_closes_every_sink_within_its_deadline(tmp_path: Path) -> None:
    sinks = [Keeping("one"), Keeping("two")]
    lanes = [Lane(s, spool=Spool(tmp_path / s.name, fsync=False), build=build, flush_interval=0.01) for s in sinks]
    writer = Writer(lanes)
    writer.submit(Insert(source={"event_id": "e1", "action": "a"}))
    assert writer.shutdown(3.0)
    for sink in sinks:
        assert len(sink.ops) == 1
        assert len(sink.closed) == 1 and 0 <= sink.closed[0] <= 3.0  # what was left of the deadline
