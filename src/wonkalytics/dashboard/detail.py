"""One interaction, arranged for reading: conversation, response, parameters, timings, tokens, identity.

>>> split_messages("user:\\nHi\\n\\nassistant:\\nHello!\\n\\n")
[{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from wonkalytics.store.reader import Reader

__all__ = ["SECTIONS", "detail_sections", "split_messages"]

# The seed's "role:\ncontent\n\n" format; a role line starts each message.
_ROLE = re.compile(r"(?m)^(system|developer|user|assistant|tool|function):\n")

SECTIONS: dict[str, tuple[str, ...]] = {
    "Identity": ("username", "email", "tenant_id", "action"),
    "Parameters": ("model", "provider_type", "temperature", "max_tokens", "top_p", "frequency_penalty",
                   "presence_penalty", "finish_reason"),
    "Timings": ("timestamp", "duration_ms", "ttft_ms", "start_time", "end_time"),
    "Tokens and cost": ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens",
                        "cost_usd"),
    "Outcome": ("status", "score"),
    "Ids": ("response_id", "id", "event_id", "response_system_fingerprint", "pl_request_id"),
}
"""Which fields each box of the detail view shows (the rest appear under "App fields")."""
_TEXTS = ("system_msg", "messages", "response", "error", "metadata", "tags")


def split_messages(text: str | None) -> list[dict[str, str]]:
    """The seed's ``messages`` text as role/content pairs (text without role lines: one "user" message)."""
    if not text:
        return []
    parts = _ROLE.split(text)
    messages = [{"role": "user", "content": parts[0].strip()}] if parts[0].strip() else []
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": role, "content": content.strip()})
    return messages


def _show(name: str, value: Any, local: Callable[[Any], str]) -> str:
    if name == "timestamp":
        return local(value)
    if name == "cost_usd":
        return "unknown" if value is None else f"${value:.6f}"
    if name in ("duration_ms", "ttft_ms") and isinstance(value, int | float):
        return f"{value:,.0f} ms"
    return str(value)


def _pretty_json(text: Any) -> str | None:
    if text in (None, ""):
        return None
    try:
        return json.dumps(json.loads(str(text)), indent=2, ensure_ascii=False)
    except ValueError:
        return str(text)


def detail_sections(reader: Reader, row: dict[str, Any], local: Callable[[Any], str]) -> dict[str, Any]:
    """The template context of the detail page of ``row`` (column names resolved through ``reader``)."""
    used: set[str] = set()

    def get(name: str) -> Any:
        column = reader.field_column(name)
        if column is None:
            return None
        used.add(column)
        return row.get(column)

    boxes = []
    for title, names in SECTIONS.items():
        items = [(n, _show(n, v, local)) for n in names if (v := get(n)) is not None or n == "cost_usd"]
        if items:
            boxes.append({"title": title, "items": items})
    texts = {name: get(name) for name in _TEXTS}
    key = reader.key_name()
    if key is not None:
        used.add(key)
    app_fields = [(k, str(v)) for k, v in row.items() if k not in used and v not in (None, "")]
    if app_fields:
        boxes.append({"title": "App fields", "items": app_fields})
    return {
        "boxes": boxes,
        "system": texts["system_msg"],
        "conversation": split_messages(texts["messages"]),
        "response": texts["response"],
        "error": texts["error"],
        "metadata": _pretty_json(texts["metadata"]),
        "tags": _pretty_json(texts["tags"]),
        "status": get("status"),
        "model": get("model"),
        "when": local(get("timestamp")),
    }
