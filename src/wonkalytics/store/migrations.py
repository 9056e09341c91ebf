"""Migrations of an existing analytics table: named steps, recorded, re-runnable, never destructive.

Each step looks at the table as it is now and returns the statements still needed (none when the
table already has what the step brings), so running ``wonkalytics init --upgrade`` twice changes
nothing the second time, and a step a DBA applied by hand is simply recorded. Steps only ever add:
columns the default table has and the team's table lacks, indexes and rollup tables; the one
re-keying (``m011_rollup_bucket_first``) rebuilds rollup tables, derived data, keeping every row.
A team's own column is never altered or dropped; the one type change (``score`` INTEGER -> float,
release 0.1's default table) is made only on a table Wonkalytics created (it has ``row_pk`` and
``event_id``) and where the database can alter a column in place (not SQLite, whose INTEGER column
then keeps refusing fractional scores with a clear error rather than rounding them).

Applied steps are recorded in ``wonkalytics_migrations`` (table name, step name, time).

>>> [step.name for step in STEPS][:3]
['m001_add_default_columns', 'm002_index_timestamp', 'm003_index_response_id']

``m009_search_index`` (the text search's index per dialect) is planned in
:mod:`wonkalytics.store.search_index`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from wonkalytics.store import dialects as d
from wonkalytics.store.fit import column_index, fold_name, resolve_column
from wonkalytics.store.schema import DEFAULT_COLUMNS, ROW_KEY
from wonkalytics.store.search_index import plan_search_index, probe_search_index
from wonkalytics.store.views import read_index

__all__ = ["MIGRATIONS_TABLE", "MIGRATION_STATEMENT_TIMEOUT", "STEPS", "Plan", "Step", "plan_upgrade", "upgrade"]

MIGRATIONS_TABLE = "wonkalytics_migrations"

# A step's ALTER rebuilds a table or indexes all of it: minutes on millions of rows (MariaDB, 1M rows: the
# FULLTEXT index > 30 s, re-keying 875k rollup rows ~15 s), never the 30 s a read or a write may take
# (WONKALYTICS_STATEMENT_TIMEOUT), which cut `init --upgrade` off mid-index. Bounded still, in seconds:
# a statement stuck behind another session's lock gives up after an hour.
MIGRATION_STATEMENT_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Plan:
    """What one step would do to one table: SQL statements, or why it does nothing."""

    step: str
    statements: list[str] = field(default_factory=list)
    note: str | None = None
    attention: bool = False
    """The step could not do what it brings (the note says why and what to run)."""


@dataclass(frozen=True)
class Step:
    """A named migration: ``plan(table, dialect)`` returns the statements still needed (checks itself).

    ``probe(conn, table)``, when given, looks at the database before ``plan`` (what reflection does not
    show: an extension, a privilege, a virtual table); its findings go into ``table.info`` for ``plan``,
    which without them (``--print-sql``) plans the statements re-runnably.
    """

    name: str
    description: str
    plan: Callable[[sa.Table, Dialect], Plan]
    probe: Callable[[Connection, sa.Table], dict[str, Any]] | None = None


def _quote_table(table: sa.Table, dialect: Dialect) -> str:
    return dialect.identifier_preparer.format_table(table)


def _add_default_columns(table: sa.Table, dialect: Dialect) -> Plan:
    names = [c.name for c in table.columns]
    have = column_index(names)
    preparer = dialect.identifier_preparer
    statements = []
    added = []
    for column in DEFAULT_COLUMNS:
        if column.name == ROW_KEY or resolve_column(column.name, names, folded=have) is not None:
            continue
        sql_type = column.type.compile(dialect=dialect)
        statements.append(f"ALTER TABLE {_quote_table(table, dialect)} ADD {preparer.quote(column.name)} {sql_type}")
        added.append(column.name)
    note = f"adds {', '.join(added)}" if added else "every default column is there"
    return Plan("m001_add_default_columns", statements, note)


def _has_index_on(table: sa.Table, column: str) -> bool:
    for index in table.indexes:
        names = [c.name for c in index.columns]
        if names and fold_name(names[0]) == fold_name(column):
            return True
    for constraint in table.constraints:
        if isinstance(constraint, sa.PrimaryKeyConstraint | sa.UniqueConstraint):
            names = [c.name for c in constraint.columns]
            if names and fold_name(names[0]) == fold_name(column):
                return True
    return False


def _index_step(name: str, column: str) -> Callable[[sa.Table, Dialect], Plan]:
    def plan(table: sa.Table, dialect: Dialect) -> Plan:
        real = resolve_column(column, [c.name for c in table.columns])
        if real is None:
            return Plan(name, [], f"no {column} column")
        if _has_index_on(table, real):
            return Plan(name, [], f"{real} is indexed")
        if dialect.name in ("mysql", "mariadb") and isinstance(table.c[real].type, sa.Text):
            return Plan(name, [], f"{real} is a TEXT column, which MySQL cannot index whole; left as is")
        shadow = sa.Table(table.name, sa.MetaData(), sa.Column(real, table.c[real].type), schema=table.schema)
        index = d.lookup_index(shadow, shadow.c[real])
        return Plan(name, [str(sa.schema.CreateIndex(index).compile(dialect=dialect))], f"indexes {real}")

    return plan


def _unique_event_id(table: sa.Table, dialect: Dialect) -> Plan:
    name = "m004_unique_event_id"
    real = column_index(c.name for c in table.columns).get("event_id")
    if real is None:
        return Plan(name, [], "no event_id column (m001 adds it)")
    for index in table.indexes:
        if index.unique and [c.name for c in index.columns] == [real]:
            return Plan(name, [], "event_id is unique")
    for constraint in table.constraints:
        if isinstance(constraint, sa.PrimaryKeyConstraint | sa.UniqueConstraint) and [
            c.name for c in constraint.columns
        ] == [real]:
            return Plan(name, [], "event_id is unique")
    if dialect.name in ("mysql", "mariadb") and isinstance(table.c[real].type, sa.Text):
        return Plan(name, [], "event_id is a TEXT column, which MySQL cannot index whole; left as is")
    shadow = sa.Table(table.name, sa.MetaData(), sa.Column(real, table.c[real].type), schema=table.schema)
    index_name = f"ux_{table.name}_{real}"[:60]
    kwargs: dict[str, Any] = {"unique": True}
    if dialect.name == "mssql":
        kwargs["mssql_where"] = shadow.c[real].isnot(None)
    index = sa.Index(index_name, shadow.c[real], **kwargs)
    sql = str(sa.schema.CreateIndex(index).compile(dialect=dialect))
    return Plan(name, [sql], "makes event_id unique (retries are then skipped by the database; fails if "
                             "the table already holds duplicates: remove them first)")


def _score_float(table: sa.Table, dialect: Dialect) -> Plan:
    name = "m005_score_float"
    real = column_index(c.name for c in table.columns).get("score")
    if real is None or not isinstance(table.c[real].type, sa.Integer):
        return Plan(name, [], "score is not an INTEGER column")
    ours = ROW_KEY in table.c and "event_id" in table.c
    if not ours:
        return Plan(name, [], "a team's own score column is never altered")
    if dialect.name == "sqlite":
        return Plan(name, [], "SQLite cannot change a column's type; fractional scores are refused with a clear "
                              "error until the table is recreated")
    target = d.double().compile(dialect=dialect)
    column = dialect.identifier_preparer.quote(real)
    where = _quote_table(table, dialect)
    if dialect.name == "postgresql":
        sql = f"ALTER TABLE {where} ALTER COLUMN {column} TYPE {target}"
    elif dialect.name in ("mysql", "mariadb"):
        sql = f"ALTER TABLE {where} MODIFY {column} {target} NULL"
    else:
        sql = f"ALTER TABLE {where} ALTER COLUMN {column} {target} NULL"
    return Plan(name, [sql], "stores scores exactly (87.6 stays 87.6)")


def _read_index(table: sa.Table, dialect: Dialect) -> Plan:
    name = "m006_read_index"
    index = read_index(table, dialect)
    if index is None:
        return Plan(name, [], "no covering read index on this database (the timestamp index serves reads)")
    if any(existing.name == index.name for existing in table.indexes):
        return Plan(name, [], f"{index.name} is there")
    return Plan(name, [str(sa.schema.CreateIndex(index).compile(dialect=dialect))],
                "a covering index for stats and the dashboard (bench/read_side.py: the period's count 1.7 s -> "
                "29 ms on 1M rows)")


def _quarter_tables(name: str, schema: str | None) -> list[sa.Table]:
    from wonkalytics.store.rollup_model import rollup_tables

    return list(rollup_tables(name, schema))


def _day_and_model_tables(name: str, schema: str | None) -> list[sa.Table]:
    from wonkalytics.store.rollup_model import DAY, DIMENSIONS, QUARTER, dimension_users, model_tables, rollup_tables

    levels = (QUARTER, DAY)   # the levels of release 0.2, when this step was written (m010 adds the hours)
    return [*rollup_tables(name, schema, level=DAY),
            *[t for level in levels for t in model_tables(name, schema, level)],
            *[dimension_users(name, schema, level, dim) for level in levels for dim in DIMENSIONS[1:]]]


def _hour_tables(name: str, schema: str | None) -> list[sa.Table]:
    from wonkalytics.store.rollup_model import DIMENSIONS, HOUR, dimension_users, model_tables, rollup_tables

    return [*rollup_tables(name, schema, level=HOUR), *model_tables(name, schema, HOUR),
            *[dimension_users(name, schema, HOUR, dim) for dim in DIMENSIONS[1:]]]


def _rollup_step(name: str, tables: Callable[[str, str | None], list[sa.Table]],
                 created: str) -> Callable[[sa.Table, Dialect], Plan]:
    """A step creating rollup tables unless :func:`upgrade` saw them already."""

    def plan(table: sa.Table, dialect: Dialect) -> Plan:
        existing = table.info.get("existing_tables")
        statements = []
        for target in tables(table.name, table.schema):
            if existing is not None and fold_name(target.name) in existing:
                continue
            # SQL Server has no CREATE TABLE IF NOT EXISTS; elsewhere it keeps a plan printed without a
            # connection (--print-sql) safe to run twice.
            guard = dialect.name != "mssql"
            statements.append(str(sa.schema.CreateTable(target, if_not_exists=guard).compile(dialect=dialect)).strip())
            statements.extend(str(sa.schema.CreateIndex(index, if_not_exists=guard).compile(dialect=dialect))
                              for index in target.indexes)
        note = f"creates {created} (then run `wonkalytics rollup --rebuild`)" if statements \
            else f"{created} are there"
        return Plan(name, statements, note)

    return plan


# Where a table's rows lie in its primary key's order (InnoDB: MySQL, MariaDB; SQL Server's clustered key).
_CLUSTERED = ("mysql", "mariadb", "mssql")


def _keyed_rollups(name: str, schema: str | None) -> list[str]:
    from wonkalytics.store.rollup_model import LEVELS, model_tables, rollup_tables

    return [t.name for level in LEVELS for t in (rollup_tables(name, schema, level=level)[0],
                                                  model_tables(name, schema, level)[0])]


def _probe_rollup_keys(conn: Connection, table: sa.Table) -> dict[str, Any]:
    """Per rollup table with a ``key_hash`` that exists: its primary key's name and columns, and whether
    ``key_hash`` has a unique index of its own."""
    if conn.dialect.name not in _CLUSTERED:
        return {}
    inspector = sa.inspect(conn)
    existing = table.info.get("existing_tables")   # listed by upgrade(); not by plan_upgrade() (--print-sql)
    if existing is None:
        existing = {fold_name(n) for n in inspector.get_table_names(schema=table.schema)}
    found: dict[str, tuple[str | None, list[str], bool]] = {}
    for name in _keyed_rollups(table.name, table.schema):
        if fold_name(name) not in existing:
            continue
        key = inspector.get_pk_constraint(name, schema=table.schema)
        unique = any(index.get("unique") and list(index["column_names"]) == ["key_hash"]
                     for index in inspector.get_indexes(name, schema=table.schema))
        unique = unique or any(list(u["column_names"]) == ["key_hash"]
                               for u in inspector.get_unique_constraints(name, schema=table.schema))
        found[name] = (key.get("name"), list(key.get("constrained_columns") or []), unique)
    return {"rollup_keys": found}


def _bucket_first(table: sa.Table, dialect: Dialect) -> Plan:
    """Rollup tables of releases before 0.5 were keyed by ``key_hash`` alone: re-key them by ``(bucket,
    key_hash)`` where the database keeps rows in key order, ``key_hash`` staying unique."""
    name = "m011_rollup_bucket_first"
    if dialect.name not in _CLUSTERED:
        return Plan(name, [], "this database does not keep a table's rows in its key's order: nothing to re-key")
    keys: dict[str, tuple[str | None, list[str], bool]] | None = table.info.get("rollup_keys")
    if keys is None:
        return Plan(name, [], "looks at the rollup tables' keys when connected (`wonkalytics init --upgrade`)")
    quote = dialect.identifier_preparer.quote
    pair = f"{quote('bucket')}, {quote('key_hash')}"
    statements = []
    for target, (key_name, columns, unique) in keys.items():
        if columns != ["key_hash"]:
            continue   # created keyed by the bucket first, or re-keyed already (by this step or a DBA)
        schema = table.schema
        full = f"{dialect.identifier_preparer.quote_schema(schema)}.{quote(target)}" if schema else quote(target)
        if dialect.name == "mssql":
            statements.append(f"ALTER TABLE {full} DROP CONSTRAINT {quote(key_name or '')}")
            statements.append(f"ALTER TABLE {full} ADD PRIMARY KEY CLUSTERED ({pair})")
            if not unique:
                statements.append(f"ALTER TABLE {full} ADD UNIQUE ({quote('key_hash')})")
        else:   # one ALTER, one rebuild of the table (MariaDB: ~7 s for 515k hour rows)
            statements.append(f"ALTER TABLE {full} DROP PRIMARY KEY, ADD PRIMARY KEY ({pair})"
                              + ("" if unique else f", ADD UNIQUE ({quote('key_hash')})"))
    if not statements:
        return Plan(name, [], "the rollup tables are keyed by bucket first")
    return Plan(name, statements, "re-keys the rollup tables by (bucket, key_hash): a period's rows become "
                "neighbours (bench/read_side.py, MariaDB 1M rows: a day of hour rows 983 -> 17 ms)")


STEPS: tuple[Step, ...] = (
    Step("m001_add_default_columns", "add the default columns the table lacks", _add_default_columns),
    Step("m002_index_timestamp", "index timestamp (time-range reads)",
         _index_step("m002_index_timestamp", "timestamp")),
    Step("m003_index_response_id", "index response_id (scores)",
         _index_step("m003_index_response_id", "response_id")),
    Step("m004_unique_event_id", "make event_id unique (idempotent retries)", _unique_event_id),
    Step("m005_score_float", "score as a float on a table created by release 0.1", _score_float),
    Step("m006_read_index", "a covering index for the read side", _read_index),
    Step("m007_rollup_tables", "the rollup tables of the read side",
         _rollup_step("m007_rollup_tables", _quarter_tables, "the rollup tables")),
    # the day level and the per-model tables (bench/read_side.py: a 7-day page at 1M rows merged ~82k
    # quarter-hour sketches; from days and per model ~500)
    Step("m008_rollup_levels", "the day-level, per-model and per-field users rollup tables of the read side",
         _rollup_step("m008_rollup_levels", _day_and_model_tables, "the day-level and per-model rollup tables")),
    Step("m009_search_index", "an index for the text search (pg_trgm, FTS5 trigram, FULLTEXT)",
         lambda table, dialect: Plan("m009_search_index", *plan_search_index(table, dialect)), probe_search_index),
    # the hour level: the partial days at a period's edges from hours, not quarter hours (bench/read_side.py:
    # ~3x fewer rollup rows and ~2x fewer (bucket, user) pairs at 10M rows)
    Step("m010_rollup_hours", "the hour-level rollup tables of the read side",
         _rollup_step("m010_rollup_hours", _hour_tables, "the hour-level rollup tables")),
    # a period's rollup rows read as neighbouring pages where rows lie in key order (InnoDB, SQL Server)
    Step("m011_rollup_bucket_first", "rollup tables keyed by (bucket, key_hash)", _bucket_first, _probe_rollup_keys),
)
"""Every migration, in order."""


def _migrations_table(metadata: sa.MetaData, schema: str | None) -> sa.Table:
    return sa.Table(
        MIGRATIONS_TABLE,
        metadata,
        sa.Column("table_name", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("applied_at", d.timestamp(), nullable=False),
        schema=schema,
    )


def plan_upgrade(table: sa.Table, dialect: Dialect, column_map: Mapping[str, str] | None = None,
                 conn: Connection | None = None) -> list[Plan]:
    """What ``init --upgrade`` would do to ``table`` (reflected), without doing it.

    ``column_map`` (``WONKALYTICS_COLUMN_MAP``) names a team's own columns for the steps that read
    fields (the search index); with ``conn`` the steps' probes look at the database first.
    """
    table.info["column_map"] = dict(column_map or {})
    plans = []
    for step in STEPS:
        if conn is not None and step.probe is not None:
            table.info.update(step.probe(conn, table))
        plans.append(step.plan(table, dialect))
    return plans


def applied_steps(conn: Connection, table_name: str, schema: str | None) -> set[str]:
    """Names of the steps recorded for ``table_name`` (empty when nothing was ever recorded)."""
    if not sa.inspect(conn).has_table(MIGRATIONS_TABLE, schema=schema):
        return set()
    record = _migrations_table(sa.MetaData(), schema)
    rows = conn.execute(sa.select(record.c.name).where(record.c.table_name == table_name))
    return {str(name) for (name,) in rows}


def upgrade(engine: sa.Engine, table_name: str, schema: str | None = None,
            column_map: Mapping[str, str] | None = None, only: Collection[str] | None = None) -> list[Plan]:
    """Run every step still needed on the table (or the steps named in ``only``), recording each;
    returns what each step did.

    Each step runs in its own transaction (MySQL commits DDL implicitly anyway) and reflects the
    table afresh, so a failure leaves the steps before it applied and recorded, and rerunning resumes.
    """
    results: list[Plan] = []
    record = _migrations_table(sa.MetaData(), schema)
    record.create(engine, checkfirst=True)
    for step in STEPS:
        if only is not None and step.name not in only:
            continue
        with engine.begin() as conn:
            table = sa.Table(table_name, sa.MetaData(), schema=schema, autoload_with=conn, resolve_fks=False)
            table.info["column_map"] = dict(column_map or {})
            table.info["existing_tables"] = {fold_name(n) for n in sa.inspect(conn).get_table_names(schema=schema)}
            if step.probe is not None:
                table.info.update(step.probe(conn, table))
            plan = step.plan(table, conn.dialect)
            for statement in plan.statements:
                conn.execute(sa.text(statement))
            if step.name not in applied_steps(conn, table_name, schema):
                conn.execute(sa.insert(record).values(
                    table_name=table_name, name=step.name, applied_at=datetime.now(UTC).replace(tzinfo=None)
                ))
        results.append(plan)
    return results
