"""The OpenTelemetry sink, asserted attribute by attribute with the SDK's in-memory exporter and reader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from tests.sinks.conftest import MESSAGES, Call, Capturing, build, insert

import wonkalytics
from wonkalytics.interaction import Interaction
from wonkalytics.ops import Insert, Update
from wonkalytics.settings import Settings
from wonkalytics.sinks import otel
from wonkalytics.sinks.base import Sink
from wonkalytics.sinks.otel import OTelSink, capture_content_from_env
from wonkalytics.testing import FakeOpenAI


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def sink(self, **options: Any) -> OTelSink:
        return OTelSink(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options)

    def spans(self) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.instrumentation_scope.name == "wonkalytics"]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.append((metric, list(metric.data.data_points)))
        assert len(found) <= 1
        return found[0][1] if found else []

    def unit(self, name: str) -> str:
        data = self.reader.get_metrics_data()
        assert data is not None
        return next(m.unit for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics
                    if m.name == name)


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


def one_span(tel: Telemetry, sink: OTelSink, interaction: Interaction) -> ReadableSpan:
    assert sink.write([insert(interaction)]) == []
    [span] = tel.spans()
    return span


def test_non_stream_chat_span(tel: Telemetry, call: Call) -> None:
    sink = tel.sink()
    assert isinstance(sink, Sink)
    interaction = call("chat", temperature=0.7, top_p=0.9, max_tokens=64, frequency_penalty=0.5,
                       presence_penalty=0.25, seed=7, stop=["END"], wl_identity={"username": "ada", "tenant_id": "t1"})
    span = one_span(tel, sink, interaction)
    assert span.name == "chat gpt-4o-mini" and span.kind is SpanKind.CLIENT
    assert span.start_time == int(interaction.start_time * 1e9) and span.end_time == int(interaction.end_time * 1e9)
    assert span.parent is None and span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.7,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.frequency_penalty": 0.5,
        "gen_ai.request.presence_penalty": 0.25,
        "gen_ai.request.seed": 7,
        "gen_ai.request.stop_sequences": ("END",),
        "gen_ai.response.id": interaction.response_id,
        "gen_ai.response.model": interaction.response_model,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.openai.response.system_fingerprint": interaction.system_fingerprint,
        "gen_ai.usage.input_tokens": interaction.prompt_tokens,
        "gen_ai.usage.output_tokens": interaction.completion_tokens,
        "server.address": "127.0.0.1",
        "wonkalytics.status": "ok",
        "wonkalytics.event_id": interaction.event_id,
        "wonkalytics.tenant_id": "t1",
        "wonkalytics.user_id": "ada",
    }
    assert interaction.system_fingerprint and interaction.prompt_tokens and interaction.completion_tokens


def test_stream_span_and_metrics(tel: Telemetry, call: Call) -> None:
    sink = tel.sink()
    interaction = call("chat", stream=True, model="fake-chunks-6")
    span = one_span(tel, sink, interaction)
    attrs = dict(span.attributes or {})
    assert span.name == "chat fake-chunks-6"
    assert attrs["wonkalytics.ttft_ms"] == pytest.approx(interaction.ttft_ms)
    assert attrs["gen_ai.usage.output_tokens"] == 6 and attrs["gen_ai.response.id"] == interaction.response_id
    common = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
              "gen_ai.request.model": "fake-chunks-6", "gen_ai.response.model": interaction.response_model,
              "server.address": "127.0.0.1"}
    [duration] = tel.points("gen_ai.client.operation.duration")
    assert dict(duration.attributes) == common and duration.count == 1
    assert duration.sum == pytest.approx(interaction.duration_ms / 1000)
    tokens = {p.attributes["gen_ai.token.type"]: p for p in tel.points("gen_ai.client.token.usage")}
    assert tokens["output"].sum == 6 and tokens["input"].sum == interaction.prompt_tokens
    assert dict(tokens["input"].attributes) == {**common, "gen_ai.token.type": "input"}
    [first_chunk] = tel.points("gen_ai.client.operation.time_to_first_chunk")
    assert first_chunk.sum == pytest.approx(interaction.ttft_ms / 1000) and dict(first_chunk.attributes) == common
    assert tel.unit("gen_ai.client.operation.duration") == "s"
    assert tel.unit("gen_ai.client.token.usage") == "{token}"
    assert tel.unit("gen_ai.client.operation.time_to_first_chunk") == "s"
    assert list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]


def test_responses_api_span(tel: Telemetry, call: Call) -> None:
    interaction = call("responses", max_output_tokens=100)
    span = one_span(tel, tel.sink(), interaction)
    attrs = dict(span.attributes or {})
    assert span.name == "chat gpt-4o-mini" and attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.max_tokens"] == 100
    assert attrs["gen_ai.response.id"] == interaction.response_id and attrs["gen_ai.response.id"].startswith("resp_")
    assert attrs["gen_ai.response.finish_reasons"] == ("completed",)
    assert attrs["gen_ai.usage.input_tokens"] == interaction.prompt_tokens
    assert tel.points("gen_ai.client.operation.time_to_first_chunk") == []  # not a stream


def test_error_span(tel: Telemetry, call: Call) -> None:
    interaction = call("chat", model="fake-error-429")
    span = one_span(tel, tel.sink(), interaction)
    attrs = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR and "RateLimitError" in (span.status.description or "")
    assert attrs["error.type"] == "RateLimitError" and attrs["wonkalytics.status"] == "error"
    assert "gen_ai.response.id" not in attrs and "gen_ai.usage.input_tokens" not in attrs
    [duration] = tel.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "RateLimitError"
    assert tel.points("gen_ai.client.token.usage") == []


def test_aborted_span(tel: Telemetry, call: Call) -> None:
    interaction = call("chat", stream=True, model="fake-chunks-30", abort=3)
    span = one_span(tel, tel.sink(), interaction)
    attrs = dict(span.attributes or {})
    assert attrs["wonkalytics.status"] == "aborted" and "error.type" not in attrs
    assert span.status.status_code is StatusCode.UNSET
    assert attrs["gen_ai.response.id"] == interaction.response_id


def test_content_only_when_asked(tel: Telemetry, call: Call) -> None:
    interaction = call("chat")
    plain = one_span(tel, tel.sink(), interaction)
    assert not [k for k in (plain.attributes or {}) if "messages" in k or "instructions" in k]
    tel.exporter.clear()
    span = one_span(tel, tel.sink(capture_content=True), interaction)
    attrs = dict(span.attributes or {})
    assert json.loads(attrs["gen_ai.system_instructions"]) == [{"type": "text", "content": MESSAGES[0]["content"]}]
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": MESSAGES[1]["content"]}]}]
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": interaction.response_text}],
         "finish_reason": "stop"}]
    assert capture_content_from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"})
    assert not capture_content_from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"})
    assert not capture_content_from_env({})


def test_events_and_updates_make_no_span(tel: Telemetry) -> None:
    sink = tel.sink()
    event = Insert(built=build({"event_id": "e", "action": "x"}))
    assert sink.write([event, Update(key="r", field="score", value=1)]) == []
    assert tel.spans() == []


def test_parent_is_the_fastapi_request_span(tel: Telemetry, fake: FakeOpenAI) -> None:
    sink = tel.sink()
    capture = Capturing()
    capture.trace_hook = sink.trace_hook  # what the recorder does when the sink is on
    app = FastAPI()
    raw = openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    client = wonkalytics.wrap(raw, recorder=capture)

    @app.get("/guess")
    def guess() -> dict[str, str]:
        stream = client.chat.completions.create(model="fake-chunks-3", messages=MESSAGES, stream=True)
        return {"text": "".join(c.choices[0].delta.content or "" for c in stream if c.choices)}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tel.tracer_provider)
    try:
        with TestClient(app) as http:
            assert http.get("/guess").status_code == 200
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
        raw.close()
    [interaction] = capture.interactions
    assert interaction.trace_context is not None
    assert sink.write([insert(interaction)]) == []  # later, on the writer's thread
    server = next(s for s in tel.exporter.get_finished_spans() if s.kind is SpanKind.SERVER)
    [span] = tel.spans()
    assert span.parent is not None and span.parent.span_id == server.context.span_id
    assert span.context.trace_id == server.context.trace_id
    assert server.start_time <= span.start_time <= span.end_time <= server.end_time


def test_no_current_span_means_no_trace_context_and_a_root_span(tel: Telemetry, call: Call) -> None:
    sink = tel.sink()
    assert sink.trace_hook() is None
    tracer = tel.tracer_provider.get_tracer("app")
    root = call("chat")  # no current span: nothing captured, and a root span later
    assert root.trace_context is None
    with tracer.start_as_current_span("job") as job:
        captured = sink.trace_hook()
    context = job.get_span_context()
    assert captured == {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}",
                        "trace_flags": int(context.trace_flags), "is_remote": False}
    json.dumps(captured)
    span = one_span(tel, sink, root)
    assert span.parent is None and span.context.trace_id != context.trace_id


def test_from_settings_uses_the_global_providers(tel: Telemetry, call: Call, monkeypatch: pytest.MonkeyPatch) -> None:
    assert otel.from_settings(Settings(), lambda op: None) is None
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    sink = otel.from_settings(Settings(otel=True), lambda op: None)
    assert isinstance(sink, OTelSink) and sink.capture_content
    interaction = call("chat")
    # the global provider set after the sink was made still gets the spans (the API's proxy tracer)
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(tel.tracer_provider)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sink.write([insert(interaction)])
    [span] = [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "wonkalytics"]
    assert span.attributes["gen_ai.response.id"] == interaction.response_id
