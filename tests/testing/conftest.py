"""Fixtures: real SDK clients pointed at the session's fake OpenAI server (``fake``, tests/conftest.py).

Clients use ``max_retries=0`` so injected failures surface at once instead of being retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest

from wonkalytics.testing import FakeOpenAI


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
async def aclient(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0) as sdk:
        yield sdk
