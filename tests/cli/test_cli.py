"""The ``wonkalytics`` command line, run as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from wonkalytics.cli import app

runner = CliRunner()


def test_init_creates_the_table_once(sqlite_url: str, table_name: str) -> None:
    first = runner.invoke(app, ["init", "--database-url", sqlite_url, "--table", table_name])
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    second = runner.invoke(app, ["init", "--database-url", sqlite_url, "--table", table_name])
    assert second.exit_code == 0 and "already exists" in second.output
    engine = sa.create_engine(sqlite_url)
    try:
        columns = {column["name"] for column in sa.inspect(engine).get_columns(table_name)}
    finally:
        engine.dispose()
    assert {"response_id", "score", "event_id", "response", "messages"} <= columns


def test_init_print_sql_shows_ddl_for_each_dialect_without_connecting(table_name: str) -> None:
    for dialect, marker in [("mssql", "NVARCHAR(max)"), ("postgresql", "TEXT"), ("mysql", "LONGTEXT"),
                            ("sqlite", "CREATE TABLE")]:
        result = runner.invoke(app, ["init", "--print-sql", "--dialect", dialect, "--table", table_name,
                                     "--database-url", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x"])
        assert result.exit_code == 0, result.output
        assert marker in result.output and "CREATE INDEX" in result.output.upper()
        assert "hunter2" not in result.output


def test_init_reports_a_bad_table_name_clearly() -> None:
    result = runner.invoke(app, ["init", "--table", "x; DROP TABLE y"])
    assert result.exit_code != 0
    assert "not a plain SQL identifier" in result.output


def test_demo_runs_offline_into_the_default_sqlite_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "AZURE_", "OPENAI_"))}
    done = subprocess.run(
        [sys.executable, "-m", "wonkalytics.cli", "demo", "--delay-ms", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "aborted" in done.stdout and "average score" in done.stdout
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'wonkalytics.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT status, score, username FROM wonkalytics_interactions ORDER BY row_pk")).all()
    finally:
        engine.dispose()
    assert [row.status for row in rows] == ["ok", "ok", "aborted", None]
    assert [row.score for row in rows] == [100, 80, None, None]
    assert rows[1].username == "Grace Hopper"  # read from the Easy Auth header


def test_fake_openai_command_is_listed() -> None:
    result = runner.invoke(app, ["fake-openai", "--help"])
    assert result.exit_code == 0 and "--port" in result.output
