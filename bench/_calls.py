"""Timed LLM calls shared by the bench scripts: pre-rendered SSE bodies served through the real SDK.

The body the offline server (``wonkalytics.testing.FakeOpenAI``) would send is rendered once and handed
to the real ``openai`` SDK through ``httpx2.MockTransport``, so the SDK parses real bytes and no socket
or server thread runs inside the clock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from _harness import perf_ns

MESSAGES = [{"role": "user", "content": "How fast does the chocolate river flow?"}]
USAGE = {"stream_options": {"include_usage": True}}
BASE_URL = "http://bench.invalid/v1"


# --- the SSE bodies the offline server sends -------------------------------------------------------


def sse_events(chunks: int, include_usage: bool) -> tuple[bytes, ...]:
    """The SSE events of a ``fake-chunks-N`` chat stream, exactly as ``FakeOpenAI`` renders them."""
    from wonkalytics.testing import Scenario, payloads, plan_answer

    model = f"fake-chunks-{chunks}"
    answer = plan_answer({"messages": MESSAGES}, Scenario(chunks=chunks))
    stream = payloads.chat_stream(model, answer, include_usage)
    return stream.prologue + stream.deltas + stream.epilogue


class Bodies:
    """Pre-rendered bodies, keyed by (chunks, include_usage); answers like the server would."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        self.events = {(n, usage): sse_events(n, usage) for n in sizes for usage in (False, True)}

    def _pick(self, request: Any) -> tuple[bytes, ...]:
        body = json.loads(request.content)
        chunks = int(body["model"].rsplit("-", 1)[1])
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return self.events[(chunks, usage)]

    def sync_handler(self, request: Any) -> Any:
        import httpx2

        # One piece per event, as the server writes them (chunked transfer encoding).
        events = self._pick(request)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=iter(events))

    def async_handler(self, request: Any) -> Any:
        import httpx2

        async def pieces(events: tuple[bytes, ...]) -> AsyncIterator[bytes]:
            for event in events:
                yield event

        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=pieces(self._pick(request)))


def mock_client(bodies: Bodies, *, is_async: bool) -> Any:
    import httpx2
    import openai

    if is_async:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(bodies.async_handler))
        return openai.AsyncOpenAI(api_key="bench", base_url=BASE_URL, max_retries=0, http_client=http)
    http_sync = httpx2.Client(transport=httpx2.MockTransport(bodies.sync_handler))
    return openai.OpenAI(api_key="bench", base_url=BASE_URL, max_retries=0, http_client=http_sync)


# --- one timed call, sync and async ----------------------------------------------------------------


def text_of(stream: Any) -> str:
    """What an app does with a stream: keep the text."""
    parts = []
    for chunk in stream:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                parts.append(content)
    return "".join(parts)


async def atext_of(stream: Any) -> str:
    parts = []
    async for chunk in stream:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                parts.append(content)
    return "".join(parts)


def whole_call(client: Any, model: str, extra: dict[str, Any], keep_text: bool = False) -> int:
    """create + iterate to the end + close."""
    start = perf_ns()
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **extra)
    if keep_text:
        text_of(stream)
    else:
        for _ in stream:
            pass
    stream.close()
    return perf_ns() - start


async def awhole_call(client: Any, model: str, extra: dict[str, Any], keep_text: bool = False) -> int:
    start = perf_ns()
    stream = await client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **extra)
    if keep_text:
        await atext_of(stream)
    else:
        async for _ in stream:
            pass
    await stream.close()
    return perf_ns() - start


def first_chunk(client: Any, model: str, extra: dict[str, Any]) -> int:
    """create + the first chunk; the stream is closed after the clock stops."""
    start = perf_ns()
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **extra)
    next(stream)
    elapsed = perf_ns() - start
    stream.close()
    return elapsed


async def afirst_chunk(client: Any, model: str, extra: dict[str, Any]) -> int:
    start = perf_ns()
    stream = await client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **extra)
    await stream.__anext__()
    elapsed = perf_ns() - start
    await stream.close()
    return elapsed
