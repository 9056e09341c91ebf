"""Cost per call: listed dated prices from genai-prices, a team's own prices file, unknown -> None (never 0)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from tests.conftest import configure_default, read_rows

import wonkalytics
from wonkalytics.errors import ConfigurationError
from wonkalytics.interaction import Interaction
from wonkalytics.record import cost
from wonkalytics.record.cost import ModelPrice, call_cost, interaction_cost, load_prices_file
from wonkalytics.record.pipeline import interaction_row
from wonkalytics.recorder import default_recorder
from wonkalytics.testing import FakeOpenAI

WHEN = datetime(2026, 1, 15, tzinfo=UTC)


def test_listed_price_with_cached_tokens() -> None:
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
    assert call_cost("gpt-4o-mini", 1000, 200, provider="openai", when=WHEN) == pytest.approx(
        (1000 * 0.15 + 200 * 0.60) / 1e6)
    with_cache = call_cost("gpt-4o-mini", 1000, 200, cached_tokens=400, provider="openai", when=WHEN)
    assert with_cache == pytest.approx((600 * 0.15 + 400 * 0.075 + 200 * 0.60) / 1e6)
    assert call_cost("gpt-4o-mini", 1000, 200, provider="azure", when=WHEN) is not None


def test_unknown_model_is_none_never_zero() -> None:
    assert call_cost("my-own-finetune", 1000, 100, provider="openai", when=WHEN) is None
    assert call_cost("gpt-4o", None, None) is None  # nothing counted: unknown, not free
    assert call_cost(None, 10, 10) is None


def test_prices_file_overrides_per_deployment(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"Prod-4o": {"input": 2, "output": 8, "cached_input": 1}}))
    prices = load_prices_file(path)
    assert prices == {"prod-4o": ModelPrice(Decimal(2), Decimal(8), Decimal(1))}
    # Azure: the call names its deployment, the response the model; the deployment's own price wins.
    got = call_cost("gpt-4o-2024-08-06", 1000, 100, cached_tokens=500, requested="prod-4o", provider="azure",
                    overrides=prices)
    assert got == pytest.approx((500 * 2 + 500 * 1 + 100 * 8) / 1e6)
    listed = call_cost("gpt-4o-2024-08-06", 1000, 100, requested="other-deployment", provider="azure",
                       overrides=prices, when=WHEN)
    assert listed is not None and listed != got


@pytest.mark.parametrize("content,message", [
    ("not json", "is not JSON"),
    ("[1, 2]", "must hold an object"),
    ('{"m": {"input": 1}}', 'needs "input" and "output"'),
    ('{"m": {"input": -1, "output": 2}}', "non-negative"),
    ('{"m": {"input": "x", "output": 2}}', "must be a number"),
    ('{"m": {"input": 1, "output": 2, "cache": 1}}', "unknown keys"),
])
def test_bad_prices_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        load_prices_file(path)
    with pytest.raises(ConfigurationError, match="cannot be read"):
        load_prices_file(tmp_path / "missing.json")


def test_interaction_part_uses_the_prices_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"team-model": {"input": 1, "output": 1}}))
    interaction = Interaction(api="chat", params={"model": "team-model"}, event_id="e", start_time=WHEN.timestamp(),
                              end_time=WHEN.timestamp() + 1, prompt_tokens=600, completion_tokens=400)
    monkeypatch.setattr(cost, "_prices_file", cost._PricesFile())
    monkeypatch.setenv("WONKALYTICS_PRICES", str(path))
    assert interaction_cost(interaction) == {"cost_usd": None}  # record/ reads no settings itself
    cost.use_prices_file(path)  # what the recorder hands over from the prices_file setting
    assert interaction_cost(interaction) == {"cost_usd": pytest.approx(0.001)}
    assert interaction_row(interaction)["cost_usd"] == pytest.approx(0.001)
    path.write_text(json.dumps({"team-model": {"input": 2, "output": 2}}))  # re-read when the file changes

    os.utime(path, (WHEN.timestamp(), WHEN.timestamp()))
    assert interaction_cost(interaction)["cost_usd"] == pytest.approx(0.002)
    cost.use_prices_file(None)
    assert interaction_cost(interaction) == {"cost_usd": None}


def test_the_prices_setting_reaches_the_rows_through_the_recorder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str, table_name: str, fake: FakeOpenAI
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"team-model": {"input": 1, "output": 1}}))
    monkeypatch.setattr(cost, "_prices_file", cost._PricesFile())
    monkeypatch.setenv("WONKALYTICS_PRICES", str(path))
    configure_default(sqlite_url, table_name, tmp_path / "spool")
    try:
        client = wonkalytics.wrap(openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0))
        client.chat.completions.create(model="team-model", messages=[{"role": "user", "content": "hi"}])
        assert wonkalytics.flush(10)
        (row,) = read_rows(sqlite_url, table_name)
        assert row["cost_usd"] == pytest.approx((row["prompt_tokens"] + row["completion_tokens"]) / 1e6)
    finally:
        default_recorder.shutdown(5)
        cost.use_prices_file(None)


def test_cost_lands_in_the_row(recorder: object, sqlite_url: str, table_name: str, fake: FakeOpenAI) -> None:
    client = wonkalytics.wrap(openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0))
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                            stream=True)
    for _ in stream:
        pass
    client.chat.completions.create(model="no-such-model-xyz", messages=[{"role": "user", "content": "hi"}])
    assert wonkalytics.flush(10)
    rows = {r["model"]: r for r in read_rows(sqlite_url, table_name)}
    known = rows["gpt-4o-mini"]
    assert known["prompt_tokens"] and known["cost_usd"] == pytest.approx(call_cost(
        "gpt-4o-mini", known["prompt_tokens"], known["completion_tokens"], provider="openai",
        when=datetime.fromtimestamp(known["start_time"], UTC)))
    assert rows["no-such-model-xyz"]["cost_usd"] is None
