"""Rollups of one analytics table, kept by the writer and rebuilt from the table: derived data.

Two levels (see :mod:`wonkalytics.store.rollup_model`): per UTC quarter hour (``<table>_rollup``,
``<table>_rollup_users``) and per UTC day (``<table>_rollup_day``, ``<table>_rollup_day_users``),
each keyed by bucket x model x tenant_id x status x the app fields the team names, and addressed by
``key_hash`` (SHA-256 of the key: a primary key of several long text columns does not fit MariaDB's
3072-byte index limit, and the hash keeps NULL apart from ``''``). Each row carries exact, additive
figures (interactions, errors, aborted, token and cost sums, score count/sum and an exact score
histogram ``{score: count}`` from which min/max follow even after a score is taken out), and
:class:`~wonkalytics.store.sketch.Sketch` texts of ``duration_ms`` and ``ttft_ms`` (percentiles
within 1 %). The users tables hold ``(bucket, username, n)`` so distinct users of any set of whole
buckets are exact.

Events (rows without ``model``) are not rolled up: the read side counts them in no figure either.
Quarter hours (not hours) so zones with a half-hour offset (Asia/Kolkata) still get exact local days.

The writer aggregates each batch once in memory at the quarter level, adds that up per day, and
writes one row per key per level with a few statements per level (not per key). :func:`rebuild`
recomputes every level of a time range from the table, exactly, a day of rows at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.store.fit import column_index, resolve_column
from wonkalytics.store.rollup_model import (
    DAY,
    DIMENSIONS,
    KNOWN,
    LEVELS,
    METRICS,
    QUARTER,
    SUMS,
    Aggregate,
    Deltas,
    Groups,
    Level,
    Users,
    bucket_of,
    combine,
    dimension_users,
    key_hash,
    model_tables,
    rollup_tables,
    split,
    stored,
)

__all__ = ["DIMENSIONS", "LEVELS", "Aggregate", "Keeper", "Rollup", "begin_insert", "bucket_of", "rebuild",
           "rollup_tables", "update_where"]

BUCKET = QUARTER.step
_KNOWN = KNOWN
_READ = ("timestamp", "username", "score", "cost_usd", "duration_ms", "ttft_ms", *DIMENSIONS, *SUMS)


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
        folded = column_index(table.c.keys())
        self.columns: dict[str, sa.Column[Any]] = {}
        for name in (*_READ, *self.fields):
            real = resolve_column(name, table.c.keys(), self.column_map, folded=folded)
            if real is not None:
                self.columns[name] = table.c[real]
        if "timestamp" not in self.columns or "model" not in self.columns:
            raise ValueError(f"table {table.name!r} has no timestamp or model column: nothing to roll up")

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
        found: dict[tuple[datetime, tuple[Any, ...]], Aggregate] = {}   # hashed once per key, not per row
        users: Users = {}
        names = self.names
        for row in rows:
            moment = row.get("timestamp")
            if not isinstance(moment, datetime) or row.get("model") is None:
                continue
            bucket = bucket_of(moment)
            dims = tuple([row.get(f) for f in names])
            agg = found.get((bucket, dims))
            if agg is None:
                agg = found[(bucket, dims)] = Aggregate()
            agg.add(row, sign)
            user = row.get("username")
            if user is not None:
                slot = (bucket, dims, str(user))
                users[slot] = users.get(slot, 0) + sign
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


# --- incremental upkeep (the writer's hook) -------------------------------------------------------


def _dialect_insert(conn: Connection) -> Any:
    """The dialect's ``insert`` construct with UPSERT clauses, or None where there is none."""
    name = conn.dialect.name
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


def _insert_missing(conn: Connection, target: sa.Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert the ``rows`` whose ``keys`` are not there yet, in one statement (the dialect's UPSERT).

    The insert that does nothing when the row exists also takes the row lock on PostgreSQL/MariaDB,
    so two writers merging the same key serialise here (rows sorted by key: no lock-order deadlock).
    """
    insert = _dialect_insert(conn)
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


_CHUNK = 500  # keys per IN (...) list


class Keeper(Rollup):
    """:class:`Rollup` of a table whose rollup tables exist, applying deltas in the writer's transaction."""

    def apply(self, conn: Connection, level: Level, deltas: Deltas) -> None:
        """Add the deltas to ``level``'s stored rows: a handful of statements per table, whatever the keys.

        Missing rows are created (one multi-row UPSERT), every touched row is read locked (one SELECT
        per 500 keys), merged in Python and written back (one executemany UPDATE); emptied rows deleted.
        """
        rollup, people = self.tables[level]
        self._apply_rows(conn, rollup, self.names, deltas.groups)
        self._apply_users(conn, people, ("bucket", "username"), deltas.users)
        if level in self.models:
            rows, users = self.models[level]
            self._apply_rows(conn, rows, ("model",), deltas.models)
            self._apply_users(conn, users, ("bucket", "model", "username"), deltas.model_users)
            for i, users_by in self.by[level].items():
                self._apply_users(conn, users_by, ("bucket", "value", "username"), deltas.by.get(i, {}))

    @staticmethod
    def _apply_rows(conn: Connection, r: sa.Table, names: Sequence[str], groups: Groups) -> None:
        if not groups:
            return
        keys = sorted(groups)
        dialect = conn.dialect.name
        fresh = dialect in ("sqlite", "postgresql")
        if not fresh:   # insert the missing rows empty first: the UPSERT takes the lock of a row a peer inserts
            _insert_missing(conn, r, [{"key_hash": k, "bucket": groups[k][0],
                                       **dict(zip(names, groups[k][1], strict=True))} for k in keys], ["key_hash"])
        found = Keeper._locked(conn, r, keys)
        if fresh and len(found) < len(keys):
            # SQLite and PostgreSQL: the rows not there yet are inserted with their figures at once (one
            # statement less per table and batch, the steady state reads and updates only: bench/writer_cpu.py).
            # PostgreSQL: a row a concurrent writer inserted meanwhile is skipped (ON CONFLICT DO NOTHING,
            # not RETURNED) and merged below like any stored row. SQLite holds the database's write lock.
            new = [k for k in keys if k not in found and groups[k][2].counts.get("interactions", 0) > 0]
            rows = [{"key_hash": k, "bucket": groups[k][0], **dict(zip(names, groups[k][1], strict=True)),
                     **groups[k][2].values()} for k in new]
            inserted = set(new)
            if rows and dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                statement = pg_insert(r).on_conflict_do_nothing(index_elements=["key_hash"]).returning(r.c.key_hash)
                inserted = set(conn.scalars(statement, rows))
                found.update(Keeper._locked(conn, r, [k for k in new if k not in inserted]))
            elif rows:
                conn.execute(sa.insert(r), rows)
            keys = [k for k in keys if k not in inserted and k in found]
        changed, emptied = [], []
        for key in keys:
            merged = combine(found[key], groups[key][2])
            if merged.counts.get("interactions", 0) <= 0:
                emptied.append(key)
            else:
                changed.append({"k_key": key, **{f"v_{c}": v for c, v in merged.values().items()}})
        if changed:
            update = sa.update(r).where(r.c.key_hash == sa.bindparam("k_key"))
            conn.execute(update.values({c: sa.bindparam(f"v_{c}") for c in METRICS}), changed)
        for start in range(0, len(emptied), _CHUNK):
            conn.execute(sa.delete(r).where(r.c.key_hash.in_(emptied[start:start + _CHUNK])))

    @staticmethod
    def _locked(conn: Connection, r: sa.Table, keys: Sequence[str]) -> dict[str, Aggregate]:
        """The stored rows of ``keys`` (locked for update where the dialect locks rows)."""
        found: dict[str, Aggregate] = {}
        for start in range(0, len(keys), _CHUNK):
            query = sa.select(r).where(r.c.key_hash.in_(keys[start:start + _CHUNK]))
            if conn.dialect.name != "sqlite":
                query = query.with_for_update()
            for row in conn.execute(query).mappings():
                found[row["key_hash"]] = stored(dict(row))
        return found

    @staticmethod
    def _apply_users(conn: Connection, u: sa.Table, keys: Sequence[str], users: Users) -> None:
        deltas: list[dict[str, Any]] = [{**dict(zip(keys, k, strict=True)), "n": n}
                                        for k, n in sorted(users.items()) if n]
        if not deltas:
            return
        insert = _dialect_insert(conn)
        if insert is None:
            _insert_missing(conn, u, [{**x, "n": 0} for x in deltas], list(keys))
            for x in deltas:
                conn.execute(sa.update(u).where(*[u.c[k] == x[k] for k in keys]).values(n=u.c.n + x["n"]))
        else:
            statement = insert(u)
            if conn.dialect.name in ("mysql", "mariadb"):
                statement = statement.on_duplicate_key_update(n=u.c.n + statement.inserted.n)
            else:
                statement = statement.on_conflict_do_update(index_elements=list(keys),
                                                            set_={"n": u.c.n + statement.excluded.n})
            conn.execute(statement, deltas)
        gone = sorted({k[0] for k, n in users.items() if n < 0})
        for start in range(0, len(gone), _CHUNK):
            conn.execute(sa.delete(u).where(u.c.n <= 0, u.c.bucket.in_(gone[start:start + _CHUNK])))

    def apply_all(self, conn: Connection, groups: Groups, users: Users) -> None:
        """Apply quarter-hour deltas to every level this keeper keeps."""
        for level, deltas in self.levelled(groups, users):
            self.apply(conn, level, deltas)

    def canonical(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A row keyed by the table's column names -> keyed by our field names."""
        return {name: row.get(column.name) for name, column in self.columns.items()}

    def touches(self, column: str) -> bool:
        """Whether an update of ``column`` changes a rollup figure."""
        return any(c.name == column for c in self.columns.values())


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


def probe_levels(conn: Connection, table: sa.Table) -> tuple[tuple[str, ...], tuple[Level, ...], bool] | None:
    """The app fields, the levels and whether the per-model tables are kept, of ``table``'s rollups
    (None without ``<table>_rollup``).

    A coarser level counts only when its tables are there and keyed by the same fields (a table
    upgraded after a rebuild with other ``rollup_fields`` keeps its quarter hours until the next
    rebuild); the per-model tables (and the users per tenant / status / field) only when every level has them.
    """
    names = _probe(conn, f"{table.name}_rollup", table.schema)
    if names is None:
        return None
    fields = tuple(n for n in names if n not in KNOWN)
    levels = [QUARTER]
    for level in LEVELS:
        if level is QUARTER:
            continue
        coarse = _probe(conn, f"{table.name}_rollup{level.suffix}", table.schema)
        people = _probe(conn, f"{table.name}_rollup{level.suffix}_users", table.schema)
        if coarse is not None and people is not None and tuple(n for n in coarse if n not in KNOWN) == fields:
            levels.append(level)
    grains = [t.name for level in levels for t in model_tables(table.name, table.schema, level)]
    grains += [dimension_users(table.name, table.schema, level, dim).name for level in levels
               for dim in (*DIMENSIONS[1:], *fields)]
    by_model = all(_probe(conn, name, table.schema) is not None for name in grains)
    return fields, tuple(levels), by_model


def keeper_for(conn: Connection, table: sa.Table) -> Keeper | None:
    """The keeper of ``table``'s rollups when ``<table>_rollup`` exists (its app fields read from it), else None."""
    found = probe_levels(conn, table)
    if found is None:
        return None
    try:
        return Keeper(table, None, *found)
    except ValueError:
        return None


def after_insert(conn: Connection, keeper: Keeper, rows: Sequence[Mapping[str, Any]]) -> None:
    """Roll up ``rows`` (the ones that landed, keyed by column names) in the insert's transaction."""
    keeper.apply_all(conn, *keeper.aggregate([keeper.canonical(r) for r in rows]))


def around_update(conn: Connection, keeper: Keeper, where: sa.ColumnElement[bool], update: Any) -> Any:
    """Run ``update(conn)`` between reading the rows ``where`` picks before and after: old out, new in."""
    query = keeper.select_rows().where(where)
    before = [dict(r) for r in conn.execute(query).mappings()]
    result = update(conn)
    after = [dict(r) for r in conn.execute(query).mappings()]
    old_groups, old_users = keeper.aggregate(before, -1)
    new_groups, new_users = keeper.aggregate(after)
    for key, (bucket, dims, agg) in old_groups.items():
        if key in new_groups:
            combine(new_groups[key][2], agg)
        else:
            new_groups[key] = (bucket, dims, agg)
    for user_key, n in old_users.items():
        new_users[user_key] = new_users.get(user_key, 0) + n
    keeper.apply_all(conn, new_groups, new_users)   # every level: the day rows get the same delta
    return result


_CACHE: dict[int, tuple[sa.Table, Keeper | None, float]] = {}
_RECHECK = 60.0  # seconds before a table without rollups is looked at again (init --upgrade meanwhile)


def _write_lock(conn: Connection, table: sa.Table) -> None:
    # SQLite: our transactions are deferred and the engine relies on the first statement of a write
    # transaction being a write, so busy_timeout applies; a read first and a write later fails at once
    # with "database is locked" when another writer holds the lock. A write matching no row takes it.
    if conn.dialect.name == "sqlite":
        conn.execute(sa.delete(table).where(sa.false()))


def cached_keeper(conn: Connection, table: sa.Table) -> Keeper | None:
    """:func:`keeper_for`, remembered per reflected table (two catalogue reads per batch otherwise)."""
    hit = _CACHE.get(id(table))
    now = time.monotonic()
    if hit is not None and hit[0] is table and (hit[1] is not None or now - hit[2] < _RECHECK):
        if hit[1] is not None:
            _write_lock(conn, table)
        return hit[1]
    _write_lock(conn, table)
    keeper = keeper_for(conn, table)
    _CACHE[id(table)] = (table, keeper, now)
    return keeper


def forget(table: sa.Table) -> None:
    """Drop what :func:`cached_keeper` remembers of ``table`` (after creating or dropping rollups)."""
    _CACHE.pop(id(table), None)


def begin_insert(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]],
                 dedupe_on: str | None) -> Callable[[], None] | None:
    """Called before a batch is inserted; returns what to call after it (None: the table has no rollups).

    Rows whose ``dedupe_on`` value the table already holds (a batch retried after a lost COMMIT
    acknowledgement, a spool replay) or that repeat one earlier in the batch do not land, and so are
    not rolled up again.
    """
    keeper = cached_keeper(conn, table)
    if keeper is None:
        return None
    held: set[Any] = set()
    if dedupe_on is not None:
        column = table.c[dedupe_on]
        ids = list({r[dedupe_on] for r in rows if r.get(dedupe_on) is not None})
        for start in range(0, len(ids), 500):
            held.update(conn.scalars(sa.select(column).where(column.in_(ids[start:start + 500]))))

    def done() -> None:
        seen: set[Any] = set()
        landed = []
        for row in rows:
            key = row.get(dedupe_on) if dedupe_on is not None else None
            if key is not None:
                if key in held or key in seen:
                    continue
                seen.add(key)
            landed.append(row)
        after_insert(conn, keeper, landed)

    return done


def update_where(conn: Connection, table: sa.Table, statement: sa.Update, where: sa.ColumnElement[bool],
                 column: str) -> int:
    """Run the writer's ``UPDATE`` (returns rowcount), adjusting the rollups when ``column`` feeds them."""
    keeper = cached_keeper(conn, table)
    if keeper is None or not keeper.touches(column):
        return int(conn.execute(statement).rowcount)
    return int(around_update(conn, keeper, where, lambda c: c.execute(statement).rowcount))
