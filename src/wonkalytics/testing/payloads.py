"""The JSON and SSE shapes OpenAI sends, built from an :class:`~wonkalytics.testing.content.Answer`.

Shapes follow the openai SDK's own models (``types/chat/chat_completion*.py``,
``types/responses/response*.py``), including fields the SDK requires. Stream events are rendered to
bytes up front (content deltas from a pre-serialised template) so that serving a 1000-chunk stream
costs the server almost nothing: in tests the server shares the GIL with the client it measures.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wonkalytics.testing.content import Answer

__all__ = [
    "SYSTEM_FINGERPRINT",
    "SSEStream",
    "chat_completion",
    "chat_stream",
    "error_body",
    "response_object",
    "responses_stream",
]

SYSTEM_FINGERPRINT = "fp_wonkafake01"

# (type, code, default message) of OpenAI's error bodies, by HTTP status.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_SLOT = "\x00slot\x00"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _template(obj: Any) -> tuple[str, ...]:
    """Serialise ``obj`` once; each ``_SLOT`` string in it becomes a hole for :func:`_fill`."""
    return tuple(_dumps(obj).split(_dumps(_SLOT)))


def _fill(parts: tuple[str, ...], *values: Any) -> str:
    out = [parts[0]]
    for value, part in zip(values, parts[1:], strict=True):
        out.append(_dumps(value))
        out.append(part)
    return "".join(out)


def _data(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


def _event(name: str, payload: str) -> bytes:
    return f"event: {name}\ndata: {payload}\n\n".encode()


def error_body(status: int, message: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's ``{"error": {"message", "type", "param", "code"}}`` body for an HTTP status."""
    kind, code, default = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}.")
    )
    return {"error": {"message": message or default, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True, slots=True)
class SSEStream:
    """A stream split where failures can be injected: events before, between and after the deltas."""

    prologue: tuple[bytes, ...]
    deltas: tuple[bytes, ...]
    epilogue: tuple[bytes, ...]
    error_event: Callable[[int, str | None], bytes]
    """``error_event(deltas_sent, message)``: the event that reports a mid-stream failure."""


# --- chat completions ---------------------------------------------------------------------------


def _chat_usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(model: str, answer: Answer) -> dict[str, Any]:
    """A non-stream ``chat.completion`` object."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _chat_usage(answer),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def chat_stream(model: str, answer: Answer, include_usage: bool) -> SSEStream:
    """``chat.completion.chunk`` events: role chunk, content chunks, stop chunk, [usage chunk], [DONE]."""
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    # OpenAI sends "usage": null on every chunk but the last only when include_usage is on.
    tail = {"usage": None} if include_usage else {}

    def chunk(delta: Any, finish_reason: str | None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**head, "choices": [choice], **tail}

    parts = _template(chunk({"content": _SLOT}, None))
    epilogue = [_data(_dumps(chunk({}, "stop")))]
    if include_usage:
        epilogue.append(_data(_dumps({**head, "choices": [], "usage": _chat_usage(answer)})))
    epilogue.append(b"data: [DONE]\n\n")

    def error_event(_sent: int, message: str | None) -> bytes:
        return _data(_dumps(error_body(500, message)))

    return SSEStream(
        prologue=(_data(_dumps(chunk({"role": "assistant", "content": "", "refusal": None}, None))),),
        deltas=tuple(_data(_fill(parts, piece)) for piece in answer.chunks),
        epilogue=tuple(epilogue),
        error_event=error_event,
    )


# --- responses ----------------------------------------------------------------------------------

# Request fields a Response object echoes back, with OpenAI's defaults.
_ECHOED: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}


def _responses_usage(answer: Answer) -> dict[str, Any]:
    return {
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": answer.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message(msg_id: str, text: str | None) -> dict[str, Any]:
    # text None = the item as first announced: in progress, no content yet.
    content = [] if text is None else [_text_part(text)]
    status = "in_progress" if text is None else "completed"
    return {"id": msg_id, "type": "message", "status": status, "content": content, "role": "assistant"}


def response_object(
    model: str,
    body: dict[str, Any],
    answer: Answer,
    *,
    resp_id: str = "",
    msg_id: str = "",
    created_at: int = 0,
    completed: bool = True,
) -> dict[str, Any]:
    """A ``response`` object: completed with its output and usage, or as announced (in progress)."""
    echoed = {key: body.get(key, default) for key, default in _ECHOED.items()}
    return {
        "id": resp_id or f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": created_at or int(time.time()),
        "status": "completed" if completed else "in_progress",
        "background": False,
        "completed_at": int(time.time()) if completed else None,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [_message(msg_id or f"msg_{uuid.uuid4().hex}", answer.text)] if completed else [],
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "usage": _responses_usage(answer) if completed else None,
        **echoed,
    }


def responses_stream(model: str, body: dict[str, Any], answer: Answer) -> SSEStream:
    """The event sequence of ``POST /responses`` with ``stream: true``, numbered by ``sequence_number``."""
    resp_id, msg_id, created_at = f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}", int(time.time())

    def response(completed: bool) -> dict[str, Any]:
        return response_object(
            model, body, answer, resp_id=resp_id, msg_id=msg_id, created_at=created_at, completed=completed
        )

    text = answer.text
    where = {"item_id": msg_id, "output_index": 0, "content_index": 0}
    part = _text_part(text)
    prologue: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response(False)}),
        ("response.in_progress", {"response": response(False)}),
        ("response.output_item.added", {"output_index": 0, "item": _message(msg_id, None)}),
        ("response.content_part.added", {**where, "part": {**part, "text": ""}}),
    ]
    n, first = len(answer.chunks), len(prologue)
    epilogue: list[tuple[str, dict[str, Any]]] = [
        ("response.output_text.done", {**where, "text": text, "logprobs": []}),
        ("response.content_part.done", {**where, "part": part}),
        ("response.output_item.done", {"output_index": 0, "item": _message(msg_id, text)}),
        ("response.completed", {"response": response(True)}),
    ]

    def render(seq: int, name: str, fields: dict[str, Any]) -> bytes:
        return _event(name, _dumps({"type": name, "sequence_number": seq, **fields}))

    delta = {"type": "response.output_text.delta", "sequence_number": _SLOT, **where, "delta": _SLOT}
    delta_parts = _template({**delta, "logprobs": []})

    def error_event(sent: int, message: str | None) -> bytes:
        # The live API nests the error (and the SDK raises on that); the API reference documents it
        # flat. Send both so either kind of client sees the failure.
        error = error_body(500, message)["error"]
        fields = {"code": error["code"], "message": error["message"], "param": None, "error": error}
        return render(first + sent, "error", fields)

    return SSEStream(
        prologue=tuple(render(i, name, fields) for i, (name, fields) in enumerate(prologue)),
        deltas=tuple(
            _event("response.output_text.delta", _fill(delta_parts, first + i, piece))
            for i, piece in enumerate(answer.chunks)
        ),
        epilogue=tuple(render(first + n + i, name, fields) for i, (name, fields) in enumerate(epilogue)),
        error_event=error_event,
    )
