"""Reading and writing one analytics table: reflected once, executemany inserts, bound-parameter updates.

>>> store = TableStore("sqlite:///analytics.db", "wonkalytics_interactions")   # doctest: +SKIP
>>> store.insert_many([{"event_id": "e1", "response_id": "chatcmpl-1", "model": "gpt-4o"}])  # doctest: +SKIP
1
>>> store.update_where("response_id", "chatcmpl-1", "score", 100)  # doctest: +SKIP
True

Every identifier that reaches SQL is a column of the reflected table (never a caller's string), and
every value is a bound parameter.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from wonkalytics.errors import ConfigurationError, StoreError, UnknownColumnError, WonkalyticsError
from wonkalytics.store import rollup_keeper
from wonkalytics.store.bulk import MIN_COPY_ROWS
from wonkalytics.store.dialects import InsertPlan, ddl_statements, insert_plan, on_column_reflect, unique_column
from wonkalytics.store.engine import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_STATEMENT_TIMEOUT,
    get_engine,
    parse_url,
    redact,
    safe_url,
    statement_deadline,
)
from wonkalytics.store.failures import is_deadlock, is_schema_changed, is_transient, store_error
from wonkalytics.store.fit import ColumnKind
from wonkalytics.store.schema import column_kind, default_table

__all__ = [
    "DEDUPE_COLUMN",
    "StoreSettings",
    "TableStore",
    "create_default_table",
    "is_transient",
    "parse_table_name",
    "update_statement",
]

logger = logging.getLogger("wonkalytics")

DEDUPE_COLUMN = "event_id"
"""Rows whose value here already exists in the table are skipped (when the column is unique)."""

_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_IN_CHUNK = 500  # SQL Server allows 2100 parameters per statement
_DEADLOCK_ATTEMPTS = 5
_DEADLOCK_JITTER = (0.005, 0.05)
"""Seconds (times the attempt) a deadlock's victim waits before rerunning, drawn at random between these
so the two victims of a deadlock do not collide again. Here, not in writer/retry.py: store/ is below the
writer and imports nothing of it."""
_T = TypeVar("_T")


def parse_table_name(name: str) -> tuple[str | None, str]:
    """Split ``"table"`` or ``"schema.table"`` into (schema, table), rejecting anything else.

    >>> parse_table_name("analytics.interactions")
    ('analytics', 'interactions')
    """
    parts = name.split(".") if isinstance(name, str) else []
    if not 1 <= len(parts) <= 2 or not all(_NAME_PART.fullmatch(part) for part in parts):
        raise ConfigurationError(
            f"invalid table name {name!r}: use a plain identifier (letters, digits and underscores, not "
            "starting with a digit, at most 63 characters), optionally qualified by a schema as "
            "'schema.table'"
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


@dataclass(frozen=True)
class _Reflected:
    """What one reflection taught us; replaced as a whole, so threads never see half of it."""

    table: sa.Table
    names: frozenset[str]
    columns: dict[str, ColumnKind]
    dedupe_on: str | None
    filter_on: str | None = None  # an event_id column without a unique index: skip held ids by a look-up
    lengths: dict[str, int] = field(default_factory=dict)  # text columns with a length limit (VARCHAR(n))
    plans: dict[frozenset[str], InsertPlan] = field(default_factory=dict)  # per key set


class StoreSettings(Protocol):
    """What :meth:`TableStore.from_settings` reads of the settings (store/ stands below settings.py)."""

    table: str
    create_table: bool
    connect_timeout: float
    statement_timeout: float

    def url(self) -> sa.URL:
        """The database URL."""
        ...


class TableStore:
    """One table of one database, shared by the writer thread and caller threads.

    The table is reflected on first use and cached; when it is missing and ``create`` is true the
    default table (:func:`wonkalytics.store.schema.default_table`) is created first.

    >>> store = TableStore("sqlite:///analytics.db", "interactions")  # connects on first use only
    >>> store.name
    'interactions'
    """

    def __init__(
        self,
        url: str | sa.URL,
        table: str,
        *,
        create: bool = True,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    ) -> None:
        self._schema, self._table_name = parse_table_name(table)
        self.name = table
        self.url = parse_url(url)
        self._create = create
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self._safe_url = safe_url(self.url)
        self._lock = threading.Lock()
        self._reflected: _Reflected | None = None
        self._batch = threading.local()  # .conn: the open transaction of one_transaction() on this thread

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, create: bool | None = None) -> TableStore:
        """The store of the configured table (URL, name, timeouts); ``create`` defaults to the setting.

        The one construction from settings: the recorder, PromptLayer's request-id lookup, the seed's
        side sinks and the CLI commands all build their store here.
        """
        return cls(
            settings.url(), settings.table, create=settings.create_table if create is None else create,
            connect_timeout=settings.connect_timeout, statement_timeout=settings.statement_timeout,
        )

    def __repr__(self) -> str:
        return f"TableStore({self._safe_url!r}, {self.name!r})"

    @property
    def engine(self) -> Engine:
        """The process-wide engine for this URL (looked up each time, so disposal and fork are safe)."""
        return get_engine(
            self.url, connect_timeout=self.connect_timeout, statement_timeout=self.statement_timeout
        )

    # -- reflection --------------------------------------------------------------------------------

    @property
    def table(self) -> sa.Table:
        """The reflected table (reflected once, on first access; created first when missing)."""
        return self._state().table

    @property
    def columns(self) -> dict[str, ColumnKind]:
        """Writable columns and their kinds; an auto-increment key (``row_pk``) is left out.

        >>> TableStore("sqlite:///analytics.db", "t").columns["score"]  # doctest: +SKIP
        'int'
        """
        return dict(self._state().columns)

    @property
    def column_kinds(self) -> Mapping[str, ColumnKind]:
        """:attr:`columns` without the copy, for the writer's per-row fitting (read-only: do not mutate)."""
        return self._state().columns

    @property
    def lengths(self) -> dict[str, int]:
        """Text columns with a length limit (``VARCHAR(n)``) and that limit, in characters."""
        return self._state().lengths

    def known_columns(self) -> dict[str, ColumnKind] | None:
        """The columns if the table was reflected already, else None (never connects)."""
        state = self._reflected
        return None if state is None else dict(state.columns)

    def columns_within(self, timeout: float) -> dict[str, ColumnKind] | None:
        """The columns, reflecting in a helper thread for at most ``timeout`` seconds; None if not in time.

        For checks on the caller's thread (``score()``): a database that is down or hangs must not
        hold the caller longer than the wait it asked for.
        """
        known = self.known_columns()
        if known is not None:
            return known
        result: list[dict[str, ColumnKind]] = []

        def reflect() -> None:
            try:
                result.append(self.columns)
            except Exception:  # down, missing, refused: the caller falls back to what it knows
                return

        worker = threading.Thread(target=reflect, name="wonkalytics-reflect", daemon=True)
        worker.start()
        worker.join(timeout)
        return result[0] if result else None

    def forget(self) -> None:
        """Drop the cached reflection: the next use reflects again (and creates the table if allowed)."""
        with self._lock:
            self._reflected = None

    def ping(self) -> bool:
        """True when the database answers ``SELECT 1`` now (within the timeouts)."""
        with statement_deadline(self.statement_timeout), self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True

    def check_columns(self, names: Iterable[str]) -> None:
        """Raise :class:`UnknownColumnError` for the first name that is not a column of the table."""
        state = self._state()
        for name in names:
            if not isinstance(name, str) or name not in state.names:
                raise UnknownColumnError(str(name), self.name, state.names)

    def _state(self) -> _Reflected:
        state = self._reflected
        if state is None:
            with self._lock:
                if self._reflected is None:
                    self._reflected = self._load()
                state = self._reflected
        return state

    def _load(self) -> _Reflected:
        try:
            table = self._reflect()
        except sa.exc.NoSuchTableError:
            if not self._create:
                raise StoreError(
                    f"table {self.name!r} does not exist at {self._safe_url}; create it with "
                    "`wonkalytics init`, or let Wonkalytics create it (create_table=True)"
                ) from None
            self._create_default()
            table = self._reflect()
        auto = table.autoincrement_column
        dedupe_on = self._unique_column(table)
        filter_on = DEDUPE_COLUMN if dedupe_on is None and DEDUPE_COLUMN in table.c else None
        if filter_on is not None:
            logger.warning(
                "wonkalytics: table %r has an %s column without a unique index; retried batches are "
                "de-duplicated by a look-up, which is slower and not safe across processes. Add the index: "
                "`wonkalytics init --upgrade`", self.name, DEDUPE_COLUMN,
            )
        elif dedupe_on is None:
            logger.warning(
                "wonkalytics: table %r has no %s column, so a batch retried after a lost acknowledgement can "
                "be stored twice; `wonkalytics init --upgrade` adds it", self.name, DEDUPE_COLUMN,
            )
        return _Reflected(
            table=table,
            names=frozenset(c.name for c in table.columns),
            columns={c.name: column_kind(c.type) for c in table.columns if c is not auto},
            dedupe_on=dedupe_on,
            filter_on=filter_on,
            lengths={
                c.name: c.type.length for c in table.columns
                if isinstance(c.type, sa.String) and isinstance(c.type.length, int) and c.type.length > 0
            },
        )

    def _reflect(self) -> sa.Table:
        with self._errors("reflect"), statement_deadline(self.statement_timeout):
            return sa.Table(
                self._table_name,
                sa.MetaData(),
                schema=self._schema,
                autoload_with=self.engine,
                resolve_fks=False,
                listeners=[("column_reflect", on_column_reflect)],
            )

    def _unique_column(self, table: sa.Table) -> str | None:
        with self._errors("reflect"):
            return unique_column(table, DEDUPE_COLUMN, self.engine)

    # -- creating ----------------------------------------------------------------------------------

    def create_table(self) -> bool:
        """Create the default table (with its indexes) unless it exists; True when it was created."""
        created = self._create_default()
        if created:
            with self._lock:
                self._reflected = None
        return created

    def _create_default(self) -> bool:
        engine = self.engine
        with self._errors("create"), statement_deadline(self.statement_timeout):
            if sa.inspect(engine).has_table(self._table_name, schema=self._schema):
                return False
            try:
                default_table(self._table_name, schema=self._schema).create(engine, checkfirst=False)
            except sa.exc.DBAPIError:
                # Another process (or thread) may have created it since we looked: that is success.
                if sa.inspect(engine).has_table(self._table_name, schema=self._schema):
                    return False
                raise
            return True

    def ddl(self, dialect: str) -> str:
        """CREATE TABLE and CREATE INDEX statements of the default table, without connecting.

        ``dialect``: "sqlite", "postgresql", "mysql", "mariadb" or "mssql".

        >>> print(TableStore("sqlite://", "t").ddl("mssql").splitlines()[-1])
        CREATE UNIQUE INDEX ux_t_event_id ON t (event_id) WHERE event_id IS NOT NULL;
        """
        table = default_table(self._table_name, schema=self._schema)
        return "\n\n".join(f"{statement};" for statement in ddl_statements(table, dialect)) + "\n"

    # -- writing -----------------------------------------------------------------------------------

    def insert_many(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert rows in one transaction; returns how many were inserted (best effort).

        Consecutive rows with the same set of keys are one ``executemany``; rows are stored in the
        order given (a batch of alternating field sets is not regrouped). When the table
        has a unique ``event_id``, a row whose event_id already exists is skipped (retries are safe).
        Every key must be a column of the table (:class:`UnknownColumnError` otherwise, before any SQL).
        """
        if not rows:
            return 0
        state = self._state()
        groups: list[tuple[frozenset[str], list[dict[str, Any]]]] = []  # runs, in submission order
        for row in rows:
            keys = frozenset(row)
            # A plain dict is only read, never kept or changed, so it is not copied; another mapping is.
            row = row if type(row) is dict else dict(row)
            if groups and groups[-1][0] == keys:
                groups[-1][1].append(row)
                continue
            # Checked once per run of one key set, not per key of every row (37 look-ups a row of
            # the writer's rows).
            if not keys <= state.names:
                unknown = next(key for key in row if not isinstance(key, str) or key not in state.names)
                raise UnknownColumnError(str(unknown), self.name, state.names)
            groups.append((keys, [row]))

        def insert(conn: Connection) -> int:
            rolled = rollup_keeper.begin_insert(conn, state.table, rows, state.dedupe_on or state.filter_on)
            count = sum(
                self._insert_group(conn, state, self._plan(conn, state, keys), group)
                for keys, group in groups
            )
            if rolled is not None:
                rolled()  # the rollups of the rows that landed, in this transaction (store/rollup_keeper.py)
            return count

        try:
            return self._transaction("insert into", insert)
        except StoreError as exc:
            if vars(exc).get("schema_changed"):
                # The table (or a column) went away since we reflected it: look again on the retry.
                self.forget()
                exc.transient = True
            raise

    def _plan(self, conn: Connection, state: _Reflected, keys: frozenset[str]) -> InsertPlan:
        plan = state.plans.get(keys)
        if plan is None:  # two threads may both build it: harmless, the plans are equal
            plan = state.plans[keys] = insert_plan(state.table, keys, conn.dialect, state.dedupe_on)
        return plan

    def _existing(self, conn: Connection, column: sa.Column[Any], keys: set[Any]) -> set[Any]:
        existing: set[Any] = set()
        ordered = list(keys)
        for start in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[start : start + _IN_CHUNK]
            existing.update(conn.scalars(sa.select(column).where(column.in_(chunk))))
        return existing

    def _insert_group(
        self, conn: Connection, state: _Reflected, plan: InsertPlan, group: list[dict[str, Any]]
    ) -> int:
        if state.filter_on is not None and state.filter_on in group[0]:
            # No unique index to skip duplicates: leave out the ids the table holds already (a batch
            # retried after its COMMIT's acknowledgement was lost), in this same transaction.
            key = state.filter_on
            held = self._existing(conn, state.table.c[key], {r[key] for r in group if r[key] is not None})
            group = [row for row in group if row[key] is None or row[key] not in held]
            if not group:
                return 0
        if plan.bulk is not None and len(group) >= MIN_COPY_ROWS:
            return plan.bulk.run(conn, group)
        if plan.count == "preselect":
            assert state.dedupe_on is not None
            column = state.table.c[state.dedupe_on]
            keys = {row[state.dedupe_on] for row in group if row[state.dedupe_on] is not None}
            existing = self._existing(conn, column, keys)
            conn.execute(plan.statement, group)
            without_key = sum(1 for row in group if row[state.dedupe_on] is None)
            return without_key + len(keys - existing)
        if plan.positional is not None:
            result = conn.exec_driver_sql(plan.positional.sql, plan.positional.parameters(group))
        else:
            result = conn.execute(plan.statement, group)
        if plan.count == "returning":
            return len(result.all())
        if plan.count == "rowcount" and result.rowcount >= 0:
            return result.rowcount
        return len(group)

    def update_where(self, key_column: str, key_value: Any, column: str, value: Any) -> bool:
        """``UPDATE t SET column = :value WHERE key_column = :key``; True when a row matched.

        Both names must be columns of the table (:class:`UnknownColumnError` otherwise, before any
        SQL is built). Setting a value a row already has still counts as a match. A ``None`` key
        matches nothing (rather than every row whose key is NULL).

        >>> store.update_where("response_id", "chatcmpl-1", "score", 100)  # doctest: +SKIP
        True
        """
        self.check_columns([key_column, column])
        if key_value is None:
            return False
        statement = update_statement(self.table, key_column, key_value, column, value, table_name=self.name)
        # MySQL counts matched (not changed) rows because SQLAlchemy sets CLIENT_FOUND_ROWS.
        where = self.table.c[key_column] == key_value
        return self._transaction(
            "update", lambda conn: rollup_keeper.update_where(conn, self.table, statement, where, column) > 0)

    # -- reading (tests, CLI, sinks) ----------------------------------------------------------------

    def exists(self) -> bool:
        """True when the table exists now (asks the database; the reflection cache is not used)."""
        with self._errors("look for"), statement_deadline(self.statement_timeout):
            return sa.inspect(self.engine).has_table(self._table_name, schema=self._schema)

    def try_insert(self, row: Mapping[str, Any]) -> None:
        """INSERT one row in a transaction that is always rolled back (``doctor``'s write check).

        Raises :class:`StoreError` when the database refuses it (a read-only user).
        """
        self.check_columns(row)
        table = self.table
        with self._errors("insert into"), statement_deadline(self.statement_timeout), self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                conn.execute(sa.insert(table).values(dict(row)))
            finally:
                transaction.rollback()

    def lookup(self, key_column: str, key_value: Any, column: str) -> Any:
        """``SELECT column FROM t WHERE key_column = :key AND column IS NOT NULL LIMIT 1`` (or None).

        Both names must be columns of the table (:class:`UnknownColumnError` otherwise, before any SQL).
        """
        self.check_columns([key_column, column])
        table = self.table
        statement = (
            sa.select(table.c[column])
            .where(table.c[key_column] == sa.bindparam("key"), table.c[column].is_not(None))
            .limit(1)
        )
        with self._errors("read"), statement_deadline(self.statement_timeout), self.engine.connect() as conn:
            return conn.execute(statement, {"key": key_value}).scalar()

    def count(self) -> int:
        """Number of rows in the table."""
        table = self.table
        with self._errors("count rows of"), self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)

    def fetch_all(self, order_by: str | None = None) -> list[dict[str, Any]]:
        """Every row as a dict, ordered by ``order_by`` (a column) or else by the primary key."""
        table = self.table
        if order_by is not None:
            self.check_columns([order_by])
        order = [table.c[order_by]] if order_by is not None else list(table.primary_key.columns)
        with self._errors("read"), self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.select(table).order_by(*order))]

    # -- transactions and errors -------------------------------------------------------------------

    @contextmanager
    def one_transaction(self) -> Iterator[None]:
        """Every :meth:`insert_many` / :meth:`update_where` of this thread inside is one transaction.

        A sink's batch (inserts, an update, more inserts) lands whole or not at all: when a later
        statement fails, the earlier inserts are rolled back too, so the lane's retry cannot store them
        a second time on a table without ``event_id`` to tell them apart (issue 15, item 13). A
        deadlock inside is raised (the lane retries the batch) rather than rerun statement by statement.
        """
        if getattr(self._batch, "conn", None) is not None:
            yield
            return
        with self._errors("write to"), statement_deadline(self.statement_timeout), self.engine.begin() as conn:
            self._batch.conn = conn
            try:
                yield
            finally:
                self._batch.conn = None

    def _transaction(self, operation: str, work: Callable[[Connection], _T]) -> _T:
        """Run ``work`` in one transaction; rerun it when the database broke a deadlock by aborting it."""
        batch: Connection | None = getattr(self._batch, "conn", None)
        if batch is not None:
            with self._errors(operation):
                return work(batch)
        with self._errors(operation):
            for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
                try:
                    with statement_deadline(self.statement_timeout), self.engine.begin() as conn:
                        return work(conn)
                except sa.exc.DBAPIError as exc:
                    if attempt == _DEADLOCK_ATTEMPTS or not is_deadlock(exc):
                        raise
                # Jitter so the two victims of a deadlock do not collide again.
                time.sleep(random.uniform(*_DEADLOCK_JITTER) * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        """Turn database errors into :class:`StoreError` naming the operation, table and safe URL."""
        try:
            yield
        except WonkalyticsError:
            raise
        except sa.exc.NoSuchTableError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            error = store_error(f"{operation} table {self.name!r}", self.url, exc)
            if is_schema_changed(exc):
                vars(error)["schema_changed"] = True  # read by insert_many (the chain may be cut)
            # Chain the driver's error for debugging, unless its text could carry the password.
            if redact(str(exc), self.url) != str(exc):
                raise error from None
            raise error from exc


def update_statement(
    table: sa.Table,
    key_column: str,
    key_value: Any,
    column: str,
    value: Any,
    *,
    table_name: str | None = None,
) -> sa.Update:
    """The bound-parameter ``UPDATE table SET column = :value WHERE key_column = :key``.

    Both names are looked up among the table's columns; an unknown one raises
    :class:`UnknownColumnError` and no SQL is built from it.

    >>> from wonkalytics.store.schema import default_table
    >>> print(update_statement(default_table("t"), "response_id", "chatcmpl-1", "score", 5))
    UPDATE t SET score=:score WHERE t.response_id = :response_id_1
    """
    names = {c.name for c in table.columns}
    for name in (key_column, column):
        if not isinstance(name, str) or name not in names:
            raise UnknownColumnError(str(name), table_name or table.name, names)
    if key_value is None:  # `col == None` would compile to `col IS NULL` and touch every such row
        raise ValueError(f"no key value given for {key_column!r}: refusing to update rows where it is NULL")
    return sa.update(table).where(table.c[key_column] == key_value).values({table.c[column]: value})


def create_default_table(url: str | sa.URL, table: str) -> bool:
    """Create the default table at ``url`` unless it exists; True when created, False when already there.

    >>> create_default_table("sqlite:///analytics.db", "wonkalytics_interactions")  # doctest: +SKIP
    True
    """
    return TableStore(url, table, create=False).create_table()
