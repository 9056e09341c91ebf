"""The JSON-lines sink: one full record per line, one file per UTC day and process, 0600, fsynced."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.sinks.conftest import Call, build, insert

from wonkalytics.ops import Insert, Update
from wonkalytics.settings import Settings
from wonkalytics.sinks import jsonl
from wonkalytics.sinks.base import Sink
from wonkalytics.sinks.jsonl import JsonLinesSink


def lines(directory: Path) -> list[dict[str, object]]:
    return [json.loads(line) for path in sorted(directory.glob("*.jsonl")) for line in path.read_text().splitlines()]


def test_records_and_updates_land_one_per_line(tmp_path: Path, call: Call) -> None:
    sink = JsonLinesSink(tmp_path / "feed")
    assert isinstance(sink, Sink)
    first, second = call("chat"), call("responses", stream=True)
    event = Insert(built=build({"event_id": "ev-1", "action": "login", "timestamp": datetime(2026, 1, 2, 3, 4, 5)}))
    score = Update(key=first.response_id, field="score", value=87.6)
    assert sink.write([insert(first), event, insert(second), score]) == []
    got = lines(tmp_path / "feed")
    assert [line["kind"] for line in got] == ["interaction", "event", "interaction", "update"]
    assert got[0]["event_id"] == first.event_id and got[0]["row"]["response_id"] == first.response_id
    assert got[0]["call"]["response"]["id"] == first.response_id  # the full structured record
    assert got[2]["call"]["api"] == "responses" and got[2]["call"]["stream"] is True
    assert got[1]["row"] == {"event_id": "ev-1", "action": "login", "timestamp": "2026-01-02T03:04:05"}
    assert got[3] == {**got[3], "id": score.id, "key": first.response_id, "field": "score", "value": 87.6}
    sink.close(1)


def test_file_per_utc_day_and_process_owner_only(tmp_path: Path, call: Call) -> None:
    now = [datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()]
    sink = JsonLinesSink(tmp_path / "feed", clock=lambda: now[0])
    sink.write([insert(call("chat"))])
    now[0] += 2  # past midnight UTC: a new file
    sink.write([insert(call("chat"))])
    files = sorted(p.name for p in (tmp_path / "feed").iterdir())
    host_pid = f"{sink.path_for(now[0]).name.split('-', 4)[-1]}"
    assert files == [f"wonkalytics-2026-03-01-{host_pid}", f"wonkalytics-2026-03-02-{host_pid}"]
    assert host_pid.endswith(f"-{os.getpid()}.jsonl")
    for path in (tmp_path / "feed").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "feed").stat().st_mode) == 0o700
    sink.close(1)


def test_every_record_once_across_two_processes(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from wonkalytics.interaction import Record\n"
        "from wonkalytics.ops import Insert\n"
        "from wonkalytics.sinks.jsonl import JsonLinesSink\n"
        "sink = JsonLinesSink(sys.argv[1])\n"
        "tag = sys.argv[2]\n"
        "for batch in range(20):\n"
        "    ops = [Insert(built=Record('event', f'{tag}-{batch}-{i}', {'event_id': f'{tag}-{batch}-{i}',"
        " 'pad': 'x' * 5000})) for i in range(10)]\n"
        "    sink.write(ops)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), tag]) for tag in ("a", "b")]
    assert [p.wait(60) for p in procs] == [0, 0]
    ids = [line["event_id"] for line in lines(tmp_path)]
    expected = {f"{tag}-{b}-{i}" for tag in ("a", "b") for b in range(20) for i in range(10)}
    assert len(ids) == len(expected) and set(ids) == expected
    assert len(list(tmp_path.glob("*.jsonl"))) == 2  # one file per process


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_writes_its_own_file(tmp_path: Path) -> None:
    # In a subprocess: forking the multi-threaded pytest process itself would be unsafe.
    script = textwrap.dedent("""
        import os, sys
        from wonkalytics.interaction import Record
        from wonkalytics.ops import Insert
        from wonkalytics.sinks.jsonl import JsonLinesSink
        sink = JsonLinesSink(sys.argv[1])
        def one(event_id):
            return [Insert(built=Record("event", event_id, {"event_id": event_id}))]
        sink.write(one("parent"))
        pid = os.fork()
        if pid == 0:
            sink.after_fork()  # what the writer does in a forked child
            sink.write(one("child"))
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        sink.write(one("parent-2"))
    """)
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    by_file = {p.name: [json.loads(x)["event_id"] for x in p.read_text().splitlines()] for p in tmp_path.iterdir()}
    assert sorted(by_file.values()) == [["child"], ["parent", "parent-2"]]


def test_from_settings(tmp_path: Path) -> None:
    assert jsonl.from_settings(Settings(), lambda op: None) is None
    sink = jsonl.from_settings(Settings(jsonl_dir=tmp_path), lambda op: None)
    assert isinstance(sink, JsonLinesSink) and sink.directory == tmp_path


def test_probe_says_whether_the_directory_is_writable(tmp_path: Path) -> None:
    assert JsonLinesSink(tmp_path / "new" / "feed").probe() is True
    (tmp_path / "file").write_text("")
    assert JsonLinesSink(tmp_path / "file" / "feed").probe() is False
