from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import openai
from hypothesis import given
from hypothesis import strategies as st

from wonkalytics.interaction import Interaction
from wonkalytics.record.columns import AUTOMATIC_FIELDS as COLUMNS_AUTOMATIC_FIELDS
from wonkalytics.record.pipeline import (
    AUTOMATIC_FIELDS,
    INTERACTION_PARTS,
    app_fields,
    event_row,
    explicit_identity,
    interaction_row,
    measured,
    prompt,
    run_steps,
    sdk_params,
    with_default_timestamp,
)

from .strategies import json_like
from .test_identity import SEED_AUTH_INFO, SEED_IDENTITY

NOW = datetime(2024, 3, 1, 12, 0, 0)
START = 1_700_000_000.25  # 2023-11-14 22:13:20.25 UTC


def make(**overrides: Any) -> Interaction:
    base: dict[str, Any] = {
        "api": "chat",
        "params": {
            "model": "gpt-4-1106-preview",
            "messages": [{"role": "system", "content": "Guess a number."}, {"role": "user", "content": "Go"}],
            "temperature": 1,
            "max_tokens": 4096,
            "top_p": 1,
            "frequency_penalty": 0.5,
            "presence_penalty": 0.5,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        "event_id": "ev-1",
        "start_time": START,
        "end_time": START + 2,
        "response_text": "7",
        "response_id": "chatcmpl-1",
        "response_model": "gpt-4-1106-preview-0613",
        "system_fingerprint": "fp_1",
        "prompt_tokens": 20,
        "completion_tokens": 1,
        "total_tokens": 21,
        "ttft_ms": 150.0,
        "duration_ms": 2000.0,
    }
    base.update(overrides)
    return Interaction(**base)


# --- the steps -----------------------------------------------------------------------------------


def test_run_steps_runs_in_order() -> None:
    steps = [
        lambda row: {**row, "trace": [*row["trace"], "a"]},
        lambda row: {**row, "trace": [*row["trace"], "b"]},
    ]
    assert run_steps({"trace": []}, steps) == {"trace": ["a", "b"]}


def test_default_timestamp_only_when_absent() -> None:
    assert with_default_timestamp({"a": 1}, now=NOW) == {"a": 1, "timestamp": NOW}
    assert with_default_timestamp({"timestamp": None}, now=NOW) == {"timestamp": NOW}
    given_ts = datetime(2020, 1, 1)
    assert with_default_timestamp({"timestamp": given_ts}, now=NOW) == {"timestamp": given_ts}


def test_automatic_fields_are_one_set() -> None:
    assert AUTOMATIC_FIELDS is COLUMNS_AUTOMATIC_FIELDS
    assert {"timestamp", "event_id", "id"} <= AUTOMATIC_FIELDS


# --- event_row -----------------------------------------------------------------------------------


def test_seed_log_item_passes_as_is() -> None:
    item = {
        "username": "logging_test",
        "action": "test_log",
        "timestamp": datetime(2024, 1, 1),
        "tenant_id": "test_tenant_id",
        "email": "logtestmail@wonka.com",
    }
    assert event_row(item, now=NOW) == item


def test_event_gets_now_as_timestamp_when_absent() -> None:
    assert event_row({"action": "a"}, now=NOW) == {"action": "a", "timestamp": NOW}


def test_aware_now_becomes_naive_utc() -> None:
    now = datetime(2024, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert event_row({"action": "a"}, now=now)["timestamp"] == NOW


def test_event_is_flattened_and_stripped() -> None:
    item = {
        "action": "a",
        "request": {"name": "Ann", "kwargs": {"level": 3}, "response_id": "r"},
        "meta": {"page": {"path": "/x"}},
        "tags": ["t"],
    }
    assert event_row(item, now=NOW) == {
        "action": "a",
        "tags": ["t"],
        "name": "Ann",
        "response_id": "r",
        "meta_page_path": "/x",
        "level": 3,
        "timestamp": NOW,
    }


def test_event_auth_info_at_top_level_or_inside_request() -> None:
    top = event_row({"action": "a", "auth_info": SEED_AUTH_INFO}, now=NOW)
    nested = event_row({"action": "a", "request": {"auth_info": SEED_AUTH_INFO}}, now=NOW)
    assert top == nested == {"action": "a", **SEED_IDENTITY, "timestamp": NOW}


def test_event_plain_identity_beats_auth_info() -> None:
    row = event_row({"username": "plain", "request": {"auth_info": SEED_AUTH_INFO}}, now=NOW)
    assert row["username"] == "plain"
    assert row["email"] == SEED_IDENTITY["email"]
    assert not any(key.startswith("auth_info") or "claims" in key for key in row)


def test_event_ids_are_taken_as_given_and_nothing_is_invented() -> None:
    assert event_row({"action": "a", "event_id": "e", "id": "i"}, now=NOW) == {
        "action": "a",
        "event_id": "e",
        "id": "i",
        "timestamp": NOW,
    }
    assert "event_id" not in event_row({"action": "a"}, now=NOW)


def test_event_row_does_not_mutate_the_item() -> None:
    item = {"action": "a", "auth_info": SEED_AUTH_INFO, "request": {"x": 1}}
    event_row(item, now=NOW)
    assert item == {"action": "a", "auth_info": SEED_AUTH_INFO, "request": {"x": 1}}


@given(st.dictionaries(st.text(max_size=12), json_like, max_size=8))
def test_event_row_never_crashes(item: dict[str, Any]) -> None:
    row = event_row(item, now=NOW)
    assert row["timestamp"] is not None
    assert "auth_info" not in row


# --- interaction parts, each alone ---------------------------------------------------------------


def test_part_app_fields() -> None:
    i = make(
        request={
            "name": "Ann",
            "level": "senior",
            "auth_info": SEED_AUTH_INFO,
            "request_kwargs_language": "nl",
            "details": {"tone": "warm"},
        }
    )
    assert app_fields(i) == {
        "name": "Ann",
        "level": "senior",
        "language": "nl",
        "details_tone": "warm",
        **SEED_IDENTITY,
    }


def test_part_sdk_params() -> None:
    assert sdk_params(make()) == {
        "model": "gpt-4-1106-preview",
        "temperature": 1,
        "max_tokens": 4096,
        "top_p": 1,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.5,
    }
    no_model = make(params={"model": openai.NOT_GIVEN, "messages": []})
    assert sdk_params(no_model)["model"] == "gpt-4-1106-preview-0613"


def test_part_prompt_chat_and_responses() -> None:
    assert prompt(make()) == {"system_msg": "Guess a number.", "messages": "user:\nGo\n\n"}
    responses = make(api="responses", params={"model": "m", "instructions": "Be brief.", "input": "Hello"})
    assert prompt(responses) == {"system_msg": "Be brief.", "messages": "user:\nHello\n\n"}
    assert prompt(make(api="embeddings")) == {}


def test_part_explicit_identity() -> None:
    assert explicit_identity(make(identity={"username": "explicit"})) == {"username": "explicit"}
    assert explicit_identity(make()) == {}


def test_part_measured() -> None:
    assert measured(make(tags=("a", "b"), metadata={"k": 1})) == {
        "event_id": "ev-1",
        "id": "chatcmpl-1",
        "timestamp": datetime(2023, 11, 14, 22, 13, 20, 250000),
        "start_time": START,
        "end_time": START + 2,
        "status": "ok",
        "error": None,
        "ttft_ms": 150.0,
        "duration_ms": 2000.0,
        "response": "7",
        "response_id": "chatcmpl-1",
        "response_system_fingerprint": "fp_1",
        "prompt_tokens": 20,
        "completion_tokens": 1,
        "total_tokens": 21,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "finish_reason": None,
        "provider_type": "openai",
        "tags": ["a", "b"],
        "metadata": {"k": 1},
    }


def test_measured_id_falls_back_to_event_id_and_empty_tags_are_none() -> None:
    row = measured(make(response_id=None, status="error", error="APIConnectionError: boom"))
    assert row["id"] == "ev-1"
    assert row["status"] == "error"
    assert row["error"] == "APIConnectionError: boom"
    assert row["tags"] is None
    assert row["metadata"] is None


def test_measured_timestamp_is_naive_utc() -> None:
    assert measured(make(start_time=0.0))["timestamp"] == datetime(1970, 1, 1)
    assert measured(make(start_time=float("nan")))["timestamp"] is None


def test_parts_are_in_increasing_precedence() -> None:
    assert [part.__name__ for part in INTERACTION_PARTS] == [
        "app_fields",
        "sdk_params",
        "prompt",
        "explicit_identity",
        "measured",
        "interaction_cost",
    ]


# --- interaction_row -----------------------------------------------------------------------------


def test_seed_streaming_example_row() -> None:
    request = {
        "name": "Ann",
        "gender": "f",
        "competence": "python",
        "level": "senior",
        "fixed_test_results": "9",
        "free_test_results": "8",
        "motivation_summary": None,
        "other_notes": None,
        "tone": "warm",
        "response_type": "summary",
        "language": "en",
        "auth_info": SEED_AUTH_INFO,
    }
    row = interaction_row(make(request=request, tags=("competence", "tests")))
    assert row == {
        "name": "Ann",
        "gender": "f",
        "competence": "python",
        "level": "senior",
        "fixed_test_results": "9",
        "free_test_results": "8",
        "motivation_summary": None,
        "other_notes": None,
        "tone": "warm",
        "response_type": "summary",
        "language": "en",
        **SEED_IDENTITY,
        "model": "gpt-4-1106-preview",
        "temperature": 1,
        "max_tokens": 4096,
        "top_p": 1,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.5,
        "system_msg": "Guess a number.",
        "messages": "user:\nGo\n\n",
        "event_id": "ev-1",
        "id": "chatcmpl-1",
        "timestamp": datetime(2023, 11, 14, 22, 13, 20, 250000),
        "start_time": START,
        "end_time": START + 2,
        "status": "ok",
        "error": None,
        "ttft_ms": 150.0,
        "duration_ms": 2000.0,
        "response": "7",
        "response_id": "chatcmpl-1",
        "response_system_fingerprint": "fp_1",
        "prompt_tokens": 20,
        "completion_tokens": 1,
        "total_tokens": 21,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "finish_reason": None,
        "provider_type": "openai",
        "tags": ["competence", "tests"],
        "metadata": None,
        "cost_usd": 0.00023,  # gpt-4-1106-preview: 20 prompt tokens at $10 and 1 at $30 per million
    }


def test_app_fields_never_overwrite_what_the_wrapper_measured() -> None:
    request = {
        "response": "fake",
        "response_id": "fake",
        "model": "fake",
        "status": "fake",
        "id": "fake",
        "event_id": "fake",
        "prompt_tokens": 999,
        "start_time": 0,
        "messages": "fake",
        "request_response_id": "fake",
        "temperature": 9,
    }
    row = interaction_row(make(request=request))
    for key in request.keys() - {"request_response_id"}:
        assert row[key] != "fake" and row[key] not in (999, 0, 9), key


def test_app_fields_fill_what_the_wrapper_could_not_measure() -> None:
    row = interaction_row(make(response_id=None, prompt_tokens=None, request={"prompt_tokens": 12}))
    assert row["prompt_tokens"] == 12
    assert row["response_id"] is None
    assert row["id"] == "ev-1"


def test_identity_precedence_explicit_then_plain_then_auth_info() -> None:
    auth_only = interaction_row(make(request={"auth_info": SEED_AUTH_INFO}))
    plain = interaction_row(make(request={"username": "plain", "auth_info": SEED_AUTH_INFO}))
    explicit = interaction_row(
        make(
            request={"username": "plain", "auth_info": SEED_AUTH_INFO},
            identity={"username": "explicit", "email": None},
        )
    )
    assert auth_only["username"] == "Test username"
    assert plain["username"] == "plain"
    assert explicit["username"] == "explicit"
    assert explicit["email"] == SEED_IDENTITY["email"]  # None in the explicit identity erases nothing


def test_explicit_identity_cannot_overwrite_measurements() -> None:
    assert interaction_row(make(identity={"response": "x"}))["response"] == "7"


def test_sentinels_are_absent_and_params_not_mutated() -> None:
    params = {"model": "m", "messages": [], "temperature": openai.NOT_GIVEN, "top_p": openai.omit}
    row = interaction_row(make(params=params))
    assert "temperature" not in row and "top_p" not in row
    assert params["temperature"] is openai.NOT_GIVEN


def test_responses_row() -> None:
    i = make(
        api="responses",
        response_id="resp_1",
        params={
            "model": "gpt-4.1",
            "instructions": "Be brief.",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
            "max_output_tokens": 100,
            "reasoning": {"effort": "low"},
        },
    )
    row = interaction_row(i)
    assert row["system_msg"] == "Be brief."
    assert row["messages"] == "user:\nHi\n\n"
    assert row["max_tokens"] == 100
    assert row["reasoning_effort"] == "low"
    assert row["id"] == row["response_id"] == "resp_1"


def test_azure_provider_and_metadata() -> None:
    row = interaction_row(replace(make(), provider_type="azure", metadata={"experiment": "b"}))
    assert row["provider_type"] == "azure"
    assert row["metadata"] == {"experiment": "b"}


def test_timestamp_is_utc_whatever_the_local_zone() -> None:
    row = interaction_row(make(start_time=datetime(2024, 6, 1, 8, tzinfo=UTC).timestamp()))
    assert row["timestamp"] == datetime(2024, 6, 1, 8)


@given(st.dictionaries(st.text(max_size=12), json_like, max_size=6), json_like)
def test_interaction_row_never_crashes(request: dict[str, Any], messages: Any) -> None:
    row = interaction_row(make(request=request, params={"model": "m", "messages": messages}))
    assert row["event_id"] == "ev-1"
    assert row["response"] == "7"
    assert "auth_info" not in row
