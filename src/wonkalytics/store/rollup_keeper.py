"""The writer's incremental upkeep of the rollups (see :mod:`wonkalytics.store.rollups`).

:func:`begin_insert` and :func:`update_where` are the hooks :mod:`wonkalytics.store.sql` calls in the
insert's / update's transaction: a :class:`Keeper` (a :class:`~wonkalytics.store.rollups.Rollup` whose
tables exist) adds the batch's deltas to every level. On SQLite and PostgreSQL the batch's ids and
every rollup row its keys touch are looked up in one statement before the INSERT, and PostgreSQL
writes every rollup and users table in one statement after it (:mod:`wonkalytics.store.rollup_batch`:
a 200-row batch adds 2 statements on PostgreSQL, 14 on SQLite, where it added 17 / 18); MariaDB and
SQL Server keep a few statements per table (not per key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.store import rollup_batch
from wonkalytics.store.rollup_batch import CHUNK, bulk_keys, held_ids, insert_missing, keys_value, statements_of
from wonkalytics.store.rollup_model import Aggregate, Deltas, Groups, Level, Users, combine, stored
from wonkalytics.store.rollups import Rollup, probe_levels

__all__ = ["Keeper", "begin_insert", "forget", "keeper_for", "update_where"]


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
        if conn.dialect.name not in ("sqlite", "postgresql"):
            # insert the missing rows empty first: the UPSERT takes the lock of a row a peer inserts
            insert_missing(conn, r, [{"key_hash": k, "bucket": groups[k][0],
                                       **dict(zip(names, groups[k][1], strict=True))} for k in keys], ["key_hash"])
        changed, emptied = Keeper._merged(conn, r, names, groups, Keeper._locked(conn, r, keys))
        if changed:
            conn.execute(statements_of(conn, r, ("key_hash",)).update, changed)
        Keeper._delete(conn, r, emptied)

    @staticmethod
    def _merged(conn: Connection, r: sa.Table, names: Sequence[str], groups: Groups,
                found: dict[str, Aggregate]) -> tuple[list[dict[str, Any]], list[str]]:
        """The stored rows ``found`` of ``groups``' keys with the deltas added: the rows to update
        (``k_key``, ``v_<metric>``) and the keys whose rows are now empty. Keys not stored yet are
        inserted here with their figures (SQLite, PostgreSQL: one statement less per table and batch)."""
        keys = sorted(groups)
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql") and len(found) < len(keys):
            # PostgreSQL: a row a concurrent writer inserted meanwhile is skipped (ON CONFLICT DO NOTHING,
            # not RETURNED) and merged below like any stored row. SQLite holds the database's write lock.
            sql = statements_of(conn, r, ("key_hash",))
            new = [k for k in keys if k not in found and groups[k][2].counts.get("interactions", 0) > 0]
            rows = [{"key_hash": k, "bucket": groups[k][0], **dict(zip(names, groups[k][1], strict=True)),
                     **groups[k][2].values()} for k in new]
            inserted = set(new)
            if rows and dialect == "postgresql":
                inserted = set(conn.scalars(sql.returning, rows))
                found.update(Keeper._locked(conn, r, [k for k in new if k not in inserted]))
            elif rows:
                conn.execute(sql.insert, rows)
            keys = [k for k in keys if k not in inserted and k in found]
        changed, emptied = [], []
        for key in keys:
            merged = combine(found[key], groups[key][2])
            if merged.counts.get("interactions", 0) <= 0:
                emptied.append(key)
            else:
                changed.append({"k_key": key, **{f"v_{c}": v for c, v in merged.values().items()}})
        return changed, emptied

    @staticmethod
    def _delete(conn: Connection, r: sa.Table, emptied: Sequence[str]) -> None:
        for start in range(0, len(emptied), CHUNK):
            conn.execute(sa.delete(r).where(r.c.key_hash.in_(emptied[start:start + CHUNK])))

    @staticmethod
    def _locked(conn: Connection, r: sa.Table, keys: Sequence[str]) -> dict[str, Aggregate]:
        """The stored rows of ``keys`` (locked for update where the dialect locks rows)."""
        found: dict[str, Aggregate] = {}
        if not keys:
            return found
        dialect = conn.dialect.name
        lookup = statements_of(conn, r, ("key_hash",)).lookup
        step = len(keys) if bulk_keys(dialect, keys) else CHUNK
        for start in range(0, len(keys), step):
            chunk = keys[start:start + step]
            for row in conn.execute(lookup, {"keys": keys_value(chunk, dialect)}).mappings():
                found[row["key_hash"]] = stored(dict(row))
        return found

    @staticmethod
    def _user_deltas(keys: Sequence[str], users: Users) -> list[dict[str, Any]]:
        return [{**dict(zip(keys, k, strict=True)), "n": n} for k, n in sorted(users.items()) if n]

    @staticmethod
    def _apply_users(conn: Connection, u: sa.Table, keys: Sequence[str], users: Users) -> None:
        deltas = Keeper._user_deltas(keys, users)
        if not deltas:
            return
        upsert = statements_of(conn, u, keys).upsert
        if upsert is None:
            insert_missing(conn, u, [{**x, "n": 0} for x in deltas], list(keys))
            for x in deltas:
                conn.execute(sa.update(u).where(*[u.c[k] == x[k] for k in keys]).values(n=u.c.n + x["n"]))
        else:
            conn.execute(upsert, deltas)
        Keeper._drop_users(conn, u, users)

    @staticmethod
    def _drop_users(conn: Connection, u: sa.Table, users: Users) -> None:
        """Delete the users rows a negative delta emptied (an update's "old value out")."""
        gone = sorted({k[0] for k, n in users.items() if n < 0})
        for start in range(0, len(gone), CHUNK):
            conn.execute(sa.delete(u).where(u.c.n <= 0, u.c.bucket.in_(gone[start:start + CHUNK])))

    def _parts(self, levelled: Sequence[tuple[Level, Deltas]]) -> tuple[
            list[tuple[sa.Table, Sequence[str], Groups]], list[tuple[sa.Table, Sequence[str], Users]]]:
        """Every rollup table with its names and deltas, and every users table with its keys and deltas."""
        rows: list[tuple[sa.Table, Sequence[str], Groups]] = []
        people: list[tuple[sa.Table, Sequence[str], Users]] = []
        for level, deltas in levelled:
            rollup, users = self.tables[level]
            rows.append((rollup, self.names, deltas.groups))
            people.append((users, ("bucket", "username"), deltas.users))
            if level in self.models:
                by_model, model_users = self.models[level]
                rows.append((by_model, ("model",), deltas.models))
                people.append((model_users, ("bucket", "model", "username"), deltas.model_users))
                for i, users_by in self.by[level].items():
                    people.append((users_by, ("bucket", "value", "username"), deltas.by.get(i, {})))
        return rows, people

    def prefetch(self, conn: Connection, levelled: Sequence[tuple[Level, Deltas]],
                 held: tuple[sa.Column[Any], Sequence[str]] | None) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """The stored rows (locked) of every key of ``levelled``, by table name and key hash, and which
        ``held`` ids the table holds already: one statement (:func:`rollup_batch.lookup`)."""
        rows, _ = self._parts(levelled)
        wanted = [(r, sorted(groups)) for r, _, groups in rows if groups]
        if not wanted and held is None:
            return {}, set()
        found, there = rollup_batch.lookup(conn, wanted, held)
        merged: dict[str, dict[str, Any]] = {}
        for (r, _), by_key in zip(wanted, found, strict=True):
            merged.update({f"{r.name}\0{k}": v for k, v in by_key.items()})
        return merged, there

    def _apply_batched(self, conn: Connection, levelled: Sequence[tuple[Level, Deltas]],
                       prefetched: dict[str, dict[str, Any]] | None = None) -> None:
        """:meth:`apply` of every level with the look-up in one statement (and the writes in one on
        PostgreSQL): :mod:`wonkalytics.store.rollup_batch`. ``prefetched``: :meth:`prefetch` of a
        superset of the keys (the batch before its duplicates were left out)."""
        if prefetched is None:
            prefetched, _ = self.prefetch(conn, levelled, None)
        rows, people = self._parts(levelled)
        updates: list[tuple[sa.Table, list[dict[str, Any]]]] = []
        for r, names, groups in rows:
            if not groups:
                continue
            found = {k: stored(v) for k in groups if (v := prefetched.get(f"{r.name}\0{k}")) is not None}
            changed, emptied = Keeper._merged(conn, r, names, groups, found)
            updates.append((r, changed))
            Keeper._delete(conn, r, emptied)
        if conn.dialect.name in rollup_batch.WRITE_DIALECTS and rollup_batch.write(
                conn, updates, [(u, keys, Keeper._user_deltas(keys, d)) for u, keys, d in people]):
            for u, _, d in people:
                Keeper._drop_users(conn, u, d)
            return
        for r, changed in updates:
            if changed:
                conn.execute(statements_of(conn, r, ("key_hash",)).update, changed)
        for u, keys, d in people:
            Keeper._apply_users(conn, u, keys, d)

    def apply_all(self, conn: Connection, groups: Groups, users: Users) -> None:
        """Apply quarter-hour deltas to every level this keeper keeps."""
        levelled = self.levelled(groups, users)
        if conn.dialect.name in rollup_batch.LOOKUP_DIALECTS:
            self._apply_batched(conn, levelled)
            return
        for level, deltas in levelled:
            self.apply(conn, level, deltas)

    def canonical(self, row: Mapping[str, Any]) -> Mapping[str, Any]:
        """A row keyed by the table's column names -> keyed by our field names (the row itself when
        every field is its own column name, as in the default table: ~3 µs a row saved)."""
        if self.named_as_fields:
            return row
        return {name: row.get(column.name) for name, column in self.columns.items()}

    @property
    def named_as_fields(self) -> bool:
        """Whether every field is read from the column of its own name (rows need no renaming)."""
        named = self.__dict__.get("_named")
        if named is None:
            named = self.__dict__["_named"] = all(name == c.name for name, c in self.columns.items())
        return bool(named)

    def touches(self, column: str) -> bool:
        """Whether an update of ``column`` changes a rollup figure."""
        return any(c.name == column for c in self.columns.values())


def keeper_for(conn: Connection, table: sa.Table) -> Keeper | None:
    """The keeper of ``table``'s rollups when ``<table>_rollup`` exists (its app fields read from it), else None."""
    found = probe_levels(conn, table)
    if found is None:
        return None
    try:
        return Keeper(table, None, *found)
    except ValueError:
        return None


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
    ids = [] if dedupe_on is None else list({r[dedupe_on] for r in rows if r.get(dedupe_on) is not None})
    named = rows if keeper.named_as_fields else [keeper.canonical(r) for r in rows]
    early: tuple[list[tuple[Level, Deltas]], dict[str, dict[str, Any]]] | None = None
    dialect = conn.dialect.name
    column = None if dedupe_on is None else table.c[dedupe_on]
    if dialect in rollup_batch.LOOKUP_DIALECTS and (
            column is None or (isinstance(column.type, sa.String) and bulk_keys(dialect, ids))):
        # SQLite, PostgreSQL: the batch's ids and every rollup row its keys touch in one statement, before
        # the INSERT (one statement less a batch: bench/writer_cpu.py). The rows that do not land are a
        # subset: their keys were looked up too.
        levelled = keeper.levelled(*keeper.aggregate(named))
        prefetched, held = keeper.prefetch(conn, levelled, None if column is None or not ids else (column, ids))
        early = (levelled, prefetched)
    elif column is not None:
        held = held_ids(conn, table, column.name, ids)

    def done() -> None:
        seen: set[Any] = set()
        landed = []
        for row in named:
            key = row.get(dedupe_on) if dedupe_on is not None else None
            if key is not None:
                if key in held or key in seen:
                    continue
                seen.add(key)
            landed.append(row)
        if early is None:
            keeper.apply_all(conn, *keeper.aggregate(landed))
            return
        levelled = early[0] if len(landed) == len(named) else keeper.levelled(*keeper.aggregate(landed))
        keeper._apply_batched(conn, levelled, early[1])

    return done


def update_where(conn: Connection, table: sa.Table, statement: sa.Update, where: sa.ColumnElement[bool],
                 column: str) -> int:
    """Run the writer's ``UPDATE`` (returns rowcount), adjusting the rollups when ``column`` feeds them."""
    keeper = cached_keeper(conn, table)
    if keeper is None or not keeper.touches(column):
        return int(conn.execute(statement).rowcount)
    return int(around_update(conn, keeper, where, lambda c: c.execute(statement).rowcount))
