"""wonkalytics doctor and wonkalytics spool status|replay, against real databases."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import configure_default, read_rows, require_server
from tests.store.helpers import run_sql
from typer.testing import CliRunner

import wonkalytics
from wonkalytics.cli import app
from wonkalytics.recorder import default_recorder

runner = CliRunner()


def _doctor(*args: str) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["doctor", "--json", *args])
    return result.exit_code, json.loads(result.output)


def _status(report: dict[str, object], name: str) -> str:
    checks = report["checks"]
    assert isinstance(checks, list)
    return next(str(c["status"]) for c in checks if c["name"] == name)


def test_doctor_on_a_healthy_setup(
    db_url: str, table_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WONKALYTICS_SPOOL_DIR", str(tmp_path / "spool"))
    assert runner.invoke(app, ["init", "--database-url", db_url, "--table", table_name]).exit_code == 0
    code, report = _doctor("--database-url", db_url, "--table", table_name)
    assert code == 0 and report["ok"] is True
    assert report["warned"] == [] and report["failed"] == []
    for name in ("url and driver", "connection", "table", "columns", "idempotency", "write permission", "spool"):
        assert _status(report, name) == "ok", report
    assert read_rows(db_url, table_name, "row_pk") == []  # the write check was rolled back


def test_doctor_on_a_wrong_url_and_a_missing_table(sqlite_url: str, table_name: str) -> None:
    code, report = _doctor("--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/none", "--table", table_name)
    assert code == 1 and _status(report, "connection") == "fail"
    code, report = _doctor("--database-url", "postgressql+psycopg://x@h/db")
    assert code == 1 and report["ok"] is False
    code, report = _doctor("--database-url", sqlite_url, "--table", table_name)
    assert code == 1 and _status(report, "table") == "fail"
    fix = next(c["fix"] for c in report["checks"] if c["name"] == "table")  # type: ignore[union-attr]
    assert "wonkalytics init" in str(fix)


def test_doctor_lists_missing_columns(db_url: str, table_name: str) -> None:
    run_sql(db_url, f"CREATE TABLE {table_name} (event_id VARCHAR(64), model VARCHAR(64))")
    code, report = _doctor("--database-url", db_url, "--table", table_name)
    # rows land, but some fields are not stored and retries can duplicate: the contract says exit 1
    assert code == 1 and report["ok"] is False
    assert report["warned"] == ["columns", "idempotency"] and report["failed"] == []
    columns = next(c for c in report["checks"] if c["name"] == "columns")  # type: ignore[union-attr]
    assert columns["status"] == "warn" and "response" in columns["detail"] and "--upgrade" in columns["fix"]
    assert _status(report, "idempotency") == "warn"


@pytest.mark.db
def test_doctor_on_a_read_only_user(table_name: str) -> None:
    url = require_server("postgresql")
    role = f"wl_ro_{uuid.uuid4().hex[:8]}"
    run_sql(url, f"CREATE TABLE {table_name} (event_id VARCHAR(64) UNIQUE, action TEXT, model TEXT)",
            f"CREATE ROLE {role} LOGIN", f"GRANT SELECT ON {table_name} TO {role}")
    try:
        read_only = sa.make_url(url).set(username=role).render_as_string(hide_password=False)
        code, report = _doctor("--database-url", read_only, "--table", table_name)
        assert code == 1 and _status(report, "write permission") == "fail"
        assert _status(report, "connection") == "ok"
    finally:
        run_sql(url, f"DROP TABLE IF EXISTS {table_name}", f"DROP ROLE IF EXISTS {role}")


def test_spool_status_and_replay_write_rejected_rows_once_fixed(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    run_sql(db_url, f"CREATE TABLE {table_name} (event_id VARCHAR(64) UNIQUE, model VARCHAR(64))")
    configure_default(db_url, table_name, spool)
    try:
        wonkalytics.log(action="kept", username="ada")  # fits no column of this table: set aside, not lost
        assert wonkalytics.flush(10)
        assert wonkalytics.health()["table"].rejected == 1
    finally:
        default_recorder.shutdown(5)
    result = runner.invoke(app, ["spool", "status", "--json", "--spool-dir", str(spool)])
    status = json.loads(result.output)
    assert [(s["sink"], s["rejected"]) for s in status["sinks"]] == [("table", 1)]
    run_sql(db_url, f"DROP TABLE {table_name}")  # the fix: use the default table instead
    args = ["spool", "replay", "--spool-dir", str(spool), "--database-url", db_url, "--table", table_name]
    assert runner.invoke(app, args).exit_code == 0
    rows = read_rows(db_url, table_name, "row_pk")
    assert [(r["action"], r["username"]) for r in rows] == [("kept", "ada")]
    assert runner.invoke(app, args).exit_code == 0  # idempotent: nothing left, nothing written twice
    assert len(read_rows(db_url, table_name, "row_pk")) == 1
    status = json.loads(runner.invoke(app, ["spool", "status", "--json", "--spool-dir", str(spool)]).output)
    assert all(s["rejected"] == 0 and s["pending"] == 0 for s in status["sinks"])
    files = [p for p in (spool / "table").iterdir()]
    assert all(p.stat().st_mode & 0o077 == 0 for p in files)
    assert os.environ.get("WONKALYTICS_SPOOL_DIR") is None
