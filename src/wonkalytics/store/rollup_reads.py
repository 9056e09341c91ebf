"""The read side from the rollups: whole quarter hours from ``<table>_rollup``, the partial edges from the table.

:class:`~wonkalytics.store.queries.ReadStore` asks :meth:`RollupReads.plan` first; when it answers a
:class:`Plan`, the overview, breakdowns, time series and score distribution are computed here:

- **Whole buckets** ``[first, last)`` (the UTC quarter hours entirely inside the period) are read
  from ``<table>_rollup``: counts, token and cost sums with ``SUM`` in the database (exact), the score
  histograms and duration / TTFT sketches merged in Python (percentiles within
  :data:`~wonkalytics.store.sketch.ALPHA`, reported under ``approx``).
- **The edges** ``[since, first)`` and ``[last, until)`` (less than a quarter hour each) are read from
  the table row by row and aggregated with the very code that builds the rollups
  (:meth:`~wonkalytics.store.rollups.Rollup.aggregate`), so both halves add up exactly.
- **Distinct users** of the whole buckets come from ``<table>_rollup_users`` (exact); with a filter
  or per group (which that table is not keyed by) from the table, as before.

Falls back to the table (``plan`` answers None) when the rollup tables are absent (a team table
before ``wonkalytics init --upgrade``), when a filter or a breakdown names something the rollups are
not keyed by (text search, score range, a user, an app field outside ``rollup_fields``), or when the
column map resolves a rolled-up field to another column than the writer's hook does (its rollups
would then not be the table's). Local days stay exact because the buckets are quarter hours (see
:mod:`wonkalytics.store.periods`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.errors import WonkalyticsError
from wonkalytics.store.periods import Period
from wonkalytics.store.rollups import _KNOWN, BUCKET, DIMENSIONS, Aggregate, Rollup, bucket_of, rollup_tables
from wonkalytics.store.sketch import ALPHA, Sketch

if TYPE_CHECKING:
    from wonkalytics.store.queries import Filters, ReadStore

__all__ = ["APPROX", "Plan", "RollupReads", "quarter_ceil"]

APPROX = {"duration_ms": ALPHA, "ttft_ms": ALPHA}
"""The ``approx`` entry of an answer whose percentiles come from sketches: figure -> relative error."""

_RECHECK = 60.0  # seconds before a table without rollup tables is probed again (init --upgrade meanwhile)
_SKETCHES = ("duration_sketch", "ttft_sketch")
_SUMMED = ("interactions", "errors", "aborted", "prompt_tokens", "completion_tokens", "priced", "scored", "timed",
           "cost_usd", "score_sum", "duration_sum")


def quarter_ceil(moment: datetime) -> datetime:
    """The first quarter-hour boundary at or after naive-UTC ``moment``."""
    low = bucket_of(moment)
    return low if low == moment else low + BUCKET


@dataclass(frozen=True)
class Plan:
    """How one answer is split: whole buckets ``[first, last)`` (naive UTC) and the edge periods."""

    first: datetime
    last: datetime
    edges: tuple[Period, ...]
    conditions: tuple[sa.ColumnElement[bool], ...]   # the filters on ``<table>_rollup``'s columns
    filtered: bool


@dataclass
class _Totals:
    """The figures of one group (or of the whole period) while whole buckets and edges are added up."""

    sums: dict[str, float]
    ok: int = 0
    tenants: set[Any] | None = None
    duration: Sketch | None = None
    ttft: Sketch | None = None

    @classmethod
    def empty(cls) -> _Totals:
        return cls(dict.fromkeys(_SUMMED, 0.0), 0, set(), Sketch(), Sketch())

    def add_sums(self, status: Any, tenant: Any, values: Mapping[str, Any] | sa.RowMapping) -> None:
        """Add one group's :data:`_SUMMED` figures (a rollup row's sums, or an edge aggregate's values)."""
        for name in _SUMMED:
            self.sums[name] += float(values.get(name) or 0)
        if status == "ok":
            self.ok += int(values["interactions"] or 0)
        if self.tenants is not None and tenant is not None:
            self.tenants.add(tenant)

    def add_aggregate(self, status: Any, tenant: Any, agg: Aggregate) -> None:
        self.add_sums(status, tenant, agg.values())
        if self.duration is not None:
            self.duration.merge(agg.duration)
        if self.ttft is not None:
            self.ttft.merge(agg.ttft)

    def shape(self, period: Period, users: int) -> dict[str, Any]:
        s = self.sums
        scored = int(s["scored"])
        result: dict[str, Any] = {
            "since": period.since.isoformat(), "until": period.until.isoformat(),
            "interactions": int(s["interactions"]), "users": users, "tenants": len(self.tenants or ()),
            "status": {"ok": self.ok, "error": int(s["errors"]), "aborted": int(s["aborted"])},
            "scored": scored, "avg_score": s["score_sum"] / scored if scored else None,
            "duration_ms": {"p50": None, "p95": None}, "ttft_ms": {"p50": None, "p95": None},
            "prompt_tokens": int(s["prompt_tokens"]), "completion_tokens": int(s["completion_tokens"]),
            "cost_usd": s["cost_usd"] if s["priced"] else None,
        }
        for name, sketch in (("duration_ms", self.duration), ("ttft_ms", self.ttft)):
            if sketch is not None and sketch.count:
                result[name] = {"p50": sketch.quantile(0.5), "p95": sketch.quantile(0.95)}
        result["approx"] = dict(APPROX)
        return result


class RollupReads:
    """The rollup half of one :class:`~wonkalytics.store.queries.ReadStore` (probed once, re-probed when absent)."""

    def __init__(self, reader: ReadStore) -> None:
        self._reader = reader
        self._found: tuple[sa.Table, sa.Table, Rollup] | None = None
        self._checked = -_RECHECK

    # -- what can be answered -----------------------------------------------------------------------

    def tables(self) -> tuple[sa.Table, sa.Table, Rollup] | None:
        """``(<table>_rollup, <table>_rollup_users, Rollup)`` when the rollups exist and match the table."""
        if self._found is not None or time.monotonic() - self._checked < _RECHECK:
            return self._found
        self._checked = time.monotonic()
        reader = self._reader
        table = reader.table
        probe = sa.select(sa.text("*")).select_from(sa.table(f"{table.name}_rollup", schema=table.schema))
        try:
            with reader.reading() as conn, conn.begin_nested():
                names = list(conn.execute(probe.where(sa.false())).keys())
        except (WonkalyticsError, sa.exc.SQLAlchemyError):   # no rollup table (reading() wraps the error)
            return None
        fields = tuple(n for n in names if n not in _KNOWN)
        try:
            ours = Rollup(table, reader.column_map, fields)
            writers = Rollup(table, None, fields)   # what the writer's hook resolves (store/rollups.keeper_for)
        except ValueError:
            return None
        if {n: c.name for n, c in ours.columns.items()} != {n: c.name for n, c in writers.columns.items()}:
            return None   # the column map points a rolled-up field elsewhere: the writer keeps other figures
        rollup, users = rollup_tables(table.name, table.schema, fields)
        self._found = (rollup, users, ours)
        return self._found

    def _rollup_column(self, rollup: sa.Table, keeper: Rollup, name: str) -> sa.Column[Any] | None:
        """The ``<table>_rollup`` column of field ``name`` (by the table column both resolve to), or None."""
        column = self._reader.column(name)
        if column is None:
            return None
        for field in (*DIMENSIONS, *keeper.fields):
            mine = keeper.columns.get(field)
            if mine is not None and mine.name == column.name:
                return rollup.c[field]
        return None

    def plan(self, period: Period, filters: Filters | None, by: str | None = None) -> Plan | None:
        """How to answer ``period`` / ``filters`` (/ a breakdown ``by``) from the rollups; None: read the table."""
        found = self.tables()
        if found is None:
            return None
        rollup, _, keeper = found
        if filters is not None and (filters.text or filters.user or filters.score_min is not None
                                    or filters.score_max is not None):
            return None
        if by is not None and self._rollup_column(rollup, keeper, by) is None:
            return None
        conditions: list[sa.ColumnElement[bool]] = []
        f = filters
        named = [] if f is None else [("model", f.model), ("tenant_id", f.tenant), ("status", f.status),
                                      *f.fields.items()]
        for name, value in named:
            if value in (None, ""):
                continue
            column = self._rollup_column(rollup, keeper, name)
            if column is None:
                if self._reader.column(name) is None:
                    self._reader.require(name)  # the caller named a field the table lacks: say so
                return None
            conditions.append(column == value)
        since, until = period.utc_bounds
        first, last = quarter_ceil(since), bucket_of(until)
        if first >= last:
            return None   # not one whole quarter hour: the table answers at once
        edges = []
        if since < first:
            edges.append(Period(period.since, first.replace(tzinfo=UTC).astimezone(period.tz), period.tz))
        if last < until:
            edges.append(Period(last.replace(tzinfo=UTC).astimezone(period.tz), period.until, period.tz))
        return Plan(first, last, tuple(edges), tuple(conditions), bool(conditions))

    # -- pieces ------------------------------------------------------------------------------------

    def _range(self, rollup: sa.Table, plan: Plan) -> list[sa.ColumnElement[bool]]:
        return [rollup.c.bucket >= plan.first, rollup.c.bucket < plan.last, *plan.conditions]

    def _edge_rows(self, conn: Connection, keeper: Rollup, plan: Plan, filters: Filters | None
                   ) -> tuple[dict[str, tuple[datetime, tuple[Any, ...], Aggregate]], dict[tuple[datetime, str], int]]:
        """The edges' rows, aggregated exactly as the rollups aggregate them (less than 2 quarter hours)."""
        rows: list[dict[str, Any]] = []
        for edge in plan.edges:
            query = keeper.select_rows().where(*self._reader.where(edge, filters))
            rows += [dict(r) for r in conn.execute(query).mappings()]
        return keeper.aggregate(rows)

    def _users(self, conn: Connection, users: sa.Table, plan: Plan, edge_users: set[str]) -> int:
        """Distinct users of the whole buckets (``<table>_rollup_users``) and the edges, exactly."""
        where = [users.c.bucket >= plan.first, users.c.bucket < plan.last]
        inner = sa.select(users.c.username).where(*where).distinct().subquery()
        count = int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar_one())
        if edge_users:
            names = sorted(edge_users)
            seen: set[str] = set()
            for start in range(0, len(names), 500):
                chunk = names[start:start + 500]
                seen.update(conn.scalars(sa.select(users.c.username).where(*where, users.c.username.in_(chunk))
                                         .distinct()))
            count += len(edge_users - seen)
        return count

    def _grouped(self, conn: Connection, rollup: sa.Table, plan: Plan,
                 keys: Sequence[sa.ColumnElement[Any]]) -> list[sa.RowMapping]:
        sums = [sa.func.sum(rollup.c[n]).label(n) for n in _SUMMED]
        query = sa.select(*keys, *sums).where(*self._range(rollup, plan)).group_by(*keys)
        return list(conn.execute(query).mappings())

    def _merged_here(self, conn: Connection, rollup: sa.Table, plan: Plan, group: sa.Column[Any] | None
                     ) -> dict[tuple[Any, str], Sketch]:
        """The whole buckets' sketches per group, fetched as texts and merged in Python."""
        gkey = [group.label("g")] if group is not None else []
        query = sa.select(*gkey, rollup.c.duration_sketch, rollup.c.ttft_sketch).where(
            *self._range(rollup, plan), rollup.c.timed > 0)
        texts: dict[tuple[Any, str], list[str | None]] = {}
        for row in conn.execute(query).mappings():
            value = row["g"] if group is not None else None
            for name in _SKETCHES:
                texts.setdefault((value, name), []).append(row[name])
        merged: dict[tuple[Any, str], Sketch] = {}
        for key, found in texts.items():
            merged[key] = Sketch()
            merged[key].merge_texts(found)
        return merged

    # -- answers -----------------------------------------------------------------------------------

    def totals(self, conn: Connection, plan: Plan, filters: Filters | None, by: str | None, *,
               percentiles: bool) -> tuple[dict[Any, _Totals], set[str]]:
        """Figures per value of ``by`` (key None without), whole buckets and edges added up; the edges' users."""
        found = self.tables()
        assert found is not None
        rollup, _, keeper = found
        group = self._rollup_column(rollup, keeper, by) if by is not None else None
        field = group.name if group is not None else None
        status, tenant = rollup.c.status, rollup.c.tenant_id
        keys: list[sa.ColumnElement[Any]] = [status, tenant]
        if group is not None and group.name not in ("status", "tenant_id"):
            keys.insert(0, group)
        out: dict[Any, _Totals] = {}

        def slot(value: Any) -> _Totals:
            if value not in out:
                out[value] = _Totals.empty()
                if not percentiles:
                    out[value].duration = out[value].ttft = None
            return out[value]

        for row in self._grouped(conn, rollup, plan, keys):
            slot(row[field] if field is not None else None).add_sums(row["status"], row["tenant_id"], row)
        if percentiles:
            # Merged in Python: PostgreSQL unnesting the texts and summing per bucket key was measured only
            # ~15 % faster (1M rows, 83k rollup rows in 7 days: 220-270 vs 270-340 ms), not worth a second path.
            merged = self._merged_here(conn, rollup, plan, group)
            for (value, name), sketch in merged.items():
                t = slot(value)
                target = t.duration if name == "duration_sketch" else t.ttft
                assert target is not None
                target.merge(sketch)
        groups, edge_users = self._edge_rows(conn, keeper, plan, filters)
        names = (*DIMENSIONS, *keeper.fields)
        for _bucket, dims, agg in groups.values():
            values = dict(zip(names, dims, strict=True))
            slot(values[field] if field is not None else None).add_aggregate(values["status"], values["tenant_id"],
                                                                              agg)
        return out, {u for (_, u), n in edge_users.items() if n > 0}

    def overview(self, period: Period, plan: Plan, filters: Filters | None) -> dict[str, Any]:
        """The ``stats --json`` object of ``period`` from the rollups (``approx``: the sketch figures)."""
        found = self.tables()
        assert found is not None
        users_table = found[1]
        with self._reader.reading() as conn:
            found_totals, edge_users = self.totals(conn, plan, filters, None, percentiles=True)
            totals = found_totals.get(None, _Totals.empty())
            if plan.filtered:   # <table>_rollup_users is not keyed by model/tenant/status: the table counts
                users = self._reader.distinct_users(conn, period, filters).get(None, 0)
            else:
                users = self._users(conn, users_table, plan, edge_users)
        return totals.shape(period, users)

    def groups(self, period: Period, plan: Plan, by: str, filters: Filters | None, *, limit: int,
               percentiles: bool) -> list[dict[str, Any]]:
        """The overview per value of ``by``, largest first; distinct users per group from the table."""
        with self._reader.reading() as conn:
            totals, _ = self.totals(conn, plan, filters, by, percentiles=percentiles)
            ranked = sorted(totals.items(), key=lambda kv: (-kv[1].sums["interactions"], _order(kv[0])))[:limit]
            users = self._reader.distinct_users(conn, period, filters, by=by) if ranked else {}
        shaped = []
        for value, t in ranked:
            item = {**t.shape(period, int(users.get(value, 0))), "value": value}
            if not percentiles:
                item.pop("approx")
            shaped.append(item)
        return shaped

    def timeseries_rows(self, plan: Plan) -> list[dict[str, Any]]:
        """The whole buckets' sums per quarter hour, shaped for :func:`~wonkalytics.store.periods.rebucket`."""
        found = self.tables()
        assert found is not None
        rollup = found[0]
        with self._reader.reading() as conn:
            rows = self._grouped(conn, rollup, plan, [rollup.c.bucket])
        return [{"utc_hour": r["bucket"], "quarter": 0, "error": r["errors"], "interactions": r["interactions"],
                 "aborted": r["aborted"], "prompt_tokens": r["prompt_tokens"],
                 "completion_tokens": r["completion_tokens"], "cost_usd": r["cost_usd"], "score_sum": r["score_sum"],
                 "duration_sum": r["duration_sum"], "scored": r["scored"], "priced": r["priced"], "timed": r["timed"]}
                for r in rows]

    def scores(self, plan: Plan, filters: Filters | None) -> dict[float, int]:
        """Exact ``{score: count}`` of the period (the rollups' histograms and the edges' rows)."""
        found = self.tables()
        assert found is not None
        rollup, _, keeper = found
        counts: dict[float, int] = {}
        with self._reader.reading() as conn:
            query = sa.select(rollup.c.score_hist).where(*self._range(rollup, plan), rollup.c.scored > 0)
            for text in conn.scalars(query):
                for score, n in json.loads(text or "[]"):
                    counts[float(score)] = counts.get(float(score), 0) + int(n)
            groups, _ = self._edge_rows(conn, keeper, plan, filters)
        for _b, _d, agg in groups.values():
            for score, n in agg.scores.items():
                counts[score] = counts.get(score, 0) + n
        return {s: n for s, n in counts.items() if n > 0}


def _order(value: Any) -> tuple[int, str]:
    # Ties in the number of interactions: by value, as the table's ORDER BY (NULL first, as most dialects)
    return (0, "") if value is None else (1, str(value))


def score_bins(counts: Mapping[float, int], bins: int) -> list[dict[str, Any]]:
    """``bins`` equal score ranges over ``counts`` (``{score: n}``), as the table's query computes them."""
    if not counts:
        return []
    low, high = min(counts), max(counts)
    if high == low:
        return [{"low": low, "high": high, "count": sum(counts.values())}]
    width = (high - low) / bins
    binned = [0] * bins
    for score, n in counts.items():
        binned[min(int((score - low) / width), bins - 1)] += n
    return [{"low": low + i * width, "high": low + (i + 1) * width, "count": n} for i, n in enumerate(binned)]
