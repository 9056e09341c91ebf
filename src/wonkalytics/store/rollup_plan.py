"""The plan and the figures of an answer from the rollups (see :mod:`wonkalytics.store.rollup_reads`).

:class:`Plan` cuts a period into whole-bucket :class:`Segment` s per level and edge periods;
:class:`Totals` adds up one group's figures while the whole buckets and the edges are read;
:func:`score_bins` bins an exact score histogram as the table's query does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wonkalytics.store.periods import Period
from wonkalytics.store.rollup_model import QUARTER, Aggregate, Level
from wonkalytics.store.rollups import Rollup
from wonkalytics.store.sketch import ALPHA, Sketch

__all__ = ["APPROX", "SUMMED", "Found", "Plan", "Segment", "Totals", "cover", "quarter_ceil", "score_bins",
           "utc_days"]

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
    """Whole buckets ``[first, last)`` (naive UTC) of one level."""

    level: Level
    first: datetime
    last: datetime


@dataclass(frozen=True)
class Plan:
    """How one answer is split: whole buckets per level, the edge periods, the filters on rollup fields."""

    segments: tuple[Segment, ...]
    edges: tuple[Period, ...]
    equal: tuple[tuple[str, Any], ...]   # rollup field -> the value a filter asks for
    filtered: bool

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


@dataclass
class Totals:
    """The figures of one group (or of the whole period) while whole buckets and edges are added up."""

    sums: dict[str, float]
    ok: int = 0
    tenants: set[Any] | None = None
    duration: Sketch | None = None
    ttft: Sketch | None = None

    @classmethod
    def empty(cls) -> Totals:
        return cls(dict.fromkeys(SUMMED, 0.0), 0, set(), Sketch(), Sketch())

    def add_sums(self, status: Any, tenant: Any, values: Mapping[str, Any] | sa.RowMapping) -> None:
        """Add one group's :data:`SUMMED` figures (a rollup row's sums, or an edge aggregate's values)."""
        for name in SUMMED:
            self.sums[name] += float(values.get(name) or 0)
        self.add_key(status, tenant, values["interactions"])

    def add_key(self, status: Any, tenant: Any, interactions: Any) -> None:
        """Count a key's interactions with status ``ok`` and its tenant (what per-model sums do not hold)."""
        if status == "ok":
            self.ok += int(interactions or 0)
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
