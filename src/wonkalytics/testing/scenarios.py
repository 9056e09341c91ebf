"""How a request tells the fake OpenAI server how to behave.

Every chat-completions or responses request carries a :class:`Scenario`, built from two places
(the body wins when both set a field):

1. **The model name.** A model that starts with ``fake-`` is read as ``fake-<field>-<value>-...``
   pairs, using the numeric field names below::

       fake-chunks-1000                  1000 content chunks
       fake-chunks-20-delay_ms-5         20 chunks, 5 ms before each one (a slow stream)
       fake-latency_ms-200               200 ms before the response starts (time to first byte)
       fake-error-429                    HTTP 429 with Retry-After and an OpenAI error body
       fake-error-500-fail_attempts-1    HTTP 500 on the first attempt, success on the SDK's retry
       fake-disconnect_after-3           the socket is cut after 3 content chunks
       fake-error_after-3                an SSE error event after 3 content chunks

   With Azure the model is the deployment name, so the same names work as deployments. Any other
   model (``gpt-4o-mini``...) gets the default scenario. An unknown field is an HTTP 400, so typos
   are loud.

2. **The body field** ``fake_openai`` (pass it with the SDK's ``extra_body``), an object with any of
   the fields, including the text ones::

       client.chat.completions.create(
           model="gpt-4o-mini", messages=[...], stream=True,
           extra_body={"fake_openai": {"content": "Hello there!", "chunks": 4, "delay_ms": 10}},
       )

   :meth:`Scenario.extra_body` builds that dict for you. The field is deliberately not ``wl_*``,
   so tests can still assert that no Wonkalytics ``wl_*`` keyword reached the server.

"Chunks" are content deltas: chat streams send a role chunk, the content chunks, a final
``finish_reason="stop"`` chunk (and the usage chunk when ``stream_options.include_usage``); the
responses stream sends one ``response.output_text.delta`` per chunk. Completion tokens = chunks.

The SDK retries 429, 5xx and connection errors itself (``max_retries``, 2 by default, honouring
``Retry-After``); tests that inject failures should build their client with ``max_retries=0``, or
use ``fail_attempts`` to test that a retry succeeds.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["MODEL_PREFIX", "SCENARIO_FIELD", "Scenario", "ScenarioError", "scenario_for"]

SCENARIO_FIELD = "fake_openai"
"""Name of the request-body field that carries a scenario (send it with ``extra_body``)."""

MODEL_PREFIX = "fake"
"""Models named ``fake`` or ``fake-<field>-<value>...`` carry a scenario in their name."""


class ScenarioError(ValueError):
    """The request asked for a scenario that does not parse; the server answers HTTP 400."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class Scenario(BaseModel):
    """What the fake server does with one request. All fields are optional; defaults behave like OpenAI.

    Failures (``error``, ``error_after``, ``disconnect_after``) apply to every attempt unless
    ``fail_attempts`` limits them to the first N attempts, counted by the SDK's
    ``x-stainless-retry-count`` header.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunks: int | None = Field(default=None, ge=0, le=1_000_000)
    """Number of content chunks. Default: one chunk per word of the answer."""
    content: str | None = None
    """Fixed answer text. Default: a sentence chosen by a hash of the prompt (same prompt, same text).
    With ``chunks`` it is cut into that many near-equal slices (at most one per character)."""
    latency_ms: float = Field(default=0.0, ge=0, le=600_000)
    """Wait before the response starts: time to first byte for streams, total latency otherwise."""
    delay_ms: float = Field(default=0.0, ge=0, le=60_000)
    """Streams only: wait before each content chunk (scheduled from the stream start, so no drift)."""
    error: int | None = Field(default=None, ge=400, le=599)
    """Answer with this HTTP status and an OpenAI error body instead of a completion."""
    error_message: str | None = None
    """Message for ``error`` / ``error_after``; default: OpenAI's usual text for the status."""
    retry_after: float | None = Field(default=None, ge=0, le=3600)
    """Seconds sent as ``Retry-After`` and ``retry-after-ms`` with ``error``; 429 defaults to 1."""
    error_after: int | None = Field(default=None, ge=0)
    """Streams: send an error event after this many content chunks and end the stream.
    Non-stream requests fail with HTTP 500 instead."""
    disconnect_after: int | None = Field(default=None, ge=0)
    """Streams: close the socket after this many content chunks, without the end of the stream,
    so the SDK raises ``openai.APIConnectionError``. Non-stream requests get no response at all."""
    fail_attempts: int | None = Field(default=None, ge=0)
    """Only the first N attempts fail (attempt = the SDK's retry count); later retries succeed."""

    def extra_body(self) -> dict[str, Any]:
        """The ``extra_body`` that asks the server for this scenario (only the fields that were set)."""
        return {SCENARIO_FIELD: self.model_dump(exclude_unset=True)}

    def failing(self, attempt: int) -> bool:
        """Whether the injected failures apply to this attempt (0 = first try, 1 = first retry...)."""
        return self.fail_attempts is None or attempt < self.fail_attempts


# Only numeric fields can go in a model name; text goes in the body field.
_MODEL_NAME_FIELDS = frozenset(
    name for name in Scenario.model_fields if name not in {"content", "error_message"}
)


def _from_model(model: str) -> dict[str, str]:
    if model != MODEL_PREFIX and not model.startswith(MODEL_PREFIX + "-"):
        return {}
    tokens = model.split("-")[1:]
    if len(tokens) % 2:
        raise ScenarioError(
            f"Fake model {model!r} must be 'fake' followed by <field>-<value> pairs, e.g. 'fake-chunks-10'.",
            "model",
        )
    fields = dict(zip(tokens[::2], tokens[1::2], strict=True))
    unknown = sorted(set(fields) - _MODEL_NAME_FIELDS)
    if unknown:
        known = ", ".join(sorted(_MODEL_NAME_FIELDS))
        raise ScenarioError(f"Fake model {model!r}: unknown field(s) {unknown}; known: {known}.", "model")
    return fields


def scenario_for(model: str, body: dict[str, Any]) -> Scenario:
    """Parse the scenario of one request from its model name and its ``fake_openai`` body field.

    Raises :class:`ScenarioError` (the server answers HTTP 400 with it) when either does not parse.
    """
    fields: dict[str, Any] = dict(_from_model(model))
    param = "model"
    extra = body.get(SCENARIO_FIELD)
    if extra is not None:
        if not isinstance(extra, dict):
            raise ScenarioError(f"'{SCENARIO_FIELD}' must be an object.", SCENARIO_FIELD)
        fields.update(extra)
        param = SCENARIO_FIELD
    try:
        return Scenario.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'scenario'}: {err['msg']}" for err in exc.errors())
        raise ScenarioError(f"Invalid fake scenario: {problems}", param) from exc
