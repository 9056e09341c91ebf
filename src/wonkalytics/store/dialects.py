"""Every difference between databases, in one place: types, indexes, duplicate-key handling.

The rest of :mod:`wonkalytics.store` is dialect-neutral SQLAlchemy Core; whenever SQLite, PostgreSQL,
MySQL/MariaDB and SQL Server need different SQL, the choice is made here.

Type mapping of the default table (see :func:`long_text` and friends):

============  ==========  ==============  ===============  ==========================
Kind          SQLite      PostgreSQL      MySQL/MariaDB    SQL Server
============  ==========  ==============  ===============  ==========================
long text     TEXT        TEXT            LONGTEXT         NVARCHAR(max)
short text    VARCHAR(n)  VARCHAR(n)      VARCHAR(n)       NVARCHAR(n)
identifier    VARCHAR(n)  VARCHAR(n)      VARCHAR(n) bin   NVARCHAR(n) BIN2 collation
double        FLOAT       FLOAT(53)       FLOAT(53)        FLOAT(53)
timestamp     DATETIME    TIMESTAMP       DATETIME(6)      DATETIME2(6)
row key       INTEGER     BIGSERIAL       BIGINT AUTO_INC  BIGINT IDENTITY
============  ==========  ==============  ===============  ==========================

Keys: ``row_pk`` is the auto-increment primary key; ``event_id`` is UNIQUE through a constraint inside
CREATE TABLE, except on SQL Server (a filtered unique index, see :func:`unique_key`); ``response_id``
has a plain index. Skipping duplicates per dialect: :func:`insert_plan`. (Driver error codes, for
retries, are in :mod:`wonkalytics.store.failures`.)

MySQL/MariaDB tables are ``utf8mb4`` (emoji need four bytes; MySQL's ``utf8`` has three).
Identifier columns (``id``, ``response_id``, ``event_id``) compare case- and accent-sensitively
everywhere (binary collations on MySQL and SQL Server, whose defaults are case-insensitive), because
``chatcmpl-AbC`` and ``chatcmpl-abc`` are different responses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable

from wonkalytics.errors import ConfigurationError
from wonkalytics.store.bulk import CopyInsert, supports_copy

__all__ = [
    "DDL_DIALECTS",
    "InsertPlan",
    "PositionalInsert",
    "ddl_statements",
    "dialect_for",
    "double",
    "identifier",
    "insert_plan",
    "integer",
    "long_text",
    "lookup_index",
    "on_column_reflect",
    "row_key",
    "short_text",
    "table_options",
    "timestamp",
    "unique_column",
    "unique_key",
]

_MYSQL = ("mysql", "mariadb")
MYSQL_CHARSET = "utf8mb4"
MYSQL_COLLATION = "utf8mb4_unicode_ci"
_MYSQL_BINARY_COLLATION = "utf8mb4_bin"
_MSSQL_BINARY_COLLATION = "Latin1_General_100_BIN2"
# PostgreSQL truncates identifiers at 63 bytes, MySQL at 64; stay below both.
_MAX_INDEX_NAME = 60

DDL_DIALECTS: dict[str, str] = {
    "sqlite": "sqlite://",
    "postgresql": "postgresql+psycopg://",
    "mysql": "mysql+pymysql://",
    "mariadb": "mariadb+pymysql://",
    "mssql": "mssql+pyodbc://",
}
"""Dialect names accepted by :func:`dialect_for` (and ``wonkalytics init --print-sql``)."""
_DIALECT_ALIASES = {"postgres": "postgresql", "sqlserver": "mssql", "azuresql": "mssql"}


# --- types -------------------------------------------------------------------------------------------


def long_text() -> sa.types.TypeEngine[str]:
    """Unbounded Unicode text: TEXT, NVARCHAR(max) on SQL Server, LONGTEXT on MySQL/MariaDB."""
    # MySQL's TEXT stops at 64 KB; a long prompt or response must not be cut or refused.
    # SQL Server: spelled out, because before its first connection SQLAlchemy's mssql dialect does not
    # know the server version and would emit the deprecated NTEXT for UnicodeText.
    return sa.UnicodeText().with_variant(mysql.LONGTEXT(), *_MYSQL).with_variant(mssql.NVARCHAR(), "mssql")


def short_text(length: int) -> sa.types.TypeEngine[str]:
    """Bounded Unicode text (NVARCHAR(n) on SQL Server, VARCHAR(n) in a utf8mb4 table on MySQL)."""
    return sa.Unicode(length)


def identifier(length: int = 255) -> sa.types.TypeEngine[str]:
    """A bounded, indexable, case-sensitive string for ids (response_id, event_id, id).

    Bounded because SQL Server cannot index NVARCHAR(max) and MySQL cannot index TEXT.
    """
    return (
        sa.Unicode(length)
        .with_variant(mysql.VARCHAR(length, collation=_MYSQL_BINARY_COLLATION), *_MYSQL)
        .with_variant(mssql.NVARCHAR(length, collation=_MSSQL_BINARY_COLLATION), "mssql")
    )


def double() -> sa.types.TypeEngine[float]:
    """Double precision float, the seed's ``FLOAT(53)``."""
    return sa.Float(53)


def integer() -> sa.types.TypeEngine[int]:
    """A plain INT, as in the seed."""
    return sa.Integer()


def timestamp() -> sa.types.TypeEngine[Any]:
    """A naive DATETIME with microseconds (MySQL's DATETIME and SQL Server's DATETIME lose them)."""
    return (
        sa.DateTime()
        .with_variant(mysql.DATETIME(fsp=6), *_MYSQL)
        .with_variant(mssql.DATETIME2(precision=6), "mssql")  # type: ignore[no-untyped-call]
    )


def row_key() -> sa.types.TypeEngine[int]:
    """The surrogate key's type: BIGINT, except INTEGER on SQLite (only that is an auto rowid)."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def table_options() -> dict[str, Any]:
    """Table-level DDL options (only MySQL/MariaDB have any)."""
    options = {"engine": "InnoDB", "charset": MYSQL_CHARSET, "collate": MYSQL_COLLATION}
    # A mysql:// URL to a MariaDB server reads mysql_*, a mariadb:// URL reads mariadb_*.
    return {f"{prefix}_{key}": value for prefix in _MYSQL for key, value in options.items()}


# --- indexes -----------------------------------------------------------------------------------------


def _index_name(prefix: str, table: str, column: str) -> str:
    name = f"{prefix}_{table}_{column}"
    if len(name) <= _MAX_INDEX_NAME:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{name[: _MAX_INDEX_NAME - 9]}_{digest}"


def lookup_index(table: sa.Table, column: sa.Column[Any]) -> sa.Index:
    """A plain index for lookups (``UPDATE ... WHERE response_id = ?``); attaches itself to ``table``."""
    return sa.Index(_index_name("ix", table.name, column.name), column)


def _not_mssql(
    ddl: Any,
    target: Any,
    bind: Any,
    tables: Any = None,
    state: Any = None,
    *,
    dialect: Dialect,
    compiler: Any = None,
    checkfirst: bool = False,
) -> bool:
    return dialect.name != "mssql"


def unique_key(table: sa.Table, column: sa.Column[Any]) -> None:
    """Make ``column`` unique while letting any number of rows have NULL (attached to ``table``).

    A ``UNIQUE`` constraint inside ``CREATE TABLE`` (so a table is never seen without it, even by a
    process racing to create the same table) — except on SQL Server, whose UNIQUE allows a single
    NULL: there it is a filtered unique index ``WHERE col IS NOT NULL``.
    """
    name = _index_name("ux", table.name, column.name)
    sa.UniqueConstraint(column, name=name).ddl_if(callable_=_not_mssql)
    sa.Index(name, column, unique=True, mssql_where=column.isnot(None)).ddl_if(dialect="mssql")


# --- dialects ----------------------------------------------------------------------------------------


def dialect_for(name: str) -> Dialect:
    """A dialect object for compiling DDL without a connection (and without its driver installed).

    >>> dialect_for("mssql").name
    'mssql'
    """
    key = name.lower().split("+")[0]  # a URL's "postgresql+psycopg" names the postgresql dialect
    try:
        url = DDL_DIALECTS[_DIALECT_ALIASES.get(key, key)]
    except KeyError:
        raise ConfigurationError(
            f"unknown SQL dialect {name!r}; choose one of: {', '.join(DDL_DIALECTS)}"
        ) from None
    dialect: Dialect = sa.make_url(url).get_dialect()()
    return dialect


# --- duplicate-key handling --------------------------------------------------------------------------

CountMethod = Literal["rowcount", "returning", "preselect", "all"]


@dataclass(frozen=True)
class InsertPlan:
    """How one group of rows (all with the same keys) is inserted.

    ``count`` says how the number of inserted rows is known afterwards: the driver's ``rowcount``,
    the rows of a ``RETURNING`` clause, ``preselect`` (look up which event ids exist before the
    insert, in the same transaction; best effort under concurrency) or ``all`` (no dedupe: every row
    lands or the transaction fails). ``bulk``, when set, runs (and counts) groups large enough for COPY.
    """

    statement: Executable
    count: CountMethod
    bulk: CopyInsert | None = None
    """PostgreSQL through psycopg 3: the COPY path, taken by groups of at least ``MIN_COPY_ROWS`` rows."""
    positional: PositionalInsert | None = None
    """SQLite: ``statement`` compiled once, executed with plain tuples (see :class:`PositionalInsert`)."""


_Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class PositionalInsert:
    """An INSERT compiled once for one key set, executed with one tuple of bound values per row.

    ``conn.execute(statement, dicts)`` has SQLAlchemy build each row's parameters again
    (``construct_params`` and the bind processors, per row and per batch): 12-15 µs a row of the
    writer's 3.2 KB rows on SQLite (bench/writer_cpu.py, profile in BENCHMARKS.md). Here the SQL
    text, the parameter order and the type's bind processors (datetime -> SQLite's text form) are
    taken from SQLAlchemy's own compilation once, and a row is one list comprehension. Values stay
    bound parameters; the identifiers come from the reflected table, as before.
    """

    sql: str
    names: tuple[str, ...]
    processors: tuple[tuple[int, _Processor], ...]  # (position, bind processor) for the types that have one

    @classmethod
    def compile(cls, statement: Executable, keys: Collection[str], dialect: Dialect) -> PositionalInsert | None:
        """The compiled form of ``statement`` for rows with ``keys``; None when it cannot be positional.

        Only a qmark/format dialect whose bind names are the column names as given (nothing escaped,
        no parameter rendered at execution) qualifies; anything else keeps the Core path.
        """
        compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))  # type: ignore[attr-defined]
        names = tuple(compiled.positiontup or ())
        if (
            not compiled.positional
            or compiled.escaped_bind_names
            or compiled.literal_execute_params
            or compiled.post_compile_params
            or sorted(names) != sorted(keys)
        ):
            return None
        processors = []
        for index, name in enumerate(names):
            processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors.append((index, processor))
        return cls(compiled.string, names, tuple(processors))

    def parameters(self, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        """One tuple of bound values per row, in the statement's parameter order."""
        names, processors = self.names, self.processors
        if not processors:
            return [tuple([row[name] for name in names]) for row in rows]
        out = []
        for row in rows:
            values = [row[name] for name in names]
            for index, processor in processors:
                values[index] = processor(values[index])
            out.append(tuple(values))
        return out


def insert_plan(
    table: sa.Table, keys: Collection[str], dialect: Dialect, dedupe_on: str | None
) -> InsertPlan:
    """The INSERT for rows with ``keys``; rows whose ``dedupe_on`` value exists are skipped.

    ``dedupe_on`` is the name of a column with a unique index (normally ``event_id``), or None.

    - SQLite / PostgreSQL: ``INSERT ... ON CONFLICT (event_id) DO NOTHING``; on PostgreSQL through
      psycopg 3 the rows are COPYed into a staging table first (:mod:`wonkalytics.store.bulk`:
      measured 1.5-2x the executemany in bench/ingest.py)
    - MySQL / MariaDB: ``INSERT ... ON DUPLICATE KEY UPDATE event_id = event_id`` (a no-op update;
      unlike ``INSERT IGNORE`` it does not turn data errors such as truncation into warnings)
    - SQL Server: ``INSERT INTO t (...) SELECT ?, ... WHERE NOT EXISTS (SELECT 1 FROM t WITH
      (UPDLOCK, HOLDLOCK) WHERE event_id = ?)`` — the lock hints stop two writers racing past the check
    - any other database: a plain INSERT (a duplicate then fails on the unique index)
    """
    name = dialect.name
    if dedupe_on is None or dedupe_on not in keys:
        return InsertPlan(sa.insert(table), "all")
    conflict = conflict_columns(table, dedupe_on)
    if not set(conflict) <= set(keys):  # a partitioned table's row without its partition key
        return InsertPlan(sa.insert(table), "all")
    if name == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=[dedupe_on])
        return InsertPlan(statement, "rowcount", positional=PositionalInsert.compile(statement, keys, dialect))
    if name == "postgresql":
        pg_stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
        bulk = CopyInsert.build(table, keys, dedupe_on, conflict) if supports_copy(dialect) else None
        # psycopg reports no rowcount for executemany; RETURNING lists exactly the rows inserted.
        return InsertPlan(pg_stmt.returning(table.c[dedupe_on]), "returning", bulk)
    if name in _MYSQL:
        # With CLIENT_FOUND_ROWS (needed so UPDATE reports matched rows) a skipped duplicate counts
        # as affected, so the rowcount cannot tell inserted from skipped.
        column = table.c[dedupe_on]
        my_stmt = mysql.insert(table).on_duplicate_key_update({dedupe_on: column})
        return InsertPlan(my_stmt, "preselect")
    if name == "mssql":
        return InsertPlan(_insert_where_not_exists(table, keys, dedupe_on), "preselect")
    return InsertPlan(sa.insert(table), "all")


def _insert_where_not_exists(table: sa.Table, keys: Collection[str], dedupe_on: str) -> Executable:
    names = [c.name for c in table.columns if c.name in keys]
    values = sa.select(*[sa.bindparam(n, type_=table.c[n].type) for n in names])
    probe: sa.Select[Any] = (
        sa.select(sa.literal_column("1"))
        .select_from(table)
        .where(table.c[dedupe_on] == sa.bindparam(dedupe_on, type_=table.c[dedupe_on].type))
        .with_hint(table, "WITH (UPDLOCK, HOLDLOCK)", "mssql")
    )
    return sa.insert(table).from_select(names, values.where(~sa.exists(probe)))


def on_column_reflect(_inspector: Any, _table: sa.Table, column_info: dict[str, Any]) -> None:
    """``column_reflect`` hook: floats read back as ``float`` everywhere.

    MySQL/MariaDB report ``FLOAT(53)`` as ``DOUBLE``, which SQLAlchemy's mysql dialect returns as
    ``Decimal``; the seed's columns are floats.
    """
    type_ = column_info["type"]
    if isinstance(type_, sa.Float) and type_.asdecimal:
        column_info["type"] = sa.Float(precision=type_.precision, asdecimal=False)


def unique_column(table: sa.Table, name: str, engine: sa.Engine | sa.Connection) -> str | None:
    """``name`` when ``table`` has that column and it alone is unique (so duplicates can be skipped).

    Looks at the primary key, unique constraints and unique indexes of a reflected table (MySQL
    reports UNIQUE constraints as unique indexes). A partial unique index counts only on SQL Server
    (that is how the default table makes ``event_id`` unique there, and its NOT EXISTS insert needs
    no index at all); ``ON CONFLICT (event_id)`` on PostgreSQL and SQLite needs a full one. SQLite
    hides a column-level ``UNIQUE`` in an automatic index, which plain reflection leaves out: there
    we ask for those too (once).
    """
    if name not in table.c:
        return None
    keys = [c for c in table.constraints if isinstance(c, sa.PrimaryKeyConstraint | sa.UniqueConstraint)]
    column_sets = [[col.name for col in key.columns] for key in keys]
    partial = {"postgresql_where", "sqlite_where"}
    column_sets += [
        [col.name for col in ix.columns]
        for ix in table.indexes
        if ix.unique and not partial.intersection(k for k, v in ix.dialect_kwargs.items() if v is not None)
    ]
    if [name] not in column_sets and engine.dialect.name == "postgresql":
        # A partitioned table's unique index must contain the partition key: (event_id, timestamp) on
        # the monthly default table (store/partition.py). A retried row carries its own timestamp, so
        # it lands in the same partition and the pair still catches it.
        key = _pg_partition_key(table, engine)
        if key and sorted([name, *key]) in [sorted(s) for s in column_sets]:
            table.info[_CONFLICT] = (name, *key)
            return name
    if [name] not in column_sets and engine.dialect.name == "sqlite":
        indexes = sa.inspect(engine).get_indexes(table.name, schema=table.schema, include_auto_indexes=True)
        column_sets += [
            [str(c) for c in ix["column_names"]]
            for ix in indexes
            if ix["unique"] and ix.get("dialect_options", {}).get("sqlite_where") is None
        ]
    return name if [name] in column_sets else None


_CONFLICT = "wonkalytics_conflict_columns"


def conflict_columns(table: sa.Table, dedupe_on: str) -> tuple[str, ...]:
    """The columns of the unique index that skips duplicates: ``(event_id,)``, or with the partition key.

    >>> from wonkalytics.store.schema import default_table
    >>> conflict_columns(default_table("t"), "event_id")
    ('event_id',)
    """
    columns: tuple[str, ...] = table.info.get(_CONFLICT, (dedupe_on,))
    return columns


def _pg_partition_key(table: sa.Table, engine: sa.Engine | sa.Connection) -> list[str]:
    """Columns of a PostgreSQL partitioned table's partition key (empty for a plain table)."""
    query = sa.text(
        "SELECT a.attname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (p.partattrs::int2[]) "
        "WHERE c.relname = :name AND n.nspname = coalesce(:schema, current_schema())"
    )
    params = {"name": table.name, "schema": table.schema}
    if isinstance(engine, sa.Connection):
        return [str(r) for r in engine.execute(query, params).scalars()]
    with engine.connect() as conn:
        return [str(r) for r in conn.execute(query, params).scalars()]


def ddl_statements(table: sa.Table, dialect_name: str) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements of ``table`` for a dialect, without connecting.

    >>> from wonkalytics.store.schema import default_table
    >>> ddl_statements(default_table("t"), "mssql")[-1]
    'CREATE UNIQUE INDEX ux_t_event_id ON t (event_id) WHERE event_id IS NOT NULL'
    """
    dialect = dialect_for(dialect_name)  # validates the name
    statements: list[str] = []

    def executor(ddl: Any, *_args: Any, **_kw: Any) -> None:
        statements.append(str(ddl.compile(dialect=mock.dialect)).strip())

    # A mock engine runs the same DDL generator as a real create(), so ddl_if() rules apply.
    mock = sa.create_mock_engine(DDL_DIALECTS[dialect.name], executor)
    table.create(mock, checkfirst=False)
    # CREATE TABLE first; then the indexes in a stable order (SQLAlchemy keeps them in a set).
    return statements[:1] + sorted(statements[1:])
