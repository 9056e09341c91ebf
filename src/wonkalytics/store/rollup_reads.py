"""The read side from the rollups: whole UTC days and quarter hours from the rollup tables, edges from the table.

:class:`~wonkalytics.store.queries.ReadStore` asks :meth:`RollupReads.plan` first; when it answers a
:class:`Plan`, the overview, breakdowns, time series and score distribution are computed here. The
period ``[since, until)`` is cut into :class:`Segment` s:

- **whole UTC days** inside the period from ``<table>_rollup_day`` (a 7-day page at 1M rows: ~4k rollup
  rows instead of ~82k quarter-hour rows, bench/read_side.py);
- **whole UTC hours** of the partial days at the edges from ``<table>_rollup_hour``;
- **whole UTC quarter hours** of the partial hours left (local midnights in Asia/Kolkata or
  America/St_Johns fall on a quarter hour, not on a UTC hour) from ``<table>_rollup``
  (:func:`~wonkalytics.store.rollup_plan.cover`);
- **the edges** ``[since, first)`` and ``[last, until)`` (less than a quarter hour each) from the table
  row by row, aggregated with the very code that builds the rollups
  (:meth:`~wonkalytics.store.rollups.Rollup.aggregate`), so every part adds up exactly.

Counts, token and cost sums with ``SUM`` in the database (exact); score histograms and duration / TTFT
sketches merged in Python (percentiles within :data:`~wonkalytics.store.sketch.ALPHA`, reported under
``approx``). Distinct users of the whole buckets come from the users tables of each level (exact);
with a filter or per group (which those tables are not keyed by) from the table, as before.

Falls back to the table (``plan`` answers None) when the rollup tables are absent (a team table
before ``wonkalytics init --upgrade``), when a filter or a breakdown names something the rollups are
not keyed by (text search, score range, a user, an app field outside ``rollup_fields``), or when the
column map resolves a rolled-up field to another column than the writer's hook does (its rollups
would then not be the table's). The hour and day levels are read only for buckets they cover
completely: when one was added to a table whose quarter hours already held rows (``init --upgrade``
without ``rollup --rebuild``), from the bucket after its first row on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wonkalytics.errors import WonkalyticsError
from wonkalytics.store.filters import Filters
from wonkalytics.store.periods import Period
from wonkalytics.store.rollup_counts import answers_users, distinct_users, edge_users, user_counts
from wonkalytics.store.rollup_model import QUARTER, Aggregate, Level, Users
from wonkalytics.store.rollup_plan import (
    APPROX,
    SUMMED,
    Found,
    Plan,
    Segment,
    Totals,
    pieces,
    quarter_ceil,
    score_bins,
    utc_days,
)
from wonkalytics.store.rollups import Rollup, probe_levels, resolved_columns
from wonkalytics.store.sketch import Sketch


class TableReader(Protocol):
    """What the rollup reads take from the table reader (:class:`~wonkalytics.store.queries.ReadStore`):
    a protocol, so this module never imports the reader that imports it (no circle in store/)."""

    column_map: dict[str, str]

    @property
    def table(self) -> sa.Table:
        """The reflected analytics table."""

    def column(self, name: str) -> sa.Column[Any] | None:
        """The table's column for a field name, or None."""

    def require(self, name: str) -> sa.Column[Any]:
        """The table's column for a field name, or a clear error."""

    def reading(self) -> AbstractContextManager[Connection]:
        """A read-only connection."""

    def where(self, period: Period, filters: Filters | None = None, *,
              events: bool = False) -> list[sa.ColumnElement[bool]]:
        """The WHERE conditions of a period and filters."""

    def distinct_users(self, conn: Connection, period: Period, filters: Filters | None, *,
                       by: str | None = None) -> dict[Any, int]:
        """Distinct users counted on the table."""

__all__ = ["APPROX", "Plan", "RollupReads", "Segment", "TableReader", "quarter_ceil", "score_bins", "utc_days"]

_RECHECK = 60.0  # seconds before a table without rollup tables is probed again (init --upgrade meanwhile)
_SKETCHES = ("duration_sketch", "ttft_sketch")
_EXACT_TEXT = ("postgresql", "sqlite")   # dialects whose default collation tells names apart exactly as Python does
_ALWAYS = datetime.min



class RollupReads:
    """The rollup half of one :class:`~wonkalytics.store.queries.ReadStore` (probed once, re-probed when absent)."""

    def __init__(self, reader: TableReader) -> None:
        self._reader = reader
        self._found: Found | None = None
        self._checked = -_RECHECK

    # -- what can be answered -----------------------------------------------------------------------

    def _probe(self) -> Found | None:
        reader = self._reader
        table = reader.table
        try:
            with reader.reading() as conn:
                found = probe_levels(conn, table)
                if found is None:
                    return None
                fields, levels, by_model = found
                try:
                    ours = Rollup(table, reader.column_map, fields, levels, by_model)
                    writers = resolved_columns(table, None, fields)   # what the writer's hook resolves
                except ValueError:
                    return None
                if {n: c.name for n, c in ours.columns.items()} != {n: c.name for n, c in writers.items()}:
                    return None   # the column map points a rolled-up field elsewhere: the writer keeps other figures
                reach = self._reach(conn, ours)
                exact_text = conn.dialect.name in _EXACT_TEXT
        except (WonkalyticsError, sa.exc.SQLAlchemyError):   # reading() wraps the error
            return None
        return Found(ours, reach, exact_text)

    @staticmethod
    def _reach(conn: Connection, keeper: Rollup) -> dict[Level, datetime]:
        """From which bucket each coarser level holds whole buckets: all of them when it starts no later than
        the quarter hours (built together, or rebuilt), else from the bucket after its first row (a level
        ``init --upgrade`` added to a table already rolled up; absent: it holds nothing yet). The first
        bucket of every level in one statement (one round trip where each level took two)."""
        firsts = [sa.select(sa.func.min(keeper.tables[level][0].c.bucket)).scalar_subquery()
                  for level in keeper.levels]
        lows = [v if v is None or isinstance(v, datetime) else datetime.fromisoformat(str(v))
                for v in conn.execute(sa.select(*firsts)).one()]
        low_q = lows[0]
        reach: dict[Level, datetime] = {}
        for level, low_c in zip(keeper.levels[1:], lows[1:], strict=True):
            if low_q is None or (low_c is not None and low_c <= level.floor(low_q)):
                reach[level] = _ALWAYS
            elif low_c is not None:
                reach[level] = level.floor(low_c) + level.step
        return reach

    def found(self) -> Found | None:
        """The rollups (and how far their day level reaches) when they exist and match the table."""
        if self._found is not None or time.monotonic() - self._checked < _RECHECK:
            return self._found
        self._checked = time.monotonic()
        self._found = self._probe()
        return self._found

    def tables(self) -> tuple[sa.Table, sa.Table, Rollup] | None:
        """``(<table>_rollup, <table>_rollup_users, Rollup)`` when the rollups exist and match the table."""
        found = self.found()
        return None if found is None else (found.keeper.rollup, found.keeper.users, found.keeper)

    def _field(self, keeper: Rollup, name: str) -> str | None:
        """The rollup field of field ``name`` (by the table column both resolve to), or None."""
        column = self._reader.column(name)
        if column is None:
            return None
        for field in keeper.names:
            mine = keeper.columns.get(field)
            if mine is not None and mine.name == column.name:
                return field
        return None

    def plan(self, period: Period, filters: Filters | None, by: str | None = None, *,
             days: bool = True, hours: bool = True, signed: bool = True) -> Plan | None:
        """How to answer ``period`` / ``filters`` (/ a breakdown ``by``) from the rollups; None: read the table.

        ``days=False`` reads no UTC days (a time series in local days of a zone other than UTC), ``hours=False``
        no UTC hours either (a time series in a zone with a half-hour offset): finer buckets instead.
        ``signed``: a partial day at an edge may be read as its day minus the rest
        (:func:`~wonkalytics.store.rollup_plan.pieces`), where the database tells names apart as Python
        does (distinct users are then counted from net interactions per user in Python).
        """
        found = self.found()
        if found is None:
            return None
        keeper = found.keeper
        if filters is not None and (filters.text or filters.user or filters.score_min is not None
                                    or filters.score_max is not None):
            return None
        if by is not None and self._field(keeper, by) is None:
            return None
        equal: list[tuple[str, Any]] = []
        f = filters
        named = [] if f is None else [("model", f.model), ("tenant_id", f.tenant), ("status", f.status),
                                      *f.fields.items()]
        for name, value in named:
            if value in (None, ""):
                continue
            field = self._field(keeper, name)
            if field is None:
                if self._reader.column(name) is None:
                    self._reader.require(name)  # the caller named a field the table lacks: say so
                return None
            equal.append((field, value))
        since, until = period.utc_bounds
        first, last = QUARTER.ceil(since), QUARTER.floor(until)
        if first >= last:
            return None   # not one whole quarter hour: the table answers at once
        skipped = {name for name, keep in (("day", days), ("hour", hours)) if not keep}
        levels = [level for level in reversed(keeper.levels) if level.name not in skipped]
        segments, ranges = pieces(since, until, levels, found.reach, now=datetime.now(UTC).replace(tzinfo=None),
                                  complement=signed and found.exact_text)

        def local(moment: datetime) -> datetime:
            return moment.replace(tzinfo=UTC).astimezone(period.tz)

        edges = [[Period(local(a), local(b), period.tz) for a, b, sign in ranges if sign == n] for n in (1, -1)]
        return Plan(tuple(segments), tuple(edges[0]), tuple(equal), bool(equal), tuple(edges[1]))

    # -- pieces ------------------------------------------------------------------------------------

    def _keeper(self) -> Rollup:
        found = self.found()
        assert found is not None
        return found.keeper

    def _parts(self, plan: Plan, *, model: bool = False
               ) -> list[tuple[sa.Table, sa.Table, list[sa.ColumnElement[bool]], int]]:
        """Per segment: its rollup table, its users table, the WHERE of its buckets and filters, and its sign
        (``model``: the per-model tables, see :meth:`_by_model`)."""
        keeper = self._keeper()
        parts = []
        for segment in plan.segments:
            rollup, users = (keeper.models if model else keeper.tables)[segment.level]
            where = [rollup.c.bucket >= segment.first, rollup.c.bucket < segment.last,
                     *[rollup.c[name] == value for name, value in plan.equal]]
            parts.append((rollup, users, where, segment.sign))
        return parts

    def _by_model(self, plan: Plan, group: str | None) -> bool:
        """Whether the per-model tables answer: they exist, and only the model is filtered or grouped by."""
        return (self._keeper().by_model and all(name == "model" for name, _ in plan.equal)
                and group in (None, "model"))

    def _edge_list(self, conn: Connection, keeper: Rollup, plan: Plan, filters: Filters | None
                   ) -> list[tuple[list[dict[str, Any]], int]]:
        """The edges' interactions (less than 2 quarter hours at each end), each field under its canonical
        name: those to add (sign 1), and those to take out again (sign -1, :attr:`Plan.minus`)."""
        rows: dict[int, list[dict[str, Any]]] = {1: [], -1: []}
        for edge, sign in plan.signed_edges():
            query = keeper.select_rows().where(*self._reader.where(edge, filters))
            rows[sign] += [r for r in map(dict, conn.execute(query).mappings())
                           if isinstance(r.get("timestamp"), datetime) and r.get("model") is not None]
        return [(rows[1], 1), (rows[-1], -1)]

    def _users(self, conn: Connection, plan: Plan, at_edges: Users, *, per: str | None = None) -> dict[Any, int]:
        """Distinct users of ``plan`` in all or per value of ``per`` (:func:`~wonkalytics.store.rollup_counts.
        distinct_users`; the names compared in Python where the dialect's collation does as Python does)."""
        found = self.found()
        assert found is not None
        return distinct_users(conn, found.keeper, plan, at_edges, per=per, exact_text=found.exact_text)

    def _users_by(self, plan: Plan, field: str | None) -> bool:
        """Whether the users tables count the distinct users per value of ``field``: the grain tables exist
        and nothing but the model is filtered (per model: the model filter applies to the table's key)."""
        keeper = self._keeper()
        if not keeper.by_model or field is None or not all(name == "model" for name, _ in plan.equal):
            return False
        return field == "model" or not plan.equal

    def _grouped(self, conn: Connection, plan: Plan, keys: Sequence[str], *, model: bool = False,
                 summed: Sequence[str] = SUMMED) -> list[tuple[int, sa.RowMapping]]:
        """Every segment's sums of ``summed`` grouped by the rollup fields (or ``bucket``) ``keys`` (one list, not
        added up), each with its segment's sign; ``model``: from the per-model tables (see :meth:`_by_model`)."""
        out: list[tuple[int, sa.RowMapping]] = []
        for rollup, _, where, sign in self._parts(plan, model=model):
            columns = [rollup.c[k] for k in keys]
            sums = [sa.func.sum(rollup.c[n]).label(n) for n in summed]
            rows = conn.execute(sa.select(*columns, *sums).where(*where).group_by(*columns)).mappings().all()
            out += [(sign, row) for row in rows]
        return out

    def _merged_here(self, conn: Connection, plan: Plan, group: str | None) -> dict[tuple[Any, str], Sketch]:
        """The whole buckets' sketches per group, fetched as texts and merged in Python (from the
        per-model tables where they answer: ~500 texts a 7-day page at 1M rows instead of ~15k)."""
        texts: dict[tuple[Any, str, int], list[str | None]] = {}
        for rollup, _, where, sign in self._parts(plan, model=self._by_model(plan, group)):
            gkey = [rollup.c[group].label("g")] if group is not None else [sa.null().label("g")]
            query = sa.select(*gkey, rollup.c.duration_sketch, rollup.c.ttft_sketch).where(*where, rollup.c.timed > 0)
            for row in conn.execute(query):
                texts.setdefault((row[0], _SKETCHES[0], sign), []).append(row[1])
                texts.setdefault((row[0], _SKETCHES[1], sign), []).append(row[2])
        merged: dict[tuple[Any, str], Sketch] = {}
        for (g, name, sign), found in sorted(texts.items(), key=lambda kv: -kv[0][2]):   # added, then taken out
            merged.setdefault((g, name), Sketch()).merge_texts(found, sign)
        return merged

    # -- answers -----------------------------------------------------------------------------------

    def totals(self, conn: Connection, plan: Plan, filters: Filters | None, by: str | None, *,
               percentiles: bool) -> tuple[dict[Any, Totals], Users]:
        """Figures per value of ``by`` (key None without), whole buckets and edges added up; the edges' users."""
        keeper = self._keeper()
        field = self._field(keeper, by) if by is not None else None
        keys = ["status", "tenant_id"]
        if field is not None and field not in keys:
            keys.insert(0, field)
        out: dict[Any, Totals] = {}

        def slot(value: Any) -> Totals:
            if value not in out:
                out[value] = Totals.empty()
                if not percentiles:
                    out[value].duration = out[value].ttft = None
            return out[value]

        if self._by_model(plan, field):
            # The sums from the per-model tables, and from the full keys only what they alone hold (the
            # interactions with status 'ok', which tenants) as one narrow sum: the full keys are ~100x the
            # model keys here (model x tenant x status x language).
            for sign, row in self._grouped(conn, plan, [field] if field is not None else [], model=True):
                slot(row[field] if field is not None else None).add_sums(None, None, row, sign)
            for sign, row in self._grouped(conn, plan, keys, summed=("interactions",)):
                slot(row[field] if field is not None else None).add_key(row["status"], row["tenant_id"],
                                                                         sign * int(row["interactions"] or 0))
        else:
            for sign, row in self._grouped(conn, plan, keys):
                slot(row[field] if field is not None else None).add_sums(row["status"], row["tenant_id"], row, sign)
        if percentiles:
            # Merged in Python: PostgreSQL unnesting the texts and summing per bucket key was measured only
            # ~15 % faster (1M rows, 83k quarter-hour rows in 7 days), not worth a second path.
            for (value, name), sketch in self._merged_here(conn, plan, field).items():
                t = slot(value)
                target = t.duration if name == "duration_sketch" else t.ttft
                assert target is not None
                target.merge(sketch)
        # The edges' rows added up per group, not per rollup key: at 10M rows the edges' ~1,100 rows held
        # ~1,100 keys (model x tenant x status x language), each its own aggregate and sketch merge
        # (the page 227 -> 176 ms, PostgreSQL, median of 5).
        signed = self._edge_list(conn, keeper, plan, filters)
        for rows, sign in signed:
            per: dict[Any, list[dict[str, Any]]] = {}
            for edge_row in rows:
                per.setdefault(edge_row.get(field) if field is not None else None, []).append(edge_row)
            for value, group_rows in per.items():
                agg = Aggregate()
                agg.add_rows(group_rows, sign)
                t = slot(value)
                t.add_aggregate(None, None, agg)
                for edge_row in group_rows:
                    t.add_key(edge_row.get("status"), edge_row.get("tenant_id"), sign)
        return out, edge_users(keeper, signed)

    def overview(self, period: Period, plan: Plan, filters: Filters | None) -> dict[str, Any]:
        """The ``stats --json`` object of ``period`` from the rollups (``approx``: the sketch figures)."""
        with self._reader.reading() as conn:
            found_totals, at_edges = self.totals(conn, plan, filters, None, percentiles=True)
            totals = found_totals.get(None, Totals.empty())
            if plan.filtered and not self._by_model(plan, None):   # users by tenant/status/field: the table counts
                users = self._reader.distinct_users(conn, period, filters).get(None, 0)
            else:
                users = sum(self._users(conn, plan, at_edges).values())
        return totals.shape(period, users)

    def groups(self, period: Period, plan: Plan, by: str, filters: Filters | None, *, limit: int,
               percentiles: bool) -> list[dict[str, Any]]:
        """The overview per value of ``by``, largest first; distinct users per group from the users tables
        of the group's field (the table under a filter other than the model)."""
        with self._reader.reading() as conn:
            totals, at_edges = self.totals(conn, plan, filters, by, percentiles=percentiles)
            present = [(v, t) for v, t in totals.items() if t.sums["interactions"] > 0]   # none left: no group
            ranked = sorted(present, key=lambda kv: (-kv[1].sums["interactions"], _order(kv[0])))[:limit]
            field = self._field(self._keeper(), by)
            if ranked and self._users_by(plan, field):
                users = self._users(conn, plan, at_edges, per=field)
            else:   # filtered by more than the model: the table counts
                users = self._reader.distinct_users(conn, period, filters, by=by) if ranked else {}
        shaped = []
        for value, t in ranked:
            item = {**t.shape(period, int(users.get(value, 0))), "value": value}
            if not percentiles:
                item.pop("approx")
            shaped.append(item)
        return shaped

    def values(self, plan: Plan, by: str, filters: Filters | None) -> dict[Any, int]:
        """Interactions per value of field ``by`` (whole buckets and edges): sums only, no users or sketches,
        for the choices of a filter (the interactions page's model list: ~40 ms where :meth:`groups` with
        its distinct users per model took ~400 ms, PostgreSQL 1M rows, load ~9)."""
        keeper = self._keeper()
        field = self._field(keeper, by)
        assert field is not None   # plan() answers None for a field the rollups are not keyed by
        counts: dict[Any, int] = {}
        with self._reader.reading() as conn:
            for sign, row in self._grouped(conn, plan, [field], model=self._by_model(plan, field)):
                counts[row[field]] = counts.get(row[field], 0) + sign * int(row["interactions"] or 0)
            signed = self._edge_list(conn, keeper, plan, filters)
        for edge_rows, sign in signed:   # one interaction each: no aggregate per rollup key needed for a count
            for edge_row in edge_rows:
                counts[edge_row.get(field)] = counts.get(edge_row.get(field), 0) + sign
        return counts

    def counts(self, plan: Plan, by: str, filters: Filters | None, *, limit: int) -> list[tuple[Any, int]]:
        """The ``limit`` values of field ``by`` with the most interactions, most first (:meth:`values` ranked)."""
        counts = self.values(plan, by, filters)
        return sorted(((v, n) for v, n in counts.items() if n > 0), key=lambda kv: (-kv[1], _order(kv[0])))[:limit]

    def user_counts(self, period: Period, filters: Filters | None, *, limit: int) -> list[tuple[Any, int]] | None:
        """The ``limit`` users with the most interactions (None: no user) from the users tables
        (:mod:`~wonkalytics.store.rollup_counts`); None when they cannot answer (no rollups, a filter
        other than the model). The breakdown by user read the table: 1.2-1.4 s at 10M rows, the slowest
        chart of the overview (bench/read_side.py)."""
        plan = self.plan(period, filters)
        if plan is None or not answers_users(keeper := self._keeper(), plan):
            return None
        user, model = keeper.columns.get("username"), keeper.columns["model"]
        if user is None:
            return None
        edges = [(self._reader.where(edge, filters), sign) for edge, sign in plan.signed_edges()]
        with self._reader.reading() as conn:
            ranked, named = user_counts(conn, keeper, plan, edges, user, model, limit=limit)
            total = sum(sign * int(row["interactions"] or 0) for sign, row in self._grouped(
                conn, plan, [], model=self._by_model(plan, None), summed=("interactions",)))
            for where, sign in edges:
                total += sign * int(conn.execute(sa.select(sa.func.count()).select_from(self._reader.table)
                                                 .where(*where, model.is_not(None))).scalar_one())
        if total > named:   # the interactions without a user: one group, first among equals (as _order)
            ranked = sorted([(None, total - named), *ranked], key=lambda kv: -kv[1])[:limit]
        return ranked

    def timeseries_rows(self, plan: Plan) -> list[dict[str, Any]]:
        """The whole buckets' sums per bucket (day rows only in a UTC-day plan), for
        :func:`~wonkalytics.store.periods.rebucket`."""
        assert not plan.takes_out, "a time series is planned unsigned"
        with self._reader.reading() as conn:
            rows = [row for _, row in self._grouped(conn, plan, ["bucket"], model=self._by_model(plan, None))]
        return [{"utc_hour": r["bucket"], "quarter": 0, "error": r["errors"], "interactions": r["interactions"],
                 "aborted": r["aborted"], "prompt_tokens": r["prompt_tokens"],
                 "completion_tokens": r["completion_tokens"], "cost_usd": r["cost_usd"], "score_sum": r["score_sum"],
                 "duration_sum": r["duration_sum"], "scored": r["scored"], "priced": r["priced"], "timed": r["timed"]}
                for r in rows]

    def scores(self, plan: Plan, filters: Filters | None) -> dict[float, int]:
        """Exact ``{score: count}`` of the period (the rollups' histograms and the edges' rows)."""
        keeper = self._keeper()
        counts: dict[float, int] = {}
        with self._reader.reading() as conn:
            for rollup, _, where, sign in self._parts(plan, model=self._by_model(plan, None)):
                for text in conn.scalars(sa.select(rollup.c.score_hist).where(*where, rollup.c.scored > 0)):
                    for score, n in json.loads(text or "[]"):
                        counts[float(score)] = counts.get(float(score), 0) + sign * int(n)
            signed = self._edge_list(conn, keeper, plan, filters)
        for edge_rows, sign in signed:   # as Aggregate.add_rows counts a score: float, None left out
            for row in edge_rows:
                if (score := row.get("score")) is not None:
                    counts[float(score)] = counts.get(float(score), 0) + sign
        return {s: n for s, n in counts.items() if n > 0}


def _order(value: Any) -> tuple[int, str]:
    # Ties in the number of interactions: by value, as the table's ORDER BY (NULL first, as most dialects)
    return (0, "") if value is None else (1, str(value))
