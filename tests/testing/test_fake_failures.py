"""Injected failures surface as the SDK's own exceptions."""

from __future__ import annotations

import openai
import pytest
from fake_helpers import USER
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from wonkalytics.testing import FakeOpenAI, Scenario


def test_rate_limit(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="fake-error-429", messages=USER)
    error = info.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert isinstance(error.body, dict) and set(error.body) == {"message", "type", "param", "code"}
    assert error.response.headers["retry-after"] == "1"
    assert error.response.headers["retry-after-ms"] == "1000"
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert len(fake.requests) == 1  # max_retries=0: no retry


def test_server_error_on_stream(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="fake-error-500", messages=USER, stream=True)
    assert info.value.type == "server_error"
    assert "retry-after" not in info.value.response.headers


def test_custom_error_message_and_status(client: openai.OpenAI) -> None:
    scenario = Scenario(error=401, error_message="bad key, Charlie")
    with pytest.raises(openai.AuthenticationError, match="bad key, Charlie"):
        client.responses.create(model="gpt-4o-mini", input="hi", extra_body=scenario.extra_body())


async def test_async_rate_limit(aclient: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        await aclient.responses.create(model="fake-error-429", input="hi", stream=True)


def test_fail_attempts_lets_the_sdk_retry_succeed(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    # retry-after-ms keeps the SDK's wait at 1 ms; the second attempt gets a normal answer.
    scenario = Scenario(error=503, retry_after=0.001, fail_attempts=1)
    completion = client.with_options(max_retries=2).chat.completions.create(
        model="gpt-4o-mini", messages=USER, extra_body=scenario.extra_body()
    )
    assert completion.choices[0].message.content
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "1"]


def test_disconnect_mid_stream(client: openai.OpenAI) -> None:
    received: list[ChatCompletionChunk] = []
    model = "fake-chunks-10-disconnect_after-3"
    with (
        pytest.raises(openai.APIConnectionError),
        client.chat.completions.create(model=model, messages=USER, stream=True) as stream,
    ):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 1 + 3  # the role chunk, then 3 content chunks, then the cut
    assert all(c.choices[0].finish_reason is None for c in received)


async def test_async_disconnect_mid_stream(aclient: openai.AsyncOpenAI) -> None:
    received: list[ResponseStreamEvent] = []
    model = "fake-chunks-10-disconnect_after-4"
    stream = await aclient.responses.create(model=model, input="hi", stream=True)
    with pytest.raises(openai.APIConnectionError):
        async with stream:
            async for event in stream:
                received.append(event)
    assert [e.type for e in received].count("response.output_text.delta") == 4
    assert received[-1].type == "response.output_text.delta"


def test_disconnect_without_stream(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="fake-disconnect_after-0", messages=USER)


def test_error_event_mid_stream(client: openai.OpenAI) -> None:
    received: list[ChatCompletionChunk] = []
    scenario = Scenario(chunks=10, error_after=2, error_message="the river overflowed")
    with (
        pytest.raises(openai.APIError, match="the river overflowed") as info,
        client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True, extra_body=scenario.extra_body()
        ) as stream,
    ):
        for chunk in stream:
            received.append(chunk)
    assert type(info.value) is openai.APIError  # an error event, not a status or connection error
    assert info.value.type == "server_error"
    assert len(received) == 1 + 2


def test_error_event_mid_responses_stream(client: openai.OpenAI) -> None:
    received: list[ResponseStreamEvent] = []
    with (
        pytest.raises(openai.APIError) as info,
        client.responses.create(model="fake-chunks-10-error_after-3", input="hi", stream=True) as stream,
    ):
        for event in stream:
            received.append(event)
    assert type(info.value) is openai.APIError
    assert [e.type for e in received].count("response.output_text.delta") == 3


def test_error_after_without_stream_is_a_500(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fake-error_after-1", messages=USER)


def test_connection_survives_a_stream_error_event(client: openai.OpenAI) -> None:
    # An error event ends the body properly, so the next request on the same client just works.
    with (
        pytest.raises(openai.APIError),
        client.chat.completions.create(model="fake-error_after-0", messages=USER, stream=True) as stream,
    ):
        list(stream)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=USER).choices


@pytest.mark.parametrize(
    ("model", "extra_body", "param"),
    [
        ("fake-chunkz-3", None, "model"),
        ("fake-chunks", None, "model"),
        ("fake-chunks-many", None, "model"),
        ("gpt-4o-mini", {"fake_openai": {"delay_ms": -1}}, "fake_openai"),
        ("gpt-4o-mini", {"fake_openai": {"color": "purple"}}, "fake_openai"),
        ("gpt-4o-mini", {"fake_openai": "chunks=3"}, "fake_openai"),
    ],
)
def test_bad_scenarios_are_http_400(
    client: openai.OpenAI, model: str, extra_body: dict[str, object] | None, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=USER, extra_body=extra_body)
    assert info.value.param == param
