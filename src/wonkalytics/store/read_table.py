"""The read side's reflection of the analytics table: its columns and primary key, nothing else.

The writer reflects with :class:`~wonkalytics.store.sql.TableStore` (``sa.Table(autoload_with=...)``),
which also reads the indexes, unique and check constraints, foreign keys and the table comment: it
needs the unique index of ``event_id`` to de-duplicate retried batches. A reader needs only the
column names and types (to resolve fields and build bound-parameter queries) and the primary key
(the key of ``/interactions/{key}``). Asking for just those is 3 catalogue statements on PostgreSQL
instead of 11 (measured on ``wl_bench_read_1000000``, load ~8: 25-38 ms instead of 120-420 ms), which
is most of what a fresh process pays before its first answer (the "cold" column of bench/read_side.py).

>>> import sqlalchemy as sa
>>> engine = sa.create_engine("sqlite://")
>>> with engine.begin() as conn:
...     _ = conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, model VARCHAR(64), score FLOAT)")
...     table = reflect_for_reading(conn, "t")
>>> table.c.keys(), [c.name for c in table.primary_key.columns]
(['id', 'model', 'score'], ['id'])
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.store.dialects import on_column_reflect

__all__ = ["reflect_for_reading"]


def reflect_for_reading(conn: Connection, name: str, schema: str | None = None) -> sa.Table:
    """Table ``name`` (in ``schema``) with its columns (types as the writer reflects them) and primary key.

    Raises :class:`sqlalchemy.exc.NoSuchTableError` when the table does not exist.
    """
    inspector = sa.inspect(conn)
    columns: list[dict[str, Any]] = [dict(info) for info in inspector.get_columns(name, schema=schema)]
    if not columns:   # some dialects answer an empty list rather than raising
        raise sa.exc.NoSuchTableError(name)
    keys = set(inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or ())
    table = sa.Table(name, sa.MetaData(), schema=schema)
    for info in columns:
        on_column_reflect(inspector, table, info)   # the writer's type fix-ups (MariaDB DOUBLE -> float)
        table.append_column(sa.Column(info["name"], info["type"], nullable=bool(info.get("nullable", True)),
                                      primary_key=info["name"] in keys))
    return table
