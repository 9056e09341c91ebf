"""Hypothesis strategies shared by the record tests: JSON-like values and their odd cousins."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

# Text including NUL and lone surrogates: the characters drivers choke on.
odd_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=30) | st.sampled_from(
    ["", "\x00", "a\x00b", "\ud800", "x\udfffy", "é😀", "  42 ", "true", "NaN", "inf", "2024-01-02T03:04:05Z"]
)

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | odd_text
)

json_like: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(odd_text, children, max_size=4),
    max_leaves=25,
)

odd_values: st.SearchStrategy[Any] = (
    json_like
    | st.datetimes(timezones=st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=-5))))
    | st.dates()
    | st.decimals(allow_nan=True)
    | st.binary(max_size=10)
    | st.builds(tuple, st.lists(scalars, max_size=3))
    | st.builds(frozenset, st.lists(st.integers(), max_size=3))
    | st.just(object())
    | st.sampled_from([Decimal("1E+400"), Decimal("sNaN"), Decimal("-0")])
    | st.just(date(1, 1, 1))
    | st.just(datetime.max)
)
