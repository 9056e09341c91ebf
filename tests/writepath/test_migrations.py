"""``wonkalytics init --upgrade`` on a table created by release 0.1: adds what is missing, re-runnable."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.store.helpers import run_sql
from typer.testing import CliRunner

from wonkalytics.cli import app
from wonkalytics.store.migrations import MIGRATIONS_TABLE, STEPS
from wonkalytics.store.schema import DEFAULT_COLUMNS, ROW_KEY

ADDED_IN_02 = {"finish_reason", "cached_tokens", "reasoning_tokens", "cost_usd", "pl_request_id"}


def _release_01_table(url: str, table: str) -> None:
    """The default table exactly as release 0.1 created it (score INTEGER, no 0.2 columns, no ts index)."""
    dialect = sa.make_url(url).get_dialect()()
    metadata = sa.MetaData()
    columns = []
    for c in DEFAULT_COLUMNS:
        if c.name in ADDED_IN_02:
            continue
        if c.name == ROW_KEY:
            columns.append(sa.Column(c.name, c.type, primary_key=True, autoincrement=True))
        else:
            columns.append(sa.Column(c.name, sa.Integer() if c.name == "score" else c.type))
    old = sa.Table(table, metadata, *columns)
    old.append_constraint(sa.UniqueConstraint(old.c.event_id))
    sa.Index(f"ix_{table}_response_id", old.c.response_id)
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
    assert dialect is not None


def _inspect(url: str, table: str) -> tuple[dict[str, object], list[list[str]]]:
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"]: c["type"] for c in inspector.get_columns(table)}
        indexes = [list(ix["column_names"]) for ix in inspector.get_indexes(table)]
        return columns, indexes
    finally:
        engine.dispose()


def test_upgrade_adds_the_new_columns_and_indexes_and_is_rerunnable(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    _release_01_table(db_url, table_name)
    run_sql(db_url, f"INSERT INTO {table_name} (event_id, model, score) VALUES ('e1', 'm', 7)")
    runner = CliRunner()
    shown = runner.invoke(app, ["init", "--upgrade", "--print-sql", "--database-url", db_url, "--table", table_name])
    assert shown.exit_code == 0, shown.output
    assert "ADD" in shown.output and "cost_usd" in shown.output and "timestamp" in shown.output
    assert set(_inspect(db_url, table_name)[0]) >= {"score"} and "cost_usd" not in _inspect(db_url, table_name)[0]

    result = runner.invoke(app, ["init", "--upgrade", "--database-url", db_url, "--table", table_name])
    assert result.exit_code == 0, result.output
    columns, indexes = _inspect(db_url, table_name)
    assert set(columns) >= ADDED_IN_02
    assert ["timestamp"] in indexes
    if not db_url.startswith("sqlite"):
        assert isinstance(columns["score"], sa.Float)  # 87.6 now stays 87.6
    again = runner.invoke(app, ["init", "--upgrade", "--database-url", db_url, "--table", table_name])
    assert again.exit_code == 0 and "applied" not in again.output.replace("nothing to do", "")
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            recorded = conn.execute(sa.text(f"SELECT name FROM {MIGRATIONS_TABLE} WHERE table_name = :t"),
                                    {"t": table_name}).scalars().all()
            assert conn.execute(sa.text(f"SELECT score FROM {table_name}")).scalar() == 7  # data kept
        assert sorted(recorded) == sorted(set(recorded)) and len(recorded) == len(STEPS)  # each step recorded once
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {MIGRATIONS_TABLE} WHERE table_name = :t"), {"t": table_name})
        engine.dispose()


def test_a_team_table_gets_columns_added_and_its_own_columns_untouched(
    db_url: str, table_name: str
) -> None:
    run_sql(db_url, f"CREATE TABLE {table_name} (event_id VARCHAR(64), score INTEGER, answer TEXT)")
    result = CliRunner().invoke(app, ["init", "--upgrade", "--database-url", db_url, "--table", table_name])
    assert result.exit_code == 0, result.output
    columns, _ = _inspect(db_url, table_name)
    assert isinstance(columns["score"], sa.Integer)  # the team's column is never altered
    assert "answer" in columns and "response" in columns
    engine = sa.create_engine(db_url)
    try:
        uniques = [ix for ix in sa.inspect(engine).get_indexes(table_name) if ix["unique"]]
        assert any(ix["column_names"] == ["event_id"] for ix in uniques)  # offered and made
        with engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {MIGRATIONS_TABLE} WHERE table_name = :t"), {"t": table_name})
    finally:
        engine.dispose()


def test_upgrade_steps_may_run_longer_than_the_statement_timeout(
    db_url: str, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ALTER over millions of rows takes minutes (MariaDB's FULLTEXT index over 1M rows was cut off at
    the 30 s reads and writes may take): the steps run under MIGRATION_STATEMENT_TIMEOUT instead."""
    from wonkalytics.store import migrations

    kind = sa.make_url(db_url).get_backend_name()
    slow = {"postgresql": "SELECT pg_sleep(2.5)", "mysql": "SELECT SLEEP(2.5)"}.get(kind)
    if slow is None:
        pytest.skip("SQLite has no statement timeout to outlast")
    step = migrations.Step("m999_slow", "a long statement", lambda table, dialect: migrations.Plan("m999_slow", [slow]))
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, step))
    monkeypatch.setenv("WONKALYTICS_STATEMENT_TIMEOUT", "1")
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["init", "--upgrade", "--database-url", db_url, "--table", table_name])
        assert result.exit_code == 0, result.output
        assert "m999_slow: applied" in result.output
    finally:
        engine = sa.create_engine(db_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {MIGRATIONS_TABLE} WHERE table_name = :t"), {"t": table_name})
        engine.dispose()
