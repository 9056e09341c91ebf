"""PostgreSQL bulk insert through ``COPY``: the rows stream into a staging table, then one INSERT ... SELECT.

``executemany`` of an ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` makes PostgreSQL parse, plan
and answer for every page of rows; ``COPY`` streams them in one protocol message sequence and lets
the server parse only text. The duplicate-skipping stays a single set-based statement::

    CREATE TEMP TABLE IF NOT EXISTS wl_stage_<hash> ON COMMIT DELETE ROWS AS
        SELECT <columns> FROM <table> WITH NO DATA         -- once per connection in practice
    COPY wl_stage_<hash> (<columns>) FROM STDIN             -- psycopg 3 cursor.copy()
    INSERT INTO <table> (<columns>) SELECT <columns> FROM wl_stage_<hash> ORDER BY ctid
        ON CONFLICT (event_id) DO NOTHING                   -- rowcount = rows inserted

The staging table is temporary (one per connection and set of columns, so a column added to the
table later gets a new one) and emptied at every commit; ``ORDER BY ctid`` keeps the rows in the
order they were submitted (``row_pk`` grows with it). Identifiers come from the reflected table and
are quoted by the dialect; values travel as COPY data, never as SQL text. Driver errors are raised
as SQLAlchemy's ``DBAPIError`` family, like those of every other statement, so retry and rejection
rules do not change.

Groups smaller than :data:`MIN_COPY_ROWS` take the ordinary INSERT (three round trips would cost
more than they save): ``store.dialects.insert_plan`` carries both, ``TableStore._insert_group`` chooses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect

__all__ = ["MIN_COPY_ROWS", "CopyInsert", "supports_copy"]

MIN_COPY_ROWS = 8
"""Below this many rows a group is inserted with the ordinary INSERT (COPY needs 3 round trips)."""


def supports_copy(dialect: Dialect) -> bool:
    """True for PostgreSQL through psycopg 3 (the driver whose cursors have ``copy()``).

    >>> from sqlalchemy.dialects.postgresql import psycopg, psycopg2
    >>> supports_copy(psycopg.dialect()), supports_copy(psycopg2.dialect())
    (True, False)
    """
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


@dataclass(frozen=True)
class CopyInsert:
    """How one group of rows (all with the same keys) is COPYed into ``table``, skipping known ``dedupe_on``."""

    table: sa.Table
    columns: tuple[str, ...]
    dedupe_on: str
    conflict: tuple[str, ...] = ()
    """The unique index's columns, when more than ``dedupe_on`` (a partitioned table's partition key)."""
    _sql: dict[str, tuple[str, str, str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls, table: sa.Table, keys: Collection[str], dedupe_on: str, conflict: Sequence[str] = ()
    ) -> CopyInsert:
        """The plan for rows with ``keys`` (in table order)."""
        return cls(table, tuple(c.name for c in table.columns if c.name in keys), dedupe_on, tuple(conflict))

    @property
    def stage(self) -> str:
        """Name of the temporary staging table: one per target table and set of columns."""
        digest = hashlib.blake2s(repr((self.table.schema, self.table.name, self.columns)).encode(), digest_size=8)
        return f"wl_stage_{digest.hexdigest()}"

    def statements(self, dialect: Dialect) -> tuple[str, str, str]:
        """CREATE of the staging table, the COPY, and the INSERT ... SELECT, as SQL for ``dialect``.

        Built once per plan: compiling the INSERT ... SELECT was 7% of the writer's time per batch.
        """
        cached = self._sql.get(dialect.name)
        if cached is None:
            preparer = dialect.identifier_preparer
            stage = preparer.quote(self.stage)
            names = ", ".join(preparer.quote(name) for name in self.columns)
            source = preparer.format_table(self.table)
            select = f"SELECT {names} FROM {source} WITH NO DATA"  # noqa: S608 - reflected names, quoted by the dialect
            create = f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS {select}"
            staged = sa.table(self.stage, *(sa.column(name) for name in self.columns))
            insert = (
                postgresql.insert(self.table)
                .from_select(list(self.columns), sa.select(*staged.c).order_by(sa.literal_column("ctid")))
                .on_conflict_do_nothing(index_elements=list(self.conflict or (self.dedupe_on,)))
            )
            cached = self._sql[dialect.name] = (
                create,
                f"COPY {stage} ({names}) FROM STDIN",
                str(insert.compile(dialect=dialect)),
            )
        return cached

    def run(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
        """Insert ``rows`` in the caller's transaction; returns how many were new."""
        create, copy_sql, insert = self.statements(conn.dialect)
        # Issued in every transaction (a no-op once the table exists): a staging table created in a
        # transaction that later rolled back is gone, so remembering it per connection would be wrong.
        conn.exec_driver_sql(create)
        dbapi = conn.dialect.loaded_dbapi
        cursor = conn.connection.cursor()
        try:
            with cursor.copy(copy_sql) as copy:
                columns = self.columns
                for row in rows:
                    copy.write_row([row[name] for name in columns])
        except dbapi.Error as exc:
            invalidated = conn.dialect.is_disconnect(exc, conn.connection, cursor)
            if invalidated:
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                copy_sql, None, exc, dbapi.Error, connection_invalidated=invalidated, dialect=conn.dialect
            ) from exc
        finally:
            cursor.close()
        # As driver SQL: SQLAlchemy reports rowcount -1 for a compiled INSERT ... SELECT on psycopg.
        return int(conn.exec_driver_sql(insert).rowcount)
