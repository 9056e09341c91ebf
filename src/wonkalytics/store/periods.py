"""Periods of the read side: ``--since`` / ``--until`` / ``--tz``, and UTC buckets moved into local time.

The database groups rows by UTC hour (or quarter hour); :func:`rebucket` moves each bucket into the
requested IANA zone and adds the buckets up into local hours or days, so every dialect gets exact
local days, across DST changes too (a local day then has 23 or 25 hours).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

__all__ = ["Period", "make_period", "needs_quarters", "parse_moment", "rebucket"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Period:
    """A half-open interval ``[since, until)`` of aware datetimes, and the zone its days are counted in.

    >>> p = make_period("2026-03-01", "2026-03-31", "Europe/Amsterdam")
    >>> p.since.isoformat(), p.until.isoformat()
    ('2026-03-01T00:00:00+01:00', '2026-04-01T00:00:00+02:00')
    """

    since: datetime
    until: datetime
    tz: ZoneInfo

    def previous(self) -> Period:
        """The period of the same length just before this one (for "change against the previous period")."""
        length = self.until - self.since
        return Period(self.since - length, self.since, self.tz)

    @property
    def utc_bounds(self) -> tuple[datetime, datetime]:
        """``since`` and ``until`` as naive UTC, the form the table's ``timestamp`` column holds."""
        return _naive_utc(self.since), _naive_utc(self.until)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as UTC, Europe/Amsterdam or "
                         "America/New_York") from None


def parse_moment(text: str, tz: ZoneInfo, now: datetime, *, end: bool = False) -> datetime:
    """``text`` as an aware datetime: a duration before ``now`` (``24h``, ``7d``, ``2w``, ``90m``), an ISO
    date (local midnight in ``tz``; with ``end`` the midnight after it, so ``--until`` includes the day) or
    an ISO datetime (local in ``tz`` unless it carries an offset).

    >>> now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    >>> parse_moment("24h", ZoneInfo("UTC"), now).isoformat()
    '2026-03-09T12:00:00+00:00'
    >>> parse_moment("2026-03-10", ZoneInfo("UTC"), now, end=True).isoformat()
    '2026-03-11T00:00:00+00:00'
    """
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            local = datetime(day.year, day.month, day.day, tzinfo=tz)
            return local + timedelta(days=1) if end else local
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2026-03-01), a datetime (2026-03-01T09:30, "
                         "2026-03-01T09:30+01:00) or a duration (90m, 24h, 7d, 2w)") from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def make_period(since: str | None = None, until: str | None = None, tz: str | None = "UTC",
                *, now: datetime | None = None) -> Period:
    """The period of the common ``--since`` / ``--until`` / ``--tz`` options (default: the last 7 days).

    >>> make_period("7d", now=datetime(2026, 3, 10, tzinfo=UTC)).since.isoformat()
    '2026-03-03T00:00:00+00:00'
    """
    zone = _zone(tz)
    now = (now or datetime.now(UTC)).astimezone(zone)
    start = parse_moment(since, zone, now) if since else now - timedelta(days=7)
    stop = parse_moment(until, zone, now, end=True) if until else now
    if stop <= start:
        raise ValueError(f"the period is empty: --since {start.isoformat()} is not before --until {stop.isoformat()}")
    return Period(start.astimezone(zone), stop.astimezone(zone), zone)


def needs_quarters(period: Period) -> bool:
    """True when the zone's offset in the period is not whole hours (UTC hours would straddle days)."""
    moment, step = period.since, timedelta(days=1)
    while moment <= period.until + step:
        offset = moment.astimezone(period.tz).utcoffset() or timedelta()
        if offset.total_seconds() % 3600:
            return True
        moment += step
    return False


def _hour_of(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rebucket(rows: Sequence[Mapping[str, Any] | sa.RowMapping], period: Period, bucket: str) -> list[dict[str, Any]]:
    """UTC hour (or quarter-hour) totals -> totals per local hour or day of ``period.tz``, gaps as zeros."""
    additive = ("interactions", "error", "aborted", "prompt_tokens", "completion_tokens", "cost_usd",
                "score_sum", "duration_sum", "scored", "priced", "timed")

    def local_key(moment: datetime) -> datetime:
        local = moment.astimezone(period.tz)
        if bucket == "day":
            return datetime(local.year, local.month, local.day, tzinfo=period.tz)
        return moment.replace(minute=0, second=0, microsecond=0)  # an hour is named by its UTC instant

    buckets: dict[datetime, dict[str, float]] = {}
    moment = period.since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while moment < period.until:
        buckets.setdefault(local_key(max(moment, period.since)), dict.fromkeys(additive, 0.0))
        moment += timedelta(hours=1)
    for row in rows:
        moment = _hour_of(row["utc_hour"]) + timedelta(minutes=int(row.get("quarter") or 0))
        totals = buckets.setdefault(local_key(moment), dict.fromkeys(additive, 0.0))
        for name in additive:
            totals[name] += float(row[name] or 0)
    series = []
    for start in sorted(buckets):
        t = buckets[start]
        local = start.astimezone(period.tz)
        series.append({
            "start": local.isoformat(),
            "interactions": int(t["interactions"]),
            "errors": int(t["error"]),
            "aborted": int(t["aborted"]),
            "prompt_tokens": int(t["prompt_tokens"]),
            "completion_tokens": int(t["completion_tokens"]),
            "cost_usd": t["cost_usd"] if t["priced"] else None,
            "scored": int(t["scored"]),
            "avg_score": t["score_sum"] / t["scored"] if t["scored"] else None,
            "avg_duration_ms": t["duration_sum"] / t["timed"] if t["timed"] else None,
        })
    return series
