"""The writer's lifecycle (issue 15, issue 18 structure item 5): shutdown closes every sink in time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.sinks.conftest import build

from wonkalytics.ops import Insert, Op, RowNotFoundError, Update
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

    def write(self, ops: Sequence[Op]) -> list[Rejection]:
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


class NoRows(Keeping):
    """A sink where no update finds its row (the insert is in another worker, late)."""

    def write(self, ops: Sequence[Op]) -> list[Rejection]:
        self.ops.extend(ops)
        return [Rejection(op, RowNotFoundError("not yet")) for op in ops if isinstance(op, Update)]


def _parked_lane(tmp_path: Path, grace: float) -> tuple[Lane, NoRows]:
    sink = NoRows("late")
    lane = Lane(sink, spool=Spool(tmp_path / "late", fsync=False), build=build, flush_interval=0.01,
                update_grace=grace)
    lane.put(Update(key="resp-1", field="score", value=1.0))
    assert lane.flush(time.monotonic() + 5)
    assert lane.health().pending_updates == 1
    return lane, sink


def _looks(sink: NoRows) -> int:
    return sum(isinstance(op, Update) for op in sink.ops)


def test_a_wall_clock_step_forward_does_not_give_up_a_parked_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane, sink = _parked_lane(tmp_path, grace=900.0)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 86400.0)  # NTP steps the clock a day ahead
    deadline = time.monotonic() + 10
    while _looks(sink) < 3 and time.monotonic() < deadline:  # the lane looks again at 0.5 s, 1.5 s
        time.sleep(0.05)
    assert _looks(sink) >= 3
    health = lane.health()
    assert health.rejected == 0 and health.pending_updates == 1
    lane.shutdown(time.monotonic() + 2)


def test_a_wall_clock_step_back_does_not_keep_a_parked_update_past_its_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane, _ = _parked_lane(tmp_path, grace=1.0)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 86400.0)  # the clock is set a day back
    deadline = time.monotonic() + 10
    while lane.health().rejected == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    health = lane.health()
    assert health.rejected == 1 and health.pending_updates == 0  # given up after 1 s, as configured
    lane.shutdown(time.monotonic() + 2)


AT_EXIT = """
import sys
from pathlib import Path
from wonkalytics.ops import Insert
from wonkalytics.writer.front import Writer
from wonkalytics.writer.lane import Lane
from wonkalytics.writer.spool import Spool
from wonkalytics.record.build import record_builder

out = Path(sys.argv[1])

class Marking:
    name, primary, needs_call = "marking", False, False
    def write(self, ops):
        with out.open("a") as f:
            f.write(f"write {len(ops)}\\n")
        return []
    def is_transient(self, exc):
        return False
    def close(self, timeout):
        with out.open("a") as f:
            f.write(f"close {0 < timeout <= 4.0}\\n")
    def after_fork(self):
        pass

writer = Writer([Lane(Marking(), spool=Spool(out.parent / "spool", fsync=False), build=record_builder(),
                      flush_interval=0.01)], exit_timeout=4.0)
writer.submit(Insert(source={"event_id": "e1", "action": "a"}))
# no flush, no shutdown: the interpreter's exit writes the op and closes the sink
"""


def test_sinks_are_closed_at_interpreter_exit_within_the_exit_timeout(tmp_path: Path) -> None:
    out = tmp_path / "marks.txt"
    done = subprocess.run([sys.executable, "-c", AT_EXIT, str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_text().splitlines() == ["write 1", "close True"]  # written first, then closed once
