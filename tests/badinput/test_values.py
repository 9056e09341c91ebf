"""Values that are awkward to store: each lands, readable, in its own row."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from typing import Any

import pytest

import wonkalytics

from .conftest import Setup


class Opaque:
    """An object with no JSON form."""

    def __repr__(self) -> str:
        return "<Opaque>"


class BadStr:
    """An object whose str() and repr() raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    __repr__ = __str__


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        value = {"d": value}
    return value


METADATA_CASES: dict[str, Any] = {
    "set": {"tags": {"b", "a"}},
    "bytes": {"blob": b"\x00\xffbinary"},
    "decimal": {"price": decimal.Decimal("12.3400")},
    "datetime": {"at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "day": dt.date(2024, 1, 2)},
    "uuid": {"id": uuid.UUID(int=1)},
    "object": {"thing": Opaque()},
    "str_raises": {"bad": BadStr()},
    "circular": _circular(),
    "tuple_keys": {(1, 2): "pair", None: "none-key"},
    "deep_nesting": _deep(2000),
    "nan_inside": {"x": math.nan, "y": math.inf},
}


@pytest.mark.parametrize("case", sorted(METADATA_CASES))
def test_metadata_that_is_not_json_serialisable_is_stored_safely(wl_sqlite: Setup, case: str) -> None:
    client = wl_sqlite.client()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                   wl_metadata=METADATA_CASES[case])  # type: ignore[call-arg]
    row = wl_sqlite.one()
    assert row["status"] == "ok" and row["response"]
    assert isinstance(row["metadata"], str) and row["metadata"]


@pytest.mark.parametrize("case", sorted(METADATA_CASES))
def test_app_fields_that_are_not_json_serialisable_are_stored_safely(wl_sqlite: Setup, case: str) -> None:
    wonkalytics.log(action="odd", notes=METADATA_CASES[case], summary="kept")
    row = wl_sqlite.one()
    assert row["action"] == "odd" and row["summary"] == "kept"


def test_a_value_whose_str_raises_in_a_text_column(wl_sqlite: Setup) -> None:
    wonkalytics.log(action="bad-str", notes=BadStr())
    row = wl_sqlite.one()
    assert row["action"] == "bad-str"  # the row lands; the value is a placeholder or NULL


def test_a_10_mb_string_lands_whole(wl: Setup) -> None:
    big = "x" * (10 * 1024 * 1024)
    wonkalytics.log(action="big", notes=big)
    row = wl.one()
    assert row["action"] == "big" and len(row["notes"]) >= 1024 * 1024  # whole, or cut to what the column holds


def test_nul_bytes_are_stored_without_them_failing_the_row(wl: Setup) -> None:
    """PostgreSQL refuses NUL in text; the row must still land (the NUL removed or replaced)."""
    wonkalytics.log(action="nul", notes="before\x00after", username="a\x00b")
    row = wl.one()
    assert row["notes"].startswith("before") and row["notes"].endswith("after")


def test_lone_surrogates_do_not_fail_the_row(wl: Setup) -> None:
    wonkalytics.log(action="surrogate", notes="a\ud800b", summary="x\udfffy")
    row = wl.one()
    assert row["notes"][0] == "a" and row["notes"][-1] == "b"


def test_four_byte_emoji_round_trip(wl: Setup) -> None:
    text = "thanks 🎉🚀 𝄞 done"
    wonkalytics.log(action="emoji", notes=text, username="Zoë 🐙")
    row = wl.one()
    assert (row["notes"], row["username"]) == (text, "Zoë 🐙")


def test_control_characters_and_sql_lookalikes_are_stored_verbatim(wl: Setup) -> None:
    text = "'; DROP TABLE users; -- \t\r\n\x1b[31m red \\ \" `"
    wonkalytics.log(action="sql", notes=text)
    assert wl.one()["notes"] == text


@pytest.mark.parametrize(("value", "expected"), [
    ("0.7", 0.7), ("1e-3", 0.001), ("  2 ", 2.0), (True, 1.0), (decimal.Decimal("0.25"), 0.25),
])
def test_numbers_given_as_strings_or_other_types(wl_sqlite: Setup, value: Any, expected: float) -> None:
    wonkalytics.log(action="num", temperature=value)
    assert wl_sqlite.one()["temperature"] == pytest.approx(expected)


def test_a_number_that_is_not_a_number_is_kept_out_of_the_number_column(wl: Setup) -> None:
    wonkalytics.log(action="nan-text", temperature="warm", max_tokens="lots")
    row = wl.one()
    assert row["action"] == "nan-text" and row["temperature"] is None and row["max_tokens"] is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_in_a_float_column(wl: Setup, value: float) -> None:
    wonkalytics.log(action="nan", temperature=value, top_p=0.5)
    row = wl.one()
    assert row["top_p"] == 0.5
    stored = row["temperature"]
    assert stored is None or (isinstance(stored, float) and (math.isnan(stored) if math.isnan(value)
                                                               else stored == value))


def test_an_integer_too_large_for_the_column(wl: Setup) -> None:
    wonkalytics.log(action="big-int", max_tokens=10**30, prompt_tokens=-(2**70))
    row = wl.one()
    assert row["action"] == "big-int" and row["max_tokens"] in (None, 10**30)


@pytest.mark.parametrize("response_id", [None, "", "r" * 10_000, "chatcmpl-é-🎉"])
def test_response_ids_none_empty_long_or_unicode(
    wl: Setup, response_id: str | None, request: pytest.FixtureRequest
) -> None:
    wonkalytics.log(action="rid", response_id=response_id)
    row = wl.one()
    assert row["action"] == "rid"
    if response_id:
        assert row["response_id"] == response_id or response_id.startswith(row["response_id"])


def test_timestamps_of_every_kind(wl: Setup) -> None:
    wonkalytics.log(action="aware", timestamp=dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    wonkalytics.log(action="text", timestamp="2024-05-01T10:00:00")
    wonkalytics.log(action="garbage", timestamp="not a date")
    wonkalytics.log(action="epoch", timestamp=1714557600.0)
    rows = {row["action"]: row for row in wl.rows()}
    assert set(rows) == {"aware", "text", "garbage", "epoch"}


def test_500_fields_in_one_event(wl: Setup) -> None:
    fields = {f"field_{n}": n for n in range(500)}
    wonkalytics.log(action="wide", notes="kept", **fields)
    row = wl.one()
    assert (row["action"], row["notes"]) == ("wide", "kept")


def test_keys_that_differ_only_by_case(wl: Setup) -> None:
    wonkalytics.log(**{"action": "case", "Notes": "upper", "notes": "lower", "SUMMARY": "shout"})
    row = wl.one()
    assert row["notes"] in ("upper", "lower") and row["summary"] == "shout"


def test_non_string_keys_inside_request_fields(wl_sqlite: Setup) -> None:
    client = wl_sqlite.client()
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                   wl_request={"name": "Ann", 7: "seven", ("a", "b"): "pair"})  # type: ignore[call-arg]
    row = wl_sqlite.one()
    assert row["name"] == "Ann" and row["status"] == "ok"


def test_json_in_the_metadata_column_reads_back(wl: Setup) -> None:
    client = wl.client()
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                   wl_metadata={"plan": "pro", "n": 3, "nested": {"ok": True}})  # type: ignore[call-arg]
    assert json.loads(wl.one()["metadata"]) == {"plan": "pro", "n": 3, "nested": {"ok": True}}
