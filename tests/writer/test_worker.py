"""The background writer against a Sink double that can fail on demand (the SQL path is in e2e tests)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from wonkalytics.writer.spool import Spool, encode_row
from wonkalytics.writer.worker import BackgroundWriter


class Outage(Exception):
    """Stands for a lost database connection."""


class BadData(Exception):
    """Stands for a row the database refuses for good."""


class ListSink:
    """Keeps written rows in a list; fails while ``down`` is set; refuses rows with ``bad`` set."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.batches: list[int] = []
        self.down = threading.Event()
        self.attempts = 0
        self.forks = 0

    def to_row(self, item: object) -> dict[str, Any]:
        assert isinstance(item, dict)
        return item

    def write(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Exception]]:
        self.attempts += 1
        if self.down.is_set():
            raise Outage("database unreachable")
        if any(row.get("bad") for row in rows):
            raise BadData("value too long for column")
        self.rows.extend(dict(row) for row in rows)
        self.batches.append(len(rows))
        return []

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, Outage)

    def after_fork(self) -> None:
        self.forks += 1


def make_writer(tmp_path: Path, sink: ListSink, **options: Any) -> BackgroundWriter:
    durability = options.pop("durability", "memory")
    spool = Spool(tmp_path / "spool", fsync=durability == "disk")
    options.setdefault("flush_interval", 0.01)
    options.setdefault("max_backoff", 0.05)
    return BackgroundWriter(sink, spool=spool, durability=durability, **options)


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


def test_rows_are_written_in_batches(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink, batch_size=50)
    for n in range(500):
        writer.submit({"event_id": str(n)})
    assert writer.flush(10)
    assert [row["event_id"] for row in sink.rows] == [str(n) for n in range(500)]
    assert max(sink.batches) <= 50
    assert len(sink.batches) < 500  # batched, not one write per row
    assert writer.shutdown(5)


def test_failed_batches_are_retried_not_dropped(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink)
    sink.down.set()
    writer.submit({"event_id": "a"})
    writer.submit({"event_id": "b"})
    assert writer.flush(0.3) is False  # the database is down: flush says so instead of pretending
    assert writer.pending() == 2
    sink.down.clear()
    assert writer.flush(10)
    assert sorted(row["event_id"] for row in sink.rows) == ["a", "b"]
    assert sink.attempts > 2
    writer.shutdown(5)


def test_a_refused_row_is_kept_beside_the_spool_and_the_rest_is_written(
    tmp_path: Path, sink: ListSink, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer(tmp_path, sink)
    for row in ({"event_id": "1"}, {"event_id": "2", "bad": True}, {"event_id": "3"}):
        writer.submit(row)
    assert writer.flush(10)
    assert sorted(row["event_id"] for row in sink.rows) == ["1", "3"]
    rejected = (tmp_path / "spool" / f"rejected-{os.getpid()}.jsonl").read_text().splitlines()
    assert len(rejected) == 1
    saved = json.loads(rejected[0])
    assert saved["row"]["event_id"] == "2" and "value too long" in saved["error"]
    assert "refused an analytics row" in caplog.text
    writer.shutdown(5)


def test_a_full_queue_spills_to_disk_and_the_rows_still_land(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink, queue_size=5)
    sink.down.set()
    for n in range(40):
        writer.submit({"event_id": str(n)})
    assert list((tmp_path / "spool").glob("*.jsonl"))  # overflow went to disk, nothing dropped
    sink.down.clear()
    assert writer.flush(10)
    assert sorted(int(row["event_id"]) for row in sink.rows) == list(range(40))
    assert not list((tmp_path / "spool").glob("*.jsonl"))  # drained segments are deleted
    writer.shutdown(5)


def test_disk_durability_puts_each_row_on_disk_before_submit_returns(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink, durability="disk")
    sink.down.set()
    writer.submit({"event_id": "durable", "response": "héllo"})
    lines = [line for path in (tmp_path / "spool").glob("*.jsonl") for line in path.read_text().splitlines()]
    assert [json.loads(line)["response"] for line in lines] == ["héllo"]
    sink.down.clear()
    assert writer.flush(10)
    assert [row["event_id"] for row in sink.rows] == ["durable"]
    writer.shutdown(5)


def test_rows_left_at_exit_are_spooled_and_replayed_by_the_next_process(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink)
    sink.down.set()
    writer.submit({"event_id": "late"})
    assert writer.shutdown(0.2) is False
    segments = list((tmp_path / "spool").glob("*.jsonl"))
    assert len(segments) == 1
    # pretend the process that wrote it is gone (a pid that cannot be alive)
    segments[0].rename(segments[0].with_name(f"{2**22 + 12345}-1.jsonl"))
    fresh = ListSink()
    successor = make_writer(tmp_path, fresh)
    successor.submit({"event_id": "new"})  # starts the worker, which adopts the orphan first
    assert successor.flush(10)
    assert {row["event_id"] for row in fresh.rows} == {"late", "new"}
    assert not list((tmp_path / "spool").glob("*.jsonl"))
    successor.shutdown(5)


def test_segments_of_live_processes_are_left_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False)
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / f"{os.getppid()}-1.jsonl").write_bytes(encode_row({"event_id": "theirs"}))
    assert spool.adopt_orphans() == 0


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "seg.jsonl"
    path.write_bytes(encode_row({"a": 1}) + b'{"b": ')
    assert [json.loads(line) for line in Spool.read(path)] == [{"a": 1}]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_writer(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink)
    writer.submit({"event_id": "parent"})
    assert writer.flush(10)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: its writer must start fresh and work
        code = 1
        try:
            writer.submit({"event_id": "child"})
            ok = writer.flush(10) and sink.forks == 1 and [r["event_id"] for r in sink.rows][-1] == "child"
            os.write(write_end, b"ok" if ok else b"no")
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert os.read(read_end, 2) == b"ok" and status == 0
    os.close(read_end)
    assert [row["event_id"] for row in sink.rows] == ["parent"]
    writer.shutdown(5)


def test_rows_submitted_after_shutdown_are_still_written(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink)
    writer.submit({"event_id": "before"})
    assert writer.shutdown(5)
    writer.submit({"event_id": "after"})  # e.g. a stream collected after wonkalytics.shutdown()
    assert writer.flush(10)
    assert [row["event_id"] for row in sink.rows] == ["before", "after"]
    writer.shutdown(5)


def test_a_segment_of_a_previous_process_with_the_same_pid_is_replayed(tmp_path: Path) -> None:
    # in a container a restarted app is often pid 1 again: same pid, but not our segment
    spool = Spool(tmp_path, fsync=False)
    previous = tmp_path / f"{os.getpid()}-1.jsonl"
    previous.write_bytes(encode_row({"event_id": "previous life"}))
    os.utime(previous, (1_000_000_000, 1_000_000_000))  # written long before this process started
    (tmp_path / f"{os.getpid()}-2.jsonl").write_bytes(encode_row({"event_id": "another recorder's"}))
    spool.append(encode_row({"event_id": "mine"}))
    assert spool.adopt_orphans() == 1
    taken = [spool.take(), spool.take()]
    rows = sorted(json.loads(line)["event_id"] for seg in taken if seg for line in Spool.read(seg[0]))
    assert rows == ["mine", "previous life"]
