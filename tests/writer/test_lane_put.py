"""``Lane.put``'s two ways to disk: when no thread can start (interpreter shutdown) and when the queue is full.

Both go through the one spool call in ``put``; what differs is pinned here: at shutdown the op is on
disk for the next process and not counted (no thread will write it, so a flush must not wait for it),
and a disk that refuses it is said loudly; on overflow it is counted, and a refusing disk keeps it in
memory instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.writer.conftest import ListSink, insert, make_lane

from wonkalytics.ops import decode_op


def _no_thread(*_: Any) -> None:
    raise RuntimeError("can't create new thread at interpreter shutdown")


def _full_disk(*_: Any) -> int:
    raise OSError(28, "No space left on device")


def _spooled(tmp_path: Path) -> list[str]:
    lines = [line for p in sorted((tmp_path / "spool" / "list").glob("*.jsonl")) if not p.name.startswith("rejected")
             for line in p.read_bytes().splitlines()]
    return [decode_op(line).record.event_id for line in lines]  # type: ignore[union-attr]


def test_at_interpreter_shutdown_an_op_goes_to_the_spool_uncounted(
    tmp_path: Path, sink: ListSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane = make_lane(tmp_path, sink)
    monkeypatch.setattr(lane, "_start", _no_thread)
    lane.put(insert("late"))
    assert _spooled(tmp_path) == ["late"] and lane.health().spooled == 1
    assert lane.submitted == 0 and not lane._queue  # no thread will write it: the next process does
    assert sink.rows == []


def test_at_interpreter_shutdown_a_refusing_disk_is_an_error(
    tmp_path: Path, sink: ListSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept in memory it was lost without a word: the error reaches Writer.submit, which logs it lost."""
    lane = make_lane(tmp_path, sink)
    monkeypatch.setattr(lane, "_start", _no_thread)
    monkeypatch.setattr(lane.spool, "append_many", _full_disk)
    with pytest.raises(OSError, match="No space"):
        lane.put(insert("late"))
    assert lane.submitted == 0 and not lane._queue


def test_on_overflow_ops_spill_in_order_and_are_counted(tmp_path: Path, sink: ListSink) -> None:
    sink.down.set()
    lane = make_lane(tmp_path, sink, queue_size=2, batch_size=1)
    for n in range(5):
        lane.put(insert(f"e{n}"))
    assert lane.submitted == 5 and lane.health().spooled >= 3
    sink.down.clear()
    assert lane.flush(time.monotonic() + 10)
    assert [row["event_id"] for row in sink.rows] == [f"e{n}" for n in range(5)]
    lane.shutdown(time.monotonic() + 5)


def test_on_overflow_a_refusing_disk_keeps_the_op_in_memory(
    tmp_path: Path, sink: ListSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink.down.set()
    lane = make_lane(tmp_path, sink, queue_size=1, batch_size=1)
    monkeypatch.setattr(lane.spool, "append_many", _full_disk)
    for n in range(3):
        lane.put(insert(f"e{n}"))
    assert lane.submitted == 3 and lane.health().spool_error is not None
    monkeypatch.undo()
    sink.down.clear()
    assert lane.flush(time.monotonic() + 10)
    assert sorted(row["event_id"] for row in sink.rows) == ["e0", "e1", "e2"]
    lane.shutdown(time.monotonic() + 5)
