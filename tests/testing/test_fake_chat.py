"""Chat completions through the real SDK, sync and async, stream and not."""

from __future__ import annotations

import time

import openai
import pytest
from fake_helpers import PROMPT, USER, assert_strictly_typed
from openai.types.chat import ChatCompletionChunk

from wonkalytics.testing import FakeOpenAI, Scenario


def test_non_stream_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert_strictly_typed(completion)
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.system_fingerprint
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == len(PROMPT.split())
    assert completion.usage.completion_tokens == len(choice.message.content.split())
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_shape_without_usage(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    with client.chat.completions.create(model="fake-chunks-4", messages=USER, stream=True) as stream:
        chunks = list(stream)
    for chunk in chunks:
        assert_strictly_typed(chunk)
        assert chunk.object == "chat.completion.chunk"
        assert "usage" not in chunk.model_fields_set  # OpenAI omits it entirely without include_usage
    first, *content, last = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in content] != []
    assert len(content) == 4
    assert all(c.choices[0].finish_reason is None for c in [first, *content])
    assert last.choices[0].finish_reason == "stop"
    assert last.choices[0].delta.content is None
    assert len({c.id for c in chunks}) == 1
    assert "stream_options" not in fake.bodies[-1]


def test_stream_with_include_usage(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    stream = client.chat.completions.create(
        model="fake-chunks-6", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    with stream:
        chunks = list(stream)
    *with_choices, usage_chunk = chunks
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 6
    assert usage_chunk.usage.prompt_tokens == len(PROMPT.split())
    for chunk in with_choices:
        assert_strictly_typed(chunk)
        assert len(chunk.choices) == 1
        assert "usage" in chunk.model_fields_set and chunk.usage is None
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert fake.bodies[-1]["stream_options"] == {"include_usage": True}


def test_stream_text_equals_non_stream_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o", messages=USER)
    with client.chat.completions.create(model="gpt-4o", messages=USER, stream=True) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == completion.choices[0].message.content


def test_deterministic_content(client: openai.OpenAI) -> None:
    def ask(prompt: str) -> str | None:
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
        return completion.choices[0].message.content

    assert ask("same question") == ask("same question")
    answers = {ask(f"question number {i}") for i in range(20)}
    assert len(answers) > 1  # the prompt picks the sentence


def test_fixed_content_and_chunks_through_extra_body(client: openai.OpenAI) -> None:
    scenario = Scenario(content="Hello from the factory!", chunks=5)
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, extra_body=scenario.extra_body()
    ) as stream:
        pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) == 5
    assert "".join(pieces) == "Hello from the factory!"


def test_chat_completion_stream_helper(client: openai.OpenAI) -> None:
    # The SDK's accumulating helper must also accept the stream.
    with client.chat.completions.stream(model="fake-chunks-3", messages=USER) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta" and event.delta]
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "".join(deltas)
    assert len(deltas) == 3


def test_many_chunks(client: openai.OpenAI) -> None:
    with client.chat.completions.create(model="fake-chunks-1000", messages=USER, stream=True) as stream:
        chunks = [c for c in stream if c.choices and c.choices[0].delta.content]
    assert len(chunks) == 1000


def test_ten_chunk_stream_is_fast(client: openai.OpenAI) -> None:
    # Sanity bound only: Nagle + delayed ACK would make each request take 40 ms or more.
    client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # warm the connection
    durations = []
    for _ in range(5):
        start = time.perf_counter()
        with client.chat.completions.create(model="fake-chunks-10", messages=USER, stream=True) as stream:
            assert len(list(stream)) == 12
        durations.append(time.perf_counter() - start)
    assert min(durations) < 0.5  # typically ~3 ms; best of 5 shrugs off a loaded machine


def test_slow_stream_delay_is_observable(client: openai.OpenAI) -> None:
    # The server cannot send chunk i before start + i * delay, so the total is a hard lower bound.
    start = time.perf_counter()
    stream = client.chat.completions.create(model="fake-chunks-5-delay_ms-30", messages=USER, stream=True)
    with stream:
        assert len(list(stream)) == 7
    assert time.perf_counter() - start >= 5 * 0.030


def test_latency_before_first_byte(client: openai.OpenAI) -> None:
    start = time.perf_counter()
    slow = Scenario(latency_ms=60).extra_body()
    client.chat.completions.create(model="gpt-4o-mini", messages=USER, extra_body=slow)
    assert time.perf_counter() - start >= 0.060


async def test_async_non_stream(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert_strictly_typed(completion)
    assert completion.choices[0].message.content


async def test_async_stream_with_usage(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(
        model="fake-chunks-10", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks: list[ChatCompletionChunk] = []
    async with stream:
        async for chunk in stream:
            chunks.append(chunk)
    assert len(chunks) == 1 + 10 + 1 + 1  # role, content, stop, usage
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10


async def test_async_ten_chunk_stream_is_fast(aclient: openai.AsyncOpenAI) -> None:
    await aclient.chat.completions.create(model="gpt-4o-mini", messages=USER)
    durations = []
    for _ in range(5):
        start = time.perf_counter()
        stream = await aclient.chat.completions.create(model="fake-chunks-10", messages=USER, stream=True)
        async with stream:
            assert len([c async for c in stream]) == 12
        durations.append(time.perf_counter() - start)
    assert min(durations) < 0.5


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        ({"stream": False, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": True, "stream_options": "usage please"}, "stream_options"),
        ({"messages": []}, "messages"),
    ],
)
def test_invalid_requests_are_rejected_like_openai(client: openai.OpenAI, bad: dict[str, object], param: str) -> None:
    kwargs: dict[str, object] = {"model": "gpt-4o-mini", "messages": USER, **bad}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    assert info.value.param == param
