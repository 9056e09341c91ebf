"""The immutable description of one finished LLM call, handed from capture/ to the writer."""

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
