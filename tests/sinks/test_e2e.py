"""The sinks in their lanes, through wonkalytics.configure(): the seed's example with a PromptLayer key,
PromptLayer down or slow, SQL down, one sink black-holed, JSON lines from two processes, spans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai as openai_module
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.conftest import configure_default, read_rows
from tests.sinks.conftest import MESSAGES

import wonkalytics
import wonkalytics.openai_wrapper as openai_wrapper
from wonkalytics.recorder import Recorder, default_recorder
from wonkalytics.sinks import promptlayer
from wonkalytics.testing import FakeOpenAI
from wonkalytics.testing.promptlayer import FakePromptLayer
from wonkalytics.testing.proxy import FaultProxy

KEY = "pl_e2e_secret_key_42"
REQUEST = {"name": "Ada", "level": "senior", "language": "en",
           "auth_info": {"clientPrincipal": {"userDetails": "ada@example.com", "claims": []}}}


@pytest.fixture
def pl() -> Iterator[FakePromptLayer]:
    with FakePromptLayer(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def setup(sqlite_url: str, table_name: str, tmp_path: Path) -> Iterator[Any]:
    """configure() the default recorder for one test (and back to plain SQL after it)."""

    def configure(**options: Any) -> Recorder:
        options.setdefault("database_url", sqlite_url)
        return default_recorder.configure(table=table_name, spool_dir=str(tmp_path / "spool"), flush_interval=0.01,
                                          **options)

    yield configure
    default_recorder.shutdown(5)
    configure_default(sqlite_url, table_name, tmp_path / "spool-after")
    default_recorder.shutdown(5)


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai_module.OpenAI]:
    with openai_module.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as raw:
        yield wonkalytics.wrap(raw)


def stream_text(client: openai_module.OpenAI, **kwargs: Any) -> tuple[str, str | None]:
    stream = client.chat.completions.create(model="fake-chunks-5", messages=MESSAGES, stream=True, **kwargs)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    return text, stream.response_id


def lane_flush(name: str, seconds: float) -> bool:
    lane = default_recorder.writer.lane(name)
    assert lane is not None, f"no {name} lane"
    return lane.flush(time.monotonic() + seconds)


def test_the_seed_example_with_a_promptlayer_key(
    setup: Any, pl: FakePromptLayer, fake: FakeOpenAI, sqlite_url: str, table_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.delenv("PROMPTLAYER_API_KEY", raising=False)
    monkeypatch.setattr(openai_wrapper, "api_key", None)
    setup(promptlayer_base_url=pl.url)
    # --- the seed's endpoint: the key is set on the module after import ---
    openai_wrapper.api_key = KEY
    openai = openai_wrapper.OpenAIWrapper(openai_module, function_name="openai")
    openai.api_key = "sk-test"
    response_id = None
    text = ""
    for chunk, rid in openai.ChatCompletion.create(
        pl_tags=["competence", "tests"], request=REQUEST, model="gpt-4-1106-preview", messages=MESSAGES,
        temperature=1, max_tokens=4096, top_p=1, frequency_penalty=0.5, presence_penalty=0.5,
        return_pl_id=True, stream=True,
    ):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        response_id = rid or response_id
    openai.close()
    assert wonkalytics.flush(10)
    [row] = read_rows(sqlite_url, table_name)
    assert row["response_id"] == response_id and row["response"] == text and row["name"] == "Ada"
    [body] = pl.tracked
    assert pl.problems == []
    assert body["function_name"] == "openai.chat.completions.create" and body["api_key"] == KEY
    assert body["tags"] == ["competence", "tests"]
    assert body["kwargs"]["model"] == "gpt-4-1106-preview" and body["kwargs"]["frequency_penalty"] == 0.5
    assert not {"pl_tags", "request", "return_pl_id"} & set(body["kwargs"])
    assert not any(k.startswith("wl_") for k in body["kwargs"])
    assert body["request_response"]["id"] == response_id
    assert body["request_response"]["choices"][0]["message"]["content"] == text
    # PromptLayer's id comes back as a follow-up op, queued while that flush ran: one more flush for it
    assert wonkalytics.flush(10)
    assert read_rows(sqlite_url, table_name)[0]["pl_request_id"] == "1"
    # a later score reaches track-score (rounded, 0-100) and the row keeps the exact value
    assert wonkalytics.score(response_id, 87.6) is True
    assert wonkalytics.flush(10)
    assert pl.scores == [{"request_id": 1, "score": 88, "api_key": KEY}]
    assert read_rows(sqlite_url, table_name)[0]["score"] == 87.6
    spooled = [p.read_bytes() for p in (Path(default_recorder.settings.spool_dir)).rglob("*") if p.is_file()]
    assert not [b for b in spooled if KEY.encode() in b]


def test_a_score_from_another_process_reads_the_column(
    setup: Any, pl: FakePromptLayer, client: openai_module.OpenAI, sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    setup(promptlayer_api_key=KEY, promptlayer_base_url=pl.url)
    _, response_id = stream_text(client)
    assert wonkalytics.flush(10)
    # another worker process (fresh memory, same table) scores it
    script = textwrap.dedent(f"""
        import wonkalytics
        wonkalytics.configure(database_url={sqlite_url!r}, table={table_name!r}, spool_dir={str(tmp_path / 'w2')!r},
                              promptlayer_api_key={KEY!r}, promptlayer_base_url={pl.url!r}, flush_interval=0.01)
        assert wonkalytics.score({response_id!r}, 42) is True
        assert wonkalytics.flush(10)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "PROMPTLAYER_"))}
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, env=env)
    assert pl.scores == [{"request_id": 1, "score": 42, "api_key": KEY}]


@pytest.mark.parametrize("fault", ["429", "500", "slow", "blackhole"])
def test_promptlayer_down_or_slow_leaves_stream_and_row_alone_and_delivers_once(
    setup: Any, pl: FakePromptLayer, client: openai_module.OpenAI, sqlite_url: str, table_name: str, fault: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(promptlayer, "DEFAULT_TIMEOUT", httpx.Timeout(1.0))
    with FaultProxy(pl.port) as proxy:
        setup(promptlayer_api_key=KEY, promptlayer_base_url=f"http://127.0.0.1:{proxy.port}")
        if fault in ("429", "500"):
            pl.fail_next(int(fault), times=4)
        elif fault == "slow":
            pl.set_delay(0.5)  # slower than the stream, inside the read timeout
        else:
            proxy.blackhole()
        results = [stream_text(client) for _ in range(3)]
        assert all(text for text, _ in results)  # the streams are whole, whatever PromptLayer does
        assert lane_flush("table", 10)  # and the SQL rows land meanwhile
        assert sorted(r["response_id"] for r in read_rows(sqlite_url, table_name)) == sorted(r for _, r in results)
        if fault == "blackhole":
            assert not lane_flush("promptlayer", 0.5)
            assert default_recorder.health()["promptlayer"].written == 0
            proxy.recover()
        assert lane_flush("promptlayer", 30)
    ids = [body["metadata"]["wonkalytics_event_id"] for body in pl.tracked]
    assert len(ids) == 3 == len(set(ids)), "each request delivered exactly once"
    assert sorted(body["request_response"]["id"] for body in pl.tracked) == sorted(r for _, r in results)
    assert pl.problems == []


def test_sql_down_promptlayer_still_receives(
    setup: Any, pl: FakePromptLayer, client: openai_module.OpenAI, tmp_path: Path
) -> None:
    unreachable = f"sqlite:///{tmp_path / 'no-such-dir' / 'a.db'}"  # "unable to open": transient, retried
    setup(database_url=unreachable, promptlayer_api_key=KEY, promptlayer_base_url=pl.url, create_table=False)
    results = [stream_text(client) for _ in range(3)]
    assert lane_flush("promptlayer", 10)
    assert sorted(body["request_response"]["id"] for body in pl.tracked) == sorted(r for _, r in results)
    assert not lane_flush("table", 0.3)
    assert default_recorder.health()["table"].last_error


def test_one_black_holed_sink_delays_no_other(
    setup: Any, pl: FakePromptLayer, client: openai_module.OpenAI, sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    with FaultProxy(pl.port) as proxy:
        proxy.blackhole()
        setup(promptlayer_api_key=KEY, promptlayer_base_url=f"http://127.0.0.1:{proxy.port}",
              jsonl_dir=str(tmp_path / "feed"), otel=True)
        results = [stream_text(client) for _ in range(5)]
        assert all(text for text, _ in results)
        assert lane_flush("table", 10) and lane_flush("jsonl", 10) and lane_flush("otel", 10)
        assert not lane_flush("promptlayer", 0.2)
        assert len(read_rows(sqlite_url, table_name)) == 5
        lines = [json.loads(x) for p in (tmp_path / "feed").glob("*.jsonl") for x in p.read_text().splitlines()]
        assert sorted(x["row"]["response_id"] for x in lines if x["kind"] == "interaction") == sorted(
            r for _, r in results)
        proxy.recover()
        assert lane_flush("promptlayer", 30)
    assert len(pl.tracked) == 5


def test_json_lines_hold_every_record_once_across_two_processes(fake: FakeOpenAI, tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys, openai, wonkalytics
        feed, db, base_url = sys.argv[1:4]
        wonkalytics.configure(database_url=f"sqlite:///{db}", spool_dir=db + "-spool", jsonl_dir=feed,
                              flush_interval=0.01)
        client = wonkalytics.wrap(openai.OpenAI(base_url=base_url, api_key="sk", max_retries=0))
        for i in range(10):
            for chunk in client.chat.completions.create(model="fake-chunks-3", stream=True,
                                                        messages=[{"role": "user", "content": f"hi {i}"}]):
                pass
            wonkalytics.log(action="tick", username=sys.argv[4])
        assert wonkalytics.flush(20)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "PROMPTLAYER_"))}
    feed = tmp_path / "feed"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(feed), str(tmp_path / f"{n}.db"), fake.base_url, n],
                              env=env) for n in ("a", "b")]
    assert [p.wait(120) for p in procs] == [0, 0]
    files = sorted(feed.glob("*.jsonl"))
    assert len(files) == 2
    lines = [json.loads(x) for p in files for x in p.read_text().splitlines()]
    ids = [x["event_id"] for x in lines]
    assert len(ids) == 40 == len(set(ids))
    calls = [x for x in lines if x["kind"] == "interaction"]
    assert len(calls) == 20 and all(x["call"]["response"]["object"] == "chat.completion" for x in calls)
    for n, path in (("a", tmp_path / "a.db"), ("b", tmp_path / "b.db")):
        rows = read_rows(f"sqlite:///{path}", "wonkalytics_interactions")
        assert {r["event_id"] for r in rows} <= set(ids) and len(rows) == 20
        assert sum(1 for x in lines if x["kind"] == "event" and x["row"]["username"] == n) == 10


def test_spans_under_the_callers_span_through_configure(setup: Any, client: openai_module.OpenAI) -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    setup(otel=True)
    assert default_recorder.trace_hook is not None
    with trace.get_tracer("app").start_as_current_span("POST /chat") as parent:
        _, response_id = stream_text(client)
    assert wonkalytics.flush(10)
    [span] = [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "wonkalytics"]
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert span.attributes["gen_ai.response.id"] == response_id
