"""WONKALYTICS_READ_URL: stats, export and the dashboard read the read URL while the writer keeps database_url."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.read.seed import seed_rows
from typer.testing import CliRunner

from wonkalytics.cli import app
from wonkalytics.cli.stats import open_reader
from wonkalytics.dashboard.app import create_app
from wonkalytics.settings import load_settings
from wonkalytics.store.reader import Reader, SqlReader
from wonkalytics.store.sql import TableStore

PERIOD = ["--since", "2026-03-01", "--until", "2026-04-30"]


def _seed(url: str, table: str, rows: list[dict[str, Any]]) -> None:
    store = TableStore(url, table)
    store.create_table()
    assert store.insert_many(rows) == len(rows)


@pytest.fixture
def two_databases(tmp_path: Path, table_name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The writer's database (90 interactions) and a replica holding a different 30 (the read URL)."""
    writer, replica = f"sqlite:///{tmp_path / 'writer.db'}", f"sqlite:///{tmp_path / 'replica.db'}"
    _seed(writer, table_name, seed_rows(90))
    _seed(replica, table_name, seed_rows(30, seed=11))
    monkeypatch.setenv("WONKALYTICS_DATABASE_URL", writer)
    monkeypatch.setenv("WONKALYTICS_TABLE", table_name)
    return writer, replica


def _stats(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["stats", "--json", *PERIOD, *args])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_stats_reads_the_read_url_not_the_writers_database(two_databases: tuple[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    writer, replica = two_databases
    assert _stats()["interactions"] == 90  # no read URL: the writer's database
    monkeypatch.setenv("WONKALYTICS_READ_URL", replica)
    assert _stats()["interactions"] == 30
    assert load_settings().url().render_as_string() == writer  # the writer keeps database_url
    assert _stats("--database-url", writer)["interactions"] == 90  # the option wins over the environment


def test_export_and_dashboard_read_the_read_url(two_databases: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    _, replica = two_databases
    monkeypatch.setenv("WONKALYTICS_READ_URL", replica)
    out = tmp_path / "rows.jsonl"
    result = CliRunner().invoke(app, ["export", "--format", "jsonl", "--output", str(out), *PERIOD])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 30 + 4  # the replica's interactions and events
    reader = open_reader(None, None)
    assert isinstance(reader, SqlReader) and isinstance(reader, Reader)
    client = TestClient(create_app(reader))
    overview = client.get("/api/overview", params={"since": "2026-03-01", "until": "2026-04-30"}).json()
    assert overview["interactions"] == 30


def test_a_bad_read_url_names_the_problem(two_databases: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WONKALYTICS_READ_URL", "postgres://app@db/analytics")
    result = CliRunner().invoke(app, ["stats", "--json"])
    assert result.exit_code == 1 and "postgresql+psycopg://" in result.output
