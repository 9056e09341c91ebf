"""What a rollup row is: the levels (UTC quarter hour, hour, day), their tables, and the figures of one row.

Three levels, each a set of tables keyed the same way (bucket x model x tenant_id x status x the app
fields the team names):

- **quarter hours** -- ``<table>_rollup`` and ``<table>_rollup_users``: exact local days in zones with
  a half-hour offset (Asia/Kolkata) and the last partial hour at each edge of a period;
- **UTC hours** -- ``<table>_rollup_hour`` and ``<table>_rollup_hour_users``: the whole hours of the
  partial days at the edges of a period (a default 7-day period has one day of them in all: since and
  until share the time of day). At 10M rows a quarter hour holds ~1,700 interactions over ~450 keys
  and ~1,100 users, an hour ~600 keys and ~1,900 users: the edges read ~3x fewer rollup rows and ~2x
  fewer (bucket, user) pairs from hours (bench/read_side.py);
- **UTC days** -- ``<table>_rollup_day`` and ``<table>_rollup_day_users``: the whole days inside a
  period. A quarter hour of a busy table holds few interactions per key (1M rows over 60 days: ~170
  interactions over up to 600 keys, 0.7 rollup rows per interaction), so a 7-day page read from
  quarter hours merged ~82k sketches; from days it merges ~4k (bench/read_side.py).

An hour or day row is the sum of its quarter rows (same keys, same figures): the writer and the rebuild
aggregate at the quarter level and add those up per level (:func:`split`), so the levels agree exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from wonkalytics.store import dialects as d
from wonkalytics.store.sketch import Sketch, add_counts

__all__ = [
    "DAY",
    "DIMENSIONS",
    "HOUR",
    "KNOWN",
    "LEVELS",
    "QUARTER",
    "Aggregate",
    "Deltas",
    "Groups",
    "Level",
    "Users",
    "bucket_of",
    "combine",
    "grain_names",
    "key_hash",
    "model_tables",
    "rollup_tables",
    "split",
    "stored",
]

DIMENSIONS = ("model", "tenant_id", "status")
"""Fields every rollup row is keyed by (beside the bucket and the app fields the team names)."""

SUMS = ("prompt_tokens", "completion_tokens", "total_tokens")
COUNTS = ("interactions", "errors", "aborted", *SUMS, "priced", "scored", "timed", "ttft_timed")
FLOATS = ("cost_usd", "score_sum", "score_min", "score_max", "duration_sum", "ttft_sum")
TEXTS = ("score_hist", "duration_sketch", "ttft_sketch")
METRICS = (*COUNTS, *FLOATS, *TEXTS)
KNOWN = {"key_hash", "bucket", *DIMENSIONS, *METRICS}
"""Columns of a rollup table that are not app fields."""


def bucket_of(moment: datetime) -> datetime:
    """The UTC quarter hour holding ``moment`` (naive UTC, as the table stores it)."""
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0, tzinfo=None)


_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)


def _day_of(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)


@dataclass(frozen=True)
class Level:
    """One level of rollups: its bucket length, table-name suffix and how a moment falls into a bucket."""

    name: str
    suffix: str
    step: timedelta

    def floor(self, moment: datetime) -> datetime:
        """The bucket holding naive-UTC ``moment``."""
        if self.step < _HOUR:
            return bucket_of(moment)
        if self.step < _DAY:
            return moment.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        return _day_of(moment)

    def ceil(self, moment: datetime) -> datetime:
        """The first bucket boundary at or after ``moment``."""
        low = self.floor(moment)
        return low if low == moment else low + self.step


QUARTER = Level("quarter", "", timedelta(minutes=15))
HOUR = Level("hour", "_hour", _HOUR)
DAY = Level("day", "_day", _DAY)
LEVELS = (QUARTER, HOUR, DAY)
"""Every level, finest first (the finest is the one rows are aggregated at)."""


def _tables(name: str, schema: str | None, dims: Sequence[str], user_keys: Sequence[str]) -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData()
    # The key leads with the bucket: InnoDB and SQL Server keep a table's rows in its primary key's order,
    # so a period's buckets are neighbouring pages; keyed by the hash alone, one hour's ~8.6k rows lay on
    # ~6k pages read one by one (MariaDB, 1M rows, 128 MB buffer pool: 983 -> 17 ms a day of hours).
    # key_hash stays unique on its own: the writer's look-ups and upserts name it.
    rollup = sa.Table(
        name, metadata,
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("bucket", d.timestamp(), nullable=False),
        *[sa.Column(f, d.short_text(255), nullable=True) for f in dims],
        *[sa.Column(c, sa.BigInteger, nullable=False, server_default="0") for c in COUNTS],
        *[sa.Column(c, d.double(), nullable=True) for c in FLOATS],
        *[sa.Column(c, d.long_text(), nullable=True) for c in TEXTS],
        sa.PrimaryKeyConstraint("bucket", "key_hash"),
        schema=schema, **d.table_options(),
    )
    users = sa.Table(
        f"{name}_users", metadata,
        sa.Column("bucket", d.timestamp(), primary_key=True),
        *[sa.Column(k, sa.String(255), primary_key=True) for k in user_keys],
        sa.Column("n", sa.BigInteger, nullable=False),
        schema=schema, **d.table_options(),
    )
    return rollup, users


def rollup_tables(name: str, schema: str | None = None, fields: Sequence[str] = (),
                  level: Level = QUARTER) -> tuple[sa.Table, sa.Table]:
    """The ``<name>_rollup[_day]`` and ``<name>_rollup[_day]_users`` tables (app ``fields`` as key columns)."""
    return _tables(f"{name}_rollup{level.suffix}", schema, (*DIMENSIONS, *fields), ("username",))


def model_tables(name: str, schema: str | None = None, level: Level = QUARTER) -> tuple[sa.Table, sa.Table]:
    """The ``<name>_rollup[_day]_model`` and ``..._model_users`` tables: the same figures keyed by bucket x
    model only, and users by (bucket, model, username).

    What the overview and ``--by model`` read their percentiles and distinct users from: a 7-day page
    of the bench (1M rows) merges ~500 sketches from them instead of ~15k from the full keys
    (model x tenant x status), and counts users per model without the table (bench/read_side.py).
    """
    return _tables(f"{name}_rollup{level.suffix}_model", schema, ("model",), ("model", "username"))


def dimension_users(name: str, schema: str | None = None, level: Level = QUARTER, dim: str = "tenant_id") -> sa.Table:
    """``<name>_rollup[_day]_by_<dim>_users``: interactions per (bucket, value of ``dim``, username), the
    value as JSON (``null`` for NULL: a primary key column cannot hold NULL), so distinct users per
    tenant / status / app field of whole buckets are exact without the table."""
    return sa.Table(
        f"{name}_rollup{level.suffix}_by_{dim}_users", sa.MetaData(),
        sa.Column("bucket", d.timestamp(), primary_key=True),
        sa.Column("value", sa.String(300), primary_key=True),
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        schema=schema, **d.table_options(),
    )


def grain_names(name: str, level: Level, dims: Sequence[str]) -> list[str]:
    """The names of ``level``'s per-model tables and users per other dimension (``dims``: the key fields
    after the model), as :func:`model_tables` and :func:`dimension_users` name them, without building them."""
    base = f"{name}_rollup{level.suffix}"
    return [f"{base}_model", f"{base}_model_users", *[f"{base}_by_{dim}_users" for dim in dims]]


def key_hash(bucket: datetime, dims: Sequence[Any]) -> str:
    """The primary key of one rollup row (JSON keeps ``None`` apart from ``""``)."""
    text = json.dumps([bucket.isoformat(), *[None if v is None else str(v) for v in dims]])
    return hashlib.sha256(text.encode()).hexdigest()


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


_TIMED = (("duration_ms", True, "timed", "duration_sum"), ("ttft_ms", False, "ttft_timed", "ttft_sum"))


@dataclass
class Aggregate:
    """The figures of one rollup row, in Python (added to / taken from row by row, then stored)."""

    counts: dict[str, int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    scores: dict[float, int] = field(default_factory=dict)
    duration: Sketch = field(default_factory=Sketch)
    ttft: Sketch = field(default_factory=Sketch)

    def add(self, row: Mapping[str, Any], sign: int = 1) -> None:
        """Count one table row (``sign=-1`` takes it out again)."""
        self.add_rows([row], sign)

    def add_rows(self, rows: Sequence[Mapping[str, Any]], sign: int = 1) -> None:
        """Count the table rows ``rows`` of this key (``sign=-1`` takes them out again).

        A column at a time over the group's rows (comprehensions, no call per row and figure): the
        writer runs it for every row it inserts (bench/writer_cpu.py; ~6 -> ~3 µs a row).
        """
        counts, sums = self.counts, self.sums
        counts["interactions"] = counts.get("interactions", 0) + sign * len(rows)
        statuses = [r.get("status") for r in rows]
        for status, name in (("error", "errors"), ("aborted", "aborted")):
            n = statuses.count(status)
            if n:
                counts[name] = counts.get(name, 0) + sign * n
        for name in SUMS:
            counts[name] = counts.get(name, 0) + sign * sum([int(r.get(name) or 0) for r in rows])
        costs = [float(c) for r in rows if (c := r.get("cost_usd")) is not None]
        if costs:
            counts["priced"] = counts.get("priced", 0) + sign * len(costs)
            sums["cost_usd"] = sums.get("cost_usd", 0.0) + sign * sum(costs)
        scores = [float(s) for r in rows if (s := r.get("score")) is not None]
        if scores:
            counts["scored"] = counts.get("scored", 0) + sign * len(scores)
            sums["score_sum"] = sums.get("score_sum", 0.0) + sign * sum(scores)
            hist = self.scores
            for score in scores:
                n = hist.get(score, 0) + sign
                if n:
                    hist[score] = n
                else:
                    del hist[score]
        for column, sketch, timed, total in _TIMED:
            values = [float(v) for r in rows if (v := r.get(column)) is not None]
            if not values:
                continue
            target = self.duration if sketch else self.ttft
            if target.add_values(values, sign) < len(values):
                # a negative or infinite duration is kept in the row, not in the sketch nor the sums
                values = [v for v in values if 0 <= v < math.inf]
            counts[timed] = counts.get(timed, 0) + sign * len(values)
            sums[total] = sums.get(total, 0.0) + sign * sum(values)

    def values(self) -> dict[str, Any]:
        """The rollup row's metric columns."""
        out: dict[str, Any] = {c: self.counts.get(c, 0) for c in COUNTS}
        out["cost_usd"] = self.sums.get("cost_usd") if out["priced"] else None
        out["score_sum"] = self.sums.get("score_sum") if out["scored"] else None
        out["duration_sum"] = self.sums.get("duration_sum") if out["timed"] else None
        out["ttft_sum"] = self.sums.get("ttft_sum") if out["ttft_timed"] else None
        out["score_min"] = min(self.scores) if self.scores else None
        out["score_max"] = max(self.scores) if self.scores else None
        out["score_hist"] = json.dumps(sorted(self.scores.items())) if self.scores else None
        out["duration_sketch"] = self.duration.dumps() if self.duration.count else None
        out["ttft_sketch"] = self.ttft.dumps() if self.ttft.count else None
        return out


def stored(row: Mapping[str, Any]) -> Aggregate:
    """The :class:`Aggregate` of a stored rollup row."""
    agg = Aggregate()
    for name in COUNTS:
        agg.counts[name] = int(row[name] or 0)
    for name in ("cost_usd", "score_sum", "duration_sum", "ttft_sum"):
        agg.sums[name] = float(row[name] or 0.0)
    agg.scores = {float(k): int(n) for k, n in json.loads(row["score_hist"] or "[]")}
    agg.duration, agg.ttft = Sketch.loads(row["duration_sketch"]), Sketch.loads(row["ttft_sketch"])
    return agg


def combine(base: Aggregate, delta: Aggregate) -> Aggregate:
    """Add ``delta`` into ``base`` (returned)."""
    for name, n in delta.counts.items():
        base.counts[name] = base.counts.get(name, 0) + n
    for name, v in delta.sums.items():
        base.sums[name] = base.sums.get(name, 0.0) + v
    add_counts(base.scores, delta.scores)
    base.duration.merge(delta.duration)
    base.ttft.merge(delta.ttft)
    return base


Groups = dict[str, tuple[datetime, tuple[Any, ...], Aggregate]]
"""Rollup aggregates by key hash: ``{key_hash: (bucket, dims, aggregate)}``."""
Users = dict[tuple[Any, ...], int]
"""Interactions per ``(bucket, username)`` -- or ``(bucket, model, username)``, ``(bucket, value, username)``
-- (a delta when rows are taken out); :meth:`~wonkalytics.store.rollups.Rollup.aggregate` answers
``(bucket, dims, username)`` with the row's whole key ``dims``."""


@dataclass
class Deltas:
    """What one level's tables receive: full-key rows and users, model rows and (model, user) counts,
    and (value, user) counts per other dimension (``by``, position in the key -> counts)."""

    groups: Groups
    users: Users
    models: Groups
    model_users: Users
    by: dict[int, Users]


def split(groups: Groups, users: Users, level: Level) -> Deltas:
    """Quarter-hour aggregates and ``(bucket, dims, username)`` counts -> ``level``'s deltas (new objects)."""
    full: Groups = {}
    models: Groups = {}
    for bucket, dims, agg in groups.values():
        coarse = level.floor(bucket)
        for target, key_dims in ((full, dims), (models, dims[:1])):
            key = key_hash(coarse, key_dims)
            if key not in target:
                target[key] = (coarse, key_dims, Aggregate())
            combine(target[key][2], agg)
    people: Users = {}
    by_model: Users = {}
    by: dict[int, Users] = {}
    for (bucket, dims, user), n in users.items():
        coarse = level.floor(bucket)
        people[(coarse, user)] = people.get((coarse, user), 0) + n
        by_model[(coarse, dims[0], user)] = by_model.get((coarse, dims[0], user), 0) + n
        for i in range(1, len(dims)):
            slot = (coarse, json.dumps(dims[i]), user)
            counts = by.setdefault(i, {})
            counts[slot] = counts.get(slot, 0) + n
    return Deltas(full, people, models, by_model, by)
