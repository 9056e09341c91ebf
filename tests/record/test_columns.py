from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from wonkalytics.errors import NoMatchingColumnsError, SchemaError
from wonkalytics.record.columns import (
    AUTOMATIC_FIELDS,
    ColumnKind,
    clean_text,
    coerce,
    fit_to_table,
    to_bool,
    to_datetime,
    to_float,
    to_int,
    to_text,
)

from .strategies import odd_values

# --- text safety ---------------------------------------------------------------------------------


def test_clean_text_removes_nul_and_replaces_lone_surrogates() -> None:
    assert clean_text("a\x00b") == "ab"
    assert clean_text("x\ud800y\udfffz") == "x\ufffdy\ufffdz"
    assert clean_text("\ud83d\ude00") == "😀"  # a surrogate *pair* is the character it encodes
    assert clean_text("plain é") == "plain é"


@given(st.text(alphabet=st.characters(exclude_categories=())))
def test_clean_text_output_always_encodes(text: str) -> None:
    cleaned = clean_text(text)
    cleaned.encode("utf-8")
    assert "\x00" not in cleaned


# --- coercion ------------------------------------------------------------------------------------


class Color(Enum):
    RED = "red"


class Model(BaseModel):
    name: str
    when: datetime


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("as is", "as is"),
        ("", ""),
        ({"a": [1, "é"]}, '{"a": [1, "é"]}'),
        (["x", 1], '["x", 1]'),
        (("x", 1), '["x", 1]'),
        (MappingProxyType({"k": "v"}), '{"k": "v"}'),
        ({"when": datetime(2024, 1, 2)}, '{"when": "2024-01-02T00:00:00"}'),
        (
            {"m": Model(name="n", when=datetime(2024, 1, 2))},
            '{"m": {"name": "n", "when": "2024-01-02T00:00:00"}}',
        ),
        ({"set": {1}}, '{"set": [1]}'),
        (datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (date(2024, 1, 2), "2024-01-02"),
        (1.5, "1.5"),
        (7, "7"),
        (True, "True"),
        (b"bytes \xff", "bytes \ufffd"),
        (Color.RED, "red"),
        ("nul\x00", "nul"),
        ({"k": "\ud800"}, '{"k": "\ufffd"}'),
    ],
)
def test_to_text(value: Any, expected: str | None) -> None:
    assert to_text(value) == expected


def test_to_text_on_a_container_that_contains_itself() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    # JSON like every other container's text (was Python's repr "[1, [...]]" before access.json_text)
    assert to_text(loop) == '[1, "<circular list>"]'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (True, 1),
        (False, 0),
        (3.0, 3),
        (2.5, None),
        (" 42 ", 42),
        ("7.0", 7),
        ("1e3", 1000),
        ("x", None),
        ("", None),
        (None, None),
        (float("nan"), None),
        (float("inf"), None),
        ("nan", None),
        (Decimal("4"), 4),
        (2**63, None),
        (-(2**63), -(2**63)),
        ([1], None),
        (datetime(2024, 1, 1), None),
    ],
)
def test_to_int(value: Any, expected: int | None) -> None:
    result = to_int(value)
    assert result == expected
    assert result is None or type(result) is int


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2, 2.0),
        (2.5, 2.5),
        (True, 1.0),
        (" 2.5 ", 2.5),
        ("1e-3", 0.001),
        ("abc", None),
        (None, None),
        (float("nan"), None),
        (float("-inf"), None),
        ("inf", None),
        (10**400, None),
        (Decimal("1.25"), 1.25),
        ({"a": 1}, None),
    ],
)
def test_to_float(value: Any, expected: float | None) -> None:
    result = to_float(value)
    assert result == expected
    assert result is None or (type(result) is float and math.isfinite(result))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2024, 5, 1, 12), datetime(2024, 5, 1, 12)),
        (datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 12)),
        (datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2))), datetime(2024, 5, 1, 10)),
        (date(2024, 5, 1), datetime(2024, 5, 1)),
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12)),
        (" 2024-05-01 12:00:00.5 ", datetime(2024, 5, 1, 12, 0, 0, 500000)),
        ("2024-05-01", datetime(2024, 5, 1)),
        (0, datetime(1970, 1, 1)),
        (1700000000.5, datetime(2023, 11, 14, 22, 13, 20, 500000)),
        ("1700000000", None),  # numeric strings are not epochs
        ("yesterday", None),
        (True, None),
        (None, None),
        (float("nan"), None),
        (1e20, None),
        ([2024], None),
    ],
)
def test_to_datetime(value: Any, expected: datetime | None) -> None:
    assert to_datetime(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (1.0, True),
        (2, None),
        (-1, None),
        ("true", True),
        (" FALSE ", False),
        ("yes", True),
        ("no", False),
        ("on", True),
        ("off", False),
        ("1", True),
        ("0", False),
        ("t", True),
        ("f", False),
        ("maybe", None),
        ("", None),
        (None, None),
        (float("nan"), None),
        ([True], None),
    ],
)
def test_to_bool(value: Any, expected: bool | None) -> None:
    assert to_bool(value) is expected


# --- fit_to_table --------------------------------------------------------------------------------

SEED_COLUMNS: dict[str, ColumnKind] = {
    "id": "text",
    "action": "text",
    "username": "text",
    "tenant_id": "text",
    "email": "text",
    "timestamp": "datetime",
    "temperature": "float",
    "max_tokens": "int",
    "start_time": "float",
    "score": "int",
}


def test_keeps_fields_with_a_column_and_drops_the_rest() -> None:
    row = {"action": "test_log", "username": "u", "timestamp": datetime(2024, 1, 1), "unknown": "x"}
    assert fit_to_table(row, SEED_COLUMNS, table="t") == {
        "action": "test_log",
        "username": "u",
        "timestamp": datetime(2024, 1, 1),
    }


def test_coerces_to_column_kinds() -> None:
    row = {"action": 5, "temperature": "0.7", "max_tokens": 4096.0, "score": "n/a", "start_time": 1.5}
    assert fit_to_table(row, SEED_COLUMNS, table="t") == {
        "action": "5",
        "temperature": 0.7,
        "max_tokens": 4096,
        "start_time": 1.5,
    }  # "n/a" cannot be a number: the score field is refused (left out, with a warning), not NULLed


def test_none_stays_none() -> None:
    assert fit_to_table({"action": None, "score": None}, SEED_COLUMNS, table="t") == {
        "action": None,
        "score": None,
    }


def test_case_insensitive_match_returns_the_tables_spelling() -> None:
    columns: dict[str, ColumnKind] = {"UserName": "text", "Email": "text"}
    assert fit_to_table({"username": "u", "EMAIL": "e"}, columns, table="t") == {
        "UserName": "u",
        "Email": "e",
    }


def test_exact_match_beats_case_insensitive_whatever_the_order() -> None:
    columns: dict[str, ColumnKind] = {"name": "text"}
    assert fit_to_table({"NAME": "folded", "name": "exact"}, columns, table="t") == {"name": "exact"}
    assert fit_to_table({"name": "exact", "Name": "folded"}, columns, table="t") == {"name": "exact"}


def test_column_map_renames_and_wins_collisions() -> None:
    columns: dict[str, ColumnKind] = {"user_name": "text", "llm": "text", "model": "text"}
    row = {"user_name": "plain", "username": "mapped", "model": "gpt-4o"}
    fitted = fit_to_table(row, columns, table="t", column_map={"username": "user_name", "model": "LLM"})
    assert fitted == {"user_name": "mapped", "llm": "gpt-4o"}


def test_column_map_onto_a_missing_column_drops_the_field() -> None:
    fitted = fit_to_table(
        {"action": "a", "username": "u"}, SEED_COLUMNS, table="t", column_map={"username": "nope"}
    )
    assert fitted == {"action": "a"}


def test_no_matching_column_is_a_clear_error() -> None:
    with pytest.raises(NoMatchingColumnsError) as caught:
        fit_to_table({"foo": 1, "bar": 2}, SEED_COLUMNS, table="events")
    assert isinstance(caught.value, SchemaError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.fields == ["bar", "foo"]
    assert caught.value.table == "events"
    assert "events" in str(caught.value)


def test_only_automatic_fields_matching_is_an_error() -> None:
    assert {"timestamp", "event_id", "id"} <= AUTOMATIC_FIELDS
    row = {"timestamp": datetime(2024, 1, 1), "id": "r", "event_id": "e", "foo": 1}
    with pytest.raises(NoMatchingColumnsError):
        fit_to_table(row, {**SEED_COLUMNS, "event_id": "text"}, table="t")
    with pytest.raises(NoMatchingColumnsError):
        fit_to_table({}, SEED_COLUMNS, table="t")


def test_an_automatic_field_renamed_is_still_automatic() -> None:
    with pytest.raises(NoMatchingColumnsError):
        fit_to_table(
            {"timestamp": 0}, {"created": "datetime"}, table="t", column_map={"timestamp": "created"}
        )


def test_a_field_mapped_onto_its_column_counts() -> None:
    fitted = fit_to_table(
        {"timestamp": 0, "who": "u"}, SEED_COLUMNS, table="t", column_map={"who": "username"}
    )
    assert fitted == {"timestamp": datetime(1970, 1, 1), "username": "u"}


def test_an_unknown_kind_is_treated_as_text() -> None:
    columns: Any = {"action": "json"}
    assert fit_to_table({"action": {"a": 1}}, columns, table="t") == {"action": '{"a": 1}'}


def test_does_not_mutate_its_input() -> None:
    row = {"action": 1, "tags": ["a"]}
    fit_to_table(row, {"action": "text", "tags": "text"}, table="t")
    assert row == {"action": 1, "tags": ["a"]}


PYTHON_TYPE = {"text": str, "int": int, "float": float, "datetime": datetime, "bool": bool}
column_names = st.sampled_from(
    ["action", "Action", "score", "when", "flag", "ratio", "id", "timestamp", "x_y"]
)
kinds = st.sampled_from(["text", "int", "float", "datetime", "bool"])


@given(
    st.dictionaries(column_names | st.text(max_size=5), odd_values, max_size=8),
    st.dictionaries(column_names, kinds, max_size=6),
    st.dictionaries(st.text(max_size=5) | column_names, column_names, max_size=3),
)
def test_output_has_only_table_columns_with_values_of_the_right_type(
    row: dict[str, Any], columns: dict[str, ColumnKind], column_map: dict[str, str]
) -> None:
    try:
        fitted = fit_to_table(row, columns, table="t", column_map=column_map)
    except SchemaError:  # no column matched, or every payload value was refused: the row is set aside
        return
    assert set(fitted) <= set(columns)
    assert fitted, "a payload field matched, so the row cannot be empty"
    for column, value in fitted.items():
        if value is None:
            continue
        assert type(value) is PYTHON_TYPE[columns[column]], (column, value)
        if isinstance(value, str):
            value.encode("utf-8")
            assert "\x00" not in value
        if isinstance(value, float):
            assert math.isfinite(value)
        if isinstance(value, int):
            assert -(2**63) <= value < 2**63
        if isinstance(value, datetime):
            assert value.tzinfo is None


@given(odd_values)
def test_text_of_containers_is_json(value: Any) -> None:
    text = to_text(value)
    if isinstance(value, dict | list) and text is not None and not text.startswith(("{...", "[...")):
        json.loads(text.replace("NaN", "null").replace("-Infinity", "null").replace("Infinity", "null"))


def test_coerce_one_value_as_fit_to_table_does() -> None:
    assert coerce("12", "int") == 12
    assert coerce(["a"], "text") == '["a"]'
    assert coerce("2024-01-01", "datetime") == datetime(2024, 1, 1)
    assert coerce("1", "bool") is True
    assert coerce("0.5", "float") == 0.5
    unknown_kind: Any = "blob"
    assert coerce(5, unknown_kind) == "5"


def test_a_row_whose_every_payload_value_is_refused_is_set_aside() -> None:
    with pytest.raises(SchemaError, match=r"'score'.*87\.6.*set aside"):
        fit_to_table({"score": 87.6, "timestamp": 0}, {"score": "int", "timestamp": "datetime"}, table="t")


def test_the_compiled_plan_follows_the_table_and_a_column_map_changed_in_place() -> None:
    columns: dict[str, ColumnKind] = {"points": "int", "score": "float", "action": "text"}
    column_map = {"score": "points"}
    row = {"action": "a", "score": "7"}
    assert fit_to_table(row, columns, table="t", column_map=column_map) == {"action": "a", "points": 7}
    column_map["score"] = "score"  # the same dict object, new contents: a new plan
    assert fit_to_table(row, columns, table="t", column_map=column_map) == {"action": "a", "score": 7.0}
    other: dict[str, ColumnKind] = {"Action": "text", "score": "text"}  # another table, same field set
    assert fit_to_table(row, other, table="u") == {"Action": "a", "score": "7"}
    assert fit_to_table({"score": "7", "action": "a"}, other, table="u") == {"score": "7", "Action": "a"}
