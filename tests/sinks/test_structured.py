"""record/structured.py: the structured view of real calls (chat and Responses API, stream or not)."""

from __future__ import annotations

import json

import openai
from tests.sinks.conftest import MESSAGES, Call

from wonkalytics.interaction import Interaction
from wonkalytics.record.structured import CALL_KEYS, call_view, json_safe


def test_non_stream_chat_keeps_the_sdks_response_and_arguments(call: Call) -> None:
    interaction = call("chat", temperature=0.5, max_tokens=50, wl_tags=["a", "b"], wl_metadata={"n": 1})
    view = call_view(interaction)
    assert tuple(view) == CALL_KEYS
    json.dumps(view)  # JSON-safe, as the spool needs
    assert view["api"] == "chat" and view["status"] == "ok" and view["stream"] is False
    assert view["kwargs"]["temperature"] == 0.5 and view["kwargs"]["max_tokens"] == 50
    assert not any(key.startswith("wl_") for key in view["kwargs"])
    assert view["messages"] == MESSAGES
    assert view["response"] == interaction.response.model_dump(mode="json")
    assert view["response"]["object"] == "chat.completion"
    assert view["response_id"] == interaction.response_id and view["response_id"].startswith("chatcmpl-")
    assert view["usage"]["prompt_tokens"] == interaction.prompt_tokens > 0
    assert view["finish_reason"] == "stop"
    assert view["tags"] == ["a", "b"] and view["metadata"] == {"n": 1}
    assert view["provider_type"] == "openai" and view["server_address"] == "127.0.0.1"


def test_a_chat_stream_is_assembled_in_the_chat_completion_shape(call: Call) -> None:
    interaction = call("chat", stream=True, model="fake-chunks-5")
    view = call_view(interaction)
    response = view["response"]
    assert response["object"] == "chat.completion" and response["id"] == interaction.response_id
    assert response["choices"][0]["message"] == {"role": "assistant", "content": interaction.response_text}
    assert response["choices"][0]["finish_reason"] == "stop"
    assert response["usage"]["completion_tokens"] == 5 == view["usage"]["completion_tokens"]
    assert view["stream"] is True and view["ttft_ms"] is not None
    assert view["kwargs"]["stream_options"] == {"include_usage": True}  # what the SDK was really sent


def test_responses_api_view(call: Call) -> None:
    interaction = call("responses")
    view = call_view(interaction)
    assert view["api"] == "responses"
    assert view["messages"] == [{"role": "system", "content": "Answer in one short sentence."},
                                {"role": "user", "content": "Guess a number between 1 and 10."}]
    assert view["response"]["object"] == "response" and view["response"]["id"].startswith("resp_")
    assert view["finish_reason"] == "completed"


def test_error_and_abort(call: Call) -> None:
    error = call_view(call("chat", model="fake-error-429"))
    assert error["status"] == "error" and error["error_type"] == "RateLimitError" and error["response"] is None
    interaction = call("chat", stream=True, model="fake-chunks-20", abort=4)
    aborted = call_view(interaction)
    assert aborted["status"] == "aborted" and aborted["error"] is None
    partial = aborted["response"]["choices"][0]["message"]["content"]
    assert partial == interaction.response_text and partial  # the partial text, in the completion shape
    assert aborted["response"]["object"] == "chat.completion"


def test_sentinels_headers_and_objects_are_made_safe() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    interaction = Interaction(
        api="chat", event_id="e", start_time=1.0, end_time=2.0,
        params={"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_p": openai.NOT_GIVEN,
                "extra_headers": {"Authorization": "Bearer secret"}, "user": Odd(), "seed": openai.omit},
    )
    view = call_view(interaction)
    assert view["kwargs"] == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "odd"}
    assert "secret" not in json.dumps(view)
    assert json_safe(float("nan")) == "nan"


def test_redaction_and_secrets_reach_the_structured_call_too() -> None:
    from wonkalytics.interaction import Interaction
    from wonkalytics.record.build import record_builder
    from wonkalytics.record.redact import redactor
    from wonkalytics.record.secrets import drop_secrets
    from wonkalytics.record.structured import call_view

    interaction = Interaction(
        api="chat", event_id="e1", start_time=1.0, end_time=2.0, response_text="mail me at ada@example.com",
        params={"model": "m", "messages": [{"role": "user", "content": "I am bob@example.com"}]},
    )
    scrub = redactor("email")
    assert scrub is not None
    record = record_builder(call_view=call_view, transforms=[drop_secrets, scrub])(interaction)
    assert record.call is not None
    text = str(record.call)
    assert "example.com" not in text and "[email]" in text

    def picky(row: dict[str, object]) -> dict[str, object]:
        return {**row, "messages": str(row["messages"]).upper()} if isinstance(row.get("messages"), str) else \
            {**row, "messages": row["messages"].upper()}  # type: ignore[union-attr]

    record = record_builder(call_view=call_view, transforms=[picky])(interaction)
    assert record.call is not None and "messages" not in record.call and "response" not in record.call
