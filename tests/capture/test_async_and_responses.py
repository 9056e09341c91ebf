"""Async chat streams, the Responses API and Azure clients through the wrapper."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import Response
from tests.capture.test_chat import MESSAGES, comparable, rows

import wonkalytics
from wonkalytics.capture.client import (
    AsyncRecordingCompletions,
    AsyncRecordingResponses,
    RecordingCompletions,
    RecordingResponses,
)
from wonkalytics.recorder import Recorder
from wonkalytics.testing import FakeOpenAI, Scenario


async def test_async_stream_is_the_sdks_async_stream(
    aclient: openai.AsyncOpenAI, araw: openai.AsyncOpenAI, recorder: Recorder, fake: FakeOpenAI
) -> None:
    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    wrapped = [chunk async for chunk in stream]
    plain = [c async for c in await araw.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                                  stream=True)]
    assert all(type(chunk) is ChatCompletionChunk for chunk in wrapped)
    assert [comparable(c) for c in wrapped] == [comparable(c) for c in plain]
    [row] = rows(recorder)
    assert row["status"] == "ok" and row["response_id"] == stream.response_id
    assert row["response"] == "".join(c.choices[0].delta.content or "" for c in wrapped)
    assert row["total_tokens"]


async def test_async_with_block_and_early_close(aclient: openai.AsyncOpenAI, recorder: Recorder) -> None:
    async with await aclient.chat.completions.create(
        model="fake-chunks-20", messages=MESSAGES, stream=True
    ) as stream:
        async for _chunk in stream:
            break
    [row] = rows(recorder)
    assert row["status"] == "aborted"


async def test_a_cancelled_task_logs_an_aborted_row(aclient: openai.AsyncOpenAI, recorder: Recorder) -> None:
    first_chunk = asyncio.Event()

    async def consume() -> None:  # like an SSE endpoint whose client went away
        stream = await aclient.chat.completions.create(
            model="fake-chunks-50-delay_ms-20", messages=MESSAGES, stream=True
        )
        async for _chunk in stream:
            first_chunk.set()

    task = asyncio.create_task(consume())
    await first_chunk.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = rows(recorder)
    assert row["status"] == "aborted"


async def test_fifty_concurrent_streams_give_fifty_rows_with_their_own_text(
    aclient: openai.AsyncOpenAI, recorder: Recorder
) -> None:
    async def one(n: int) -> tuple[str, str]:
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, wl_request={"name": f"user-{n}"},
            extra_body=Scenario(content=f"answer number {n}", chunks=5, delay_ms=1).extra_body(),
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        return f"user-{n}", text

    results = dict(await asyncio.gather(*(one(n) for n in range(50))))
    table = {row["name"]: row["response"] for row in rows(recorder)}
    assert table == results and len(table) == 50
    assert all(text == f"answer number {name.split('-')[1]}" for name, text in table.items())


async def test_async_error_before_the_stream(aclient: openai.AsyncOpenAI, recorder: Recorder) -> None:
    with pytest.raises(openai.InternalServerError):
        await aclient.chat.completions.create(model="fake-error-500", messages=MESSAGES, stream=True)
    [row] = rows(recorder)
    assert row["status"] == "error" and "InternalServerError" in row["error"]


def test_responses_stream_and_non_stream(client: openai.OpenAI, recorder: Recorder, fake: FakeOpenAI) -> None:
    stream = client.responses.create(model="gpt-4o-mini", instructions="Be brief.", input="Hello there",
                                     stream=True, wl_request={"name": "Ada"})
    deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
    assert "stream_options" not in fake.requests[-1].body  # the Responses API gets exactly our arguments
    response = client.responses.create(
        model="gpt-4o-mini", input=[{"role": "user", "content": "Hi"}], max_output_tokens=64
    )
    assert type(response) is Response
    streamed, plain = rows(recorder)
    assert streamed["response"] == "".join(deltas) and streamed["status"] == "ok"
    assert streamed["system_msg"] == "Be brief." and streamed["messages"] == "user:\nHello there\n\n"
    assert streamed["response_id"].startswith("resp_") and streamed["response_id"] == stream.response_id
    assert streamed["prompt_tokens"] and streamed["completion_tokens"] == len(deltas)
    assert streamed["name"] == "Ada"
    assert plain["response"] == response.output_text and plain["response_id"] == response.id
    assert plain["max_tokens"] == 64 and plain["messages"] == "user:\nHi\n\n"


async def test_async_responses_stream(aclient: openai.AsyncOpenAI, recorder: Recorder) -> None:
    stream = await aclient.responses.create(model="gpt-4o-mini", input="Hello", stream=True)
    text = "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])
    [row] = rows(recorder)
    assert row["response"] == text and row["status"] == "ok" and row["total_tokens"]


def test_azure_client(fake: FakeOpenAI, recorder: Recorder) -> None:
    azure = wonkalytics.wrap(openai.AzureOpenAI(
        azure_endpoint=fake.azure_endpoint, api_key="azure-key", api_version="2024-10-21", max_retries=0
    ))
    assert isinstance(azure, openai.AzureOpenAI)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in azure.chat.completions.create(model="my-deployment", messages=MESSAGES, stream=True)
        if c.choices
    )
    [row] = rows(recorder)
    assert row["provider_type"] == "azure" and row["model"] == "my-deployment" and row["response"] == text


async def test_async_azure_client(fake: FakeOpenAI, recorder: Recorder) -> None:
    azure = wonkalytics.wrap(openai.AsyncAzureOpenAI(
        azure_endpoint=fake.azure_endpoint, api_key="azure-key", api_version="2024-10-21", max_retries=0
    ))
    completion = await azure.chat.completions.create(model="my-deployment", messages=MESSAGES)
    [row] = rows(recorder)
    assert row["provider_type"] == "azure" and row["response"] == completion.choices[0].message.content
    await azure.close()


@pytest.mark.parametrize(("sync_cls", "async_cls"), [
    (RecordingCompletions, AsyncRecordingCompletions), (RecordingResponses, AsyncRecordingResponses)])
def test_sync_and_async_twins_accept_the_same_arguments(sync_cls: Any, async_cls: Any) -> None:
    assert inspect.signature(sync_cls.create) == inspect.signature(async_cls.create)
    sdk_sync, sdk_async = sync_cls.__mro__[1], async_cls.__mro__[1]
    sync_params = set(inspect.signature(sdk_sync.create).parameters)
    async_params = set(inspect.signature(sdk_async.create).parameters)
    assert sync_params == async_params  # the SDK's twins agree, and ours forward everything


def test_wrap_rejects_what_is_not_an_openai_client() -> None:
    with pytest.raises(TypeError, match=r"openai\.OpenAI"):
        wonkalytics.wrap(object())  # type: ignore[type-var]


@pytest.mark.parametrize(("api_version", "asked"), [("2024-10-21", True), ("2024-06-01", False)])
def test_azure_usage_chunk_only_asked_where_the_api_version_supports_it(
    fake: FakeOpenAI, recorder: Recorder, api_version: str, asked: bool
) -> None:
    azure = wonkalytics.wrap(openai.AzureOpenAI(
        azure_endpoint=fake.azure_endpoint, api_key="azure-key", api_version=api_version, max_retries=0
    ))
    chunks = list(azure.chat.completions.create(model="my-deployment", messages=MESSAGES, stream=True))
    assert ("stream_options" in fake.requests[-1].body) is asked
    assert all(chunk.choices for chunk in chunks)
    azure.close()


def test_the_sdks_stream_helpers_are_recorded_too(client: openai.OpenAI, recorder: Recorder) -> None:
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as chat_stream:
        for _event in chat_stream:
            pass
        chat_text = chat_stream.get_final_completion().choices[0].message.content
    with client.responses.stream(model="gpt-4o-mini", input="Hi") as responses_stream:
        for _event in responses_stream:
            pass
        responses_text = responses_stream.get_final_response().output_text
    chat_row, responses_row = rows(recorder)
    assert (chat_row["status"], chat_row["response"]) == ("ok", chat_text)
    assert (responses_row["status"], responses_row["response"]) == ("ok", responses_text)
