"""Tables that are not ours: team column names, narrow columns, schemas, no match, a table dropped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import configure_default

import wonkalytics
from wonkalytics.recorder import default_recorder
from wonkalytics.testing import FakeOpenAI

from .conftest import Setup


def _create(url: str, ddl: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(ddl))
    finally:
        engine.dispose()


def _select(url: str, sql: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _quote(url: str, name: str) -> str:
    return sa.create_engine(url).dialect.identifier_preparer.quote(name)


@pytest.fixture
def team(db_url: str, table_name: str, tmp_path: Path, durability: str, fake: FakeOpenAI) -> Iterator[Setup]:
    """A team's own table: reserved-word and non-ASCII column names, a VARCHAR(20), no event_id."""
    q = lambda name: _quote(db_url, name)  # noqa: E731
    _create(db_url, f"CREATE TABLE {table_name} (pk INTEGER PRIMARY KEY, {q('order')} VARCHAR(100), "
                    f"{q('user name')} VARCHAR(100), {q('Größe')} VARCHAR(100), short_note VARCHAR(20), "
                    "response_id VARCHAR(100), score FLOAT, action VARCHAR(100))"
            if not db_url.startswith("postgresql") else
            f"CREATE TABLE {table_name} (pk SERIAL PRIMARY KEY, {q('order')} VARCHAR(100), "
            f"{q('user name')} VARCHAR(100), {q('Größe')} VARCHAR(100), short_note VARCHAR(20), "
            "response_id VARCHAR(100), score FLOAT, action VARCHAR(100))")
    if db_url.startswith("mysql") or db_url.startswith("mariadb"):
        _create(db_url, f"ALTER TABLE {table_name} MODIFY pk INTEGER NOT NULL AUTO_INCREMENT")
    spool = tmp_path / "spool"
    configure_default(db_url, table_name, spool, durability=durability,
                      column_map={"level": "order", "username": "user name", "notes": "Größe"})
    try:
        yield Setup(db_url, table_name, spool, durability, fake)
    finally:
        default_recorder.shutdown(10)


def test_reserved_word_space_and_umlaut_columns(team: Setup) -> None:
    wonkalytics.log(action="team", level="senior", username="Ann Smith", notes="groß", response_id="r1")
    assert wonkalytics.flush(30)
    [row] = _select(team.url, f"SELECT * FROM {team.table}")
    assert (row["order"], row["user name"], row["Größe"], row["action"]) == ("senior", "Ann Smith", "groß", "team")
    assert wonkalytics.score("r1", 7.5) is True
    [row] = _select(team.url, f"SELECT score FROM {team.table}")
    assert row["score"] == 7.5


def test_a_value_longer_than_a_varchar_20_column(team: Setup, request: pytest.FixtureRequest) -> None:
    wonkalytics.log(action="long", short_note="n" * 500)
    assert wonkalytics.flush(30)
    [row] = _select(team.url, f"SELECT action, short_note FROM {team.table}")
    assert row["action"] == "long" and row["short_note"].startswith("n" * 20)


def test_a_table_with_no_matching_columns_keeps_the_row_aside(
    sqlite_url: str, table_name: str, tmp_path: Path, durability: str
) -> None:
    _create(sqlite_url, f"CREATE TABLE {table_name} (pk INTEGER PRIMARY KEY, something_else TEXT)")
    spool = tmp_path / "spool"
    configure_default(sqlite_url, table_name, spool, durability=durability)
    try:
        event_id = wonkalytics.log(action="nowhere", notes="x")
        assert wonkalytics.flush(30)
        health = wonkalytics.health()
        assert sum(sink.rejected for sink in health.sinks.values()) == 1
        kept = "".join(p.read_text() for p in spool.rglob("*") if p.is_file())
        assert event_id in kept  # set aside in the rejected-ops file, for `wonkalytics spool replay`
        assert _select(sqlite_url, f"SELECT * FROM {table_name}") == []
    finally:
        default_recorder.shutdown(10)


def test_a_schema_qualified_table(db_url: str, table_name: str, tmp_path: Path, durability: str) -> None:
    schema = {"sqlite": "main", "postgresql": "wl_badinput", "mysql": "test"}[sa.make_url(db_url).get_backend_name()]
    if schema == "wl_badinput":
        _create(db_url, f"CREATE SCHEMA IF NOT EXISTS {schema}")
    qualified = f"{schema}.{table_name}"
    configure_default(db_url, qualified, tmp_path / "spool", durability=durability)
    try:
        wonkalytics.log(action="schema", response_id="rs")
        assert wonkalytics.flush(30)
        assert wonkalytics.score("rs", 3) is True
        [row] = _select(db_url, f"SELECT action, score FROM {qualified}")
        assert (row["action"], row["score"]) == ("schema", 3)
    finally:
        default_recorder.shutdown(10)
        _create(db_url, f"DROP TABLE IF EXISTS {qualified}")


def test_a_table_dropped_while_the_writer_runs(wl: Setup) -> None:
    wonkalytics.log(action="before")
    assert [row["action"] for row in wl.rows()] == ["before"]
    _create(wl.url, f"DROP TABLE {wl.table}")
    wonkalytics.log(action="after")
    deadline = time.monotonic() + 30
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # the writer notices, recreates the table, retries the row
        wonkalytics.flush(5)
        rows = wl.rows()
        if rows:
            break
    assert [row["action"] for row in rows] == ["after"]
