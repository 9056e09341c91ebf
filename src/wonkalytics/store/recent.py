"""The newest rows of a table, read with ``ORDER BY ... DESC LIMIT n`` (never the whole table).

>>> import sqlalchemy as sa
>>> from wonkalytics.store.sql import TableStore
>>> store = TableStore("sqlite://", "calls")
>>> store.insert_many([{"event_id": str(n), "action": f"a{n}"} for n in range(5)])
5
>>> [row["action"] for row in recent_rows(store, 2)]
['a3', 'a4']
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from wonkalytics.store.sql import TableStore

__all__ = ["recent_rows"]

_ORDER_COLUMNS = ("row_pk", "timestamp", "start_time")


def recent_rows(store: TableStore, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` rows, oldest first: by primary key, else ``timestamp``, else ``start_time``."""
    table = store.table
    order = list(table.primary_key.columns) or [table.c[name] for name in _ORDER_COLUMNS if name in table.c][:1]
    statement = sa.select(table).limit(limit)
    if order:
        statement = statement.order_by(*(column.desc() for column in order))
    with store.engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(statement)]
    return rows[::-1]
