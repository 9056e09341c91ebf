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
           "read_index", "rollups_readable", "view_names", "view_statements"]

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


def _next_day(day: sa.ColumnElement[Any], dialect: Dialect) -> sa.ColumnElement[Any]:
    if dialect.name == "sqlite":
        return sa.func.datetime(day, "+1 day")
    if dialect.name in ("mysql", "mariadb"):
        return sa.func.date_add(day, sa.literal_column("INTERVAL 1 DAY"))
    if dialect.name == "mssql":
        return sa.func.dateadd(sa.literal_column("day"), 1, day)
    return day + sa.literal_column("INTERVAL '1 day'")


def _daily_from_rollups(table: sa.Table, dialect: Dialect, column_map: Mapping[str, str],
                        day_level: bool = True) -> sa.Select[Any]:
    """``<table>_daily`` over the rollups: the additive figures are sums of ``<table>_rollup_day``
    (one row a day per key and status; ``day_level=False``: of the quarter hours of ``<table>_rollup``, a
    table upgraded before the day level). ``users`` is not additive and the rollup of users is not
    keyed by model and tenant, so it is counted on the table by a correlated subquery: evaluated only
    for the rows a BI tool asks for, each one a range on the timestamp index."""
    from wonkalytics.store.rollup_model import DAY, QUARTER, rollup_tables

    rollup = rollup_tables(table.name, table.schema, level=DAY if day_level else QUARTER)[0]
    r = rollup.c

    def col(name: str) -> sa.Column[Any] | None:
        real = resolve_column(name, table.c.keys(), column_map)
        return None if real is None else table.c[real]

    day: sa.ColumnElement[Any] = sa.cast(r.bucket, sa.Date)
    if dialect.name == "sqlite":
        day = sa.func.date(r.bucket)
    elif dialect.name == "mssql":
        day = sa.func.convert(sa.literal_column("date"), r.bucket)
    summed = ("interactions", "errors", "aborted", "scored", "score_sum", "prompt_tokens", "completion_tokens",
              "cost_usd")
    days = (sa.select(day.label("day"), r.model.label("model"), r.tenant_id.label("tenant_id"),
                      *[sa.func.sum(r[name]).label(name) for name in summed])
            .group_by(day, r.model, r.tenant_id).subquery("days"))
    g = days.c
    timestamp, model, tenant, user = col("timestamp"), col("model"), col("tenant_id"), col("username")
    assert timestamp is not None and model is not None   # Rollup() refused the table otherwise
    users: sa.ColumnElement[Any] = sa.literal(0)
    if user is not None:
        first: sa.ColumnElement[Any] = g.day if dialect.name == "sqlite" else sa.cast(g.day, sa.DateTime)
        same_tenant = (sa.or_(tenant == g.tenant_id, sa.and_(tenant.is_(None), g.tenant_id.is_(None)))
                       if tenant is not None else sa.true())
        users = (sa.select(sa.func.count(sa.distinct(user)))
                 .where(timestamp >= first, timestamp < _next_day(first, dialect), model == g.model, same_tenant)
                 .scalar_subquery())
    return sa.select(g.day, g.model, g.tenant_id, g.interactions, users.label("users"), g.errors, g.aborted,
                     g.scored, (g.score_sum / sa.func.nullif(g.scored, 0)).label("avg_score"), g.prompt_tokens,
                     g.completion_tokens, g.cost_usd)


def rollups_readable(engine: sa.Engine, table: sa.Table, column_map: Mapping[str, str] | None = None) -> bool:
    """Whether ``<table>_rollup`` exists and is kept on the columns ``column_map`` names (see
    :mod:`wonkalytics.store.rollup_reads`: the writer's hook resolves fields without the map)."""
    from wonkalytics.store.rollups import Rollup

    if not sa.inspect(engine).has_table(f"{table.name}_rollup", schema=table.schema):
        return False
    try:
        ours, writers = Rollup(table, column_map), Rollup(table)
    except ValueError:
        return False
    return {n: c.name for n, c in ours.columns.items()} == {n: c.name for n, c in writers.columns.items()}


def _day_level(engine: sa.Engine, table: sa.Table) -> bool:
    """Whether the writer keeps ``<table>_rollup_day`` (see :func:`wonkalytics.store.rollups.probe_levels`)."""
    from wonkalytics.store.rollup_model import DAY
    from wonkalytics.store.rollups import probe_levels

    with engine.connect() as conn:
        found = probe_levels(conn, table)
    return found is not None and DAY in found[1]


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


def view_statements(table: sa.Table, dialect: Dialect, column_map: Mapping[str, str] | None = None, *,
                    rollups: bool = False, days: bool = True) -> list[str]:
    """The statements that create (or replace) both views of ``table``; only our constants are inlined.

    ``rollups``: ``<table>_daily`` reads the rollups (see :func:`rollups_readable`): ``<table>_rollup_day``,
    or with ``days=False`` the quarter hours of ``<table>_rollup``."""
    daily, calls = view_names(table)
    mapping = dict(column_map or {})
    query = _daily_from_rollups(table, dialect, mapping, days) if rollups else _daily(table, dialect, mapping)
    return (_create(_qualified(daily, table.schema, dialect), query, dialect)
            + _create(_qualified(calls, table.schema, dialect), _calls(table, mapping), dialect))


def create_views(engine: sa.Engine, table: sa.Table, column_map: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Create (or replace) the views of ``table`` in one transaction (the daily one over the rollups
    when :func:`rollups_readable`); returns their names."""
    rollups = rollups_readable(engine, table, column_map)
    statements = view_statements(table, engine.dialect, column_map, rollups=rollups,
                                 days=rollups and _day_level(engine, table))
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
