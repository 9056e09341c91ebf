"""Clients for the capture tests: a raw SDK client and a wrapped one, both on the offline server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest

import wonkalytics
from wonkalytics.recorder import Recorder
from wonkalytics.testing import FakeOpenAI


@pytest.fixture
def raw(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as client:
        yield client


@pytest.fixture
def client(raw: openai.OpenAI, recorder: Recorder) -> openai.OpenAI:
    return wonkalytics.wrap(raw)


@pytest.fixture
async def araw(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as client:
        yield client


@pytest.fixture
def aclient(araw: openai.AsyncOpenAI, recorder: Recorder) -> openai.AsyncOpenAI:
    return wonkalytics.wrap(araw)
