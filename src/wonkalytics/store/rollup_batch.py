"""The statements of the writer's rollup upkeep: several rollup tables in one statement -- the look-up
of the batch's ids and of every table's stored rows (SQLite, PostgreSQL) and, on PostgreSQL, the
writes to every table -- and the per-table statements (built once) for the rest and other dialects.

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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.access import json_default
from wonkalytics.store.rollup_model import METRICS

__all__ = ["CHUNK", "LOOKUP_DIALECTS", "WRITE_DIALECTS", "TableStatements", "bulk_keys", "dialect_insert",
           "held_ids", "insert_missing", "keys_in", "keys_value", "lookup", "statements_of", "write"]

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
    # timestamps as ISO text (json_default; what PostgreSQL's timestamp input reads); floats as repr (exact round trip)
    # allow_nan=False: JSON has no NaN / Infinity (a ValueError: write() answers False, the caller writes per table)
    return json.dumps(rows, default=json_default, allow_nan=False)


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


# -- one table at a time (every dialect; MariaDB and SQL Server only so) ---------------------------


def dialect_insert(conn: Connection) -> Any:
    """The dialect's ``insert`` construct with UPSERT clauses, or None where there is none."""
    return dialect_insert_by_name(conn.dialect.name)


def dialect_insert_by_name(name: str) -> Any:
    """The ``insert`` construct with UPSERT clauses of dialect ``name``, or None where there is none."""
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    if name in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        return mysql_insert
    return None


def insert_missing(conn: Connection, target: sa.Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert the ``rows`` whose ``keys`` are not there yet, in one statement (the dialect's UPSERT).

    The insert that does nothing when the row exists also takes the row lock on PostgreSQL/MariaDB,
    so two writers merging the same key serialise here (rows sorted by key: no lock-order deadlock).
    """
    insert = dialect_insert(conn)
    if insert is None:   # SQL Server and others: look first (the transaction's isolation guards the race)
        for values in rows:
            where = [target.c[k] == values[k] for k in keys]
            if conn.execute(sa.select(sa.func.count()).select_from(target).where(*where)).scalar_one() == 0:
                conn.execute(sa.insert(target).values(values))
        return
    statement = insert(target)
    if conn.dialect.name in ("mysql", "mariadb"):
        statement = statement.on_duplicate_key_update({keys[0]: statement.inserted[keys[0]]})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    conn.execute(statement, rows)


CHUNK = 500  # keys per IN (...) list


def bulk_keys(dialect: str, keys: Sequence[Any]) -> bool:
    """Whether :func:`keys_in` binds ``keys`` as one list (string keys on PostgreSQL / SQLite)."""
    return dialect in ("postgresql", "sqlite") and all(isinstance(k, str) for k in keys)


class TableStatements:
    """The statements of one rollup table on one dialect, built once.

    Building a fresh construct per batch (and its cache key) cost ~0.1-0.2 ms of writer CPU per
    statement, ~18 statements a batch; a statement built once is looked up in SQLAlchemy's compiled
    cache by its memoised key.
    """

    def __init__(self, target: sa.Table, dialect: str, keys: Sequence[str]) -> None:
        self.lookup: sa.Select[Any] = sa.select(target).where(keys_in(target.c.key_hash, dialect)) \
            if "key_hash" in target.c else sa.select(target)
        if dialect != "sqlite":
            self.lookup = self.lookup.with_for_update()
        self.update: Any = None
        if "key_hash" in target.c:
            self.update = (sa.update(target).where(target.c.key_hash == sa.bindparam("k_key"))
                           .values({c: sa.bindparam(f"v_{c}") for c in METRICS}))
        self.insert = sa.insert(target)
        self.returning: Any = None
        if dialect == "postgresql" and "key_hash" in target.c:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self.returning = (pg_insert(target).on_conflict_do_nothing(index_elements=["key_hash"])
                              .returning(target.c.key_hash))
        self.upsert: Any = None
        insert = dialect_insert_by_name(dialect)
        if insert is not None and "n" in target.c:
            upsert = insert(target)
            if dialect in ("mysql", "mariadb"):
                self.upsert = upsert.on_duplicate_key_update(n=target.c.n + upsert.inserted.n)
            else:
                self.upsert = upsert.on_conflict_do_update(index_elements=list(keys),
                                                           set_={"n": target.c.n + upsert.excluded.n})


_STATEMENTS: dict[tuple[int, str], tuple[sa.Table, TableStatements]] = {}


def statements_of(conn: Connection, target: sa.Table, keys: Sequence[str]) -> TableStatements:
    """The :class:`TableStatements` of ``target`` on ``conn``'s dialect (remembered per table object)."""
    slot = (id(target), conn.dialect.name)
    hit = _STATEMENTS.get(slot)
    if hit is None or hit[0] is not target:
        hit = _STATEMENTS[slot] = (target, TableStatements(target, conn.dialect.name, keys))
    return hit[1]


_HELD: dict[tuple[int, str, str], tuple[sa.Table, sa.Select[Any]]] = {}


def held_ids(conn: Connection, table: sa.Table, column: str, ids: Sequence[Any]) -> set[Any]:
    """Which of ``ids`` the table's ``column`` holds already (one statement where :func:`keys_in` binds a list)."""
    dialect = conn.dialect.name
    held: set[Any] = set()
    if not ids:
        return held
    slot = (id(table), column, dialect)
    hit = _HELD.get(slot)
    if hit is None or hit[0] is not table:
        hit = _HELD[slot] = (table, sa.select(table.c[column]).where(keys_in(table.c[column], dialect)))
    step = len(ids) if bulk_keys(dialect, ids) else CHUNK
    for start in range(0, len(ids), step):
        held.update(conn.scalars(hit[1], {"keys": keys_value(ids[start:start + step], dialect)}))
    return held
