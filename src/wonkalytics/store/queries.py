"""The read side: overview, breakdowns, time series, pages and exports of one analytics table.

>>> reader = ReadStore("sqlite:///wonkalytics.db", "wonkalytics_interactions")   # doctest: +SKIP
>>> reader.overview(make_period("7d"))["interactions"]                             # doctest: +SKIP
42

Rules every query here follows:

- **Aggregates are computed by the database** (``COUNT``/``SUM``/``AVG``/``GROUP BY``); Python only
  receives one row per group or per UTC hour, never the interactions themselves. Lists are pages with
  a bounded ``LIMIT``; exports are streamed.
- **Fields resolve to columns through** :func:`~wonkalytics.store.fit.resolve_column` (column map,
  exact, case-insensitive), the same rule as writes, so a team's own column names work. A field the
  table lacks reads as ``None`` (or 0 rows), never as an error -- except where the caller named it
  (``--by``, a filter, a sort), which raises :class:`~wonkalytics.errors.UnknownColumnError`.
- **Percentiles** (``p50``/``p95``, linear interpolation between the nearest ranks, as NumPy's
  default and SQL's ``percentile_cont``): PostgreSQL's ``percentile_cont`` aggregate; MariaDB's and
  SQL Server's ``percentile_cont`` window function (neither has the aggregate form); on SQLite and
  MySQL an exact rank query (``ROW_NUMBER`` over the sorted values picks the two neighbours).
- **Time buckets**: the database groups by UTC hour (by quarter hour when the time zone has a
  half-hour offset such as Asia/Kolkata), Python moves each bucket into the requested IANA zone and
  adds them up into local hours or days. Every dialect thus gets exact local days, across DST changes.
- **Events** (rows without ``model``) count in neither interactions nor groups.
- **Read-only**: PostgreSQL ``READ ONLY`` transactions, MySQL/MariaDB ``SET TRANSACTION READ ONLY``,
  SQLite ``PRAGMA query_only``. SQL Server has no per-transaction switch: use a login with only
  ``db_datareader`` (or ``ApplicationIntent=ReadOnly`` on a replica).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.errors import StoreError, UnknownColumnError, WonkalyticsError
from wonkalytics.store.engine import DEFAULT_CONNECT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT, safe_url
from wonkalytics.store.failures import store_error
from wonkalytics.store.filters import Filters
from wonkalytics.store.fit import column_index, resolve_column
from wonkalytics.store.periods import Period, make_period, needs_quarters, parse_moment, rebucket
from wonkalytics.store.read_table import reflect_for_reading
from wonkalytics.store.rollup_plan import score_bins, utc_days
from wonkalytics.store.rollup_reads import RollupReads
from wonkalytics.store.search import SEARCH_FIELDS, SearchIndex, detect, search_condition
from wonkalytics.store.sql import TableStore, parse_table_name

__all__ = [
    "CATEGORY_FIELDS",
    "FIELD_ALIASES",
    "SEARCH_COUNT_CAP",
    "SORTABLE",
    "Filters",
    "Page",
    "Period",
    "ReadStore",
    "make_period",
    "parse_moment",
]

FIELD_ALIASES = {"user": "username", "tenant": "tenant_id"}
"""Short names accepted wherever a field is named (``--by user``)."""

CATEGORY_FIELDS = ("model", "tenant_id", "username", "status", "language", "level", "tone", "response_type",
                   "position", "competence", "gender", "provider_type", "finish_reason", "action")
"""Fields worth a breakdown chart (few distinct values); a team's own short text columns are added."""

SORTABLE = ("timestamp", "model", "username", "tenant_id", "status", "score", "duration_ms", "ttft_ms",
            "total_tokens", "cost_usd")
"""Columns the interactions page can be sorted by."""

SEARCH_COUNT_CAP = 1000
"""The dashboard's text search counts matches up to this many, then says "1,000+" (``count_cap``).

A needle in 12 % of the rows (bench/search.py's common needle, 14k of the 7-day period's 115k rows)
had its page of 50 newest matches after a few hundred rows, but its exact count tested every row of
the period: the whole 0.3-0.5 s of the request. Stopping at 1,000 matches tests ~7 % of the rows. A
rare needle is counted exactly (fewer matches than the cap), and ``/api/interactions`` always is."""

QUANTILES = (0.5, 0.95)
_PAGE_SIZE_MAX = 500
_GROUPS_MAX = 1000
_SNIPPET = 160
# Long free-text columns of the default table: no breakdown, searched only by the text filter.
_FREE_TEXT = frozenset({"system_msg", "messages", "response", "error", "metadata", "tags", "summary", "notes",
                        "motivation_summary", "other_notes", "carreer_notes", "test_results", "fixed_test_results",
                        "free_test_results", "name", "email"})


# --- filters and pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of interactions: the rows (a few columns and text snippets), and the total that match."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    capped: bool = False
    """True when counting stopped at ``total``: at least that many rows match (see ``count_cap``)."""

    @property
    def pages(self) -> int:
        """How many pages the filter has (at least 1; at least this many when ``capped``)."""
        return max(1, -(-self.total // self.page_size))


# --- the reader ----------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _integer(value: Any) -> int:
    return 0 if value is None else int(value)


class ReadStore:
    """Read-only queries on one analytics table (reflected once, through the shared engine)."""

    def __init__(self, url: str | sa.URL, table: str, column_map: Mapping[str, str] | None = None, *,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT) -> None:
        self._store = TableStore(url, table, create=False, connect_timeout=connect_timeout,
                                 statement_timeout=statement_timeout)
        self.name = table
        self.column_map = dict(column_map or {})
        self._folded: dict[str, str] | None = None
        self._rollups = RollupReads(self)
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

    def warm(self) -> None:
        """Do now what the first answer would do first: reflect the table, find its rollups and its
        search index (each once per reader; a fresh PostgreSQL process spends ~100 ms on them)."""
        self.table  # noqa: B018 - reflects
        self._rollups.found()
        self.search_index()

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

    # -- aggregates -------------------------------------------------------------------------------

    def _metrics(self, *, distinct: bool = True) -> list[sa.Label[Any]]:
        col = self.column
        metrics: list[sa.Label[Any]] = [sa.func.count().label("interactions")]
        for key, name in (("users", "username"), ("tenants", "tenant_id")):
            c = col(name) if distinct else None
            metrics.append((sa.func.count(sa.distinct(c)) if c is not None else sa.null()).label(key))
        status = col("status")
        for value in ("ok", "error", "aborted"):
            counted = sa.func.sum(sa.case((status == value, 1), else_=0)) if status is not None else sa.null()
            metrics.append(counted.label(f"status_{value}"))
        score = col("score")
        metrics.append((sa.func.count(score) if score is not None else sa.null()).label("scored"))
        metrics.append((sa.func.avg(score) if score is not None else sa.null()).label("avg_score"))
        for name in ("prompt_tokens", "completion_tokens", "cost_usd"):
            c = col(name)
            metrics.append((sa.func.sum(c) if c is not None else sa.null()).label(name))
        return metrics

    @staticmethod
    def _shape(row: Mapping[str, Any] | sa.RowMapping, period: Period) -> dict[str, Any]:
        return {
            "since": period.since.isoformat(),
            "until": period.until.isoformat(),
            "interactions": _integer(row["interactions"]),
            "users": _integer(row["users"]),
            "tenants": _integer(row["tenants"]),
            "status": {s: _integer(row[f"status_{s}"]) for s in ("ok", "error", "aborted")},
            "scored": _integer(row["scored"]),
            "avg_score": _number(row["avg_score"]),
            "duration_ms": {"p50": None, "p95": None},
            "ttft_ms": {"p50": None, "p95": None},
            "prompt_tokens": _integer(row["prompt_tokens"]),
            "completion_tokens": _integer(row["completion_tokens"]),
            "cost_usd": _number(row["cost_usd"]),
        }

    def overview(self, period: Period, filters: Filters | None = None, *, medians: bool = True) -> dict[str, Any]:
        """The ``stats --json`` / ``/api/overview`` object of ``period`` (the contract's keys).

        ``medians=False`` leaves the p50s out (None) where they cost a query of their own (SQLite,
        MySQL): the dashboard's "change against the previous period" needs only the p95s. From the
        rollups (store/rollup_reads.py) the percentiles come from sketches: ``approx`` names them.
        """
        plan = self._rollups.plan(period, filters)
        if plan is not None:
            return self._rollups.overview(period, plan, filters)
        where = self.where(period, filters)
        metrics = self._metrics(distinct=False)
        inline = self.dialect == "postgresql"  # percentile_cont is an aggregate there: one scan (measured faster)
        if inline:
            for name in ("duration_ms", "ttft_ms"):
                column = self.column(name)
                if column is not None:
                    metrics += [sa.func.percentile_cont(q).within_group(column.asc()).label(f"{name}_q{i}")
                                for i, q in enumerate(QUANTILES)]
        with self.reading() as conn:
            row = conn.execute(sa.select(*metrics).where(*where)).mappings().one()
            result = self._shape(row, period)
            for key, name in (("users", "username"), ("tenants", "tenant_id")):
                column = self.column(name)
                if column is not None:
                    result[key] = _count_distinct(conn, column, where)
            for name in ("duration_ms", "ttft_ms"):
                if inline:
                    if f"{name}_q0" in row:
                        result[name] = {"p50": _number(row[f"{name}_q0"]), "p95": _number(row[f"{name}_q1"])}
                    continue
                result[name] = self._percentiles(conn, name, where, None, medians=medians).get(None, result[name])
        return result

    def overviews(self, periods: Sequence[tuple[Period, bool]], filters: Filters | None = None) -> list[dict[str, Any]]:
        """:meth:`overview` of each ``(period, medians)``, in one read-only transaction (one snapshot)."""
        with self.reading():
            return [self.overview(period, filters, medians=medians) for period, medians in periods]

    def groups(self, period: Period, by: str, filters: Filters | None = None, *, limit: int = 50,
               percentiles: bool = True) -> list[dict[str, Any]]:
        """The overview per value of field ``by``, largest first (at most ``limit`` groups)."""
        group = self.require(by)
        limit = max(1, min(limit, _GROUPS_MAX))
        plan = self._rollups.plan(period, filters, by)
        if plan is not None:
            return self._rollups.groups(period, plan, by, filters, limit=limit, percentiles=percentiles)
        where = self.where(period, filters)
        query = (sa.select(group.label("value"), *self._metrics()).where(*where).group_by(group)
                 .order_by(sa.desc("interactions"), group).limit(limit))
        with self.reading() as conn:
            rows = conn.execute(query).mappings().all()
            shaped = [{**self._shape(r, period), "value": r["value"]} for r in rows]
            if percentiles and shaped:
                for name in ("duration_ms", "ttft_ms"):
                    found = self._percentiles(conn, name, where, group)
                    for item in shaped:
                        item[name] = found.get(item["value"], item[name])
        return shaped

    def distinct_users(self, conn: Connection, period: Period, filters: Filters | None, *,
                       by: str | None = None) -> dict[Any, int]:
        """Distinct users of ``period`` per value of field ``by`` (key None without), counted on the table."""
        user = self.column("username")
        if user is None:
            return {}
        group = self.require(by) if by is not None else None
        if group is None:
            return {None: _count_distinct(conn, user, self.where(period, filters))}
        where = [*self.where(period, filters), user.is_not(None)]
        query = sa.select(group.label("g"), sa.func.count(sa.distinct(user)).label("n")).where(*where).group_by(group)
        return {r["g"]: int(r["n"]) for r in conn.execute(query).mappings()}

    def _percentiles(self, conn: Connection, name: str, where: Sequence[sa.ColumnElement[bool]],
                     group: sa.Column[Any] | None, *, medians: bool = True) -> dict[Any, dict[str, float | None]]:
        """p50/p95 of column ``name`` per value of ``group`` (key None without a group)."""
        column = self.column(name)
        if column is None:
            return {}
        dialect = self.dialect
        if dialect == "postgresql":
            cols = [sa.func.percentile_cont(q).within_group(column.asc()).label(f"q{i}")
                    for i, q in enumerate(QUANTILES)]
            query = sa.select(*([group.label("g")] if group is not None else []), *cols).where(*where)
            rows = conn.execute(query.group_by(group) if group is not None else query).mappings().all()
            return {(r["g"] if group is not None else None): {"p50": _number(r["q0"]), "p95": _number(r["q1"])}
                    for r in rows}
        if dialect in ("mariadb", "mssql"):
            return self._window_percentiles(conn, column, where, group)
        if group is None:
            return {None: self._offset_percentiles(conn, column, where, medians=medians)}
        return self._rank_percentiles(conn, column, where, group)

    @staticmethod
    def _offset_percentiles(conn: Connection, column: sa.Column[Any], where: Sequence[sa.ColumnElement[bool]], *,
                            medians: bool = True) -> dict[str, float | None]:
        # Exact, without a window: count the values, then fetch the two neighbours of rank h = (n-1)q
        # with ORDER BY ... LIMIT 2 OFFSET. The database keeps only OFFSET+2 values while it scans, so
        # the high quantile is read from the top (DESC, a small offset): on SQLite with 1M rows this is
        # ~4x faster than ranking every value with ROW_NUMBER() (bench/read_side.py).
        present = [*where, column.is_not(None)]
        n = int(conn.execute(sa.select(sa.func.count(column)).where(*present)).scalar_one())
        if n == 0:
            return {"p50": None, "p95": None}
        found: dict[str, float | None] = {"p50": None, "p95": None}
        for key, q in zip(("p50", "p95"), QUANTILES, strict=True):
            if key == "p50" and not medians:
                continue
            h = (n - 1) * q
            low = int(h)
            if q <= 0.5:
                values = [float(v) for v in conn.execute(sa.select(column).where(*present).order_by(column.asc())
                                                         .limit(2).offset(low)).scalars()]
            else:  # from the top: ascending ranks low+1 and low are descending ranks n-2-low and n-1-low
                top = max(n - 2 - low, 0)
                values = sorted(float(v) for v in conn.execute(sa.select(column).where(*present)
                                                               .order_by(column.desc()).limit(2).offset(top)).scalars())
                if low == n - 1:
                    values = values[-1:]
            lo_value = values[0]
            hi_value = values[1] if len(values) > 1 else lo_value
            found[key] = lo_value + (h - low) * (hi_value - lo_value)
        return found

    @staticmethod
    def _window_percentiles(conn: Connection, column: sa.Column[Any], where: Sequence[sa.ColumnElement[bool]],
                            group: sa.Column[Any] | None) -> dict[Any, dict[str, float | None]]:
        rows = conn.execute(window_percentile_query(column, where, group)).mappings().all()
        return {(r["g"] if group is not None else None): {"p50": _number(r["q0"]), "p95": _number(r["q1"])}
                for r in rows}

    def _rank_percentiles(self, conn: Connection, column: sa.Column[Any], where: Sequence[sa.ColumnElement[bool]],
                          group: sa.Column[Any] | None) -> dict[Any, dict[str, float | None]]:
        # Exact: rank the values (0-based) per group; the q-th percentile lies at rank h = (n-1)q,
        # between the values at ranks floor(h) and floor(h)+1. The database picks those two values
        # (one grouped row per group); Python interpolates between them.
        partition = [group] if group is not None else []
        inner = sa.select(
            *([group.label("g")] if group is not None else []),
            column.label("x"),
            (sa.func.row_number().over(partition_by=partition, order_by=column.asc()) - 1).label("rn"),
            sa.func.count().over(partition_by=partition).label("n"),
        ).where(*where, column.is_not(None)).subquery()
        picks: list[sa.Label[Any]] = []
        for i, q in enumerate(QUANTILES):
            h = sa.cast(inner.c.n - 1, sa.Float) * q
            lo = sa.cast(h, sa.Integer) if self.dialect == "sqlite" else sa.func.floor(h)  # h >= 0: CAST truncates
            picks += [sa.func.max(sa.case((inner.c.rn == lo, inner.c.x))).label(f"lo{i}"),
                      sa.func.max(sa.case((inner.c.rn == lo + 1, inner.c.x))).label(f"hi{i}"),
                      sa.func.max(h - lo).label(f"f{i}")]
        query = sa.select(*([inner.c.g] if group is not None else []), *picks)
        if group is not None:
            query = query.group_by(inner.c.g)
        found: dict[Any, dict[str, float | None]] = {}
        for r in conn.execute(query).mappings():
            values: list[float | None] = []
            for i in range(len(QUANTILES)):
                low, high, frac = _number(r[f"lo{i}"]), _number(r[f"hi{i}"]), _number(r[f"f{i}"]) or 0.0
                values.append(None if low is None else low + frac * ((high if high is not None else low) - low))
            found[r["g"] if group is not None else None] = {"p50": values[0], "p95": values[1]}
        return found

    # -- time series ------------------------------------------------------------------------------

    def timeseries(self, period: Period, filters: Filters | None = None, *,
                   bucket: str = "auto") -> list[dict[str, Any]]:
        """Additive totals per local hour or day of ``period`` (``bucket``: ``hour``, ``day`` or ``auto``:
        hours up to 3 days, else days). Every bucket of the period is present, empty ones with zeros."""
        if bucket == "auto":
            bucket = "hour" if period.until - period.since <= timedelta(days=3) else "day"
        if bucket not in ("hour", "day"):
            raise ValueError(f"bucket must be 'hour', 'day' or 'auto', not {bucket!r}")
        quarters = needs_quarters(period)
        # day rows only where a local day is a UTC day; other zones add quarter hours into their days
        plan = self._rollups.plan(period, filters, days=bucket == "day" and utc_days(period))
        if plan is None:
            return rebucket(self._series_rows(period, filters, quarters), period, bucket)
        rows = self._rollups.timeseries_rows(plan)
        for edge in plan.edges:
            rows += self._series_rows(edge, filters, quarters)
        return rebucket(rows, period, bucket)

    def _series_rows(self, period: Period, filters: Filters | None, quarters: bool) -> list[Any]:
        """The table's sums of ``period`` per UTC hour (or quarter hour) for :func:`rebucket`."""
        timestamp = self.require("timestamp")
        hour = utc_hour(timestamp, self.dialect).label("utc_hour")
        keys: list[sa.ColumnElement[Any]] = [hour]
        if quarters:
            minute = sa.extract("minute", timestamp)
            keys.append((minute - minute % 15).label("quarter"))
        col = self.column
        status, score, duration, cost = col("status"), col("score"), col("duration_ms"), col("cost_usd")
        sums: list[sa.Label[Any]] = [sa.func.count().label("interactions")]
        for value in ("error", "aborted"):
            sums.append((sa.func.sum(sa.case((status == value, 1), else_=0)) if status is not None
                         else sa.null()).label(value))
        for key, expr in (("prompt_tokens", col("prompt_tokens")), ("completion_tokens", col("completion_tokens")),
                          ("cost_usd", cost), ("score_sum", score), ("duration_sum", duration)):
            sums.append((sa.func.sum(expr) if expr is not None else sa.null()).label(key))
        for key, expr in (("scored", score), ("priced", cost), ("timed", duration)):
            sums.append((sa.func.count(expr) if expr is not None else sa.null()).label(key))
        query = sa.select(*keys, *sums).where(*self.where(period, filters)).group_by(*keys)
        with self.reading() as conn:
            return list(conn.execute(query).mappings().all())

    # -- score distribution -----------------------------------------------------------------------

    def score_distribution(self, period: Period, filters: Filters | None = None, *,
                           bins: int = 10) -> list[dict[str, Any]]:
        """Scored interactions per score range: ``[{"low", "high", "count"}]`` (``bins`` equal ranges)."""
        score = self.column("score")
        if score is None:
            return []
        plan = self._rollups.plan(period, filters)
        if plan is not None:
            return score_bins(self._rollups.scores(plan, filters), bins)
        where = self.where(period, filters)
        with self.reading() as conn:
            low, high = conn.execute(sa.select(sa.func.min(score), sa.func.max(score)).where(*where)).one()
            if low is None:
                return []
            low, high = float(low), float(high)
            if high == low:
                count = conn.execute(sa.select(sa.func.count(score)).where(*where)).scalar_one()
                return [{"low": low, "high": high, "count": int(count)}]
            width = (high - low) / bins
            offset = (score - low) / width
            index = (sa.cast(offset, sa.Integer) if self.dialect == "sqlite" else sa.func.floor(offset)).label("i")
            query = sa.select(index, sa.func.count().label("n")).where(*where, score.is_not(None)).group_by(index)
            counts = [0] * bins
            for i, n in conn.execute(query):
                counts[min(int(i), bins - 1)] += int(n)  # the maximum itself falls into the last range
        return [{"low": low + i * width, "high": low + (i + 1) * width, "count": n} for i, n in enumerate(counts)]

    # -- rows -------------------------------------------------------------------------------------

    def _snippet(self, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
        if self.dialect == "mssql":  # SQL Server has no SUBSTR; the others all have it
            return sa.func.substring(column, 1, _SNIPPET)
        return sa.func.substr(column, 1, _SNIPPET)

    def interactions(self, period: Period, filters: Filters | None = None, *, sort: str = "timestamp",
                     descending: bool = True, page: int = 1, page_size: int = 50,
                     count_cap: int | None = None) -> Page:
        """One page of interactions (newest first by default): list columns and text snippets.

        ``count_cap``: count the matching rows only up to this many (at least up to the end of this
        page); past it the page says ``capped`` and "N+" (the dashboard's text search, where the exact
        count of a common needle is a scan of the whole period: :data:`SEARCH_COUNT_CAP`).
        """
        if sort not in SORTABLE:
            raise ValueError(f"cannot sort by {sort!r}; choose one of: {', '.join(SORTABLE)}")
        page, page_size = max(1, page), max(1, min(page_size, _PAGE_SIZE_MAX))
        order_column = self.require(sort)
        key = self.key_column()
        shown = ["timestamp", "model", "username", "tenant_id", "status", "score", "duration_ms", "ttft_ms",
                 "prompt_tokens", "completion_tokens", "cost_usd"]
        columns: list[sa.ColumnElement[Any]] = [c.label(n) for n in shown if (c := self.column(n)) is not None]
        for name in ("messages", "response"):
            c = self.column(name)
            if c is not None:
                columns.append(self._snippet(c).label(name))
        if key is not None:
            columns.insert(0, key.label("key"))
        where = self.where(period, filters)
        # Rows without a value last in both directions (NULLS LAST is not portable: MySQL, SQL Server);
        # the period's range already excludes a NULL timestamp, and without the CASE the index gives the order.
        order = [order_column.desc() if descending else order_column.asc()]
        if sort != "timestamp":
            order.insert(0, sa.case((order_column.is_(None), 1), else_=0).asc())
        if key is not None and key is not order_column:
            order.append(key.desc() if descending else key.asc())
        query = (sa.select(*columns).where(*where).order_by(*order)
                 .limit(page_size).offset((page - 1) * page_size))
        counted: sa.Select[Any] = sa.select(sa.func.count()).where(*where).select_from(self.table)
        limit = None if count_cap is None else max(count_cap, page * page_size)
        if limit is not None:   # the database stops at the (limit+1)-th match instead of testing every row
            matches = sa.select(sa.literal(1).label("one")).select_from(self.table).where(*where).limit(limit + 1)
            counted = sa.select(sa.func.count()).select_from(matches.subquery())
        with self.reading() as conn:
            total = int(conn.execute(counted).scalar_one())
            rows = [dict(r) for r in conn.execute(query).mappings()]
        capped = limit is not None and total > limit
        return Page(rows=rows, total=min(total, limit) if capped and limit is not None else total, page=page,
                    page_size=page_size, capped=capped)

    def interaction(self, key: str) -> dict[str, Any] | None:
        """Every column of the row named ``key`` (see :meth:`key_column`), or None when there is none."""
        column = self.key_column()
        if column is None:
            return None
        value: Any = key
        if isinstance(column.type, sa.Integer):
            try:
                value = int(key)
            except ValueError:
                return None
        with self.reading() as conn:
            row = conn.execute(sa.select(self.table).where(column == value).limit(1)).mappings().first()
        return None if row is None else dict(row)

    def iter_rows(self, period: Period, filters: Filters | None = None, *, events: bool = True,
                  batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every row of ``period`` (events too, unless ``events`` is false), streamed in ``batch``-sized
        fetches from a server-side cursor: memory stays constant however many rows there are."""
        query = sa.select(self.table).where(*self.where(period, filters, events=events))
        key = self.key_column()
        query = query.order_by(self.require("timestamp"), *([key] if key is not None else []))
        with self.reading() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
            for row in result.mappings():
                yield dict(row)


def _count_distinct(conn: Connection, column: sa.Column[Any], where: Sequence[sa.ColumnElement[bool]]) -> int:
    """The number of distinct non-NULL values of ``column`` where ``where`` holds."""
    # COUNT(DISTINCT) inside the aggregate sorts and stops PostgreSQL's parallel scan; a DISTINCT
    # subquery hashes in parallel: 345 -> 58 ms on 115k rows (bench/read_side.py).
    values = sa.select(column).where(*where, column.is_not(None)).distinct().subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(values)).scalar_one())


def window_percentile_query(column: sa.Column[Any], where: Sequence[sa.ColumnElement[bool]],
                            group: sa.Column[Any] | None) -> sa.Select[Any]:
    """p50/p95 of ``column`` (per ``group``) for MariaDB and SQL Server, which have ``percentile_cont``
    only as a window function: one value per row of the partition, collapsed with MAX() per group."""
    partition = [group] if group is not None else []
    inner = sa.select(
        *([group.label("g")] if group is not None else []),
        *[sa.func.percentile_cont(q).within_group(column.asc()).over(partition_by=partition).label(f"q{i}")
          for i, q in enumerate(QUANTILES)],
    ).where(*where, column.is_not(None)).subquery()
    outer = sa.select(*([inner.c.g] if group is not None else []),
                      sa.func.max(inner.c.q0).label("q0"), sa.func.max(inner.c.q1).label("q1"))
    return outer.group_by(inner.c.g) if group is not None else outer


def utc_hour(timestamp: sa.Column[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The UTC hour of a naive-UTC ``timestamp`` column, as the database computes it."""
    if dialect == "postgresql":
        return sa.func.date_trunc("hour", timestamp)
    if dialect in ("mysql", "mariadb"):
        return sa.func.date_format(timestamp, "%Y-%m-%d %H:00:00")
    if dialect == "mssql":
        hour: sa.ColumnElement[Any] = sa.literal_column("hour")
        return sa.func.dateadd(hour, sa.func.datediff(hour, 0, timestamp), 0)
    return sa.func.strftime("%Y-%m-%d %H:00:00", timestamp)
