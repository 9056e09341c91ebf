"""The seed's ``openai_wrapper.api_key`` (the PromptLayer key), set after import, reaches the recorder."""

from __future__ import annotations

import openai as openai_module
import pytest
from tests.sinks.conftest import MESSAGES

import wonkalytics.openai_wrapper as openai_wrapper
from wonkalytics.recorder import Recorder, default_recorder
from wonkalytics.testing import FakeOpenAI


async def test_a_key_set_after_import_enables_promptlayer_at_the_next_call(
    fake: FakeOpenAI, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys: list[str] = []
    monkeypatch.setattr(default_recorder, "enable_promptlayer", keys.append)
    monkeypatch.setattr(openai_wrapper, "api_key", None)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    openai = openai_wrapper.OpenAIWrapper(openai_module, function_name="openai")
    openai.api_key = "sk-test"
    openai.ChatCompletion.create(model="gpt-4o-mini", messages=MESSAGES)
    assert keys == []  # no key, nothing enabled
    openai_wrapper.api_key = "pl_set_later"  # as the seed's endpoint does, inside the handler
    for _chunk in openai.ChatCompletion.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass
    await openai.ChatCompletion.acreate(model="gpt-4o-mini", messages=MESSAGES)
    assert keys == ["pl_set_later", "pl_set_later"]  # every call hands it over (idempotent in the recorder)
    await openai.aclose()
