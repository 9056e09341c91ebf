"""The OpenTelemetry sink: each LLM call as a GenAI CLIENT span, plus the GenAI client metrics.

For teams that watch their services in Azure Monitor / Application Insights (through
``azure-monitor-opentelemetry``) or any OTLP backend: the span lands under the request span that
was current when the call started (a FastAPI request, say), with the call's real start and end
times, although it is built later on the writer thread. Spans and metrics go through the app's
*global* tracer and meter providers; with none installed they cost nothing and go nowhere.

Span ``"chat {model}"`` (kind CLIENT; ``chat`` for the Responses API too, as the GenAI conventions
say), attributes:

* ``gen_ai.operation.name`` (``chat``), ``gen_ai.provider.name`` (``openai`` / ``azure.ai.openai``)
  and the older ``gen_ai.system`` (``openai`` / ``az.ai.openai``), which Application Insights still reads;
* ``gen_ai.request.model``, ``.temperature``, ``.top_p``, ``.max_tokens``, ``.frequency_penalty``,
  ``.presence_penalty``, ``.seed``, ``.stop_sequences``, ``.choice.count`` (when given);
* ``gen_ai.response.id``, ``.model``, ``.finish_reasons``, ``gen_ai.openai.response.system_fingerprint``;
* ``gen_ai.usage.input_tokens`` / ``output_tokens``; ``server.address``;
* on errors ``error.type`` (the SDK's exception name) and status ERROR;
* ``wonkalytics.status`` (ok / error / aborted), ``wonkalytics.ttft_ms``, ``wonkalytics.event_id``,
  ``wonkalytics.tenant_id``, ``wonkalytics.user_id`` (username, else email), when known;
* the prompt and answer (``gen_ai.system_instructions``, ``gen_ai.input.messages``,
  ``gen_ai.output.messages``, JSON in the conventions' parts format) only when
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is ``true`` (or ``span_only`` /
  ``span_and_event``).

Metrics (histograms, the conventions' bucket boundaries): ``gen_ai.client.operation.duration`` (s),
``gen_ai.client.token.usage`` ({token}, with ``gen_ai.token.type`` input / output) and, for
streams, ``gen_ai.client.operation.time_to_first_chunk`` (s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wonkalytics._version import __version__
from wonkalytics.access import json_text
from wonkalytics.errors import ConfigurationError
from wonkalytics.ops import Insert, Op
from wonkalytics.settings import Settings, foreign_environ
from wonkalytics.sinks.base import Rejection

try:
    from opentelemetry import metrics, trace
    from opentelemetry.context import Context
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
except ImportError:  # pragma: no cover - the extra is not installed; from_settings says what to do
    trace = None  # type: ignore[assignment]

__all__ = ["CAPTURE_CONTENT_ENV", "OTelSink", "capture_content_from_env", "current_trace_context", "from_settings"]

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The OpenTelemetry GenAI instrumentations' switch for recording prompts and answers."""
_CONTENT_ON = frozenset({"true", "1", "yes", "span_only", "span_and_event"})

# Bucket boundaries advised by the GenAI metric conventions.
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_TTFC_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_PROVIDER = {"azure": "azure.ai.openai"}
_SYSTEM = {"azure": "az.ai.openai"}  # gen_ai.system, before the conventions renamed it
_REQUEST_FLOATS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_SCOPE = "wonkalytics"


def capture_content_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks for prompt and answer text.

    This is OpenTelemetry's own variable (shared with its OpenAI instrumentation), hence no setting
    of ours: read from ``environ``, by default the process environment
    (:func:`~wonkalytics.settings.foreign_environ`).

    >>> capture_content_from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "True"})
    True
    """
    environ = foreign_environ() if environ is None else environ
    return environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CONTENT_ON


def current_trace_context() -> dict[str, Any] | None:
    """The caller's current span as JSON-safe data (``Interaction.trace_context``), or None without one.

    Runs on the caller's thread when a wrapped call starts: one contextvar read, no allocation
    beyond the small dict (measured in bench/sinks_overhead.py).
    """
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    data: dict[str, Any] = {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "trace_flags": int(context.trace_flags),
        "is_remote": context.is_remote,
    }
    if context.trace_state:
        data["trace_state"] = context.trace_state.to_header()
    return data


def _parent(trace_context: Any) -> Context:
    """A context holding the caller's span (a non-recording stand-in), or an empty one: a root span."""
    empty = Context()
    if not isinstance(trace_context, Mapping):
        return empty
    try:
        span_context = SpanContext(
            trace_id=int(str(trace_context["trace_id"]), 16),
            span_id=int(str(trace_context["span_id"]), 16),
            is_remote=bool(trace_context.get("is_remote", False)),
            trace_flags=TraceFlags(int(trace_context.get("trace_flags", 0))),
            trace_state=TraceState.from_header([str(trace_context["trace_state"])])
            if trace_context.get("trace_state") else None,
        )
    except (KeyError, TypeError, ValueError):
        return empty
    if not span_context.is_valid:
        return empty
    return trace.set_span_in_context(NonRecordingSpan(span_context), empty)


def _text_parts(content: Any) -> list[dict[str, Any]]:
    """A message's content in the conventions' parts format (text kept; images, audio, files named only)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):
        parts: list[dict[str, Any]] = []
        for part in content:
            if isinstance(part, str):
                parts.append({"type": "text", "content": part})
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append({"type": "text", "content": part["text"]})
            elif isinstance(part, Mapping):
                parts.append({"type": str(part.get("type") or "unknown")})  # never a base64 blob
        return parts
    return [{"type": "text", "content": str(content)}]


def _input_messages(messages: Sequence[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system instructions, other messages) in the conventions' formats."""
    system: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            others.append({"role": "user", "parts": _text_parts(message)})
            continue
        role = str(message.get("role") or message.get("type") or "user")
        parts = _text_parts(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                              "arguments": function.get("arguments")})
        if role in ("system", "developer"):
            system.extend(parts)
            continue
        entry: dict[str, Any] = {"role": role, "parts": parts}
        if role == "tool" and message.get("tool_call_id") is not None:
            entry["parts"] = [{"type": "tool_call_response", "id": message.get("tool_call_id"),
                               "response": message.get("content")}]
        others.append(entry)
    return system, others


def _json(value: Any) -> str:
    return json_text(value)


class OTelSink:
    """Spans and metrics per interaction through the global providers (see the module docstring)."""

    name = "otel"
    primary = False
    needs_call = True

    def __init__(
        self,
        *,
        capture_content: bool = False,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        if trace is None:  # pragma: no cover
            raise ConfigurationError("the OpenTelemetry sink needs opentelemetry-api: pip install 'wonkalytics[otel]'")
        self.capture_content = capture_content
        # Proxies when no provider is set yet: an app that installs its providers later is still served.
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk", unit="s",
            description="Time from the request to the first chunk of the response stream.",
            explicit_bucket_boundaries_advisory=_TTFC_BUCKETS,
        )
        self.trace_hook: Callable[[], dict[str, Any] | None] = current_trace_context
        """For the recorder: captures the caller's span when a wrapped call starts."""

    # -- the lane's interface ----------------------------------------------------------------------

    def write(self, ops: Sequence[Op]) -> list[Rejection]:
        """One span and its metric points per interaction; events and updates have none."""
        for op in ops:
            if not isinstance(op, Insert):
                continue
            record = op.record
            if record.kind == "interaction" and record.call is not None:
                self.emit(record.call, record.row, record.event_id)
        return []

    def is_transient(self, exc: BaseException) -> bool:
        """Exporting is the SDK's business (its own batching and retries); a failure here is a bug."""
        return False

    def close(self, timeout: float) -> None:
        """Nothing to close: the providers belong to the app (it flushes and shuts them down)."""

    def after_fork(self) -> None:
        """Nothing of ours to drop; the SDK re-creates its exporters' threads in the child."""

    # -- building ----------------------------------------------------------------------------------

    def emit(self, call: Mapping[str, Any], row: Mapping[str, Any], event_id: str) -> None:
        """Create the span (with the call's own start and end) and record the metric points."""
        attributes = self.span_attributes(call, row, event_id)
        model = attributes.get("gen_ai.request.model") or attributes.get("gen_ai.response.model")
        name = f"chat {model}" if model else "chat"
        start = call.get("start_time")
        end = call.get("end_time")
        start_ns = int(start * 1e9) if isinstance(start, int | float) else None
        end_ns = int(end * 1e9) if isinstance(end, int | float) else None
        span = self._tracer.start_span(
            name, context=_parent(call.get("trace_context")), kind=SpanKind.CLIENT,
            attributes=attributes, start_time=start_ns,
        )
        if call.get("status") == "error":
            span.set_status(Status(StatusCode.ERROR, str(call.get("error") or "")[:1000]))
        span.end(end_time=end_ns)
        self._record_metrics(call, attributes)

    def span_attributes(self, call: Mapping[str, Any], row: Mapping[str, Any], event_id: str) -> dict[str, Any]:
        """The span's attributes (see the module docstring); None values left out."""
        kwargs = call.get("kwargs") or {}
        provider = str(call.get("provider_type") or "openai")
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": _PROVIDER.get(provider, "openai"),
            "gen_ai.system": _SYSTEM.get(provider, "openai"),
            "gen_ai.request.model": call.get("model"),
            "gen_ai.request.max_tokens": _first_int(kwargs, "max_tokens", "max_completion_tokens", "max_output_tokens"),
            "gen_ai.request.seed": _int(kwargs.get("seed")),
            "gen_ai.request.stop_sequences": _stop(kwargs.get("stop")),
            "gen_ai.response.id": call.get("response_id"),
            "gen_ai.response.model": call.get("response_model"),
            "gen_ai.response.finish_reasons": [call["finish_reason"]] if call.get("finish_reason") else None,
            "gen_ai.openai.response.system_fingerprint": call.get("system_fingerprint"),
            "server.address": call.get("server_address"),
            "wonkalytics.status": call.get("status"),
            "wonkalytics.ttft_ms": _float(call.get("ttft_ms")),
            "wonkalytics.event_id": event_id,
            "wonkalytics.tenant_id": _str(row.get("tenant_id")),
            "wonkalytics.user_id": _str(row.get("username")) or _str(row.get("email")),
        }
        for name in _REQUEST_FLOATS:
            attrs[f"gen_ai.request.{name}"] = _float(kwargs.get(name))
        n = _int(kwargs.get("n"))
        if n is not None and n != 1:
            attrs["gen_ai.request.choice.count"] = n
        usage = call.get("usage") or {}
        attrs["gen_ai.usage.input_tokens"] = _int(usage.get("prompt_tokens"))
        attrs["gen_ai.usage.output_tokens"] = _int(usage.get("completion_tokens"))
        if call.get("status") == "error":
            attrs["error.type"] = call.get("error_type") or "_OTHER"
        if self.capture_content:
            attrs.update(_content(call))
        return {key: value for key, value in attrs.items() if value is not None and value != ""}

    def _record_metrics(self, call: Mapping[str, Any], span_attributes: Mapping[str, Any]) -> None:
        common = {
            key: span_attributes[key]
            for key in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                        "gen_ai.response.model", "server.address")
            if key in span_attributes
        }
        duration_attrs = dict(common)
        if "error.type" in span_attributes:
            duration_attrs["error.type"] = span_attributes["error.type"]
        duration_ms = call.get("duration_ms")
        if isinstance(duration_ms, int | float):
            self._duration.record(duration_ms / 1000.0, duration_attrs)
        elif isinstance(call.get("start_time"), int | float) and isinstance(call.get("end_time"), int | float):
            self._duration.record(max(0.0, call["end_time"] - call["start_time"]), duration_attrs)
        for token_type, key in (("input", "gen_ai.usage.input_tokens"), ("output", "gen_ai.usage.output_tokens")):
            count = span_attributes.get(key)
            if isinstance(count, int):
                self._tokens.record(count, {**common, "gen_ai.token.type": token_type})
        ttft = call.get("ttft_ms")
        if call.get("stream") and isinstance(ttft, int | float):
            self._first_chunk.record(ttft / 1000.0, common)


def _content(call: Mapping[str, Any]) -> dict[str, Any]:
    system, messages = _input_messages(call.get("messages") or [])
    attrs: dict[str, Any] = {"gen_ai.input.messages": _json(messages)}
    if system:
        attrs["gen_ai.system_instructions"] = _json(system)
    response = call.get("response")
    if response is not None:
        text = _response_text(call["api"], response)
        output: dict[str, Any] = {"role": "assistant", "parts": [{"type": "text", "content": text}]}
        if call.get("finish_reason"):
            output["finish_reason"] = call["finish_reason"]
        attrs["gen_ai.output.messages"] = _json([output])
    return attrs


def _response_text(api: Any, response: Mapping[str, Any]) -> str:
    if api == "responses":
        texts = [
            part.get("text", "")
            for item in response.get("output") or () if isinstance(item, Mapping)
            for part in item.get("content") or () if isinstance(part, Mapping) and part.get("type") == "output_text"
        ]
        return "".join(t for t in texts if isinstance(t, str))
    choices = response.get("choices") or ()
    message = choices[0].get("message") if choices and isinstance(choices[0], Mapping) else None
    content = message.get("content") if isinstance(message, Mapping) else None
    return content if isinstance(content, str) else ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_int(kwargs: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = _int(kwargs.get(name))
        if value is not None:
            return value
    return None


def _stop(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def from_settings(settings: Settings, submit: Callable[[Op], None]) -> OTelSink | None:
    """The sink when ``otel`` is on (``WONKALYTICS_OTEL=true``), else None.

    Raises :class:`~wonkalytics.errors.ConfigurationError` when ``opentelemetry-api`` is missing.
    """
    if not settings.otel:
        return None
    if trace is None:  # pragma: no cover - exercised only without the extra
        raise ConfigurationError("otel=True needs the OpenTelemetry API: pip install 'wonkalytics[otel]'")
    return OTelSink(capture_content=capture_content_from_env())
