"""The Responses API through the real SDK: typed objects and the full stream event sequence."""

from __future__ import annotations

import openai
from fake_helpers import USER, assert_strictly_typed
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)
from pydantic import TypeAdapter

from wonkalytics.testing import FakeOpenAI

EXPECTED_SEQUENCE = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 5,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
EVENT_ADAPTER: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


def test_non_stream_response(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    response = client.responses.create(model="gpt-4o-mini", input="Tell me a fact", instructions="Be brief")
    assert_strictly_typed(response)
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == "gpt-4o-mini"
    assert response.instructions == "Be brief"
    assert response.output_text
    assert response.output[0].type == "message"
    assert response.usage is not None
    assert response.usage.input_tokens == 6  # words of instructions + input
    assert response.usage.output_tokens == len(response.output_text.split())
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert fake.bodies[-1] == {"model": "gpt-4o-mini", "input": "Tell me a fact", "instructions": "Be brief"}


def test_stream_events_parse_into_typed_models(client: openai.OpenAI) -> None:
    with client.responses.create(model="fake-chunks-5", input=USER, stream=True) as stream:
        events = list(stream)
    assert [event.type for event in events] == EXPECTED_SEQUENCE
    assert [event.sequence_number for event in events] == list(range(len(events)))
    for event in events:
        assert_strictly_typed(event)
        # The SDK first validates against the union and only falls back to building the model
        # unvalidated when that fails: make sure it never has to fall back.
        raw = event.model_dump(mode="json", by_alias=True, exclude_unset=True)
        assert type(EVENT_ADAPTER.validate_python(raw)) is type(event)
    deltas = [event.delta for event in events if isinstance(event, ResponseTextDeltaEvent)]
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    assert completed.response.output_text == "".join(deltas)
    assert completed.response.usage is not None
    assert completed.response.usage.output_tokens == 5
    created = events[0]
    assert created.type == "response.created"
    assert created.response.status == "in_progress"
    assert created.response.id == completed.response.id


def test_stream_text_equals_non_stream_and_chat_text(client: openai.OpenAI) -> None:
    # The answer depends on the prompt text only, whatever the endpoint or mode.
    response = client.responses.create(model="gpt-4o-mini", input=USER)
    with client.responses.create(model="gpt-4o-mini", input=USER, stream=True) as stream:
        text = "".join(e.delta for e in stream if isinstance(e, ResponseTextDeltaEvent))
    chat = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert text == response.output_text == chat.choices[0].message.content


def test_responses_stream_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(model="fake-chunks-7", input="hello") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) == 7
    assert final.output_text == "".join(deltas)


async def test_async_stream(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.responses.create(model="fake-chunks-5", input="hello", stream=True)
    async with stream:
        events = [event async for event in stream]
    assert [event.type for event in events] == EXPECTED_SEQUENCE
    completed = events[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    assert completed.response.output_text == "".join(e.delta for e in events if isinstance(e, ResponseTextDeltaEvent))


async def test_async_non_stream(aclient: openai.AsyncOpenAI) -> None:
    response = await aclient.responses.create(model="fake-chunks-3", input="hello")
    assert response.usage is not None and response.usage.output_tokens == 3
