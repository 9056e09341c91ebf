"""The structured view of one LLM call (``Record.call``), for sinks that need the original shapes.

The table sink stores the seed's text columns; PromptLayer wants the SDK's own arguments and
response, OpenTelemetry the model, usage and finish reason, the JSON-lines feed all of it. This
module builds that view once per call, on the writer thread, and only when an enabled sink says
``needs_call``. The result is JSON-safe (it is spooled as JSON): plain dicts, lists, strings,
numbers, booleans and None.

Keys of :func:`call_view`'s dict:

``api``
    ``"chat"`` (chat.completions) or ``"responses"``.
``model``
    The model asked for (``kwargs["model"]``), else the one that answered.
``kwargs``
    The call's own SDK keyword arguments: ``wl_*`` were removed by the wrapper, the SDK's
    ``NOT_GIVEN`` / ``omit`` sentinels are dropped here, and so are ``extra_headers`` (they can
    carry credentials) and ``timeout`` (a client setting). Pydantic values become
    ``model_dump(mode="json")``; anything else JSON cannot hold becomes its ``str()``.
``messages``
    The prompt as a list of ``{"role", "content", ...}`` messages, structured as given. For the
    Responses API, ``instructions`` comes first as a ``system`` message and a string ``input``
    becomes one ``user`` message.
``response``
    The SDK's response as a dict (``model_dump(mode="json")``). For a chat stream, the assembled
    completion in the ``ChatCompletion`` shape (``object: "chat.completion"``, one choice with the
    streamed text, the finish reason, usage); for a Responses API call without a final response
    object (an aborted stream), the ``Response`` shape with one ``output_text``. None when the call
    failed before any answer.
``usage``
    ``{"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"}``
    (each an int or None; Responses API input/output tokens under the chat names).
``finish_reason``, ``response_model``, ``response_id``, ``system_fingerprint``
    As the provider reported them (None when unknown).
``status``, ``error``, ``error_type``
    ``"ok"`` / ``"error"`` / ``"aborted"``; the error text (``"Type: message"``) and its type name.
``start_time``, ``end_time``
    Epoch seconds (floats). ``duration_ms``, ``ttft_ms``: milliseconds (``ttft_ms`` for streams).
``stream``
    True when the caller asked for a stream.
``tags``, ``metadata``
    The call's ``wl_tags`` / ``pl_tags`` (a list of strings) and ``wl_metadata`` (a dict).
``provider_type``, ``server_address``, ``trace_context``
    ``"openai"`` or ``"azure"``; the API host; the caller's span when the call started (a dict
    with ``trace_id`` / ``span_id`` as hex, ``trace_flags``, ``is_remote``) or None.

>>> from wonkalytics.interaction import Interaction
>>> view = call_view(Interaction(api="chat", event_id="e1", start_time=1.0, end_time=2.0, response_text="4",
...                              params={"model": "gpt-4o", "messages": [{"role": "user", "content": "2+2?"}],
...                                      "stream": True}, finish_reason="stop", response_id="chatcmpl-1"))
>>> view["response"]["choices"][0]["message"], view["kwargs"]["model"], view["messages"][0]["role"]
({'role': 'assistant', 'content': '4'}, 'gpt-4o', 'user')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wonkalytics.access import is_absent, json_safe, safe_str
from wonkalytics.interaction import Interaction

__all__ = ["CALL_KEYS", "DROPPED_KWARGS", "assembled_response", "call_view", "json_safe"]

DROPPED_KWARGS: frozenset[str] = frozenset({"extra_headers", "timeout"})
"""SDK arguments never copied into the view: headers can carry credentials; a timeout is client setup."""

CALL_KEYS: tuple[str, ...] = (
    "api", "model", "kwargs", "messages", "response", "usage", "finish_reason", "response_model",
    "response_id", "system_fingerprint", "status", "error", "error_type", "start_time", "end_time",
    "duration_ms", "ttft_ms", "stream", "tags", "metadata", "provider_type", "server_address",
    "trace_context",
)
"""Every key of :func:`call_view`'s result, in order."""


def _kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(name): json_safe(value)
        for name, value in params.items()
        if name not in DROPPED_KWARGS and not is_absent(value)
    }


def _messages(interaction: Interaction) -> list[Any]:
    params = interaction.params
    if interaction.api == "chat":
        messages = params.get("messages")
        if is_absent(messages):
            return []
        safe = json_safe(messages)
        return safe if isinstance(safe, list) else [safe]
    result: list[Any] = []
    instructions = params.get("instructions")
    if not is_absent(instructions):
        result.append({"role": "system", "content": json_safe(instructions)})
    items = params.get("input")
    if isinstance(items, str):
        result.append({"role": "user", "content": items})
    elif isinstance(items, list | tuple):
        result.extend(json_safe(list(items)))
    elif not is_absent(items):
        result.append(json_safe(items))
    return result


def _usage(i: Interaction) -> dict[str, int | None]:
    return {
        "prompt_tokens": i.prompt_tokens,
        "completion_tokens": i.completion_tokens,
        "total_tokens": i.total_tokens,
        "cached_tokens": i.cached_tokens,
        "reasoning_tokens": i.reasoning_tokens,
    }


def assembled_response(interaction: Interaction, model: Any) -> dict[str, Any] | None:
    """The response as the SDK would have returned it without streaming (from what the stream gave).

    None when nothing came back (an error before the first chunk).
    """
    i = interaction
    if i.response_id is None and not i.response_text and i.status == "error":
        return None
    if i.api == "responses":
        return {
            "id": i.response_id,
            "object": "response",
            "created_at": i.start_time,
            "model": i.response_model or model,
            "status": i.finish_reason or ("completed" if i.status == "ok" else "incomplete"),
            "output": [{
                "type": "message",
                "role": "assistant",
                "status": "completed" if i.status == "ok" else "incomplete",
                "content": [{"type": "output_text", "text": i.response_text, "annotations": []}],
            }],
            "usage": {
                "input_tokens": i.prompt_tokens,
                "output_tokens": i.completion_tokens,
                "total_tokens": i.total_tokens,
                "input_tokens_details": {"cached_tokens": i.cached_tokens},
                "output_tokens_details": {"reasoning_tokens": i.reasoning_tokens},
            },
        }
    return {
        "id": i.response_id,
        "object": "chat.completion",
        "created": int(i.start_time),
        "model": i.response_model or model,
        "system_fingerprint": i.system_fingerprint,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": i.response_text},
            "finish_reason": i.finish_reason,
            "logprobs": None,
        }],
        "usage": {
            "prompt_tokens": i.prompt_tokens,
            "completion_tokens": i.completion_tokens,
            "total_tokens": i.total_tokens,
            "prompt_tokens_details": {"cached_tokens": i.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": i.reasoning_tokens},
        },
    }


def _error_type(error: str | None) -> str | None:
    if not error:
        return None
    head, sep, _ = error.partition(":")
    return head.strip() if sep and head.strip().isidentifier() else None


def call_view(interaction: Interaction) -> dict[str, Any]:
    """The structured, JSON-safe view of one call (the keys are listed in the module docstring)."""
    i = interaction
    kwargs = _kwargs(i.params)
    model = kwargs.get("model")
    if not isinstance(model, str):
        model = i.response_model
    response = json_safe(i.response) if i.response is not None else assembled_response(i, model)
    return {
        "api": i.api,
        "model": model,
        "kwargs": kwargs,
        "messages": _messages(i),
        "response": response,
        "usage": _usage(i),
        "finish_reason": i.finish_reason,
        "response_model": i.response_model,
        "response_id": i.response_id,
        "system_fingerprint": i.system_fingerprint,
        "status": i.status,
        "error": i.error,
        "error_type": _error_type(i.error),
        "start_time": i.start_time,
        "end_time": i.end_time,
        "duration_ms": i.duration_ms,
        "ttft_ms": i.ttft_ms,
        "stream": kwargs.get("stream") is True,
        "tags": [safe_str(tag) for tag in i.tags],
        "metadata": json_safe(i.metadata) if i.metadata else {},
        "provider_type": i.provider_type,
        "server_address": i.server_address,
        "trace_context": json_safe(i.trace_context) if i.trace_context is not None else None,
    }
