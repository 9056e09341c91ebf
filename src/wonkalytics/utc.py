"""Naive UTC, the one form every timestamp is stored in (ground floor: store/, sinks and the recorder).

>>> from datetime import datetime, timedelta, timezone
>>> naive_utc(datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))))
datetime.datetime(2026, 1, 1, 10, 0)
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["naive_utc", "utcnow"]


def naive_utc(moment: datetime) -> datetime:
    """``moment`` in UTC without its zone; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def utcnow() -> datetime:
    """Now, as naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)
