"""Issue 15 items 7, 10 and 12: ``wonkalytics spool replay`` interrupted (SIGINT, SIGKILL) and run twice at once.

The target is a team table without a unique ``event_id`` (so nothing in the database hides a row
written twice), on SQLite. The ops are on disk as a gone process leaves them: rejected-ops files and
segments nobody holds a lock on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from tests.store.helpers import run_sql

from wonkalytics.ops import Insert, encode_op
from wonkalytics.record.build import record_builder

BUILD = record_builder()
CLI = [sys.executable, "-c", "import sys; from wonkalytics.cli import app; sys.exit(app())"]


def _team_table(url: str, table: str) -> None:
    run_sql(url, f"CREATE TABLE {table} (row_pk INTEGER PRIMARY KEY, event_id VARCHAR(64), action VARCHAR(64))")


def _op(n: int) -> bytes:
    return encode_op(Insert(source={"event_id": str(uuid.uuid4()), "action": f"a{n}"}), BUILD)


def _refused() -> bytes:
    """An op no column of the team table can hold: it is refused again on every replay."""
    return encode_op(Insert(source={"event_id": "refused", "username": "ada"}), BUILD)


def _rejected_file(directory: Path, lines: list[bytes]) -> None:
    directory.mkdir(parents=True, mode=0o700, exist_ok=True)
    with open(directory / "rejected-1.jsonl", "wb") as handle:
        for line in lines:
            handle.write(json.dumps({"v": 1, "error": "ProgrammingError: no such table", "op": json.loads(line)})
                         .encode() + b"\n")


def _count(url: str, table: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            total, distinct = conn.execute(sa.text(f"SELECT COUNT(*), COUNT(DISTINCT event_id) FROM {table}")).one()
            return int(total), int(distinct)
    finally:
        engine.dispose()


def _replay(spool: Path, url: str, table: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([*CLI, "spool", "replay", "--spool-dir", str(spool), "--database-url", url,
                             "--table", table], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _status(spool: Path) -> dict[str, int]:
    out = subprocess.run([*CLI, "spool", "status", "--json", "--spool-dir", str(spool)], capture_output=True,
                         text=True, check=True).stdout
    sink = next(s for s in json.loads(out)["sinks"] if s["sink"] == "table")
    return {"pending": int(sink["pending"]), "rejected": int(sink["rejected"])}


def _written(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("table:"))
    return int(line.split(":", 1)[1].split("written")[0])


def _interrupt_when_writing(process: subprocess.Popen[str], url: str, table: str, sig: signal.Signals) -> None:
    deadline = time.monotonic() + 60
    while _count(url, table)[0] < 400:
        assert process.poll() is None, "the replay ended before it could be interrupted"
        assert time.monotonic() < deadline, "the replay wrote nothing"
        time.sleep(0.01)
    process.send_signal(sig)


ROWS = 6000


def test_ctrl_c_during_replay_strands_nothing_and_the_next_replay_writes_the_rest_once(
    sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    lines = [_op(n) for n in range(ROWS)]
    lines.insert(100, _refused())
    _rejected_file(spool / "table", lines)
    _team_table(sqlite_url, table_name)
    first = _replay(spool, sqlite_url, table_name)
    _interrupt_when_writing(first, sqlite_url, table_name, signal.SIGINT)
    out, err = first.communicate(timeout=120)
    written_first = _written(out)
    assert 0 <= written_first < ROWS, (out, err)
    assert not list((spool / "table").glob("*.replaying-*"))  # item 7: nothing under a work name
    status = _status(spool)
    assert status["rejected"] == ROWS + 1 - written_first  # what is left, the refused op once (item 10)
    second = _replay(spool, sqlite_url, table_name)
    out, err = second.communicate(timeout=120)
    assert _written(out) == ROWS - written_first, (out, err)
    assert _count(sqlite_url, table_name) == (ROWS, ROWS)  # each row once: none rewritten, none lost
    kept = [line for path in (spool / "table").glob("rejected-*.jsonl") for line in path.read_text().splitlines()]
    assert [json.loads(line)["op"]["record"]["event_id"] for line in kept] == ["refused"]  # in one file, once


def test_a_killed_replay_s_work_file_is_recovered_by_the_next_status(
    sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    _rejected_file(spool / "table", [_op(n) for n in range(ROWS)])
    _team_table(sqlite_url, table_name)
    first = _replay(spool, sqlite_url, table_name)
    _interrupt_when_writing(first, sqlite_url, table_name, signal.SIGKILL)
    first.communicate(timeout=60)
    done, _ = _count(sqlite_url, table_name)
    status = _status(spool)
    assert not list((spool / "table").glob("*.replaying-*"))  # renamed back by status
    # What is left is what was not written, give or take the one batch in flight at the kill.
    assert ROWS - done <= status["rejected"] <= ROWS - done + 200
    second = _replay(spool, sqlite_url, table_name)
    second.communicate(timeout=120)
    total, distinct = _count(sqlite_url, table_name)
    assert distinct == ROWS and total - ROWS <= 200
    assert _status(spool)["rejected"] == 0


def test_two_replays_at_once_write_each_row_once(sqlite_url: str, table_name: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    (spool / "table").mkdir(parents=True, mode=0o700)
    for part in range(3):  # segments of processes that are gone, named as release 0.2 named them
        path = spool / "table" / f"{2**22 + part}-{time.time_ns()}.jsonl"
        path.write_bytes(b"".join(_op(part * 1000 + n) for n in range(1000)))
    _team_table(sqlite_url, table_name)
    replays = [_replay(spool, sqlite_url, table_name) for _ in range(2)]
    written = []
    for process in replays:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, (out, err)
        written.append(_written(out))
    assert sorted(written) == [0, 3000]  # one wrote them all; the other waited for it and found nothing
    assert _count(sqlite_url, table_name) == (3000, 3000)
    assert _status(spool) == {"pending": 0, "rejected": 0}
