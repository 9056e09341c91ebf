"""PostgreSQL at volume: the default table partitioned by month of ``timestamp`` (opt-in).

``wonkalytics init --partition monthly`` creates the default columns as a table ``PARTITION BY RANGE
("timestamp")``, one partition per month (this month back one, and ``months_ahead`` ahead) and a
``DEFAULT`` partition, so a row is never refused for its date. Running it again (monthly, from cron)
adds the months that are missing; existing partitions and rows are left alone.

What changes against the plain default table, and why:

- PostgreSQL requires every unique index of a partitioned table to contain the partition key, so the
  primary key is ``(row_pk, timestamp)`` and the idempotency key is ``UNIQUE (event_id, timestamp)``.
  A retried row is the very row the first attempt sent (the record is built once, and spooled as
  built), timestamp included, so it lands in the same partition and the pair catches it: inserts use
  ``ON CONFLICT (event_id, timestamp) DO NOTHING`` (the store recognises the pair when it reflects the
  table, see ``dialects.unique_column``). Two *different* rows that share an event_id with different
  timestamps are both kept; Wonkalytics' own ids are 128 random bits and never do.
- ``timestamp`` is NOT NULL (a partition key must be); every record the pipeline builds has one.
- Indexes are declared on the parent, so PostgreSQL creates them on every partition (existing and
  future): ``response_id`` (scores), ``timestamp`` and the unique pair.

Dropping old data is then ``DROP TABLE <table>_p2024_01`` (instant, no vacuum), and queries with a
time range touch only their months (partition pruning).

>>> print(partition_statements("t", months_ahead=1, today=date(2024, 5, 17))[-1])
CREATE TABLE IF NOT EXISTS t_default PARTITION OF t DEFAULT
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from wonkalytics.errors import ConfigurationError
from wonkalytics.store.dialects import _index_name, dialect_for, lookup_index
from wonkalytics.store.schema import DEFAULT_COLUMNS, ROW_KEY

__all__ = ["create_partitioned_table", "months", "partition_statements", "partitioned_table"]

PARTITION_KEY = "timestamp"


def partitioned_table(name: str, metadata: sa.MetaData | None = None, *, schema: str | None = None) -> sa.Table:
    """The default columns as a PostgreSQL table partitioned by month of ``timestamp`` (not created)."""
    metadata = sa.MetaData() if metadata is None else metadata
    columns = []
    for c in DEFAULT_COLUMNS:
        if c.name == ROW_KEY:
            columns.append(sa.Column(c.name, c.type, sa.Identity(), primary_key=True))
        elif c.name == PARTITION_KEY:
            columns.append(sa.Column(c.name, c.type, primary_key=True, nullable=False))
        else:
            columns.append(sa.Column(c.name, c.type, nullable=True))
    table = sa.Table(
        name, metadata, *columns, schema=schema, postgresql_partition_by=f'RANGE ("{PARTITION_KEY}")'
    )
    for c in DEFAULT_COLUMNS:
        if c.unique:
            sa.UniqueConstraint(
                table.c[c.name], table.c[PARTITION_KEY], name=_index_name("ux", name, c.name)
            )
        elif c.index and c.name != PARTITION_KEY:
            lookup_index(table, table.c[c.name])
    sa.Index(_index_name("ix", name, PARTITION_KEY), table.c[PARTITION_KEY])
    return table


def months(today: date, *, back: int = 1, ahead: int = 12) -> list[tuple[date, date]]:
    """(first day, first day of the next month) for each month from ``back`` before to ``ahead`` after.

    >>> months(date(2024, 12, 5), back=0, ahead=1)
    [(datetime.date(2024, 12, 1), datetime.date(2025, 1, 1)), (datetime.date(2025, 1, 1), datetime.date(2025, 2, 1))]
    """
    index = today.year * 12 + today.month - 1
    out = []
    for n in range(index - back, index + ahead + 1):
        start = date(n // 12, n % 12 + 1, 1)
        end = date((n + 1) // 12, (n + 1) % 12 + 1, 1)
        out.append((start, end))
    return out


def partition_statements(
    name: str, *, schema: str | None = None, months_ahead: int = 12, today: date | None = None
) -> list[str]:
    """``CREATE TABLE IF NOT EXISTS ... PARTITION OF`` for each month, then the DEFAULT partition.

    Partition names are ``<table>_pYYYY_MM`` and ``<table>_default``, in the table's schema.
    """
    preparer = dialect_for("postgresql").identifier_preparer
    parent = preparer.format_table(sa.table(name, schema=schema))

    def child(suffix: str) -> str:
        return preparer.format_table(sa.table(f"{name}_{suffix}", schema=schema))

    statements = [
        f"CREATE TABLE IF NOT EXISTS {child(f'p{start:%Y_%m}')} PARTITION OF {parent} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        for start, end in months(today or date.today(), ahead=months_ahead)
    ]
    statements.append(f"CREATE TABLE IF NOT EXISTS {child('default')} PARTITION OF {parent} DEFAULT")
    return statements


def create_partitioned_table(
    engine: sa.Engine, name: str, *, schema: str | None = None, months_ahead: int = 12, today: date | None = None
) -> bool:
    """Create the monthly partitioned table unless it exists, and the partitions it lacks.

    Returns True when the table itself was created. Raises :class:`ConfigurationError` on anything but
    PostgreSQL, and when a table of that name exists but is not partitioned.
    """
    if engine.dialect.name != "postgresql":
        raise ConfigurationError(
            f"--partition monthly needs PostgreSQL; {engine.dialect.name} has no declarative partitioning "
            "that keeps event_id idempotent (use the plain default table there)"
        )
    with engine.begin() as conn:
        exists = sa.inspect(conn).has_table(name, schema=schema)
        if exists:
            kind = conn.execute(
                sa.text(
                    "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = :name AND n.nspname = coalesce(:schema, current_schema())"
                ),
                {"name": name, "schema": schema},
            ).scalar()
            if kind != "p":
                raise ConfigurationError(
                    f"table {name!r} exists and is not partitioned; PostgreSQL cannot partition a table in "
                    "place: create the partitioned table under a new name and copy the rows over "
                    "(an INSERT ... SELECT from the old table), then rename"
                )
        else:
            partitioned_table(name, schema=schema).create(conn)
        for statement in partition_statements(name, schema=schema, months_ahead=months_ahead, today=today):
            conn.exec_driver_sql(statement)
    return not exists
