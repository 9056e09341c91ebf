"""The data types every stage shares, below all of them: one finished LLM call, and its record.

``Interaction`` is built by capture/ when a call ends; ``Record`` is what record/ makes of an
interaction or an event, once, before the writer fans it out to the sinks. Neither imports any
other part of Wonkalytics, so every layer may use them.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "error", "aborted"]
Api = Literal["chat", "responses"]

# A private generator: an app calling random.seed(...) must not make our ids repeat (a repeated
# event_id is skipped as a duplicate). Seeded from os.urandom, and again in every forked child.
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)


def new_event_id() -> str:
    """A fresh idempotency key: 128 random bits as 32 hex digits (the shape of ``uuid4().hex``).

    Not ``uuid4()``: its ``os.urandom`` is a system call, measured at ~20 µs in sandboxed containers,
    on the caller's path once per call. Uniqueness is what matters here, not unpredictability.
    """
    return f"{_ids.getrandbits(128):032x}"


@dataclass(frozen=True, slots=True)
class Interaction:
    """One LLM call, as observed by the wrapper.

    Built once, when the call ends (last chunk, error, close, cancel or garbage collection), on the
    caller's thread; turned into a row later by ``record.pipeline`` on the writer thread, so building
    it must stay cheap: plain references, no copies, no serialisation.
    """

    api: Api
    """Which SDK endpoint: ``"chat"`` (chat.completions) or ``"responses"``."""
    params: Mapping[str, Any]
    """The keyword arguments sent to the SDK (``wl_*`` removed; may hold NOT_GIVEN/Omit sentinels)."""
    event_id: str
    """Unique id of this row (idempotency key)."""
    start_time: float
    """Epoch seconds when the call started."""
    end_time: float
    """Epoch seconds when the call ended."""
    status: Status = "ok"
    request: Mapping[str, Any] = field(default_factory=dict)
    """The app's own request fields (``wl_request`` / seed ``request=``), possibly with ``auth_info``."""
    identity: Mapping[str, Any] = field(default_factory=dict)
    """username / email / tenant_id given explicitly (``wl_identity`` or ``context(identity=)``)."""
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provider_type: str = "openai"
    """``"openai"`` or ``"azure"``."""
    response_text: str = ""
    response_id: str | None = None
    response_model: str | None = None
    system_fingerprint: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    error: str | None = None
    """``"ErrorType: message"`` when status is ``"error"``."""
    ttft_ms: float | None = None
    """Milliseconds from the start of the call to the first content token (streams only)."""
    duration_ms: float | None = None
    finish_reason: str | None = None
    """Why the model stopped (``stop``, ``length``, ``tool_calls``, ...), when it said so."""
    cached_tokens: int | None = None
    """Prompt tokens served from the provider's cache (``usage.prompt_tokens_details.cached_tokens``)."""
    reasoning_tokens: int | None = None
    """Completion tokens spent on reasoning (``usage.completion_tokens_details.reasoning_tokens``)."""
    response: Any = None
    """The SDK's own final response object (non-stream calls and the Responses API), else None."""
    server_address: str | None = None
    """Host of the API the client talked to (``api.openai.com``, ``<resource>.openai.azure.com``)."""
    trace_context: Mapping[str, Any] | None = None
    """The caller's current span (``trace_id``/``span_id`` hex, ``trace_flags``) when the call started;
    captured only when the OpenTelemetry sink is on."""


RecordKind = Literal["interaction", "event"]


@dataclass(frozen=True, slots=True)
class Record:
    """What one interaction or event becomes, built once (by record/) before any sink sees it.

    ``row`` holds our canonical field names (the seed's text fields: ``system_msg``, ``messages`` as
    ``"role:\ncontent\n\n"``, identity, app fields, timings, tokens), with known secret fields
    removed and the configured redaction applied; it is fitted to a table only by the table sink.
    ``call`` is the structured view of an LLM call (JSON-safe: SDK arguments, messages as
    role/content, the assembled response, usage, finish reason, trace context), present when a sink
    that needs it is enabled; see :mod:`wonkalytics.record.structured`.
    """

    kind: RecordKind
    event_id: str
    row: Mapping[str, Any]
    call: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (the spool's ``"record"`` value)."""
        data: dict[str, Any] = {"kind": self.kind, "event_id": self.event_id, "row": dict(self.row)}
        if self.call is not None:
            data["call"] = dict(self.call)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        """The record of :meth:`to_json`'s output (as read back from the spool)."""
        row = data.get("row")
        if not isinstance(row, Mapping):
            raise ValueError("a spooled record has no row")
        kind = data.get("kind", "event")
        call = data.get("call")
        return cls(
            kind="interaction" if kind == "interaction" else "event",
            event_id=str(data.get("event_id") or row.get("event_id") or ""),
            row=dict(row),
            call=dict(call) if isinstance(call, Mapping) else None,
        )
