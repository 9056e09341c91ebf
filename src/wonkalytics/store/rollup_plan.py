"""The plan and the figures of an answer from the rollups (see :mod:`wonkalytics.store.rollup_reads`).

:class:`Plan` cuts a period into whole-bucket :class:`Segment` s per level and edge periods;
:class:`Totals` adds up one group's figures while the whole buckets and the edges are read;
:func:`score_bins` bins an exact score histogram as the table's query does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wonkalytics.store.periods import Period
from wonkalytics.store.rollup_model import QUARTER, Aggregate, Level
from wonkalytics.store.rollups import Rollup
from wonkalytics.store.sketch import ALPHA, Sketch

__all__ = ["APPROX", "SUMMED", "Found", "Plan", "Range", "Segment", "Totals", "cover", "pieces", "quarter_ceil",
           "score_bins", "utc_days"]

APPROX = {"duration_ms": ALPHA, "ttft_ms": ALPHA}
"""The ``approx`` entry of an answer whose percentiles come from sketches: figure -> relative error."""

SUMMED = ("interactions", "errors", "aborted", "prompt_tokens", "completion_tokens", "priced", "scored", "timed",
           "cost_usd", "score_sum", "duration_sum")


def quarter_ceil(moment: datetime) -> datetime:
    """The first quarter-hour boundary at or after naive-UTC ``moment``."""
    return QUARTER.ceil(moment)


def utc_days(period: Period) -> bool:
    """True when the local days of ``period`` are UTC days (the zone's offset is 0 throughout)."""
    moment, step = period.since, timedelta(days=1)
    while moment <= period.until + step:
        if (moment.astimezone(period.tz).utcoffset() or timedelta()) != timedelta():
            return False
        moment += step
    return True


@dataclass(frozen=True)
class Segment:
    """Whole buckets ``[first, last)`` (naive UTC) of one level, added (``sign`` 1) or taken out (-1)."""

    level: Level
    first: datetime
    last: datetime
    sign: int = 1


@dataclass(frozen=True)
class Plan:
    """How one answer is split: whole buckets per level, the edge periods, the filters on rollup fields;
    ``minus``: edge periods whose rows are taken out again (see :func:`pieces`)."""

    segments: tuple[Segment, ...]
    edges: tuple[Period, ...]
    equal: tuple[tuple[str, Any], ...]   # rollup field -> the value a filter asks for
    filtered: bool
    minus: tuple[Period, ...] = ()

    @property
    def takes_out(self) -> bool:
        """Whether anything is taken out again (a day read as its day minus the rest)."""
        return bool(self.minus) or any(segment.sign < 0 for segment in self.segments)

    def signed_edges(self) -> list[tuple[Period, int]]:
        """Every edge period with its sign: :attr:`edges` added (1), :attr:`minus` taken out (-1)."""
        return [*((edge, 1) for edge in self.edges), *((edge, -1) for edge in self.minus)]

    @property
    def first(self) -> datetime:
        """The start of the first whole bucket."""
        return self.segments[0].first

    @property
    def last(self) -> datetime:
        """The end of the last whole bucket."""
        return self.segments[-1].last


@dataclass(frozen=True)
class Found:
    """The rollups a reader found for its table, and from which bucket each coarser level is read."""

    keeper: Rollup
    reach: Mapping[Level, datetime]   # hour / day level -> it holds whole buckets from here on (absent: not read)
    exact_text: bool = False   # the database tells names apart as Python does: plans may take buckets out


def cover(first: datetime, last: datetime, levels: Sequence[Level],
          reach: Mapping[Level, datetime]) -> list[Segment]:
    """``[first, last)`` (whole quarter hours) as whole buckets of the coarsest ``levels`` (coarsest first, the
    finest last) each can hold: the coarsest level's whole buckets inside (from where it ``reach`` es), and
    the two remainders covered by the finer levels alike.

    >>> from datetime import datetime as t
    >>> from wonkalytics.store.rollup_model import DAY, HOUR, QUARTER
    >>> [(s.level.name, s.first.hour, s.last.hour) for s in cover(t(2026, 3, 6, 22, 15), t(2026, 3, 8, 1, 45),
    ...  [DAY, HOUR, QUARTER], {DAY: datetime.min, HOUR: datetime.min})]
    [('quarter', 22, 23), ('hour', 23, 0), ('day', 0, 0), ('hour', 0, 1), ('quarter', 1, 1)]
    """
    if first >= last:
        return []
    level, finer = levels[0], levels[1:]
    if not finer:
        return [Segment(level, first, last)]
    low, high = level.ceil(first), level.floor(last)
    if level in reach:
        low = max(low, reach[level])
    if level not in reach or low >= high:
        return cover(first, last, finer, reach)
    return [*cover(first, low, finer, reach), Segment(level, low, high), *cover(high, last, finer, reach)]


Range = tuple[datetime, datetime, int]
"""Table rows of ``[start, end)`` (naive UTC), added (1) or taken out (-1)."""


def _side(start: datetime, end: datetime, levels: Sequence[Level], reach: Mapping[Level, datetime],
          sign: int) -> tuple[list[Segment], list[Range]]:
    """``[start, end)`` as whole buckets (the finer levels) and the rows of its partial quarter hours."""
    low, high = QUARTER.ceil(start), QUARTER.floor(end)
    if low >= high:
        return [], [(start, end, sign)] if start < end else []
    segments = [Segment(s.level, s.first, s.last, sign) for s in cover(low, high, levels, reach)]
    rows = [(a, b, sign) for a, b in ((start, low), (high, end)) if a < b]
    return segments, rows


def pieces(since: datetime, until: datetime, levels: Sequence[Level], reach: Mapping[Level, datetime], *,
           now: datetime | None = None, complement: bool = True) -> tuple[list[Segment], list[Range]]:
    """``[since, until)`` (naive UTC) as signed whole buckets and row ranges that add up to it exactly.

    Every figure the rollups hold is a count, a sum or a sketch of bucket counts, so it can be taken
    out again: a partial UTC day at an edge is read as its whole day minus the part outside the period
    where that part is the smaller one to read (``now``: the part after it is empty, so reading it costs
    nothing). A 7-day period ending now at 21:05 read its 21 hours of today (5 rollup rows and ~1,900
    users each at 10M rows, bench/read_side.py); it now reads today's day row minus nothing, and
    the 3 hours from 21:05 of its first day. Without the day level (``levels`` coarsest first), or
    outside its ``reach`` (or ``complement=False``: an answer per bucket, the time series), only the usual
    :func:`cover`.

    >>> from datetime import datetime as t
    >>> from wonkalytics.store.rollup_model import DAY, HOUR, QUARTER
    >>> segs, rows = pieces(t(2026, 3, 1, 21, 5), t(2026, 3, 8, 21, 5), [DAY, HOUR, QUARTER],
    ...                     {DAY: t.min, HOUR: t.min}, now=t(2026, 3, 8, 21, 5))
    >>> for s in segs: print(s.level.name, s.first.day, s.first.hour, s.last.day, s.last.hour, s.sign)
    quarter 1 21 1 22 1
    hour 1 22 2 0 1
    day 2 0 8 0 1
    day 8 0 9 0 1
    quarter 8 21 8 22 -1
    hour 8 22 9 0 -1
    >>> [(a.hour, a.minute, b.hour, b.minute, sign) for a, b, sign in rows]
    [(21, 5, 21, 15, 1), (21, 5, 21, 15, -1)]
    """
    day = levels[0] if levels and levels[0].step >= timedelta(days=1) else None
    start, end = (day.floor(since), day.floor(until)) if day is not None else (since, until)
    if not complement or day is None or start >= end or day not in reach:
        return _side(since, until, levels, reach, 1)
    finer = levels[1:]
    moment = now or datetime.max

    def cost(a: datetime, b: datetime) -> timedelta:
        return max(min(b, moment) - a, timedelta())

    segments: list[Segment] = []
    rows: list[Range] = []

    def partial(first: datetime, last: datetime, a: datetime, b: datetime) -> None:
        # [a, b), the start or the end of the day [first, last): read itself, or the day minus the rest
        rest = (first, a) if b == last else (b, last)
        if a < b and first >= reach[day] and cost(*rest) < cost(a, b):
            segments.append(Segment(day, first, last))
            side = _side(*rest, finer, reach, -1)
        else:
            side = _side(a, b, finer, reach, 1)
        segments.extend(side[0])
        rows.extend(side[1])

    low, high = day.ceil(since), end
    partial(start, low, since, low)
    segments += cover(low, high, levels, reach)
    partial(high, high + day.step, high, until)
    return segments, rows


@dataclass
class Totals:
    """The figures of one group (or of the whole period) while whole buckets and edges are added up."""

    sums: dict[str, float]
    ok: int = 0
    tenants: dict[Any, int] = field(default_factory=dict)   # interactions per tenant: those above 0 count
    duration: Sketch | None = None
    ttft: Sketch | None = None

    @classmethod
    def empty(cls) -> Totals:
        return cls(dict.fromkeys(SUMMED, 0.0), 0, {}, Sketch(), Sketch())

    def add_sums(self, status: Any, tenant: Any, values: Mapping[str, Any] | sa.RowMapping, sign: int = 1) -> None:
        """Add one group's :data:`SUMMED` figures (a rollup row's sums, or an edge aggregate's values;
        ``sign=-1`` takes them out)."""
        for name in SUMMED:
            self.sums[name] += sign * float(values.get(name) or 0)
        self.add_key(status, tenant, sign * int(values["interactions"] or 0))

    def add_key(self, status: Any, tenant: Any, interactions: Any) -> None:
        """Count a key's interactions (negative: taken out) with status ``ok`` and per tenant (what per-model
        sums do not hold)."""
        n = int(interactions or 0)
        if status == "ok":
            self.ok += n
        if tenant is not None:
            self.tenants[tenant] = self.tenants.get(tenant, 0) + n

    def add_aggregate(self, status: Any, tenant: Any, agg: Aggregate) -> None:
        """Add an aggregate built from table rows (its own sign inside: :meth:`Aggregate.add_rows`)."""
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
            "interactions": int(s["interactions"]), "users": users,
            "tenants": sum(1 for n in self.tenants.values() if n > 0),
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
