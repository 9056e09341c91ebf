"""Issue 15 item 3: ``durability="disk"`` with a full or read-only spool while the database is up.

The spool is a real tmpfs of 64 KiB (full after a few rows of 8 KiB each) or a tmpfs remounted
read-only (root ignores file modes, so only a read-only mount refuses a write). Every row must still
reach the table, and ``health()`` and the log must say the spool failed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.conftest import configure_default, read_rows
from tests.faults.spool_root import remount_read_only, tmpfs

import wonkalytics
from wonkalytics.recorder import default_recorder

ROWS = 10


def _log_rows_and_check(sqlite_url: str, table_name: str, spool: Path, caplog: pytest.LogCaptureFixture) -> None:
    configure_default(sqlite_url, table_name, spool, durability="disk")
    try:
        with caplog.at_level(logging.ERROR, logger="wonkalytics"):
            ids = [wonkalytics.log(action=f"a{n}", model="m", response="x" * 8_000) for n in range(ROWS)]
            assert wonkalytics.flush(30)
        health = wonkalytics.health()["table"]
        rows = read_rows(sqlite_url, table_name)
        assert sorted(str(r["event_id"]) for r in rows) == sorted(str(i) for i in ids)  # none lost, none doubled
        assert [r["action"] for r in rows] == [f"a{n}" for n in range(ROWS)]  # in order
        assert health.spool_error is not None and health.unspooled > 0
        assert wonkalytics.health().ok is False
        assert any("cannot write to the table spool" in r.getMessage() for r in caplog.records)
    finally:
        default_recorder.shutdown(5)


def test_a_full_spool_disk_still_delivers_every_row(
    sqlite_url: str, table_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tmpfs(tmp_path / "small") as mount:
        (mount / "filler").write_bytes(b"\0" * 40_000)  # what is left takes a few rows, then ENOSPC
        _log_rows_and_check(sqlite_url, table_name, mount / "spool", caplog)


def test_a_read_only_spool_still_delivers_every_row(
    sqlite_url: str, table_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tmpfs(tmp_path / "ro") as mount:
        (mount / "spool").mkdir(mode=0o700)
        remount_read_only(mount)
        _log_rows_and_check(sqlite_url, table_name, mount / "spool", caplog)
