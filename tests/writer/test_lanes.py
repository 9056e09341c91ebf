"""Lanes and the front: batching, retry, overflow in order, updates behind inserts, rejection, restart."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

import pytest
from tests.writer.conftest import BUILD, ListSink, insert, make_lane, make_writer

from wonkalytics.ops import Outcome, Update, decode_op, encode_op
from wonkalytics.writer.spool import Spool, owner_id


def test_ops_are_written_in_batches_and_in_order(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink, batch_size=50)
    for n in range(500):
        writer.submit(insert(str(n)))
    assert writer.flush(10)
    assert [row["event_id"] for row in sink.rows] == [str(n) for n in range(500)]
    assert max(sink.batches) <= 50 and len(sink.batches) < 500
    assert writer.health()["list"].written == 500
    assert writer.shutdown(5)


def test_failed_batches_are_retried_not_dropped(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink)
    sink.down.set()
    writer.submit(insert("a"))
    writer.submit(insert("b"))
    assert writer.flush(0.3) is False  # the destination is down: flush says so instead of pretending
    assert writer.pending() == 2
    health = writer.health()["list"]
    assert health.retried >= 1 and "unreachable" in (health.last_error or "")
    sink.down.clear()
    assert writer.flush(10)
    assert sorted(row["event_id"] for row in sink.rows) == ["a", "b"]
    assert writer.health()["list"].last_error is None
    writer.shutdown(5)


def test_an_update_is_applied_after_the_insert_it_follows(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink)
    sink.down.set()
    writer.submit(insert("e1", response_id="r1"))
    outcome = Outcome()
    writer.submit(Update(key="r1", field="score", value=87.6, outcome=outcome))
    assert outcome.wait(0.2) is None  # still queued behind the outage
    sink.down.clear()
    assert outcome.wait(10) is True
    assert sink.log == ["insert:e1", "update:r1:87.6"]
    writer.shutdown(5)


def test_after_an_overflow_inserts_and_updates_land_in_submission_order(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink, queue_size=5, batch_size=7)
    sink.down.set()
    expected = []
    for n in range(30):
        writer.submit(insert(f"e{n}", response_id=f"r{n}"))
        expected.append(f"insert:e{n}")
        if n % 3 == 0:
            writer.submit(Update(key=f"r{n}", field="score", value=n))
            expected.append(f"update:r{n}:{n}")
    assert list((tmp_path / "spool" / "list").glob("*.jsonl"))  # overflow went to disk, nothing dropped
    assert writer.health()["list"].spooled > 0
    writer.submit(insert("late", response_id="r-late"))  # after the overflow: queues behind on disk
    expected.append("insert:late")
    sink.down.clear()
    assert writer.flush(10)
    assert sink.log == expected
    assert not list((tmp_path / "spool" / "list").glob("[0-9]*.jsonl"))  # drained segments are deleted
    writer.submit(insert("memory-again"))  # the spool is drained: back to memory
    assert writer.flush(10)
    assert sink.log[-1] == "insert:memory-again"
    writer.shutdown(5)


def test_an_update_that_finds_no_row_waits_for_it_within_the_grace(tmp_path: Path, sink: ListSink) -> None:
    lane = make_lane(tmp_path, sink, update_grace=30)
    first, second = Outcome(), Outcome()
    lane.put(Update(key="r9", field="score", value=1, outcome=first))
    lane.put(Update(key="r9", field="score", value=2, outcome=second))
    assert first.wait(5) is False and second.wait(5) is False  # no such row (yet)
    assert lane.flush(time.monotonic() + 5)  # parked updates do not hold flush() up
    assert lane.health().pending_updates == 2
    sink.rows.append({"event_id": "other-process", "response_id": "r9"})  # the row arrives from elsewhere
    deadline = time.monotonic() + 10
    while sink.applied != [("score", "r9", 1), ("score", "r9", 2)] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.applied == [("score", "r9", 1), ("score", "r9", 2)]  # in order: the last value wins
    assert lane.health().pending_updates == 0
    lane.shutdown(time.monotonic() + 5)


def test_a_later_update_of_a_parked_key_waits_behind_it(tmp_path: Path, sink: ListSink) -> None:
    lane = make_lane(tmp_path, sink, update_grace=30)
    lane.put(Update(key="r1", field="score", value=1))
    assert lane.flush(time.monotonic() + 5)
    sink.rows.append({"response_id": "r1"})
    lane.put(Update(key="r1", field="score", value=2))  # must not overtake the parked one
    deadline = time.monotonic() + 10
    while len(sink.applied) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [value for _, _, value in sink.applied] == [1, 2]
    assert sink.rows[0]["score"] == 2
    lane.shutdown(time.monotonic() + 5)


def test_an_update_past_its_grace_is_given_up_into_the_rejected_file(
    tmp_path: Path, sink: ListSink, caplog: pytest.LogCaptureFixture
) -> None:
    lane = make_lane(tmp_path, sink, update_grace=0.05)
    lane.put(Update(key="nobody", field="score", value=5))
    deadline = time.monotonic() + 10
    # Both counts settle: the rejected one is counted before its retry round ends (pending until then).
    while (lane.health().rejected, lane.health().pending_updates) != (1, 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lane.health().rejected == 1 and lane.health().pending_updates == 0
    assert "giving up" in caplog.text
    lines = (tmp_path / "spool" / "list" / f"rejected-{owner_id()}.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    assert entry["v"] == 1 and entry["op"]["op"] == "update" and entry["op"]["key"] == "nobody"
    lane.shutdown(time.monotonic() + 5)


def test_a_refused_op_is_kept_in_the_rejected_file_and_the_rest_is_written(
    tmp_path: Path, sink: ListSink, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer(tmp_path, sink)
    for op in (insert("1"), insert("2", bad=True), insert("3")):
        writer.submit(op)
    assert writer.flush(10)
    assert [row["event_id"] for row in sink.rows] == ["1", "3"]
    rejected = (tmp_path / "spool" / "list" / f"rejected-{owner_id()}.jsonl").read_text().splitlines()
    saved = json.loads(rejected[0])
    assert saved["op"]["record"]["row"]["event_id"] == "2" and "value too long" in saved["error"]
    assert "refused an op" in caplog.text and writer.health()["list"].rejected == 1
    writer.shutdown(5)


def test_one_op_the_server_cannot_take_is_isolated_and_the_rest_flow_on(
    tmp_path: Path, sink: ListSink, caplog: pytest.LogCaptureFixture
) -> None:
    # e.g. a value over MariaDB's max_allowed_packet: "server has gone away", which looks like an outage
    sink.poison.add("huge")
    writer = make_writer(tmp_path, sink, batch_size=10)
    for op in (insert("a"), insert("huge"), insert("b"), insert("c")):
        writer.submit(op)
    assert writer.flush(10)
    assert [row["event_id"] for row in sink.rows] == ["a", "b", "c"]
    assert writer.health()["list"].rejected == 1
    writer.shutdown(5)


def test_while_the_destination_is_down_no_op_is_called_poison(tmp_path: Path, sink: ListSink) -> None:
    sink.down.set()
    writer = make_writer(tmp_path, sink)
    writer.submit(insert("only"))
    assert writer.flush(0.5) is False
    assert writer.health()["list"].rejected == 0  # the probe fails too: an outage, not a bad op
    sink.down.clear()
    assert writer.flush(10)
    assert [row["event_id"] for row in sink.rows] == ["only"]
    writer.shutdown(5)


def test_disk_durability_puts_each_op_on_disk_before_submit_returns(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink, durability="disk")
    sink.down.set()
    writer.submit(insert("durable", response="héllo"))
    outcome = Outcome()
    writer.submit(Update(key="durable", key_field="event_id", field="score", value=3, outcome=outcome))
    segments = list((tmp_path / "spool" / "list").glob("*.jsonl"))
    lines = [json.loads(line) for path in segments for line in path.read_text().splitlines()]
    assert [line["op"] for line in lines] == ["insert", "update"]
    assert lines[0]["record"]["row"]["response"] == "héllo" and lines[0]["v"] == 1
    for path in segments:
        assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "spool" / "list").stat().st_mode & 0o777 == 0o700
    sink.down.clear()
    assert outcome.wait(10) is True  # the waiter survives the trip through the spool
    assert writer.flush(10)
    assert sink.rows[0]["score"] == 3
    writer.shutdown(5)


def test_ops_left_at_exit_are_spooled_and_replayed_by_the_next_process(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink)
    sink.down.set()
    writer.submit(insert("late", response_id="r-late"))
    writer.submit(Update(key="r-late", field="score", value=9))
    assert writer.shutdown(0.2) is False
    segments = list((tmp_path / "spool" / "list").glob("*.jsonl"))
    assert len(segments) == 1
    segments[0].rename(segments[0].with_name(f"{2**22 + 12345}-1.jsonl"))  # a process that is gone
    writer.release_spools()  # its locks go, as they would with the process
    fresh = ListSink()
    successor = make_writer(tmp_path, fresh)
    successor.submit(insert("new"))  # starts the lane, which adopts the orphan first
    assert successor.flush(10)
    assert fresh.log == ["insert:late", "update:r-late:9", "insert:new"]  # the orphan first, in order
    assert not list((tmp_path / "spool" / "list").glob("*.jsonl"))
    successor.shutdown(5)


def test_release_01_segments_are_still_replayed(tmp_path: Path) -> None:
    legacy = tmp_path / "spool"
    legacy.mkdir()
    row = {"event_id": "old-format", "action": "from 0.1", "timestamp": "2026-11-01T10:00:00"}
    (legacy / f"{2**22 + 999}-1.jsonl").write_bytes(json.dumps(row).encode() + b"\n")
    sink = ListSink()
    lane = make_lane(tmp_path, sink, legacy_spool=legacy)
    lane.put(insert("new"))
    assert lane.flush(time.monotonic() + 10)
    assert [r["event_id"] for r in sink.rows] == ["old-format", "new"]
    assert sink.rows[0]["action"] == "from 0.1"
    assert not list(legacy.glob("*.jsonl"))
    lane.shutdown(time.monotonic() + 5)


def test_a_slow_sink_never_holds_up_another(tmp_path: Path) -> None:
    slow, fast = ListSink("slow"), ListSink("fast")
    slow.gate = threading.Event()  # write() blocks until set
    writer = make_writer(tmp_path, slow, fast)
    started = time.monotonic()
    for n in range(100):
        writer.submit(insert(str(n)))
    assert time.monotonic() - started < 1.0  # the caller never waits on a sink
    assert writer.lane("fast") is not None and writer.lane("fast").flush(time.monotonic() + 10)  # type: ignore[union-attr]
    assert len(fast.rows) == 100 and slow.rows == []
    assert writer.flush(0.2) is False  # one deadline for all lanes: the slow one is not done
    slow.gate.set()
    assert writer.flush(10)
    assert len(slow.rows) == 100
    writer.shutdown(5)


def test_shutdown_never_waits_past_its_deadline(tmp_path: Path) -> None:
    hung = ListSink("hung")
    hung.gate = threading.Event()
    writer = make_writer(tmp_path, hung)
    writer.submit(insert("stuck"))
    time.sleep(0.05)  # let the lane pick it up and hang in write()
    started = time.monotonic()
    assert writer.shutdown(0.3) is False
    assert time.monotonic() - started < 1.5
    lines = [line for path in (tmp_path / "spool" / "hung").glob("*.jsonl") for line in Spool.read(path)]
    assert [decode_op(line).record.event_id for line in lines] == ["stuck"]  # kept for the next start
    hung.gate.set()


def test_ops_submitted_after_shutdown_are_still_written(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink)
    writer.submit(insert("before"))
    assert writer.shutdown(5)
    writer.submit(insert("after"))  # e.g. a stream collected after wonkalytics.shutdown()
    assert writer.flush(10)
    assert [row["event_id"] for row in sink.rows] == ["before", "after"]
    writer.shutdown(5)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_lanes(tmp_path: Path, sink: ListSink) -> None:
    writer = make_writer(tmp_path, sink)
    writer.submit(insert("parent"))
    assert writer.flush(10)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: its lanes must start fresh and work
        code = 1
        try:
            writer.submit(insert("child"))
            ok = writer.flush(10) and sink.forks == 1 and sink.rows[-1]["event_id"] == "child"
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


def test_segments_of_live_processes_are_left_alone(tmp_path: Path) -> None:
    theirs = tmp_path / f"{os.getppid()}-1.jsonl"
    theirs.write_bytes(encode_op(insert("theirs"), BUILD))
    fd = os.open(theirs, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: as another process holds it
    try:
        assert Spool(tmp_path, fsync=False).adopt_orphans() == 0
    finally:
        os.close(fd)
    assert Spool(tmp_path, fsync=False).adopt_orphans() == 1  # unlocked: its owner is gone, whatever its pid


def test_a_segment_of_a_previous_process_with_the_same_pid_is_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False)
    previous = tmp_path / f"{os.getpid()}-1.jsonl"
    previous.write_bytes(encode_op(insert("previous life"), BUILD))
    other_lane = Spool(tmp_path, fsync=False)
    other_lane.append(encode_op(insert("another lane's"), BUILD))
    spool.append(encode_op(insert("mine"), BUILD))
    assert spool.adopt_orphans() == 1
    taken = [spool.take(), spool.take()]
    ids = sorted(decode_op(line).record.event_id for seg in taken if seg for line in Spool.read(seg[0]))
    assert ids == ["mine", "previous life"]
    assert spool.take() is None
    spool.release()
    other_lane.release()


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


def test_the_spool_encoder_never_loses_an_op() -> None:
    circular: dict[str, object] = {"a": 1}
    circular["self"] = circular
    deep: dict[str, object] = {}
    node = deep
    for _ in range(2000):
        node["n"] = {}
        node = node["n"]  # type: ignore[assignment]
    row = {"obj": Unprintable(), "circular": circular, "tuple_keys": {(1, 2): "x"}, "deep": deep,
           "lone": "\ud800", "set": {1}}
    line = encode_op(insert("odd", **row), BUILD)
    decoded = decode_op(line).record
    assert decoded.event_id == "odd" and decoded.row["obj"] == "<unprintable Unprintable>"
    assert decoded.row["set"] == [1]


def test_at_exit_the_ops_still_in_memory_go_before_those_that_had_spilled(tmp_path: Path) -> None:
    sink = ListSink()
    sink.down.set()
    writer = make_writer(tmp_path, sink, queue_size=3, batch_size=2)
    for n in range(8):
        writer.submit(insert(f"e{n}"))  # e0..e2 in memory (one batch of them in flight), e3.. on disk
    assert writer.shutdown(0.3) is False
    for path in (tmp_path / "spool" / "list").glob("*.jsonl"):  # the process is gone
        path.rename(path.with_name(f"{2**22 + 777}-{path.name.split('-', 1)[1]}"))
    writer.release_spools()  # its locks go, as they would with the process
    fresh = ListSink()
    successor = make_writer(tmp_path, fresh)
    successor.submit(insert("next"))
    assert successor.flush(10)
    assert [row["event_id"] for row in fresh.rows] == [f"e{n}" for n in range(8)] + ["next"]
    successor.shutdown(5)
