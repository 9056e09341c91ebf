"""Rollups of one analytics table, kept by the writer and rebuilt from the table: derived data.

Three levels (see :mod:`wonkalytics.store.rollup_model`): per UTC quarter hour (``<table>_rollup``,
``<table>_rollup_users``), per UTC hour (``<table>_rollup_hour``, ...) and per UTC day
(``<table>_rollup_day``, ``<table>_rollup_day_users``),
each keyed by bucket x model x tenant_id x status x the app fields the team names, and addressed by
``key_hash`` (SHA-256 of the key, unique: a primary key of several long text columns does not fit
MariaDB's 3072-byte index limit, and the hash keeps NULL apart from ``''``); the primary key is
``(bucket, key_hash)``, so where a table's rows lie in its key's order (InnoDB, SQL Server) a period's
rows are neighbours (``init --upgrade`` step ``m011_rollup_bucket_first``). Each row carries exact, additive
figures (interactions, errors, aborted, token and cost sums, score count/sum and an exact score
histogram ``{score: count}`` from which min/max follow even after a score is taken out), and
:class:`~wonkalytics.store.sketch.Sketch` texts of ``duration_ms`` and ``ttft_ms`` (percentiles
within 1 %). The users tables hold ``(bucket, username, n)`` so distinct users of any set of whole
buckets are exact.

Events (rows without ``model``) are not rolled up: the read side counts them in no figure either.
Quarter hours (not hours) so zones with a half-hour offset (Asia/Kolkata) still get exact local days.

The writer aggregates each batch once in memory at the quarter level, adds that up per hour and per day, and
writes one row per key per level (a few statements a batch, not per key:
:mod:`wonkalytics.store.rollup_keeper`). :func:`rebuild`
recomputes every level of a time range from the table, exactly, a day of rows at a time; the
writer's incremental upkeep (:class:`~wonkalytics.store.rollup_keeper.Keeper`) is in
:mod:`wonkalytics.store.rollup_keeper`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.store.fit import column_index, fold_name, resolve_column
from wonkalytics.store.rollup_model import (
    DAY,
    DIMENSIONS,
    KNOWN,
    LEVELS,
    QUARTER,
    SUMS,
    Aggregate,
    Deltas,
    Groups,
    Level,
    Users,
    bucket_of,
    dimension_users,
    grain_names,
    key_hash,
    model_tables,
    rollup_tables,
    split,
)

__all__ = ["DIMENSIONS", "LEVELS", "Aggregate", "Rollup", "bucket_of", "probe_levels", "rebuild",
           "resolved_columns", "rollup_tables"]

BUCKET = QUARTER.step
_KNOWN = KNOWN
_READ = ("timestamp", "username", "score", "cost_usd", "duration_ms", "ttft_ms", *DIMENSIONS, *SUMS)


def resolved_columns(table: sa.Table, column_map: Mapping[str, str] | None,
                     fields: Sequence[str]) -> dict[str, sa.Column[Any]]:
    """The table's column of each field a rollup reads (column map, exact, case-insensitive), by field name;
    ValueError without a timestamp or model column."""
    folded = column_index(table.c.keys())
    columns: dict[str, sa.Column[Any]] = {}
    for name in (*_READ, *fields):
        real = resolve_column(name, table.c.keys(), dict(column_map or {}), folded=folded)
        if real is not None:
            columns[name] = table.c[real]
    if "timestamp" not in columns or "model" not in columns:
        raise ValueError(f"table {table.name!r} has no timestamp or model column: nothing to roll up")
    return columns


class Rollup:
    """The rollups of one reflected table: field resolution through the column map, aggregation, storage."""

    def __init__(self, table: sa.Table, column_map: Mapping[str, str] | None = None,
                 fields: Sequence[str] = (), levels: Sequence[Level] = LEVELS, by_model: bool = True) -> None:
        self.source = table
        self.fields = tuple(fields)
        self.names = (*DIMENSIONS, *self.fields)
        self.column_map = dict(column_map or {})
        self.levels = tuple(levels)
        self.tables = {level: rollup_tables(table.name, table.schema, self.fields, level) for level in self.levels}
        self.rollup, self.users = self.tables[QUARTER]
        self.by_model = by_model
        self.models = ({level: model_tables(table.name, table.schema, level) for level in self.levels}
                       if by_model else {})
        # users per value of every other key field (tenant_id, status, app fields), with the model tables
        self.by = ({level: {i: dimension_users(table.name, table.schema, level, self.names[i])
                            for i in range(1, len(self.names))} for level in self.levels} if by_model else {})
        self.columns = resolved_columns(table, self.column_map, self.fields)

    def all_tables(self) -> list[sa.Table]:
        """Every rollup table of every level, finest first."""
        return [t for level in self.levels
                for t in (*self.tables[level], *self.models.get(level, ()), *self.by.get(level, {}).values())]

    def create(self, conn: Connection) -> None:
        """Create the rollup tables of every level where missing."""
        for target in self.all_tables():
            target.create(conn, checkfirst=True)

    def select_rows(self, since: datetime | None = None) -> sa.Select[Any]:
        """The source rows to roll up (interactions only), each field labelled with its canonical name."""
        query = sa.select(*[c.label(n) for n, c in self.columns.items()]).where(self.columns["model"].is_not(None))
        if since is not None:
            query = query.where(self.columns["timestamp"] >= since)
        return query

    def aggregate(self, rows: Iterable[Mapping[str, Any]], sign: int = 1) -> tuple[Groups, Users]:
        """Rows -> quarter-hour aggregates by key hash, and counts by (quarter hour, key, username)."""
        grouped: dict[tuple[datetime, tuple[Any, ...]], list[Mapping[str, Any]]] = {}   # hashed once per key
        users: Users = {}
        names = self.names
        low = high = bucket = datetime.min   # the last row's quarter hour: a batch's rows mostly share it
        for row in rows:
            moment = row.get("timestamp")
            if not isinstance(moment, datetime) or row.get("model") is None:
                continue
            if moment.tzinfo is not None or not low <= moment < high:
                low = bucket = bucket_of(moment)
                high = low + BUCKET
            dims = tuple(map(row.get, names))   # one call, not one per field
            group = grouped.get((bucket, dims))
            if group is None:
                grouped[(bucket, dims)] = [row]
            else:
                group.append(row)
            user = row.get("username")
            if user is not None:
                slot = (bucket, dims, str(user))
                users[slot] = users.get(slot, 0) + sign
        found: dict[tuple[datetime, tuple[Any, ...]], Aggregate] = {}
        for key, group_rows in grouped.items():
            found[key] = agg = Aggregate()
            agg.add_rows(group_rows, sign)
        return {key_hash(b, dims): (b, dims, agg) for (b, dims), agg in found.items()}, users

    def levelled(self, groups: Groups, users: Users) -> list[tuple[Level, Deltas]]:
        """The deltas of every level this rollup keeps (quarter hours added up per day for the day level)."""
        return [(level, split(groups, users, level)) for level in self.levels]

    def store(self, conn: Connection, level: Level, deltas: Deltas) -> None:
        """Insert freshly computed rollup rows of ``level`` (the range was cleared first)."""
        rollup, people = self.tables[level]
        targets: list[tuple[sa.Table, tuple[str, ...], Groups, sa.Table, tuple[str, ...], Users]] = [
            (rollup, self.names, deltas.groups, people, ("username",), deltas.users)]
        if level in self.models:
            targets.append((*self.models[level][:1], ("model",), deltas.models, self.models[level][1],
                            ("model", "username"), deltas.model_users))
            for i, users_by in self.by[level].items():
                targets.append((self.models[level][0], ("model",), {}, users_by, ("value", "username"),
                                deltas.by.get(i, {})))
        for table, names, groups, users_table, user_keys, users in targets:
            rows = [{"key_hash": key, "bucket": bucket, **dict(zip(names, dims, strict=True)), **agg.values()}
                    for key, (bucket, dims, agg) in groups.items() if agg.counts.get("interactions")]
            if rows:
                conn.execute(sa.insert(table), rows)
            counted = [{"bucket": k[0], **dict(zip(user_keys, k[1:], strict=True)), "n": n}
                       for k, n in users.items() if n > 0]
            if counted:
                conn.execute(sa.insert(users_table), counted)


def rebuild(engine: sa.Engine, table: sa.Table, column_map: Mapping[str, str] | None = None, *,
            fields: Sequence[str] = (), since: datetime | None = None) -> int:
    """Recompute every level of the rollups from the UTC day holding ``since`` (all when None) exactly;
    returns the rows read.

    One transaction: the range is deleted and written again, so readers see the old or the new figures
    (MySQL/MariaDB commit the DDL of a full rebuild implicitly: there readers may briefly see none).
    """
    keeper = Rollup(table, column_map, fields)
    start = DAY.floor(since) if since is not None else None   # whole days: every level's buckets are whole
    with engine.begin() as conn:
        if start is None:   # everything: the tables are remade, so a changed rollup_fields takes effect
            for target in reversed(keeper.all_tables()):
                target.drop(conn, checkfirst=True)
        keeper.create(conn)
        for target in keeper.all_tables():
            delete = sa.delete(target)
            conn.execute(delete.where(target.c.bucket >= start) if start is not None else delete)
        return _rebuild_days(conn, keeper, start)


def _rebuild_days(conn: Connection, keeper: Rollup, start: datetime | None) -> int:
    # A day of rows at a time (no key of any level spans two chunks), so a rebuild of 10M rows holds
    # one day's rows in memory rather than all of them (bench/read_side.py builds them so).
    timestamp = keeper.columns["timestamp"]
    bounds = sa.select(sa.func.min(timestamp), sa.func.max(timestamp)).where(keeper.columns["model"].is_not(None))
    if start is not None:
        bounds = bounds.where(timestamp >= start)
    low, high = conn.execute(bounds).one()
    if low is None:
        return 0
    low = low if isinstance(low, datetime) else datetime.fromisoformat(str(low))
    high = high if isinstance(high, datetime) else datetime.fromisoformat(str(high))
    day = DAY.floor(low)
    read = 0
    while day <= high:
        query = keeper.select_rows(day).where(timestamp < day + timedelta(days=1))
        rows = [dict(r) for r in conn.execute(query).mappings()]
        for level, deltas in keeper.levelled(*keeper.aggregate(rows)):
            keeper.store(conn, level, deltas)
        read += len(rows)
        day += timedelta(days=1)
    return read


def _probe(conn: Connection, name: str, schema: str | None) -> list[str] | None:
    """The column names of table ``name``, or None when it does not exist (a query, not the catalogue)."""
    probe = sa.select(sa.text("*")).select_from(sa.table(name, schema=schema))
    try:
        # The writer reflects its table once, and the column names come back with the (empty) result.
        # The savepoint keeps PostgreSQL's transaction usable on failure.
        with conn.begin_nested():
            return list(conn.execute(probe.where(sa.false())).keys())
    except sa.exc.DBAPIError:
        return None


def _catalogue(conn: Connection, table: sa.Table) -> set[str] | None:
    """The folded names (:func:`~wonkalytics.store.fit.fold_name`) of the tables in ``table``'s schema, when
    the catalogue lists ``<table>_rollup`` there (else None: probe each name, e.g. a table found through a
    search path the listing does not cover)."""
    try:
        with conn.begin_nested():
            names = {fold_name(n) for n in sa.inspect(conn).get_table_names(schema=table.schema)}
    except sa.exc.DBAPIError:
        return None
    return names if fold_name(f"{table.name}_rollup") in names else None


def probe_levels(conn: Connection, table: sa.Table) -> tuple[tuple[str, ...], tuple[Level, ...], bool] | None:
    """The app fields, the levels and whether the per-model tables are kept, of ``table``'s rollups
    (None without ``<table>_rollup``).

    A coarser level counts only when its tables are there and keyed by the same fields (a table
    upgraded after a rebuild with other ``rollup_fields`` keeps its quarter hours until the next
    rebuild); the per-model tables (and the users per tenant / status / field) only when every level has them.
    Which tables exist comes from one catalogue listing; only the three rollup tables whose columns
    name the fields are queried (a fresh reader's first page probed ~21 tables with 3 statements each:
    ~45 of its ~67 ms on PostgreSQL, bench/read_side.py's cold request).
    """
    names = _probe(conn, f"{table.name}_rollup", table.schema)   # one statement where there are none (the writer)
    if names is None:
        return None
    listed = _catalogue(conn, table)

    def columns(name: str) -> list[str] | None:
        if listed is not None and fold_name(name) not in listed:
            return None
        return _probe(conn, name, table.schema)

    def exists(name: str) -> bool:
        return fold_name(name) in listed if listed is not None else _probe(conn, name, table.schema) is not None

    fields = tuple(n for n in names if n not in KNOWN)
    levels = [QUARTER]
    for level in LEVELS:
        if level is QUARTER:
            continue
        coarse = columns(f"{table.name}_rollup{level.suffix}")
        if (coarse is not None and exists(f"{table.name}_rollup{level.suffix}_users")
                and tuple(n for n in coarse if n not in KNOWN) == fields):
            levels.append(level)
    grains = [n for level in levels for n in grain_names(table.name, level, (*DIMENSIONS[1:], *fields))]
    return fields, tuple(levels), all(exists(name) for name in grains)
