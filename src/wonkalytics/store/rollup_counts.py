"""Users from the rollups' users tables: distinct users of a period (:func:`distinct_users`) and
interactions per user (:func:`user_counts`, the dashboard's breakdown by user without the table).

Figures per user are not rolled up (a user key would make the rollups as large as the table: ~2,000 users
x 5 models x 40 tenants an hour at 10M rows), but every level's users table already counts the
interactions of each ``(bucket, username)`` (``n``, the per-model ones of each ``(bucket, model,
username)``). The breakdown chart draws only that count, so it adds ``n`` up over the whole buckets,
and the edges' rows of the table, in one ``UNION ALL ... GROUP BY username`` in the database: the
database's collation decides which names are one user, as the table's own ``GROUP BY`` does (MariaDB
folds case). Interactions without a user (NULL: no users table row) are the period's interactions
minus the named ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.store.rollup_model import Users
from wonkalytics.store.rollup_plan import Plan
from wonkalytics.store.rollups import Rollup

__all__ = ["answers_users", "distinct_users", "edge_users", "user_counts"]


def answers_users(keeper: Rollup, plan: Plan) -> bool:
    """Whether the users tables count the interactions per user of ``plan``: nothing filtered, or only the
    model (the per-model users tables are keyed by it)."""
    if not plan.equal:
        return True
    return keeper.by_model and all(name == "model" for name, _ in plan.equal)


def user_counts(conn: Connection, keeper: Rollup, plan: Plan,
                edges: Sequence[tuple[Sequence[sa.ColumnElement[bool]], int]], user: sa.Column[Any],
                model: sa.Column[Any], *, limit: int) -> tuple[list[tuple[Any, int]], int]:
    """The ``limit`` users with the most interactions, most first (ties by name), and the interactions of
    every named user in all.

    ``edges`` are the table's WHERE conditions of each partial edge of the period (with the filters) and
    whether its rows are added (1) or taken out (-1), as the plan's segments are; only rows with a model
    count, as in the rollups.
    """
    selects: list[sa.Select[Any]] = []
    for segment in plan.segments:
        users = (keeper.models if plan.equal else keeper.tables)[segment.level][1]
        where = [users.c.bucket >= segment.first, users.c.bucket < segment.last,
                 *[users.c[name] == value for name, value in plan.equal]]
        selects.append(sa.select(users.c.username.label("u"), (users.c.n * segment.sign).label("n")).where(*where))
    for edge, sign in edges:
        selects.append(sa.select(user.label("u"), (sa.func.count() * sign).label("n"))
                       .where(*edge, user.is_not(None), model.is_not(None)).group_by(user))
    union = (sa.union_all(*selects) if len(selects) > 1 else selects[0]).subquery()
    n = sa.func.sum(union.c.n)
    # The window adds up every group before LIMIT cuts them: the named total in the same statement.
    query = (sa.select(union.c.u, n.label("n"), sa.func.sum(n).over().label("named"))
             .group_by(union.c.u).having(n > 0).order_by(n.desc(), union.c.u).limit(limit))
    rows = conn.execute(query).all()
    named = int(rows[0].named) if rows else 0
    return [(row.u, int(row.n)) for row in rows], named


def edge_users(keeper: Rollup, signed: Sequence[tuple[list[dict[str, Any]], int]]) -> Users:
    """Interactions per ``(None, key, username)`` of the edges' rows, taken-out rows negative (the shape
    :func:`distinct_users` reads)."""
    users: Users = {}
    names = keeper.names
    for rows, sign in signed:
        for row in rows:
            user = row.get("username")
            if user is not None:
                slot = (None, tuple(map(row.get, names)), str(user))
                users[slot] = users.get(slot, 0) + sign
    return users


def distinct_users(conn: Connection, keeper: Rollup, plan: Plan, at_edges: Users, *,
                   per: str | None = None, exact_text: bool) -> dict[Any, int]:
    """Distinct users of the whole buckets (each level's users tables) and the edges, exactly: in all
    (key None; a plan filtered by model: the per-model users tables) or per value of field ``per``
    (the per-model or per-field users tables, where ``RollupReads._users_by`` says they answer).
    ``exact_text``: the database compares names as Python does (PostgreSQL, SQLite), so the pairs may be
    counted here; elsewhere its collation decides which names are one user and it counts."""
    index = keeper.names.index(per) if per is not None else None
    selects = []
    for segment in plan.segments:
        if index is not None and index > 0:
            users = keeper.by[segment.level][index]
            group: sa.ColumnElement[Any] = users.c.value
        elif index == 0 or plan.equal:
            users = keeper.models[segment.level][1]
            group = users.c.model if index == 0 else sa.null()
        else:
            users = keeper.tables[segment.level][1]
            group = sa.null()
        where = [users.c.bucket >= segment.first, users.c.bucket < segment.last,
                 *[users.c[name] == value for name, value in plan.equal]]
        selects.append(sa.select(group.label("g"), users.c.username.label("username"),
                                 (users.c.n * segment.sign).label("n")).where(*where))
    union = sa.union_all(*selects).subquery() if len(selects) > 1 else selects[0].subquery()

    def key(dims: tuple[Any, ...]) -> Any:
        if index is None:
            return None
        return dims[0] if index == 0 else json.dumps(dims[index])

    counts: dict[Any, int] = {}
    if plan.takes_out:
        # Buckets taken out (rollup_plan.pieces; only where names compare as in Python): a user counts
        # when their net interactions are above 0, the whole buckets' nets added to the edges' here.
        nets: dict[tuple[Any, Any], int] = {}
        net = (sa.select(union.c.g, union.c.username, sa.func.sum(union.c.n))
               .where(union.c.username.is_not(None)).group_by(union.c.g, union.c.username))
        for g, user, n in conn.execute(net):
            nets[(g, user)] = int(n or 0)
        for k, n in at_edges.items():
            nets[(key(k[1]), k[2])] = nets.get((key(k[1]), k[2]), 0) + n
        for (g, _), n in nets.items():
            if n > 0:
                counts[g] = counts.get(g, 0) + 1
        return _decoded(counts, index)
    pairs = {(key(k[1]), k[2]) for k, n in at_edges.items() if n > 0}
    if exact_text:
        # The whole buckets' distinct (g, user) pairs from a UNION ALL ... GROUP BY (the grouping hashes
        # where COUNT(DISTINCT) sorts: the overview's ~28k (bucket, user) rows, PostgreSQL 27 ms vs 86 ms,
        # SQLite 35 vs 89 ms, 1M rows, 7 days, median of 5, load ~8), joined here by the edges' users in
        # one pass: the pairs are the distinct users (per group), ~2k a page. Asking the database which
        # edge users it already counts cost two more passes returning every (bucket, user) row of those
        # users: overview 198 -> 120 ms, by model 278 -> 150 ms (PostgreSQL, 10M rows, ~1k edge users).
        grouped = (sa.select(union.c.g, union.c.username).where(union.c.username.is_not(None))
                   .group_by(union.c.g, union.c.username))
        pairs.update((row[0], row[1]) for row in conn.execute(grouped))
        for g, _ in pairs:
            counts[g] = counts.get(g, 0) + 1
        return _decoded(counts, index)
    # A collation that folds case (MariaDB's utf8mb4_unicode_ci, SQL Server's default) decides which names
    # are one user, so the database counts them all in one statement: the edges' (group, user) pairs join
    # the union as rows of bound parameters (a few hundred: the edges are under a quarter hour at each
    # end), so "Ann" at an edge and "ann" in a whole bucket are one user, as the table's COUNT(DISTINCT)
    # says. (Matching the edges' names against the users counted in Python took "Ann" and "ann" for two.)
    # COUNT(DISTINCT), not a grouping of the grouped pairs: MariaDB writes the pairs to an on-disk temporary
    # table (2 varchar(255) keys are ~2 KB a row in memory): stats --by model's ~57k (bucket, model,
    # user) rows 572 -> 134 ms (1M rows, median of 5).
    edge_rows = [sa.select((sa.null() if g is None else sa.literal(g, sa.String())).label("g"),
                           sa.literal(user, sa.String()).label("username"), sa.literal(1).label("n"))
                 for g, user in sorted(pairs, key=lambda pair: (str(pair[0]), pair[1]))]
    every = sa.union_all(*selects, *edge_rows).subquery() if edge_rows else union
    counted = (sa.select(every.c.g, sa.func.count(sa.distinct(every.c.username)).label("n"))
               .where(every.c.username.is_not(None)).group_by(every.c.g))
    counts = {r.g: int(r.n) for r in conn.execute(counted)}
    return _decoded(counts, index)


def _decoded(counts: dict[Any, int], index: int | None) -> dict[Any, int]:
    """Counts keyed by the group's value (the per-field users tables key it as JSON)."""
    if index is not None and index > 0:
        return {json.loads(g): n for g, n in counts.items()}
    return counts
