"""Scenario parsing and the deterministic answers, without a server."""

from __future__ import annotations

import pytest

from wonkalytics.testing import SENTENCES, Scenario, ScenarioError, plan_answer, prompt_text, scenario_for

CHAT = {"messages": [{"role": "user", "content": "one two three"}]}


def test_default_model_gets_the_default_scenario() -> None:
    assert scenario_for("gpt-4o-mini", CHAT) == Scenario()
    assert scenario_for("fake", CHAT) == Scenario()
    assert scenario_for("fakester-chunks-3", CHAT) == Scenario()  # only "fake-" is special


def test_model_name_fields() -> None:
    scenario = scenario_for("fake-chunks-20-delay_ms-2.5-error-429-fail_attempts-1", CHAT)
    assert scenario == Scenario(chunks=20, delay_ms=2.5, error=429, fail_attempts=1)


def test_body_field_overrides_the_model_name() -> None:
    body = {**CHAT, "fake_openai": {"chunks": 7, "content": "Hi there"}}
    expected = Scenario(chunks=7, content="Hi there", delay_ms=1)
    assert scenario_for("fake-chunks-3-delay_ms-1", body) == expected


@pytest.mark.parametrize(
    ("model", "body"),
    [
        ("fake-content-hello", CHAT),  # text fields only in the body
        ("fake-chunks-3-delay_ms", CHAT),
        ("fake-error-200", CHAT),
        ("gpt-4o", {**CHAT, "fake_openai": {"chunks": -1}}),
        ("gpt-4o", {**CHAT, "fake_openai": []}),
    ],
)
def test_invalid_scenarios(model: str, body: dict[str, object]) -> None:
    with pytest.raises(ScenarioError):
        scenario_for(model, body)


def test_extra_body_sends_only_the_fields_set() -> None:
    assert Scenario(chunks=3, delay_ms=0).extra_body() == {"fake_openai": {"chunks": 3, "delay_ms": 0}}
    assert Scenario().extra_body() == {"fake_openai": {}}


def test_failing_counts_attempts() -> None:
    assert Scenario(error=500).failing(5)
    assert Scenario(error=500, fail_attempts=2).failing(1)
    assert not Scenario(error=500, fail_attempts=2).failing(2)


def test_prompt_text_walks_chat_and_responses_inputs() -> None:
    body = {
        "instructions": "Be kind",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "look at"}, {"type": "input_image"}]},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
        ],
    }
    assert prompt_text(body) == "Be kind\nlook at\n42"
    messages = [{"role": "system", "content": "a"}, {"role": "user", "content": None}]
    assert prompt_text({"messages": messages}) == "a"


def test_default_answer_is_a_sentence_chosen_by_the_prompt() -> None:
    answer = plan_answer(CHAT, Scenario())
    assert answer.text in SENTENCES
    assert answer.completion_tokens == len(answer.text.split())
    assert answer.prompt_tokens == 3
    assert plan_answer(CHAT, Scenario()) == answer


@pytest.mark.parametrize("n", [0, 1, 5, 100, 1000])
def test_n_chunks_of_pool_words(n: int) -> None:
    answer = plan_answer(CHAT, Scenario(chunks=n))
    assert len(answer.chunks) == n
    assert len(answer.text.split()) == n
    assert all(chunk.strip() for chunk in answer.chunks)


def test_fixed_content_is_split_into_words_or_even_slices() -> None:
    words = plan_answer(CHAT, Scenario(content="  Hello  big world "))
    assert words.chunks == ("  Hello  ", "big ", "world ")
    assert plan_answer(CHAT, Scenario(content="abcdefg", chunks=3)).chunks == ("ab", "cd", "efg")
    assert plan_answer(CHAT, Scenario(content="ab", chunks=10)).chunks == ("a", "b")
    assert plan_answer(CHAT, Scenario(content="")).chunks == ()
