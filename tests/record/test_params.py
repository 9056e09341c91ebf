from __future__ import annotations

import openai
import pytest

from wonkalytics.record.params import is_absent, param_fields


@pytest.mark.parametrize("value", [None, openai.NOT_GIVEN, openai.not_given, openai.omit, openai.Omit()])
def test_absent_values(value: object) -> None:
    assert is_absent(value)


@pytest.mark.parametrize("value", [0, 0.0, "", False, [], "NOT_GIVEN"])
def test_falsy_values_are_present(value: object) -> None:
    assert not is_absent(value)


def test_sampling_parameters_under_their_names() -> None:
    params = {
        "model": "gpt-4o",
        "temperature": 1,
        "max_tokens": 4096,
        "top_p": 1,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.5,
    }
    assert param_fields(params) == params


def test_sentinels_and_none_count_as_absent() -> None:
    params = {
        "model": "gpt-4o",
        "temperature": openai.NOT_GIVEN,
        "top_p": openai.omit,
        "seed": None,
        "max_tokens": openai.NOT_GIVEN,
        "max_completion_tokens": 100,
    }
    assert param_fields(params) == {"model": "gpt-4o", "max_completion_tokens": 100, "max_tokens": 100}


def test_max_tokens_wins_over_max_completion_tokens() -> None:
    assert param_fields({"max_tokens": 10, "max_completion_tokens": 20})["max_tokens"] == 10


def test_responses_max_output_tokens_becomes_max_tokens() -> None:
    fields = param_fields({"model": "gpt-4o", "max_output_tokens": 300})
    assert fields["max_tokens"] == 300
    assert fields["max_output_tokens"] == 300


def test_responses_reasoning_effort() -> None:
    assert param_fields({"reasoning": {"effort": "low", "summary": "auto"}})["reasoning_effort"] == "low"
    assert (
        param_fields({"reasoning_effort": "high", "reasoning": {"effort": "low"}})["reasoning_effort"]
        == "high"
    )
    assert "reasoning_effort" not in param_fields({"reasoning": openai.NOT_GIVEN})


def test_other_scalars_pass_through_and_the_rest_is_skipped() -> None:
    params = {
        "model": "m",
        "user": "u-1",
        "seed": 7,
        "n": 1,
        "service_tier": "auto",
        "store": False,
        "tool_choice": "auto",
        "stop": "\n",
        "messages": [{"role": "user", "content": "hi"}],
        "input": "hi",
        "instructions": "be nice",
        "stream": True,
        "stream_options": {"include_usage": True},
        "timeout": 30.0,
        "extra_headers": {"x": "y"},
        "extra_body": {"a": 1},
        "extra_query": {},
        "extra_future": "x",
        "tools": [{"type": "function"}],
        "response_format": {"type": "json_object"},
        "metadata": {"sdk": "metadata"},
        "logit_bias": {"1": 2},
    }
    assert param_fields(params) == {
        "model": "m",
        "user": "u-1",
        "seed": 7,
        "n": 1,
        "service_tier": "auto",
        "store": False,
        "tool_choice": "auto",
        "stop": "\n",
    }


def test_model_falls_back_to_the_response_model() -> None:
    assert param_fields({}, fallback_model="gpt-4o-2024-08-06")["model"] == "gpt-4o-2024-08-06"
    assert param_fields({"model": openai.NOT_GIVEN}, fallback_model="r")["model"] == "r"
    assert param_fields({"model": "asked"}, fallback_model="r")["model"] == "asked"
    assert param_fields({})["model"] is None


def test_values_are_kept_as_given() -> None:
    assert param_fields({"temperature": "0.7"})["temperature"] == "0.7"


def test_params_are_not_mutated() -> None:
    params = {"model": "m", "max_output_tokens": 5}
    param_fields(params)
    assert params == {"model": "m", "max_output_tokens": 5}
