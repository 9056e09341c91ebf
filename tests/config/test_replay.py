"""What fails only at write time is kept, and `wonkalytics spool replay` writes it after the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from tests.conftest import configure_default

import wonkalytics
from wonkalytics.recorder import default_recorder


def _sql(url: str, statement: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WONKALYTICS_")}
    return subprocess.run([sys.executable, "-m", "wonkalytics", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_rows_refused_by_the_table_are_replayed_after_the_fix(
    sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    """A team table without any of our columns: the rows are set aside, not dropped; add the column, replay."""
    _sql(sqlite_url, f"CREATE TABLE {table_name} (pk INTEGER PRIMARY KEY, other TEXT)")
    spool = tmp_path / "spool"
    configure_default(sqlite_url, table_name, spool, create_table=False)
    try:
        ids = [wonkalytics.log(action="kept", notes=str(n)) for n in range(3)]
        assert wonkalytics.flush(30)
        assert wonkalytics.health()["table"].rejected == 3
    finally:
        default_recorder.shutdown(10)
    status = _cli("spool", "status", "--spool-dir", str(spool), cwd=tmp_path)
    assert status.returncode == 0 and "3" in status.stdout, status.stdout + status.stderr

    _sql(sqlite_url, f"ALTER TABLE {table_name} ADD COLUMN action TEXT")
    _sql(sqlite_url, f"ALTER TABLE {table_name} ADD COLUMN event_id VARCHAR(128)")
    args = ("spool", "replay", "--spool-dir", str(spool), "--database-url", sqlite_url, "--table", table_name)
    first = _cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    again = _cli(*args, cwd=tmp_path)  # idempotent
    assert again.returncode == 0, again.stdout + again.stderr
    rows = _sql(sqlite_url, f"SELECT action, event_id FROM {table_name} ORDER BY pk")
    assert sorted(event_id for _, event_id in rows) == sorted(ids)
    assert {action for action, _ in rows} == {"kept"}


def test_a_missing_table_that_may_not_be_created_keeps_the_rows(
    sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    configure_default(sqlite_url, table_name, spool, create_table=False)
    try:
        event_id = wonkalytics.log(action="waiting")
        wonkalytics.flush(5)
    finally:
        default_recorder.shutdown(5)
    kept = "".join(p.read_text() for p in spool.rglob("*") if p.is_file())
    assert event_id in kept  # on disk: pending or set aside, never dropped
    init = _cli("init", "--database-url", sqlite_url, "--table", table_name, cwd=tmp_path)
    assert init.returncode == 0, init.stdout + init.stderr
    replay = _cli("spool", "replay", "--spool-dir", str(spool), "--database-url", sqlite_url, "--table", table_name,
                  cwd=tmp_path)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert _sql(sqlite_url, f"SELECT event_id FROM {table_name}") == [(event_id,)]
