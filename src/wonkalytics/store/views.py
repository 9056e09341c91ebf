"""Reporting views for BI tools (Power BI, Excel, Metabase): ``<table>_daily`` and ``<table>_calls``.

>>> from wonkalytics.store.schema import default_table
>>> daily = view_statements(default_table("llm"), dialect_for("mssql"))[0]
>>> print(daily[:56])
CREATE OR ALTER VIEW llm_daily AS SELECT convert(date, l
>>> print(daily[daily.index("GROUP BY"):])
GROUP BY convert(date, llm.timestamp), llm.model, llm.tenant_id

- ``<table>_daily``: one row per UTC ``day``, ``model`` and ``tenant_id`` with ``interactions``,
  ``users``, ``errors``, ``aborted``, ``scored``, ``avg_score``, ``prompt_tokens``,
  ``completion_tokens``, ``cost_usd`` (events, rows without ``model``, are left out). Days are UTC
  because a view has no time zone parameter; ``wonkalytics stats --tz`` gives local days.
- ``<table>_calls``: every column of the table except the prompt and response texts (``system_msg``,
  ``messages``, ``response``), for analysts who must not read conversations: grant them this view,
  not the table.

Columns are found through the same resolver as writes, so a team's own column names work (the view's
columns carry the canonical names). "Create or replace" per dialect: ``CREATE OR REPLACE VIEW``
(MySQL/MariaDB), ``CREATE OR ALTER VIEW`` (SQL Server), ``DROP VIEW IF EXISTS`` + ``CREATE VIEW``
(SQLite; PostgreSQL too, whose ``OR REPLACE`` refuses a changed column type).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from wonkalytics.store.dialects import dialect_for
from wonkalytics.store.fit import resolve_column

__all__ = ["PRIVATE_TEXTS", "READ_INDEX_FIELDS", "create_read_index", "create_views", "dialect_for",
           "read_index", "view_names", "view_statements"]

PRIVATE_TEXTS = ("system_msg", "messages", "response")
"""Fields left out of ``<table>_calls``: what the user asked and what the model answered."""


def view_names(table: sa.Table) -> tuple[str, str]:
    """The names of the two views of ``table`` (in its schema)."""
    return f"{table.name}_daily", f"{table.name}_calls"


def _qualified(name: str, schema: str | None, dialect: Dialect) -> str:
    preparer = dialect.identifier_preparer
    quoted = preparer.quote(name)
    return f"{preparer.quote_schema(schema)}.{quoted}" if schema else quoted


def _daily(table: sa.Table, dialect: Dialect, column_map: Mapping[str, str]) -> sa.Select[Any]:
    def col(name: str) -> sa.Column[Any] | None:
        real = resolve_column(name, table.c.keys(), column_map)
        return None if real is None else table.c[real]

    def need(name: str) -> sa.Column[Any]:
        found = col(name)
        if found is None:
            raise ValueError(f"table {table.name!r} has no {name!r} column, which the daily view needs")
        return found

    timestamp, model = need("timestamp"), need("model")
    day: sa.ColumnElement[Any] = sa.cast(timestamp, sa.Date)
    if dialect.name == "sqlite":
        day = sa.func.date(timestamp)
    elif dialect.name == "mssql":  # before it knows the server version, SQLAlchemy renders DATE as DATETIME
        day = sa.func.convert(sa.literal_column("date"), timestamp)
    tenant = col("tenant_id")
    keys: list[sa.ColumnElement[Any]] = [day, model] + ([tenant] if tenant is not None else [])
    status, score, user = col("status"), col("score"), col("username")

    def count_status(value: str) -> sa.ColumnElement[Any]:
        return sa.func.sum(sa.case((status == value, 1), else_=0)) if status is not None else sa.literal(0)

    def summed(name: str) -> sa.ColumnElement[Any]:
        found = col(name)
        return sa.func.sum(found) if found is not None else sa.cast(sa.null(), sa.Float)

    columns = [
        day.label("day"), model.label("model"),
        (tenant if tenant is not None else sa.cast(sa.null(), sa.String(255))).label("tenant_id"),
        sa.func.count().label("interactions"),
        (sa.func.count(sa.distinct(user)) if user is not None else sa.literal(0)).label("users"),
        count_status("error").label("errors"), count_status("aborted").label("aborted"),
        (sa.func.count(score) if score is not None else sa.literal(0)).label("scored"),
        (sa.func.avg(score) if score is not None else sa.cast(sa.null(), sa.Float)).label("avg_score"),
        summed("prompt_tokens").label("prompt_tokens"), summed("completion_tokens").label("completion_tokens"),
        summed("cost_usd").label("cost_usd"),
    ]
    return sa.select(*columns).where(model.is_not(None)).group_by(*keys)


def _calls(table: sa.Table, column_map: Mapping[str, str]) -> sa.Select[Any]:
    private = {resolve_column(name, table.c.keys(), column_map) for name in PRIVATE_TEXTS}
    return sa.select(*[c for c in table.columns if c.name not in private])


def _create(name: str, query: sa.Select[Any], dialect: Dialect) -> list[str]:
    body = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True})).replace("\n", " ")
    if dialect.name in ("mysql", "mariadb"):
        return [f"CREATE OR REPLACE VIEW {name} AS {body}"]
    if dialect.name == "mssql":
        return [f"CREATE OR ALTER VIEW {name} AS {body}"]
    return [f"DROP VIEW IF EXISTS {name}", f"CREATE VIEW {name} AS {body}"]


def view_statements(table: sa.Table, dialect: Dialect, column_map: Mapping[str, str] | None = None) -> list[str]:
    """The statements that create (or replace) both views of ``table``; only our constants are inlined."""
    daily, calls = view_names(table)
    mapping = dict(column_map or {})
    return (_create(_qualified(daily, table.schema, dialect), _daily(table, dialect, mapping), dialect)
            + _create(_qualified(calls, table.schema, dialect), _calls(table, mapping), dialect))


def create_views(engine: sa.Engine, table: sa.Table, column_map: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Create (or replace) the views of ``table`` in one transaction; returns their names."""
    statements = view_statements(table, engine.dialect, column_map)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    return view_names(table)


READ_INDEX_FIELDS = ("timestamp", "model", "status", "username", "tenant_id", "score", "duration_ms", "ttft_ms",
                     "prompt_tokens", "completion_tokens", "cost_usd")
"""The columns every overview query reads, ``timestamp`` first (the period is always a range on it)."""


def read_index(table: sa.Table, dialect: Dialect, column_map: Mapping[str, str] | None = None) -> sa.Index | None:
    """A covering index for the read side: the overview, breakdowns and time series are answered from
    the index alone, without touching the wide rows (prompts and answers) of the table.

    Measured with ``bench/read_side.py`` (1,000,000 rows, BENCHMARKS.md). ``timestamp`` is the key and
    the others ride along: as key columns on SQLite, ``INCLUDE`` columns on PostgreSQL (11+) and SQL
    Server (where long text can only be included). None on MySQL/MariaDB, which can neither include
    columns nor index LONGTEXT without a prefix (their plain ``timestamp`` index is what they get).
    """
    if dialect.name in ("mysql", "mariadb"):
        return None
    names = [real for f in READ_INDEX_FIELDS if (real := resolve_column(f, table.c.keys(), column_map)) is not None]
    if not names or names[0] != resolve_column("timestamp", table.c.keys(), column_map):
        return None
    columns = [table.c[n] for n in names]
    name = f"ix_{table.name}_reads"[:60]
    if dialect.name == "sqlite":
        return sa.Index(name, *columns)
    return sa.Index(name, columns[0], postgresql_include=names[1:], mssql_include=names[1:])


def create_read_index(engine: sa.Engine, table: sa.Table, column_map: Mapping[str, str] | None = None) -> str | None:
    """Create :func:`read_index` unless it exists; returns its name (None where the dialect gets none)."""
    index = read_index(table, engine.dialect, column_map)
    if index is None:
        return None
    existing = {ix["name"] for ix in sa.inspect(engine).get_indexes(table.name, schema=table.schema)}
    if index.name not in existing:
        index.create(engine)
    return str(index.name)
