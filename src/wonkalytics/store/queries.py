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

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.store.engine import DEFAULT_CONNECT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT
from wonkalytics.store.filters import Filters
from wonkalytics.store.periods import Period, make_period, needs_quarters, parse_moment, rebucket
from wonkalytics.store.read_base import CATEGORY_FIELDS, FIELD_ALIASES
from wonkalytics.store.rollup_plan import score_bins, utc_days
from wonkalytics.store.rollup_reads import RollupReads
from wonkalytics.store.row_reads import SEARCH_COUNT_CAP, SORTABLE, Page, RowReads

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

QUANTILES = (0.5, 0.95)
_GROUPS_MAX = 1000


# --- the reader ----------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _integer(value: Any) -> int:
    return 0 if value is None else int(value)


class ReadStore(RowReads):
    """Read-only queries on one analytics table (reflected once, through the shared engine)."""

    def __init__(self, url: str | sa.URL, table: str, column_map: Mapping[str, str] | None = None, *,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT) -> None:
        super().__init__(url, table, column_map, connect_timeout=connect_timeout, statement_timeout=statement_timeout)
        self._rollups = RollupReads(self)

    def warm(self) -> None:
        """Do now what the first answer would do first: reflect the table, find its rollups and its
        search index (each once per reader; a fresh PostgreSQL process spends ~100 ms on them)."""
        self.table  # noqa: B018 - reflects
        self._rollups.found()
        self.search_index()

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

    def counts(self, period: Period, by: str, filters: Filters | None = None, *,
               limit: int = 50) -> list[dict[str, Any]]:
        """``{"value", "interactions"}`` per value of field ``by``, most interactions first (at most
        ``limit``): what a breakdown chart draws and a filter offers. From the rollups' sums where they
        answer (by user: the users tables), else one ``GROUP BY`` on the table; no users or percentiles."""
        group = self.require(by)
        limit = max(1, min(limit, _GROUPS_MAX))
        plan = self._rollups.plan(period, filters, by)
        ranked: list[tuple[Any, int]] | None = None
        if plan is not None:
            ranked = self._rollups.counts(plan, by, filters, limit=limit)
        elif group.name == getattr(self.column("username"), "name", None):
            ranked = self._rollups.user_counts(period, filters, limit=limit)
        if ranked is None:
            n = sa.func.count()
            query = (sa.select(group.label("value"), n.label("n")).where(*self.where(period, filters))
                     .group_by(group).order_by(n.desc(), group).limit(limit))
            with self.reading() as conn:
                ranked = [(row.value, int(row.n)) for row in conn.execute(query)]
        return [{"value": value, "interactions": n} for value, n in ranked]

    def values(self, period: Period, by: str, filters: Filters | None = None, *, limit: int = 100) -> list[Any]:
        """The values of field ``by`` in ``period``, most interactions first (the choices of a filter,
        :meth:`counts`: the interactions page's model list ~40 ms from the rollups' sums where
        :meth:`groups` with its distinct users per model took ~400 ms, PostgreSQL 1M rows)."""
        return [item["value"] for item in self.counts(period, by, filters, limit=limit)]

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
        # day rows only where a local day is a UTC day; other zones add UTC hours into their days and hours, or
        # quarter hours where the offset is not whole hours (Asia/Kolkata)
        plan = self._rollups.plan(period, filters, days=bucket == "day" and utc_days(period), hours=not quarters,
                                  signed=False)   # one row per bucket: nothing taken out
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
