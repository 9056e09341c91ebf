"""The mergeable sketch: merge is the sketch of the union, quantiles within the stated error."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wonkalytics.store.sketch import ALPHA, MIN_VALUE, Sketch, SketchError

values = st.one_of(st.just(0.0), st.floats(min_value=MIN_VALUE * 2, max_value=1e9, allow_nan=False))
samples = st.lists(values, min_size=1, max_size=200)


def exact_quantile(xs: list[float], q: float) -> float:
    """Linear interpolation between the nearest ranks (NumPy's default, percentile_cont)."""
    s = sorted(xs)
    rank = q * (len(s) - 1)
    low = math.floor(rank)
    if low == rank:
        return s[low]
    return s[low] + (s[low + 1] - s[low]) * (rank - low)


@given(st.lists(samples, min_size=1, max_size=5))
def test_merge_is_the_sketch_of_the_union(parts: list[list[float]]) -> None:
    merged = Sketch()
    for part in parts:
        merged.merge(Sketch.of(part))
    union = Sketch.of([x for part in parts for x in part])
    assert merged == union
    assert Sketch.loads(merged.dumps()) == union


@given(samples, st.floats(min_value=0, max_value=1))
def test_quantile_within_the_relative_error(xs: list[float], q: float) -> None:
    got = Sketch.of(xs).quantile(q)
    want = exact_quantile(xs, q)
    assert got is not None
    assert abs(got - want) <= ALPHA * want + 1e-9 * max(1.0, want)


@given(samples, samples)
def test_subtract_undoes_merge(a: list[float], b: list[float]) -> None:
    sketch = Sketch.of(a)
    sketch.merge(Sketch.of(b))
    sketch.subtract(Sketch.of(b))
    assert sketch == Sketch.of(a)


def test_remove_takes_a_value_out_and_refuses_one_not_held() -> None:
    sketch = Sketch.of([5.0, 5.0, 0.0])
    sketch.remove(5.0)
    sketch.remove(0.0)
    assert sketch == Sketch.of([5.0])
    sketch.remove(5.0)
    assert sketch.count == 0 and sketch.quantile(0.5) is None
    with pytest.raises(SketchError):
        sketch.remove(5.0)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "12", True])
def test_bad_values_are_refused_clearly(bad: object) -> None:
    with pytest.raises(SketchError):
        Sketch().add(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["x1|0|", "d1|0|3", "d1|0|3:0", "d1|-1|", "garbage"])
def test_stored_text_that_does_not_parse_is_refused(text: str) -> None:
    with pytest.raises(SketchError):
        Sketch.loads(text)


def test_dumps_is_compact() -> None:
    xs = [float(i) for i in range(1, 5001)]   # 5,000 distinct durations from 1 ms to 5 s
    text = Sketch.of(xs).dumps()
    assert len(text) < 6000 and Sketch.loads(text) == Sketch.of(xs)
