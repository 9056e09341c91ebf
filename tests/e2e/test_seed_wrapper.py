"""The seed README's streaming example loop, unchanged, on the current SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai as openai_module
import pytest
from tests.capture.test_chat import rows

import wonkalytics.openai_wrapper as openai_wrapper
from wonkalytics.analytics import score, update_row_property
from wonkalytics.recorder import Recorder
from wonkalytics.testing import FakeOpenAI
from wonkalytics.testing.promptlayer import FakePromptLayer

REQUEST = {
    "name": "Ada", "gender": "f", "competence": "analysis", "level": "senior", "fixed_test_results": "8/10",
    "free_test_results": "good", "motivation_summary": None, "other_notes": None, "tone": "friendly",
    "response_type": "summary", "language": "en",
    "auth_info": {"clientPrincipal": {
        "claims": [{"typ": "name", "val": "Test username"},
                   {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": "tenant-1"}],
        "userDetails": "test@testmail.eu", "identityProvider": "aad"}},
}
MESSAGES = [
    {"role": "system",
     "content": "Guess a number between 1 and 10. Respond very shortly with just a single short sentence."},
    {"role": "user", "content": "You must guess a number between 1 and 10."},
]


@pytest.fixture
def seed_env(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePromptLayer]:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("PROMPTLAYER_API_KEY", "pl-test")
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    # The key turns the PromptLayer sink on: point it at the local fake, never at the internet, and
    # put the module attribute the seed's example sets back afterwards.
    monkeypatch.setattr(openai_wrapper, "api_key", None)
    with FakePromptLayer(api_key="pl-test") as promptlayer:
        monkeypatch.setenv("WONKALYTICS_PROMPTLAYER_BASE_URL", promptlayer.url)
        yield promptlayer


async def test_the_seed_example_loop_runs_unchanged(seed_env: None, recorder: Recorder) -> None:
    import os

    # --- the seed's endpoint body, as written (its undefined `complete_response` aside) ---
    openai_wrapper.api_key = os.getenv("PROMPTLAYER_API_KEY")
    openai = openai_wrapper.OpenAIWrapper(openai_module, function_name="openai")
    openai.api_key = os.getenv("OPENAI_API_KEY")
    messages = MESSAGES

    async def event_publisher() -> Any:
        start_time = time.time()
        completion = openai.ChatCompletion.create(
            pl_tags=["competence", "tests"],
            request=REQUEST,
            model="gpt-4-1106-preview",
            messages=messages,
            temperature=1,
            max_tokens=4096,
            top_p=1,
            frequency_penalty=0.5,
            presence_penalty=0.5,
            return_pl_id=True,
            stream=True,
        )
        for chunk in completion:
            delta = chunk[0].choices[0].delta
            try:
                yield dict(event="data", data=delta.content.replace("\n\n", " \n\n"))
            except:  # noqa: E722 - the seed's own loop
                if chunk[1]:
                    elapsed_time = time.time() - start_time
                    yield dict(event="wl_request_id", data=chunk[1])
                    yield dict(event="elapsed_time", data=elapsed_time)
            await asyncio.sleep(0.0001)

    events = [event async for event in event_publisher()]
    openai.close()
    # -----------------------------------------------------------------------------------------
    data = "".join(event["data"] for event in events if event["event"] == "data")
    [request_id] = [event["data"] for event in events if event["event"] == "wl_request_id"]
    assert [event["event"] for event in events][-2:] == ["wl_request_id", "elapsed_time"]
    assert update_row_property(request_id, "summary", "complete") is True
    assert score(request_id, 100) is True
    [row] = rows(recorder)
    assert row["response_id"] == request_id and row["response"] == data and row["status"] == "ok"
    assert (row["name"], row["level"], row["language"], row["tone"]) == ("Ada", "senior", "en", "friendly")
    assert (row["username"], row["email"], row["tenant_id"]) == ("Test username", "test@testmail.eu", "tenant-1")
    assert (row["model"], row["temperature"], row["max_tokens"], row["top_p"]) == ("gpt-4-1106-preview", 1.0, 4096, 1.0)
    assert row["system_msg"] == MESSAGES[0]["content"]
    assert row["tags"] == '["competence", "tests"]'
    assert (row["score"], row["summary"]) == (100, "complete")


def test_response_id_is_none_until_the_final_chunk(seed_env: None, recorder: Recorder) -> None:
    openai = openai_wrapper.OpenAIWrapper(openai_module, function_name="openai")
    pairs = list(openai.ChatCompletion.create(model="fake-chunks-5", messages=MESSAGES, stream=True,
                                              return_pl_id=True))
    assert [rid for _, rid in pairs[:-1]] == [None] * (len(pairs) - 1)
    assert pairs[-1][1] is not None and pairs[-1][1].startswith("chatcmpl-")
    assert all(chunk.choices for chunk, _ in pairs)  # never the usage-only chunk
    openai.close()
    assert rows(recorder)[0]["response_id"] == pairs[-1][1]


def test_non_stream_and_without_ids(seed_env: None, recorder: Recorder) -> None:
    openai = openai_wrapper.OpenAIWrapper(openai_module)
    completion, response_id = openai.ChatCompletion.create(model="gpt-4o", messages=MESSAGES, return_pl_id=True)
    assert completion.id == response_id
    plain = openai.ChatCompletion.create(model="gpt-4o", messages=MESSAGES)
    assert isinstance(plain, openai_module.types.chat.ChatCompletion)
    chunks = list(openai.ChatCompletion.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert all(isinstance(c, openai_module.types.chat.ChatCompletionChunk) for c in chunks)
    assert openai.OpenAI is openai_module.OpenAI  # everything else is the module's
    openai.close()
    assert len(rows(recorder)) == 3


async def test_acreate_is_the_async_twin(seed_env: None, recorder: Recorder) -> None:
    openai = openai_wrapper.OpenAIWrapper(openai_module)
    pairs = [pair async for pair in await openai.ChatCompletion.acreate(
        model="fake-chunks-4", messages=MESSAGES, stream=True, return_pl_id=True, request={"name": "Bo"})]
    await openai.aclose()
    assert pairs[-1][1] and all(rid is None for _, rid in pairs[:-1])
    [row] = rows(recorder)
    assert row["response_id"] == pairs[-1][1] and row["name"] == "Bo"


def test_azure_settings_are_honoured(fake: FakeOpenAI, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", fake.azure_endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key")
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    openai = openai_wrapper.OpenAIWrapper(openai_module)
    pairs = list(openai.ChatCompletion.create(model="my-deployment", messages=MESSAGES, stream=True,
                                              return_pl_id=True))
    openai.close()
    assert fake.requests[-1].path.startswith("/openai/deployments/my-deployment/")
    [row] = rows(recorder)
    assert row["provider_type"] == "azure" and row["response_id"] == pairs[-1][1]
