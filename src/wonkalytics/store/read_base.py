"""The table half of the read side: the reflected table, fields to columns, read-only connections, WHERE.

:class:`TableReads` is the base of :class:`~wonkalytics.store.queries.ReadStore` (moved out of
store/queries.py verbatim; queries.py re-exports every name). The rules it keeps:

- **Fields resolve to columns through** :func:`~wonkalytics.store.fit.resolve_column` (column map,
  exact, case-insensitive), the same rule as writes, so a team's own column names work. A field the
  table lacks reads as ``None`` (or 0 rows), never as an error -- except where the caller named it
  (``--by``, a filter, a sort), which raises :class:`~wonkalytics.errors.UnknownColumnError`.
- **Read-only**: PostgreSQL ``READ ONLY`` transactions, MySQL/MariaDB ``SET TRANSACTION READ ONLY``,
  SQLite ``PRAGMA query_only``. SQL Server has no per-transaction switch: use a login with only
  ``db_datareader`` (or ``ApplicationIntent=ReadOnly`` on a replica).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.errors import StoreError, UnknownColumnError, WonkalyticsError
from wonkalytics.store.engine import DEFAULT_CONNECT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT, safe_url
from wonkalytics.store.failures import store_error
from wonkalytics.store.filters import Filters
from wonkalytics.store.fit import column_index, resolve_column
from wonkalytics.store.periods import Period
from wonkalytics.store.read_table import reflect_for_reading
from wonkalytics.store.search import SEARCH_FIELDS, SearchIndex, detect, search_condition
from wonkalytics.store.sql import TableStore, parse_table_name

__all__ = ["CATEGORY_FIELDS", "FIELD_ALIASES", "TableReads"]

FIELD_ALIASES = {"user": "username", "tenant": "tenant_id"}
"""Short names accepted wherever a field is named (``--by user``)."""

CATEGORY_FIELDS = ("model", "tenant_id", "username", "status", "language", "level", "tone", "response_type",
                   "position", "competence", "gender", "provider_type", "finish_reason", "action")
"""Fields worth a breakdown chart (few distinct values); a team's own short text columns are added."""

# Long free-text columns of the default table: no breakdown, searched only by the text filter.
_FREE_TEXT = frozenset({"system_msg", "messages", "response", "error", "metadata", "tags", "summary", "notes",
                        "motivation_summary", "other_notes", "carreer_notes", "test_results", "fixed_test_results",
                        "free_test_results", "name", "email"})


class TableReads:
    """The reflected table of one reader, its fields and read-only connections (see the module docstring)."""

    def __init__(self, url: str | sa.URL, table: str, column_map: Mapping[str, str] | None = None, *,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT) -> None:
        self._store = TableStore(url, table, create=False, connect_timeout=connect_timeout,
                                 statement_timeout=statement_timeout)
        self.name = table
        self.column_map = dict(column_map or {})
        self._folded: dict[str, str] | None = None
        self._search: SearchIndex | None = None
        self._table: sa.Table | None = None
        self._lock = threading.Lock()
        self._dialect: str | None = None
        self._open = threading.local()   # .conn: the connection of this thread's outermost reading()

    @property
    def table(self) -> sa.Table:
        """The table, reflected once per reader (columns and primary key only: store/read_table.py) and kept.

        Raises :class:`StoreError` when it does not exist.
        """
        table = self._table
        if table is None:
            with self._lock:
                if self._table is None:
                    self._table = self._reflect()
                table = self._table
        return table

    def _reflect(self) -> sa.Table:
        schema, name = parse_table_name(self.name)
        with self.reading() as conn:
            try:
                return reflect_for_reading(conn, name, schema)
            except sa.exc.NoSuchTableError:
                raise StoreError(f"table {self.name!r} does not exist at {safe_url(self._store.url)}; create it "
                                 "with `wonkalytics init`") from None

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql``, ``mariadb``, ``mysql``, ``mssql``, ..."""
        if self._dialect is None:
            dialect = self._store.engine.dialect
            self._dialect = "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name
        return self._dialect

    def column(self, name: str) -> sa.Column[Any] | None:
        """The table's column for field ``name`` (aliases ``user`` / ``tenant`` accepted), or None."""
        table = self.table
        if self._folded is None:
            self._folded = column_index(table.c.keys())
        real = resolve_column(FIELD_ALIASES.get(name, name), table.c.keys(), self.column_map, folded=self._folded)
        return None if real is None else table.c[real]

    def require(self, name: str) -> sa.Column[Any]:
        """Like :meth:`column`, but a field the table lacks raises :class:`UnknownColumnError`."""
        column = self.column(name)
        if column is None:
            raise UnknownColumnError(name, self.name, self.table.c.keys())
        return column

    def category_fields(self) -> list[str]:
        """Fields offered for breakdowns: :data:`CATEGORY_FIELDS` the table has, and its own short text columns."""
        from wonkalytics.store.schema import DEFAULT_COLUMNS

        known = {c.name for c in DEFAULT_COLUMNS}
        names = [f for f in CATEGORY_FIELDS if self.column(f) is not None]
        mapped = {c.name for f in names if (c := self.column(f)) is not None}
        for column in self.table.columns:
            short = isinstance(column.type, sa.String) and (column.type.length or 10**9) <= 255
            if short and column.name not in known and column.name not in mapped and not column.primary_key:
                names.append(column.name)
        return names

    def search_index(self) -> SearchIndex:
        """The index serving the text search (store/search.py), looked up once per reader."""
        if self._search is None:
            with self.reading() as conn:
                self._search = detect(conn, self.table, self.column_map)
        return self._search

    def key_column(self) -> sa.Column[Any] | None:
        """The column that names one row in links (the primary key, else ``event_id``)."""
        keys = list(self.table.primary_key.columns)
        return keys[0] if len(keys) == 1 else self.column("event_id")

    # -- connections ------------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection in a read-only transaction where the dialect has one (see the module docstring).

        Nested on one thread, the inner ``reading()`` is the outer one's connection and transaction: a
        page that asks several questions (:meth:`overviews`) reads one snapshot with one BEGIN.
        """
        held: Connection | None = getattr(self._open, "conn", None)
        if held is not None:
            yield held
            return
        engine = self._store.engine
        try:
            with engine.connect() as conn:
                name = engine.dialect.name
                if name == "postgresql":
                    conn = conn.execution_options(postgresql_readonly=True)
                    # JIT compiling costs ~30 ms per query here and pays off only for long analytics
                    # queries; these are interactive (measured: bench/read_side.py, 1M rows).
                    conn.exec_driver_sql("SET LOCAL jit = off")
                elif name == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = ON")
                elif name in ("mysql", "mariadb"):
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")  # applies to the next transaction
                self._open.conn = conn
                try:
                    yield conn  # one transaction (autobegun by the first statement), rolled back
                finally:
                    self._open.conn = None
                    conn.rollback()  # nothing to commit: a reader never changes anything
                    if name == "sqlite":
                        conn.exec_driver_sql("PRAGMA query_only = OFF")  # the pool may hand it to a writer
                        conn.commit()
        except WonkalyticsError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise store_error(f"read table {self.name!r}", self._store.url, exc) from None

    def where(self, period: Period, filters: Filters | None = None, *,
              events: bool = False) -> list[sa.ColumnElement[bool]]:
        """The WHERE conditions of ``period`` and ``filters`` (bound parameters only)."""
        since, until = period.utc_bounds
        timestamp = self.require("timestamp")
        conditions: list[sa.ColumnElement[bool]] = [timestamp >= since, timestamp < until]
        model = self.column("model")
        if not events and model is not None:
            conditions.append(model.is_not(None))
        f = filters or Filters()
        for name, value in (("model", f.model), ("tenant_id", f.tenant), ("username", f.user),
                            ("status", f.status), *f.fields.items()):
            if value not in (None, ""):
                conditions.append(self.require(name) == value)
        if f.score_min is not None:
            conditions.append(self.require("score") >= f.score_min)
        if f.score_max is not None:
            conditions.append(self.require("score") <= f.score_max)
        if f.text:
            texts = [c for n in SEARCH_FIELDS if (c := self.column(n)) is not None]
            if texts:  # the same rows as a scan; narrowed by the search index where there is one
                index = self.search_index()
                if index.kind in ("fts5", "fulltext"):
                    with self.reading() as conn:  # a bounded count: does the index narrow this needle enough?
                        conditions.append(search_condition(self.table, texts, f.text, self.dialect, index, conn))
                else:
                    conditions.append(search_condition(self.table, texts, f.text, self.dialect, index))
        return conditions
