"""Rollups of one analytics table: per UTC quarter hour x model x tenant_id x status, derived data.

``<table>_rollup`` holds one row per key (bucket, model, tenant_id, status and any app fields named
by the caller), addressed by ``key_hash`` (SHA-256 of the key: a primary key of several long text
columns does not fit MariaDB's 3072-byte index limit, and the hash keeps NULL apart from ``''``).
Each row carries exact, additive figures (interactions, errors, aborted, token and cost sums, score
count/sum and an exact score histogram ``{score: count}`` from which min/max follow even after a
score is taken out), and :class:`~wonkalytics.store.sketch.Sketch` texts of ``duration_ms`` and
``ttft_ms`` (percentiles within 1 %). ``<table>_rollup_users`` holds ``(bucket, username, n)`` so
distinct users of any set of whole buckets are exact.

Events (rows without ``model``) are not rolled up: the read side counts them in no figure either.
Quarter hours (not hours) so zones with a half-hour offset (Asia/Kolkata) still get exact local days.

:func:`rebuild` recomputes the rollups of a time range from the table, exactly.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.store import dialects as d
from wonkalytics.store.fit import column_index, resolve_column
from wonkalytics.store.sketch import Sketch, SketchError

__all__ = ["DIMENSIONS", "Aggregate", "Keeper", "Rollup", "begin_insert", "bucket_of", "rebuild", "rollup_tables",
           "update_where"]

DIMENSIONS = ("model", "tenant_id", "status")
"""Fields every rollup row is keyed by (beside the bucket and the app fields the team names)."""

BUCKET = timedelta(minutes=15)
_SUMS = ("prompt_tokens", "completion_tokens", "total_tokens")
_READ = ("timestamp", "username", "score", "cost_usd", "duration_ms", "ttft_ms", *DIMENSIONS, *_SUMS)


def bucket_of(moment: datetime) -> datetime:
    """The UTC quarter hour holding ``moment`` (naive UTC, as the table stores it)."""
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0, tzinfo=None)


def rollup_tables(name: str, schema: str | None = None, fields: Sequence[str] = ()) -> tuple[sa.Table, sa.Table]:
    """The ``<name>_rollup`` and ``<name>_rollup_users`` tables (app ``fields`` as extra key columns)."""
    metadata = sa.MetaData()
    dims = [sa.Column(f, d.short_text(255), nullable=True) for f in (*DIMENSIONS, *fields)]
    counts = [sa.Column(c, sa.BigInteger, nullable=False, server_default="0")
              for c in ("interactions", "errors", "aborted", *_SUMS, "priced", "scored", "timed", "ttft_timed")]
    sums = [sa.Column(c, d.double(), nullable=True) for c in ("cost_usd", "score_sum", "score_min", "score_max",
                                                                 "duration_sum", "ttft_sum")]
    texts = [sa.Column(c, d.long_text(), nullable=True) for c in ("score_hist", "duration_sketch", "ttft_sketch")]
    rollup = sa.Table(
        f"{name}_rollup", metadata,
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("bucket", d.timestamp(), nullable=False, index=True),
        *dims, *counts, *sums, *texts,
        schema=schema, **d.table_options(),
    )
    users = sa.Table(
        f"{name}_rollup_users", metadata,
        sa.Column("bucket", d.timestamp(), primary_key=True),
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        schema=schema, **d.table_options(),
    )
    return rollup, users


def key_hash(bucket: datetime, dims: Sequence[Any]) -> str:
    """The primary key of one rollup row (JSON keeps ``None`` apart from ``""``)."""
    text = json.dumps([bucket.isoformat(), *[None if v is None else str(v) for v in dims]])
    return hashlib.sha256(text.encode()).hexdigest()


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class Aggregate:
    """The figures of one rollup row, in Python (added to / taken from row by row, then stored)."""

    counts: dict[str, int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    scores: dict[float, int] = field(default_factory=dict)
    duration: Sketch = field(default_factory=Sketch)
    ttft: Sketch = field(default_factory=Sketch)

    def _count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def _sum(self, name: str, value: float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + value

    def add(self, row: Mapping[str, Any], sign: int = 1) -> None:
        """Count one table row (``sign=-1`` takes it out again)."""
        self._count("interactions", sign)
        status = row.get("status")
        self._count("errors", sign if status == "error" else 0)
        self._count("aborted", sign if status == "aborted" else 0)
        for name in _SUMS:
            self._count(name, sign * int(row.get(name) or 0))
        cost = _number(row.get("cost_usd"))
        if cost is not None:
            self._count("priced", sign)
            self._sum("cost_usd", sign * cost)
        score = _number(row.get("score"))
        if score is not None:
            self._count("scored", sign)
            self._sum("score_sum", sign * score)
            n = self.scores.get(score, 0) + sign
            if n:
                self.scores[score] = n
            else:
                del self.scores[score]
        for column, sketch, timed in (("duration_ms", self.duration, "timed"), ("ttft_ms", self.ttft, "ttft_timed")):
            value = _number(row.get(column))
            if value is None:
                continue
            try:
                sketch.add(value, sign)
            except SketchError:
                continue   # a negative or infinite duration is kept in the row, not in the sketch
            self._count(timed, sign)
            self._sum("duration_sum" if timed == "timed" else "ttft_sum", sign * value)

    def values(self) -> dict[str, Any]:
        """The rollup row's metric columns."""
        out: dict[str, Any] = {c: self.counts.get(c, 0) for c in
                               ("interactions", "errors", "aborted", *_SUMS, "priced", "scored", "timed",
                                "ttft_timed")}
        out["cost_usd"] = self.sums.get("cost_usd") if out["priced"] else None
        out["score_sum"] = self.sums.get("score_sum") if out["scored"] else None
        out["duration_sum"] = self.sums.get("duration_sum") if out["timed"] else None
        out["ttft_sum"] = self.sums.get("ttft_sum") if out["ttft_timed"] else None
        out["score_min"] = min(self.scores) if self.scores else None
        out["score_max"] = max(self.scores) if self.scores else None
        out["score_hist"] = json.dumps(sorted(self.scores.items())) if self.scores else None
        out["duration_sketch"] = self.duration.dumps() if self.duration.count else None
        out["ttft_sketch"] = self.ttft.dumps() if self.ttft.count else None
        return out


class Rollup:
    """The rollups of one reflected table: field resolution through the column map, aggregation, storage."""

    def __init__(self, table: sa.Table, column_map: Mapping[str, str] | None = None,
                 fields: Sequence[str] = ()) -> None:
        self.source = table
        self.fields = tuple(fields)
        self.column_map = dict(column_map or {})
        self.rollup, self.users = rollup_tables(table.name, table.schema, self.fields)
        folded = column_index(table.c.keys())
        self.columns: dict[str, sa.Column[Any]] = {}
        for name in (*_READ, *self.fields):
            real = resolve_column(name, table.c.keys(), self.column_map, folded=folded)
            if real is not None:
                self.columns[name] = table.c[real]
        if "timestamp" not in self.columns or "model" not in self.columns:
            raise ValueError(f"table {table.name!r} has no timestamp or model column: nothing to roll up")

    def create(self, conn: Connection) -> None:
        """Create both rollup tables where missing."""
        self.rollup.create(conn, checkfirst=True)
        self.users.create(conn, checkfirst=True)

    def select_rows(self, since: datetime | None = None) -> sa.Select[Any]:
        """The source rows to roll up (interactions only), each field labelled with its canonical name."""
        query = sa.select(*[c.label(n) for n, c in self.columns.items()]).where(self.columns["model"].is_not(None))
        if since is not None:
            query = query.where(self.columns["timestamp"] >= since)
        return query

    def aggregate(self, rows: Iterable[Mapping[str, Any]], sign: int = 1
                  ) -> tuple[dict[str, tuple[datetime, tuple[Any, ...], Aggregate]], dict[tuple[datetime, str], int]]:
        """Rows -> rollup aggregates by key hash, and user counts by (bucket, username)."""
        groups: dict[str, tuple[datetime, tuple[Any, ...], Aggregate]] = {}
        users: dict[tuple[datetime, str], int] = {}
        for row in rows:
            moment = row.get("timestamp")
            if not isinstance(moment, datetime) or row.get("model") is None:
                continue
            bucket = bucket_of(moment)
            dims = tuple(row.get(f) for f in (*DIMENSIONS, *self.fields))
            key = key_hash(bucket, dims)
            if key not in groups:
                groups[key] = (bucket, dims, Aggregate())
            groups[key][2].add(row, sign)
            user = row.get("username")
            if user is not None:
                users[(bucket, str(user))] = users.get((bucket, str(user)), 0) + sign
        return groups, users

    def store(self, conn: Connection, groups: Mapping[str, tuple[datetime, tuple[Any, ...], Aggregate]],
              users: Mapping[tuple[datetime, str], int]) -> None:
        """Insert freshly computed rollup rows (the range was cleared first)."""
        names = (*DIMENSIONS, *self.fields)
        rows = [{"key_hash": key, "bucket": bucket, **dict(zip(names, dims, strict=True)), **agg.values()}
                for key, (bucket, dims, agg) in groups.items() if agg.counts.get("interactions")]
        if rows:
            conn.execute(sa.insert(self.rollup), rows)
        counted = [{"bucket": b, "username": u, "n": n} for (b, u), n in users.items() if n > 0]
        if counted:
            conn.execute(sa.insert(self.users), counted)


def rebuild(engine: sa.Engine, table: sa.Table, column_map: Mapping[str, str] | None = None, *,
            fields: Sequence[str] = (), since: datetime | None = None) -> int:
    """Recompute the rollups from ``since`` (whole quarter hours; all when None) exactly; returns rows read.

    One transaction: the range is deleted and written again, so readers see the old or the new figures
    (MySQL/MariaDB commit the DDL of a full rebuild implicitly: there readers may briefly see none).
    """
    keeper = Rollup(table, column_map, fields)
    start = bucket_of(since) if since is not None else None
    with engine.begin() as conn:
        if start is None:   # everything: the tables are remade, so a changed rollup_fields takes effect
            keeper.users.drop(conn, checkfirst=True)
            keeper.rollup.drop(conn, checkfirst=True)
        keeper.create(conn)
        for target in (keeper.rollup, keeper.users):
            delete = sa.delete(target)
            conn.execute(delete.where(target.c.bucket >= start) if start is not None else delete)
        return _rebuild_days(conn, keeper, start)


def _rebuild_days(conn: Connection, keeper: Rollup, start: datetime | None) -> int:
    # A day of rows at a time (days start at a quarter hour: no key spans two chunks), so a rebuild of
    # 10M rows holds one day's rows in memory rather than all of them (bench/read_side.py builds them so).
    timestamp = keeper.columns["timestamp"]
    bounds = sa.select(sa.func.min(timestamp), sa.func.max(timestamp)).where(keeper.columns["model"].is_not(None))
    if start is not None:
        bounds = bounds.where(timestamp >= start)
    low, high = conn.execute(bounds).one()
    if low is None:
        return 0
    low = low if isinstance(low, datetime) else datetime.fromisoformat(str(low))
    high = high if isinstance(high, datetime) else datetime.fromisoformat(str(high))
    day = low.replace(hour=0, minute=0, second=0, microsecond=0)
    read = 0
    while day <= high:
        query = keeper.select_rows(day if start is None else max(day, start)).where(timestamp < day + timedelta(days=1))
        rows = [dict(r) for r in conn.execute(query).mappings()]
        groups, users = keeper.aggregate(rows)
        keeper.store(conn, groups, users)
        read += len(rows)
        day += timedelta(days=1)
    return read


# --- incremental upkeep (the writer's hook) -------------------------------------------------------

_KNOWN = {"key_hash", "bucket", *DIMENSIONS, "interactions", "errors", "aborted", *_SUMS, "priced", "scored",
          "timed", "ttft_timed", "cost_usd", "score_sum", "score_min", "score_max", "duration_sum", "ttft_sum",
          "score_hist", "duration_sketch", "ttft_sketch"}


def _stored(row: Mapping[str, Any]) -> Aggregate:
    agg = Aggregate()
    for name in ("interactions", "errors", "aborted", *_SUMS, "priced", "scored", "timed", "ttft_timed"):
        agg.counts[name] = int(row[name] or 0)
    for name in ("cost_usd", "score_sum", "duration_sum", "ttft_sum"):
        agg.sums[name] = float(row[name] or 0.0)
    agg.scores = {float(k): int(n) for k, n in json.loads(row["score_hist"] or "[]")}
    agg.duration, agg.ttft = Sketch.loads(row["duration_sketch"]), Sketch.loads(row["ttft_sketch"])
    return agg


def _combine(base: Aggregate, delta: Aggregate) -> Aggregate:
    for name, n in delta.counts.items():
        base.counts[name] = base.counts.get(name, 0) + n
    for name, v in delta.sums.items():
        base.sums[name] = base.sums.get(name, 0.0) + v
    for score, n in delta.scores.items():
        total = base.scores.get(score, 0) + n
        if total:
            base.scores[score] = total
        else:
            base.scores.pop(score, None)
    base.duration.merge(delta.duration)
    base.ttft.merge(delta.ttft)
    return base


class Keeper(Rollup):
    """:class:`Rollup` of a table whose rollup tables exist, applying deltas in the writer's transaction."""

    def apply(self, conn: Connection, groups: Mapping[str, tuple[datetime, tuple[Any, ...], Aggregate]],
              users: Mapping[tuple[datetime, str], int]) -> None:
        """Add the deltas to the stored rows (rows are created, locked, merged, written; empty ones deleted)."""
        names = (*DIMENSIONS, *self.fields)
        r = self.rollup
        for key, (bucket, dims, delta) in sorted(groups.items()):
            # The insert that does nothing when the row exists is the dialect's UPSERT; it also takes
            # the row lock on PostgreSQL/MariaDB, so two writers merging the same key serialise here.
            _insert_missing(conn, r, {"key_hash": key, "bucket": bucket, **dict(zip(names, dims, strict=True))},
                            ["key_hash"])
            query = sa.select(r).where(r.c.key_hash == key)
            if conn.dialect.name != "sqlite":
                query = query.with_for_update()
            merged = _combine(_stored(dict(conn.execute(query).mappings().one())), delta)
            if merged.counts.get("interactions", 0) <= 0:
                conn.execute(sa.delete(r).where(r.c.key_hash == key))
            else:
                conn.execute(sa.update(r).where(r.c.key_hash == key).values(merged.values()))
        u = self.users
        for (bucket, user), n in sorted(users.items()):
            if n == 0:
                continue
            _insert_missing(conn, u, {"bucket": bucket, "username": user, "n": 0}, ["bucket", "username"])
            where = (u.c.bucket == bucket, u.c.username == user)
            conn.execute(sa.update(u).where(*where).values(n=u.c.n + n))
            conn.execute(sa.delete(u).where(*where, u.c.n <= 0))

    def canonical(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A row keyed by the table's column names -> keyed by our field names."""
        return {name: row.get(column.name) for name, column in self.columns.items()}

    def touches(self, column: str) -> bool:
        """Whether an update of ``column`` changes a rollup figure."""
        return any(c.name == column for c in self.columns.values())


def _insert_missing(conn: Connection, target: sa.Table, values: dict[str, Any], keys: list[str]) -> None:
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(target).values(values).on_conflict_do_nothing(index_elements=keys))
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(target).values(values).on_conflict_do_nothing(index_elements=keys))
    elif name in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        statement = mysql_insert(target).values(values)
        conn.execute(statement.on_duplicate_key_update({keys[0]: statement.inserted[keys[0]]}))
    else:   # SQL Server and others: look first (the transaction's isolation guards the race)
        where = [target.c[k] == values[k] for k in keys]
        if conn.execute(sa.select(sa.func.count()).select_from(target).where(*where)).scalar_one() == 0:
            conn.execute(sa.insert(target).values(values))


def keeper_for(conn: Connection, table: sa.Table) -> Keeper | None:
    """The keeper of ``table``'s rollups when ``<table>_rollup`` exists (its app fields read from it), else None."""
    probe = sa.select(sa.text("*")).select_from(sa.table(f"{table.name}_rollup", schema=table.schema))
    try:
        # A query, not the catalogue: the writer reflects its table once, and its column names come
        # back with the (empty) result. The savepoint keeps PostgreSQL's transaction usable on failure.
        with conn.begin_nested():
            names = list(conn.execute(probe.where(sa.false())).keys())
    except sa.exc.DBAPIError:
        return None
    fields = [n for n in names if n not in _KNOWN]
    try:
        return Keeper(table, None, fields)
    except ValueError:
        return None


def after_insert(conn: Connection, keeper: Keeper, rows: Sequence[Mapping[str, Any]]) -> None:
    """Roll up ``rows`` (the ones that landed, keyed by column names) in the insert's transaction."""
    groups, users = keeper.aggregate([keeper.canonical(r) for r in rows])
    keeper.apply(conn, groups, users)


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
            _combine(new_groups[key][2], agg)
        else:
            new_groups[key] = (bucket, dims, agg)
    for user_key, n in old_users.items():
        new_users[user_key] = new_users.get(user_key, 0) + n
    keeper.apply(conn, new_groups, new_users)
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
