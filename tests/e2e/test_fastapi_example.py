"""examples/fastapi_sse.py end to end: uvicorn on a real port, an httpx streaming client, the offline
OpenAI server, rows read back with plain SQL."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import openai
import pytest
from tests.conftest import configure_default, read_rows
from tests.dashboard.server import running

import wonkalytics
from wonkalytics.recorder import Recorder, default_recorder
from wonkalytics.testing import FakeOpenAI, plan_answer, scenario_for

ROOT = Path(__file__).resolve().parents[2]

EXAMPLE = ROOT / "examples" / "fastapi_sse.py"

REQUEST = {
    "name": "Ada",
    "gender": "f",
    "competence": "analysis",
    "level": "senior",
    "fixed_test_results": "A+",
    "free_test_results": "excellent",
    "tone": "warm",
    "response_type": "summary",
    "language": "en",
}
TENANT = "11111111-2222-3333-4444-555555555555"
PRINCIPAL = {  # App Service / Container Apps form of Easy Auth's X-MS-CLIENT-PRINCIPAL
    "auth_typ": "aad",
    "name_typ": "name",
    "role_typ": "roles",
    "claims": [
        {"typ": "name", "val": "Ada Lovelace"},
        {"typ": "preferred_username", "val": "ada@example.com"},
        {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": TENANT},
    ],
}
HEADERS = {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(PRINCIPAL).encode()).decode()}
SLOW_MODEL = "fake-chunks-100-delay_ms-20"  # 100 tokens, 20 ms apart: 2 s unless the client leaves
DEADLINE = 10.0


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    """examples/fastapi_sse.py, imported by path (its module-level client needs a key at import)."""
    name = "wonkalytics_example_fastapi_sse"
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_API_KEY", "test-key")
        env.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        yield module


@pytest.fixture
def serve(example: ModuleType, fake: FakeOpenAI) -> Iterator[Callable[..., str]]:
    """Start the example app on the fake OpenAI server; returns its base URL. Stopped after the test."""
    with ExitStack() as stack:

        def start(model: str = "gpt-4o-mini") -> str:
            llm = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
            return stack.enter_context(running(example.create_app(llm, model=model)))  # the app closes llm

        yield start


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=DEADLINE) as client:
        yield client


def sse_events(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream response, as a browser's EventSource reads them."""
    event, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif not line.startswith(":"):  # ":" starts a comment (sse-starlette's pings)
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


def generate(http: httpx.Client, base_url: str, body: dict[str, Any] = REQUEST,
             headers: dict[str, str] = HEADERS) -> list[tuple[str, str]]:
    with http.stream("POST", f"{base_url}/generate", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(sse_events(response))


def table_rows(recorder: Recorder) -> list[dict[str, Any]]:
    settings = recorder.settings
    return read_rows(settings.url().render_as_string(hide_password=False), settings.table)


def flushed_rows(recorder: Recorder) -> list[dict[str, Any]]:
    assert wonkalytics.flush(DEADLINE)
    return table_rows(recorder)


def expected_answer(fake: FakeOpenAI) -> str:
    """The text the fake server planned for the last request (deterministic per prompt)."""
    body = fake.requests[-1].body
    return plan_answer(body, scenario_for(body["model"], body)).text


def check_stream_and_row(events: list[tuple[str, str]], row: dict[str, Any], fake: FakeOpenAI) -> None:
    kinds = [kind for kind, _ in events]
    assert kinds == ["data"] * (len(events) - 2) + ["wl_request_id", "elapsed_time"]
    assert len(events) > 3
    text = "".join(data for kind, data in events if kind == "data")
    assert text == expected_answer(fake)
    response_id, elapsed = events[-2][1], float(events[-1][1])
    assert response_id.startswith("chatcmpl-") and 0 <= elapsed < DEADLINE

    assert row["status"] == "ok" and row["error"] is None
    assert row["response"] == text
    assert row["response_id"] == response_id and row["id"] == response_id
    assert {key: row[key] for key in REQUEST} == REQUEST
    assert (row["username"], row["email"], row["tenant_id"]) == ("Ada Lovelace", "ada@example.com", TENANT)
    assert row["model"] == "gpt-4o-mini" and row["provider_type"] == "openai"
    assert row["system_msg"].startswith("Write a short competence summary in a warm tone")
    assert row["messages"].startswith("user:\nName: Ada\n")
    assert row["completion_tokens"] == len(events) - 2 and row["total_tokens"]
    tags = row["tags"]
    assert (json.loads(tags) if isinstance(tags, str) else tags) == ["competence", "example"]
    assert not [key for key in fake.requests[-1].body if key.startswith("wl_")]


def test_stream_sends_tokens_then_request_id_and_logs_one_row(
    serve: Callable[..., str], http: httpx.Client, recorder: Recorder, fake: FakeOpenAI
) -> None:
    events = generate(http, serve())
    [row] = flushed_rows(recorder)
    check_stream_and_row(events, row, fake)


def test_score_updates_the_row_and_unknown_ids_are_404(
    serve: Callable[..., str], http: httpx.Client, recorder: Recorder
) -> None:
    base_url = serve()
    events = generate(http, base_url)
    response_id = events[-2][1]
    # No flush here: /score waits for rows still queued, so scoring right after the stream works.
    scored = http.post(f"{base_url}/score", json={"response_id": response_id, "score": 87})
    assert scored.status_code == 200 and scored.json() == {"response_id": response_id, "score": 87}
    missing = http.post(f"{base_url}/score", json={"response_id": "chatcmpl-unknown", "score": 1})
    assert missing.status_code == 404
    [row] = table_rows(recorder)
    assert row["response_id"] == response_id and row["score"] == 87


def test_seed_auth_info_in_the_body_is_used_without_the_header(
    serve: Callable[..., str], http: httpx.Client, recorder: Recorder
) -> None:
    auth_info = {"clientPrincipal": {"userDetails": "bob@example.com",
                                     "claims": [{"typ": "name", "val": "Bob"}, {"typ": "tid", "val": "t-2"}]}}
    generate(http, serve(), body={**REQUEST, "auth_info": auth_info}, headers={})
    [row] = flushed_rows(recorder)
    assert (row["username"], row["email"], row["tenant_id"]) == ("Bob", "bob@example.com", "t-2")
    assert row["status"] == "ok"


def test_client_disconnect_mid_stream_logs_an_aborted_row_with_the_partial_answer(
    serve: Callable[..., str], http: httpx.Client, recorder: Recorder, fake: FakeOpenAI
) -> None:
    base_url = serve(model=SLOW_MODEL)
    seen: list[str] = []
    with http.stream("POST", f"{base_url}/generate", json=REQUEST, headers=HEADERS) as response:
        for kind, data in sse_events(response):
            assert kind == "data"
            seen.append(data)
            if len(seen) == 3:
                break  # leaving the block closes the connection: the browser tab went away
    # The row is queued only once the server has noticed the disconnect: poll, with a deadline.
    deadline = time.monotonic() + DEADLINE
    while not (rows := flushed_rows(recorder)):
        assert time.monotonic() < deadline, "no row was logged for the aborted stream"
        time.sleep(0.01)
    [row] = rows
    full = expected_answer(fake)
    assert row["status"] == "aborted"
    assert row["response"].startswith("".join(seen)) and len(row["response"]) < len(full)
    assert full.startswith(row["response"])
    assert row["model"] == SLOW_MODEL and row["name"] == "Ada" and row["email"] == "ada@example.com"
    assert row["response_id"] and row["completion_tokens"] is None  # the usage chunk never came


def test_an_llm_error_mid_stream_is_an_error_event_and_an_error_row(
    serve: Callable[..., str], http: httpx.Client, recorder: Recorder
) -> None:
    events = generate(http, serve(model="fake-error_after-3"))  # an SSE error event after 3 tokens
    assert [kind for kind, _ in events] == ["data"] * 3 + ["error"]
    [row] = flushed_rows(recorder)
    assert row["status"] == "error" and row["error"]
    assert row["response"] == "".join(data for kind, data in events if kind == "data")


@pytest.mark.db
def test_stream_and_score_on_postgresql(
    serve: Callable[..., str], http: httpx.Client, fake: FakeOpenAI, postgres_url: str, table_name: str,
    tmp_path: Path,
) -> None:
    configure_default(postgres_url, table_name, tmp_path / "spool")
    try:
        base_url = serve()
        events = generate(http, base_url)
        assert http.post(f"{base_url}/score", json={"response_id": events[-2][1], "score": 42}).status_code == 200
        assert wonkalytics.flush(DEADLINE)
        [row] = read_rows(postgres_url, table_name)
        check_stream_and_row(events, row, fake)
        assert row["score"] == 42
    finally:
        default_recorder.shutdown(5)
