"""Routing, Azure URLs, recording, the HTTP plumbing and the server's life cycle."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import openai
import pytest
from fake_helpers import USER, assert_strictly_typed
from openai.types.responses import ResponseTextDeltaEvent

from wonkalytics.testing import FAKE_MODELS, FakeOpenAI, Scenario

API_VERSION = "2024-10-21"


def test_urls(fake: FakeOpenAI) -> None:
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"
    assert fake.azure_endpoint == f"http://127.0.0.1:{fake.port}"
    assert fake.port > 0


def test_azure_chat_uses_the_deployment_as_model(fake: FakeOpenAI) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=fake.azure_endpoint, api_key="x", api_version=API_VERSION, max_retries=0
    ) as azure:
        completion = azure.chat.completions.create(model="my-gpt4o", messages=USER)
        with azure.chat.completions.create(
            model="fake-chunks-3", messages=USER, stream=True, stream_options={"include_usage": True}
        ) as stream:
            chunks = list(stream)
    assert_strictly_typed(completion)
    assert completion.model == "my-gpt4o"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3  # scenario by deployment
    first, second = fake.requests
    assert first.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert first.query == {"api-version": API_VERSION}
    assert first.headers["api-key"] == "x"
    assert second.path == "/openai/deployments/fake-chunks-3/chat/completions"


def test_azure_client_with_a_fixed_deployment(fake: FakeOpenAI) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=fake.azure_endpoint,
        azure_deployment="fake-chunks-4",
        api_key="x",
        api_version=API_VERSION,
        max_retries=0,
    ) as azure:
        completion = azure.chat.completions.create(model="whatever", messages=USER)
        response = azure.responses.create(model="fake-chunks-2", input="hi")
    assert completion.model == "fake-chunks-4"
    assert completion.usage is not None and completion.usage.completion_tokens == 4
    assert response.usage is not None and response.usage.output_tokens == 2
    assert [r.path for r in fake.requests] == [
        "/openai/deployments/fake-chunks-4/chat/completions",
        "/openai/responses",
    ]


async def test_async_azure_responses_stream(fake: FakeOpenAI) -> None:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=fake.azure_endpoint, api_key="x", api_version=API_VERSION, max_retries=0
    ) as azure:
        stream = await azure.responses.create(model="fake-chunks-3", input="hi", stream=True)
        async with stream:
            events = [event async for event in stream]
    assert len([e for e in events if isinstance(e, ResponseTextDeltaEvent)]) == 3
    assert events[-1].type == "response.completed"
    assert fake.requests[0].path == "/openai/responses"
    assert fake.requests[0].query == {"api-version": API_VERSION}


def test_models(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == list(FAKE_MODELS)
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"


def test_unknown_path_is_an_openai_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.post("/embeddingz", body={"input": "x"}, cast_to=object)
    assert info.value.code == "unknown_url"
    assert "POST /v1/embeddingz" in info.value.message


def test_requests_record_exactly_what_reached_the_server(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    scenario = Scenario(chunks=2)
    client.chat.completions.create(model="gpt-4o-mini", messages=USER, temperature=0.5)
    with client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, extra_body=scenario.extra_body()
    ) as stream:
        list(stream)
    plain, streamed = fake.requests
    assert plain.method == "POST" and plain.path == "/v1/chat/completions"
    assert plain.body == {"model": "gpt-4o-mini", "messages": USER, "temperature": 0.5}
    assert plain.headers["authorization"] == "Bearer test"
    assert streamed.body == {"model": "gpt-4o-mini", "messages": USER, "stream": True, "fake_openai": {"chunks": 2}}
    assert not any(key.startswith("wl_") for body in fake.bodies for key in body)
    fake.clear()
    assert fake.requests == [] and fake.bodies == []


def test_requests_are_recorded_from_many_threads(fake: FakeOpenAI) -> None:
    def worker(n: int) -> None:
        with openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0) as sdk:
            for i in range(5):
                message = {"role": "user", "content": f"{n}/{i}"}
                sdk.chat.completions.create(model="fake-chunks-2", messages=[message])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contents = sorted(body["messages"][0]["content"] for body in fake.bodies)
    assert contents == sorted(f"{n}/{i}" for n in range(8) for i in range(5))


def test_raw_http_keep_alive_chunked_and_errors(fake: FakeOpenAI) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        body = json.dumps({"model": "fake-chunks-2", "messages": USER, "stream": True})
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        assert response.getheader("Transfer-Encoding") == "chunked"
        events = response.read().decode().split("\n\n")
        assert events[-2:] == ["data: [DONE]", ""]
        assert all(e.startswith("data: {") for e in events[:-2])

        first_socket = conn.sock
        conn.request("POST", "/v1/chat/completions", "{not json", {"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 400
        assert json.loads(response.read())["error"]["type"] == "invalid_request_error"

        conn.request("GET", "/nowhere")
        response = conn.getresponse()
        assert response.status == 404
        assert set(json.loads(response.read())["error"]) == {"message", "type", "param", "code"}
        assert conn.sock is first_socket  # one connection for all three requests
    finally:
        conn.close()


def test_stop_closes_idle_keep_alive_connections() -> None:
    fake = FakeOpenAI().start()
    with openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0) as sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=USER)  # leaves a pooled connection open
        fake.stop()  # must not wait for the client to hang up
        with pytest.raises(openai.APIConnectionError):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(fake.requests) == 1  # still readable after stop()


def test_stop_interrupts_a_slow_stream() -> None:
    fake = FakeOpenAI().start()
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        body = json.dumps({"model": "fake-chunks-100-delay_ms-1000", "messages": USER, "stream": True})
        conn.request("POST", "/v1/chat/completions", body)
        response = conn.getresponse()  # headers arrive; the stream would take 100 s
        start = time.perf_counter()
        fake.stop()
        assert time.perf_counter() - start < 5
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        conn.close()


def test_no_thread_outlives_the_server() -> None:
    before = set(threading.enumerate())
    with FakeOpenAI() as fake, openai.OpenAI(base_url=fake.base_url, api_key="t", max_retries=0) as sdk:
        for _ in range(3):
            with sdk.chat.completions.create(model="fake-chunks-3", messages=USER, stream=True) as stream:
                list(stream)
    assert set(threading.enumerate()) - before == set()


def test_lifecycle_errors() -> None:
    fake = FakeOpenAI()
    with pytest.raises(RuntimeError, match="never started"):
        _ = fake.base_url
    fake.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            fake.start()
    finally:
        fake.stop()
    fake.stop()  # idempotent


def test_fixed_port_is_honoured() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FakeOpenAI(port=port) as fake:
        assert fake.port == port


def test_python_dash_m_serves_until_ctrl_c() -> None:
    command = [sys.executable, "-m", "wonkalytics.testing", "--port", "0", "--quiet"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:(\d+)", banner)
            assert match, banner
            assert "OPENAI_BASE_URL" in process.stdout.readline()
            base_url = f"http://127.0.0.1:{match[1]}/v1"
            with openai.OpenAI(base_url=base_url, api_key="anything", max_retries=0) as sdk:
                assert sdk.chat.completions.create(model="gpt-4o-mini", messages=USER).choices
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_server_bug_is_an_openai_500(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise KeyError("oops")

    monkeypatch.setattr("wonkalytics.testing.payloads.chat_completion", broken)
    with pytest.raises(openai.InternalServerError, match="Fake OpenAI server error: KeyError"):
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    monkeypatch.undo()
    assert client.chat.completions.create(model="gpt-4o-mini", messages=USER).choices  # still serving
    assert "KeyError" in capsys.readouterr().err  # the traceback is printed, not swallowed
