"""The cached linear coefficients price a call exactly as genai-prices' own calc_price does."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from wonkalytics.record import cost


@pytest.mark.parametrize(("model", "provider"), [
    ("gpt-4o-mini", "openai"), ("gpt-4o", "openai"), ("gpt-4.1", "openai"), ("o3-mini", "openai"),
    ("gpt-4o", "azure"), ("gpt-3.5-turbo", None),
])
def test_coefficients_match_calc_price(model: str, provider: str | None) -> None:
    when = datetime(2026, 11, 30, 12, tzinfo=UTC)
    rng = random.Random(7)
    for _ in range(200):
        prompt = rng.randint(0, 100_000)
        usage = (prompt, rng.randint(0, 100_000), rng.randint(0, prompt))
        assert cost._listed_price(model, provider, usage, when) == cost._calc(model, provider, usage, when), usage


def test_unknown_models_and_large_calls() -> None:
    when = datetime(2026, 11, 30, tzinfo=UTC)
    assert cost._listed_price("no-such-model-xyz", "openai", (10, 10, 0), when) is None
    big = (500_000, 1_000, 0)  # beyond the linear range: priced by the package itself
    assert cost._listed_price("gpt-4o", "openai", big, when) == cost._calc("gpt-4o", "openai", big, when)
