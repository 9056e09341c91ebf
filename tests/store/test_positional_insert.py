"""SQLite's INSERT compiled once per key set and run with tuples binds what SQLAlchemy's Core path binds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from wonkalytics.store.dialects import PositionalInsert, insert_plan
from wonkalytics.store.sql import TableStore

from .helpers import read_rows, recorded_sql, run_sql

ROWS: list[dict[str, Any]] = [
    {"event_id": "e1", "timestamp": datetime(2024, 5, 1, 12, 0, 0, 123456), "score": 7, "duration_ms": 1.5,
     "messages": "user:\nhi\n\n", "flag": True},
    {"event_id": "e2", "timestamp": None, "score": None, "duration_ms": None, "messages": None, "flag": False},
]


def _table() -> sa.Table:
    return sa.Table(
        "t", sa.MetaData(),
        sa.Column("row_pk", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(64), unique=True),
        sa.Column("timestamp", sa.DateTime),
        sa.Column("score", sa.Integer),
        sa.Column("duration_ms", sa.Float),
        sa.Column("messages", sa.Text),
        sa.Column("flag", sa.Boolean),
    )


def test_parameters_are_what_the_core_path_binds() -> None:
    dialect = sqlite.dialect()
    plan = insert_plan(_table(), ROWS[0].keys(), dialect, "event_id")
    assert plan.positional is not None
    compiled = plan.statement.compile(dialect=dialect, column_keys=sorted(ROWS[0]))  # type: ignore[attr-defined]
    processors = compiled._bind_processors
    for row, values in zip(ROWS, plan.positional.parameters(ROWS), strict=True):
        params = compiled.construct_params(row)
        expected = tuple(
            processors[name](params[name]) if name in processors else params[name]
            for name in compiled.positiontup
        )
        assert values == expected
    assert plan.positional.sql == compiled.string


def test_bind_names_sqlalchemy_escapes_keep_the_core_path() -> None:
    table = sa.Table("t", sa.MetaData(), sa.Column("event_id", sa.String(64), unique=True),
                     sa.Column("my score (raw)", sa.Integer))
    statement = sqlite.insert(table)
    assert PositionalInsert.compile(statement, ["event_id", "my score (raw)"], sqlite.dialect()) is None


def test_rows_land_as_the_core_path_stores_them(sqlite_url: str, table_name: str) -> None:
    run_sql(
        sqlite_url,
        f'CREATE TABLE {table_name} (row_pk INTEGER PRIMARY KEY, event_id VARCHAR(64) UNIQUE, '
        '"timestamp" DATETIME, score INTEGER, duration_ms FLOAT, messages TEXT, flag BOOLEAN, '
        '"my score (raw)" INTEGER)',
    )
    store = TableStore(sqlite_url, table_name)
    with recorded_sql(sqlite_url) as statements:
        assert store.insert_many(ROWS) == 2
        assert store.insert_many(ROWS) == 0  # duplicates skipped, counted by the rowcount
        assert store.insert_many([{"event_id": "e3", "my score (raw)": 3}]) == 1  # escaped name: Core path
    assert sum(s.lstrip().upper().startswith("INSERT") for s in statements) == 3
    rows = read_rows(sqlite_url, table_name)
    assert [(r["event_id"], r["score"], r["duration_ms"], r["messages"], r["flag"], r["my score (raw)"])
            for r in rows] == [("e1", 7, 1.5, "user:\nhi\n\n", 1, None), ("e2", None, None, None, 0, None),
                               ("e3", None, None, None, None, 3)]
    assert rows[0]["timestamp"] == "2024-05-01 12:00:00.123456"  # SQLAlchemy's SQLite form, as before
    assert store.fetch_all()[0]["timestamp"] == ROWS[0]["timestamp"]
