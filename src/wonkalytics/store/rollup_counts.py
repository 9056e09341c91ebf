"""Interactions per user from the rollups' users tables: the dashboard's breakdown by user without the table.

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

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.store.rollup_plan import Plan
from wonkalytics.store.rollups import Rollup

__all__ = ["answers_users", "user_counts"]


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
