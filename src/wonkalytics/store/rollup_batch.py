"""Several rollup tables in one statement: the writer's look-up of every table's stored rows (SQLite,
PostgreSQL) and, on PostgreSQL, its writes to every table.

A batch touches 4 rollup tables (full keys and per model, quarter hours and UTC days) and 8 users
tables (per user, per model and user, per tenant / status / app field and user, each level): one
statement each was 18 statements a 200-row batch, and on PostgreSQL each cost the writer
~0.15-0.4 ms of CPU whatever its rows (SQLAlchemy, psycopg, the round trip: bench/writer_cpu.py,
profiled with cProfile). Here the look-up is one ``UNION ALL`` (each part ``FOR UPDATE`` in its own
CTE on PostgreSQL, which refuses a locking clause on a ``UNION``), and the writes one statement of
data-modifying CTEs, each an ``UPDATE ... FROM json_populate_recordset(...)`` or an ``INSERT ...
SELECT FROM json_populate_recordset(...) ON CONFLICT DO UPDATE``: one JSON parameter per table, so
the text (and its compiled form) is the same whatever the number of keys.

Identifiers come from the rollup table definitions (:mod:`wonkalytics.store.rollup_model`), quoted
by the dialect; every value is a bound parameter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.store.rollup_model import METRICS

__all__ = ["LOOKUP_DIALECTS", "WRITE_DIALECTS", "keys_in", "keys_value", "lookup", "write"]

LOOKUP_DIALECTS = ("sqlite", "postgresql")
"""Dialects whose look-up of several rollup tables is one statement (:func:`lookup`)."""
WRITE_DIALECTS = ("postgresql",)
"""Dialects whose writes to several rollup tables are one statement (:func:`write`)."""


def keys_in(column: sa.ColumnElement[Any], dialect: str, name: str = "keys") -> sa.ColumnElement[bool]:
    """``column IN (:name)`` with every key in one bound parameter, a JSON array, where the dialect reads one.

    PostgreSQL: ``IN (SELECT CAST(json_array_elements_text(CAST(:keys AS JSON)) AS <column type>))``,
    SQLite: ``IN (SELECT value FROM json_each(:keys))``; elsewhere an expanding ``IN``. One text
    parameter instead of one per key (or an array psycopg dumps element by element): the writer's
    look-up of a batch's 200 event ids measured 1.17 ms (expanding IN) -> 0.39 ms (an array) -> 0.15 ms
    (JSON) on PostgreSQL and 0.32 -> 0.16 ms on SQLite, of writer CPU (bench load ~8). Bind with
    :func:`keys_value`.
    """
    if dialect == "postgresql":
        elements = sa.func.json_array_elements_text(sa.cast(sa.bindparam(name), sa.JSON))
        return column.in_(sa.select(sa.cast(elements, column.type)))
    if dialect == "sqlite":
        return column.in_(sa.select(sa.column("value")).select_from(sa.func.json_each(sa.bindparam(name))))
    return column.in_(sa.bindparam(name, expanding=True))


def keys_value(keys: Sequence[Any], dialect: str) -> Any:
    """The value of :func:`keys_in`'s parameter for ``keys`` (strings)."""
    return json.dumps(list(keys)) if dialect in ("sqlite", "postgresql") else list(keys)


_Lookup = tuple[tuple[sa.Table, ...], "sa.Column[Any] | None", sa.CompoundSelect[Any]]
_LOOKUPS: dict[tuple[tuple[int, ...], int, str], _Lookup] = {}


def _lookup_statement(tables: tuple[sa.Table, ...], held: sa.Column[Any] | None,
                      dialect: str) -> sa.CompoundSelect[Any]:
    slot = (tuple(id(t) for t in tables), id(held), dialect)
    hit = _LOOKUPS.get(slot)
    if hit is not None and hit[1] is held and all(a is b for a, b in zip(hit[0], tables, strict=True)):
        return hit[2]
    parts: list[sa.Select[Any]] = []
    for i, table in enumerate(tables):
        short = table.alias(f"r{i}")   # a shorter text than the table's name on every column
        part = sa.select(sa.literal_column(str(i)).label("part"), *[short.c[c] for c in ("key_hash", *METRICS)]).where(
            keys_in(short.c.key_hash, dialect, f"keys_{i}"))
        if dialect != "sqlite":
            part = sa.select(part.with_for_update().cte(f"locked_{i}"))
        parts.append(part)
    if held is not None:   # the batch's ids the table holds already, as part -1 (no figures)
        columns: list[sa.ColumnElement[Any]] = [sa.literal_column("-1").label("part"),
                                                sa.cast(held, sa.String()).label("key_hash"),
                                                *[sa.null().label(c) for c in METRICS]]
        ids: sa.Select[Any] = sa.select(*columns).where(keys_in(held, dialect, "held"))
        parts.append(ids)
    statement = sa.union_all(*parts)
    _LOOKUPS[slot] = (tables, held, statement)
    return statement


def lookup(conn: Connection, parts: Sequence[tuple[sa.Table, Sequence[str]]],
           held: tuple[sa.Column[Any], Sequence[str]] | None = None,
           ) -> tuple[list[dict[str, dict[str, Any]]], set[str]]:
    """The stored rows of each part's keys (``(table, key hashes)``), one dict per part by key hash (locked
    for update on PostgreSQL, in the parts' order), and which ``held`` ids (``(column, string ids)``)
    the source table holds already: one statement. A dialect of :data:`LOOKUP_DIALECTS` only."""
    dialect = conn.dialect.name
    statement = _lookup_statement(tuple(t for t, _ in parts), None if held is None else held[0], dialect)
    params = {f"keys_{i}": keys_value(keys, dialect) for i, (_, keys) in enumerate(parts)}
    if held is not None:
        params["held"] = keys_value(held[1], dialect)
    found: list[dict[str, dict[str, Any]]] = [{} for _ in parts]
    there: set[str] = set()
    for row in conn.execute(statement, params).mappings():
        if row["part"] < 0:
            there.add(row["key_hash"])
        else:
            found[int(row["part"])][row["key_hash"]] = dict(row)
    return found, there


_WRITES: dict[tuple[tuple[tuple[int, tuple[str, ...]], ...], str], tuple[tuple[sa.Table, ...], sa.TextClause]] = {}


def _write_statement(conn: Connection, shape: Sequence[tuple[sa.Table, tuple[str, ...]]]) -> sa.TextClause:
    """``WITH w0 AS (UPDATE ...), w1 AS (INSERT ... ON CONFLICT ...), ... SELECT 1`` for the parts of ``shape``:
    ``(table, ())`` updates a rollup table's metrics by key hash, ``(table, keys)`` adds ``n`` to a users table.

    Each part reads its rows from one JSON parameter as records of its own table
    (``json_populate_recordset(NULL::table, :rows)``: the table's column types, no cast per column):
    12 text parameters (an array per column measured ~2x the writer CPU of this statement: psycopg
    dumped ~60 arrays each batch). The text is kept short (aliases, row-wise ``SET``, ``SELECT *``).
    """
    slot = (tuple((id(t), keys) for t, keys in shape), conn.dialect.name)
    hit = _WRITES.get(slot)
    if hit is not None and all(a is b for a, (b, _) in zip(hit[0], shape, strict=True)):
        return hit[1]
    # quoted names of our own rollup tables and columns, bound values
    quote = conn.dialect.identifier_preparer.quote
    name = conn.dialect.identifier_preparer.format_table
    ctes = []
    for i, (table, keys) in enumerate(shape):
        rows = f"json_populate_recordset(NULL::{name(table)}, :w{i})"
        if not keys:   # a rollup table: its merged figures, by key hash
            listed = ", ".join(quote(c) for c in METRICS)
            merged = ", ".join(f"v.{quote(c)}" for c in METRICS)
            ctes.append(f"w{i} AS (UPDATE {name(table)} AS r SET ({listed}) = ({merged}) FROM {rows} AS v "  # noqa: S608
                        f"WHERE r.{quote('key_hash')} = v.{quote('key_hash')})")
        else:          # a users table (every column in the JSON): n added per key
            conflict, n = ", ".join(quote(k) for k in keys), quote("n")
            ctes.append(f"w{i} AS (INSERT INTO {name(table)} AS r SELECT * FROM {rows} "  # noqa: S608
                        f"ON CONFLICT ({conflict}) DO UPDATE SET {n} = r.{n} + EXCLUDED.{n})")
    statement = sa.text("WITH " + ", ".join(ctes) + " SELECT 1")
    _WRITES[slot] = (tuple(t for t, _ in shape), statement)
    return statement


def _json(rows: list[dict[str, Any]]) -> str:
    # timestamps as ISO text (what PostgreSQL's timestamp input reads); floats as repr (exact round trip)
    # allow_nan=False: JSON has no NaN / Infinity (a ValueError: write() answers False, the caller writes per table)
    return json.dumps(rows, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v), allow_nan=False)


def write(conn: Connection, updates: Sequence[tuple[sa.Table, Sequence[Mapping[str, Any]]]],
          users: Sequence[tuple[sa.Table, Sequence[str], Sequence[Mapping[str, Any]]]]) -> bool:
    """Every rollup table's updated rows (``{"k_key": hash, "v_<metric>": value}``) and every users
    table's deltas (``{key...: value, "n": delta}``) in one statement; parts without rows are left
    out. A dialect of :data:`WRITE_DIALECTS` only. False (nothing written) when a figure is not finite
    (NaN or infinite cost or score): JSON cannot carry it, the caller writes table by table."""
    shape: list[tuple[sa.Table, tuple[str, ...]]] = []
    params: dict[str, Any] = {}
    try:
        _parts(shape, params, updates, users)
    except ValueError:
        return False
    if shape:
        conn.execute(_write_statement(conn, shape), params)
    return True


def _parts(shape: list[tuple[sa.Table, tuple[str, ...]]], params: dict[str, Any],
           updates: Sequence[tuple[sa.Table, Sequence[Mapping[str, Any]]]],
           users: Sequence[tuple[sa.Table, Sequence[str], Sequence[Mapping[str, Any]]]]) -> None:
    for table, rows in updates:
        if rows:
            params[f"w{len(shape)}"] = _json([{"key_hash": r["k_key"], **{c: r[f"v_{c}"] for c in METRICS}}
                                              for r in rows])
            shape.append((table, ()))
    for table, keys, deltas in users:
        if deltas:
            params[f"w{len(shape)}"] = _json([dict(d) for d in deltas])
            shape.append((table, tuple(keys)))
