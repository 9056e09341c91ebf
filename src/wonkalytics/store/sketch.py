"""A mergeable quantile sketch (DDSketch-style) for durations and time-to-first-token in the rollups.

Values fall into fixed, log-spaced buckets: bucket ``k`` holds the values in
``(GAMMA ** (k - 1), GAMMA ** k]`` with ``GAMMA = (1 + ALPHA) / (1 - ALPHA)``, and reads back as
``2 * GAMMA ** k / (GAMMA + 1)``, which is within ``ALPHA`` (1 %) of every value in the bucket. The
buckets are the same for every sketch, so two sketches merge by adding their counts, and the merge
of the sketches of two sets *is* the sketch of their union (bucket counts are integers: no
approximation is added by merging, in any order). A value can also be taken out again (a row whose
duration changed), which is what an incremental rollup needs.

Quantiles interpolate linearly between the two nearest ranks, as :mod:`wonkalytics.store.queries`
does for exact percentiles (NumPy's default, SQL's ``percentile_cont``). Each neighbour read from
the sketch is within ``ALPHA`` of the true neighbour, so the interpolated figure is within ``ALPHA``
(relative) of the exact percentile. Values at or below :data:`MIN_VALUE` (including 0) are counted
apart and read back as 0: there the error is absolute, at most :data:`MIN_VALUE`.

>>> s = Sketch.of([100.0, 200.0, 300.0])
>>> abs(s.quantile(0.5) - 200.0) <= 200.0 * ALPHA
True
>>> Sketch.loads(s.dumps()) == s
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ALPHA", "GAMMA", "MIN_VALUE", "Sketch", "SketchError", "add_counts"]

ALPHA = 0.01
"""Relative error of every quantile read from a sketch (1 %)."""

GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)

MIN_VALUE = 1e-3
"""Values at or below this (1 µs when the unit is the millisecond) are counted as 0."""

_PREFIX = "d1"  # format version of dumps(): bump when the bucket layout changes


class SketchError(ValueError):
    """A value a sketch cannot hold (negative, NaN, infinite) or a stored sketch that does not parse."""


def bucket_of(value: float) -> int | None:
    """The bucket key of ``value``; ``None`` for the zero bucket. Raises :class:`SketchError` on bad input."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SketchError(f"a sketch holds numbers, not {type(value).__name__} {value!r}")
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise SketchError(f"a sketch holds finite non-negative numbers, not {value!r}")
    if value <= MIN_VALUE:
        return None
    return math.ceil(math.log(value) / _LOG_GAMMA)


def _estimate(key: int | None) -> float:
    if key is None:
        return 0.0
    return 2 * GAMMA**key / (GAMMA + 1)


def add_counts(target: dict[Any, int], delta: Mapping[Any, int]) -> None:
    """Add ``delta``'s counts into ``target`` per key, dropping the keys whose count becomes 0."""
    for key, n in delta.items():
        total = target.get(key, 0) + n
        if total:
            target[key] = total
        else:
            target.pop(key, None)


@dataclass
class Sketch:
    """Counts per log-spaced bucket (``buckets``) plus the count of zero values (``zeros``)."""

    buckets: dict[int, int] = field(default_factory=dict)
    zeros: int = 0

    @classmethod
    def of(cls, values: Iterable[float]) -> Sketch:
        """The sketch of ``values``."""
        sketch = cls()
        for value in values:
            sketch.add(value)
        return sketch

    @property
    def count(self) -> int:
        """How many values the sketch holds."""
        return self.zeros + sum(self.buckets.values())

    def add(self, value: float, times: int = 1) -> None:
        """Count ``value`` ``times`` times; a negative ``times`` builds a delta (a rollup's "old value out")."""
        key = bucket_of(value)
        if key is None:
            self.zeros += times
            return
        n = self.buckets.get(key, 0) + times
        if n:
            self.buckets[key] = n
        else:
            del self.buckets[key]

    def add_values(self, values: Iterable[float], times: int = 1) -> int:
        """:meth:`add` every value of ``values`` (floats) ``times`` times, skipping the ones a sketch cannot
        hold (negative, NaN, infinite); returns how many were added.

        The writer's loop: per row one comparison and one log, no call (bench/writer_cpu.py).
        """
        buckets, zeros, added, log, ceil = self.buckets, 0, 0, math.log, math.ceil
        for value in values:
            if not 0 <= value < math.inf:   # NaN fails both comparisons
                continue
            added += 1
            if value <= MIN_VALUE:
                zeros += times
                continue
            key = ceil(log(value) / _LOG_GAMMA)
            n = buckets.get(key, 0) + times
            if n:
                buckets[key] = n
            else:
                del buckets[key]
        self.zeros += zeros
        return added

    def remove(self, value: float) -> None:
        """Take ``value`` out; raises :class:`SketchError` when the sketch does not hold it."""
        key = bucket_of(value)
        held = self.zeros if key is None else self.buckets.get(key, 0)
        if held < 1:
            raise SketchError(f"took out {value!r}, which the sketch does not hold")
        self.add(value, -1)

    def merge(self, other: Sketch) -> None:
        """Add every value of ``other`` (exactly the sketch of the union)."""
        self.zeros += other.zeros
        add_counts(self.buckets, other.buckets)

    def subtract(self, other: Sketch) -> None:
        """Take every value of ``other`` out (the inverse of :meth:`merge`)."""
        negated = Sketch({k: -n for k, n in other.buckets.items()}, -other.zeros)
        self.merge(negated)
        if self.zeros < 0 or any(n < 0 for n in self.buckets.values()):
            raise SketchError("subtracted a sketch holding values this one does not hold")

    def _value_at_rank(self, rank: int) -> float:
        seen = self.zeros
        if rank < seen:
            return 0.0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if rank < seen:
                return _estimate(key)
        raise SketchError(f"rank {rank} is past the sketch's {self.count} values")

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), within :data:`ALPHA` of the exact one; ``None`` when empty."""
        if not 0 <= q <= 1:
            raise SketchError(f"a quantile is between 0 and 1, not {q!r}")
        n = self.count
        if n == 0:
            return None
        rank = q * (n - 1)
        low = math.floor(rank)
        below = self._value_at_rank(low)
        if low == rank:
            return below
        above = self._value_at_rank(low + 1)
        return below + (above - below) * (rank - low)

    def dumps(self) -> str:
        """A compact text form for a column: ``d1|zeros|key:count,...`` (keys ascending)."""
        body = ",".join(f"{k}:{self.buckets[k]}" for k in sorted(self.buckets))
        return f"{_PREFIX}|{self.zeros}|{body}"

    def merge_texts(self, texts: Iterable[str | None], times: int = 1) -> None:
        """Add the sketches :meth:`dumps` wrote (``None`` / ``""`` add nothing), without building each one;
        ``times=-1`` takes them out (buckets left at 0 are dropped).

        The hot loop of a percentile over many rollup rows: the bodies are joined and parsed in one go
        (one split, one ``map(int)``, pairs zipped), ~2x faster than a split per text and per item,
        and 4x faster than :meth:`loads` per text plus :meth:`merge` (measured with bench/read_side.py).
        """
        zeros = 0
        bodies = []
        for text in texts:
            if not text:
                continue
            _, z, body = text.split("|")
            zeros += int(z)
            if body:
                bodies.append(body)
        buckets = self.buckets
        if bodies:
            numbers = map(int, ",".join(bodies).replace(":", ",").split(","))
            if times == 1:
                for key, n in zip(numbers, numbers, strict=True):
                    buckets[key] = buckets.get(key, 0) + n
            else:
                for key, n in zip(numbers, numbers, strict=True):
                    total = buckets.get(key, 0) + times * n
                    if total:
                        buckets[key] = total
                    else:
                        buckets.pop(key, None)
        self.zeros += times * zeros

    @classmethod
    def loads(cls, text: str | None) -> Sketch:
        """The sketch :meth:`dumps` wrote (``None`` or ``""`` read as an empty sketch)."""
        if not text:
            return cls()
        try:
            prefix, zeros, body = text.split("|")
            if prefix != _PREFIX:
                raise SketchError(f"unknown sketch format {prefix!r} (this release reads {_PREFIX!r})")
            buckets: dict[int, int] = {}
            for item in filter(None, body.split(",")):
                key, n = item.split(":")
                buckets[int(key)] = int(n)
            sketch = cls(buckets, int(zeros))
        except SketchError:
            raise
        except ValueError as exc:
            raise SketchError(f"not a stored sketch: {text[:60]!r}") from exc
        if sketch.zeros < 0 or any(n <= 0 for n in buckets.values()):
            raise SketchError(f"a stored sketch holds a count below 1: {text[:60]!r}")
        return sketch
