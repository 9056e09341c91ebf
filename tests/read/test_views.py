"""`wonkalytics init --views`: <table>_daily and <table>_calls on every database, read back with plain SQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from wonkalytics.cli import app
from wonkalytics.store.engine import get_engine
from wonkalytics.store.schema import default_table
from wonkalytics.store.sql import TableStore
from wonkalytics.store.views import create_views, dialect_for, view_statements


def plain(url: str, sql: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql))
            return [dict(r._mapping) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.fixture
def drop_views(db_url: str, table_name: str) -> Iterator[None]:
    yield  # before the table is dropped (PostgreSQL refuses to drop a table that a view reads)
    for view in ("calls", "daily"):
        plain(db_url, f"DROP VIEW IF EXISTS {table_name}_{view}")


def test_daily_view_matches_python(drop_views: None, seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["init", "--views", "--database-url", seeded, "--table", table_name])
    assert result.exit_code == 0, result.output
    expected: dict[tuple[str, str, Any], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("model") is not None:
            expected[(r["timestamp"].date().isoformat(), r["model"], r["tenant_id"])].append(r)
    got = plain(seeded, f"SELECT * FROM {table_name}_daily")
    assert len(got) == len(expected)
    for row in got:
        group = expected[(str(row["day"])[:10], row["model"], row["tenant_id"])]
        scores = [r["score"] for r in group if r["score"] is not None]
        costs = [r["cost_usd"] for r in group if r["cost_usd"] is not None]
        assert row["interactions"] == len(group)
        assert row["users"] == len({r["username"] for r in group if r["username"]})
        assert row["errors"] == sum(r["status"] == "error" for r in group)
        assert row["aborted"] == sum(r["status"] == "aborted" for r in group)
        assert row["scored"] == len(scores)
        assert (row["avg_score"] is None) == (not scores)
        if scores:
            assert float(row["avg_score"]) == pytest.approx(sum(scores) / len(scores))
        assert row["prompt_tokens"] == sum(r["prompt_tokens"] for r in group)
        assert row["completion_tokens"] == sum(r["completion_tokens"] for r in group)
        assert (None if row["cost_usd"] is None else float(row["cost_usd"])) == (
            pytest.approx(sum(costs)) if costs else None)


def test_calls_view_has_no_conversation(
    drop_views: None, seeded: str, table_name: str, rows: list[dict[str, Any]]
) -> None:
    store = TableStore(seeded, table_name, create=False)
    create_views(get_engine(seeded), store.table)
    create_views(get_engine(seeded), store.table)  # "or replace": a second run succeeds
    calls = plain(seeded, f"SELECT * FROM {table_name}_calls")
    assert len(calls) == len(rows)
    assert not {"system_msg", "messages", "response"} & set(calls[0])
    assert {"model", "score", "cost_usd", "username", "event_id"} <= set(calls[0])


def test_team_columns_and_a_column_map(drop_views: None, db_url: str, table_name: str) -> None:
    table = sa.Table(table_name, sa.MetaData(), sa.Column("TimeStamp", sa.DateTime), sa.Column("Model", sa.String(40)),
                     sa.Column("answer_text", sa.String(200)), sa.Column("Score", sa.Float))
    table.create(get_engine(db_url))
    reflected = TableStore(db_url, table_name, create=False).table
    create_views(get_engine(db_url), reflected, {"response": "answer_text"})
    assert plain(db_url, f"SELECT * FROM {table_name}_calls") == []
    assert plain(db_url, f"SELECT * FROM {table_name}_daily") == []
    with get_engine(db_url).connect() as conn:
        names = [c["name"].lower() for c in sa.inspect(conn).get_columns(f"{table_name}_calls")]
        daily = [c["name"].lower() for c in sa.inspect(conn).get_columns(f"{table_name}_daily")]
    assert "answer_text" not in names and "score" in names
    assert daily == ["day", "model", "tenant_id", "interactions", "users", "errors", "aborted", "scored", "avg_score",
                     "prompt_tokens", "completion_tokens", "cost_usd"]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql", "mariadb", "mssql"])
def test_views_compile_for_every_dialect(dialect: str) -> None:
    statements = view_statements(default_table("llm", schema="bi" if dialect != "sqlite" else None),
                                 dialect_for(dialect))
    create = [s for s in statements if "VIEW" in s and not s.startswith("DROP")]
    assert len(create) == 2 and all(" AS SELECT " in s for s in create)
    assert "messages" not in create[1] and "response," not in create[1]
    if dialect == "mssql":
        assert create[0].startswith("CREATE OR ALTER VIEW bi.llm_daily") and "convert(date," in create[0]


def test_print_sql_for_a_dba() -> None:
    result = CliRunner().invoke(app, ["init", "--views", "--print-sql", "--dialect", "mssql", "--table", "llm"])
    assert result.exit_code == 0 and result.output.count("CREATE OR ALTER VIEW") == 2
    assert "CREATE INDEX ix_llm_reads ON llm (timestamp) INCLUDE (model, status, username" in result.output


def test_read_index_is_covering_and_idempotent(db_url: str, table_name: str) -> None:
    from wonkalytics.store.views import create_read_index

    store = TableStore(db_url, table_name)
    store.create_table()
    first = create_read_index(get_engine(db_url), store.table)
    assert create_read_index(get_engine(db_url), store.table) == first
    names = {ix["name"] for ix in sa.inspect(get_engine(db_url)).get_indexes(table_name)}
    if db_url.startswith("mysql"):
        assert first is None  # no INCLUDE and no LONGTEXT keys: the plain timestamp index serves
    else:
        assert first == f"ix_{table_name}_reads" and first in names
