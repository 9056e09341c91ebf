"""The prompt as two text columns: ``system_msg`` and ``messages`` (the seed's format).

Rules (chat completions and the Responses API alike):

* The **last** message whose role is ``system`` or ``developer`` (OpenAI's newer name for the same
  thing) becomes ``system_msg``. For the Responses API, ``instructions`` counts as a system message
  placed before ``input``, so a system/developer message inside ``input`` wins over it.
* Every message whose role is not ``system``/``developer`` is rendered as
  ``"{role}:\\n{content}\\n\\n"`` and the renderings are concatenated into ``messages``. Earlier
  system messages (and ``instructions`` overridden by one in ``input``) are in neither column: this is
  the seed's ``_map_messages_to_keyvals`` exactly (shared contract, "messages").
* Content given as a list of parts: text parts joined by ``"\\n"``; images as
  ``[image: <url>]`` (a data URL becomes ``data:image/png;base64,… (N bytes)``: a base64 blob never
  reaches the row); audio as ``[audio]``; files as ``[file: <name or id>]``.
* An assistant message with ``tool_calls`` renders each call as ``name(arguments)`` on its own line;
  a ``tool`` message is labelled ``tool (<tool_call_id>)``. Responses API items without a role
  (``function_call``, ``function_call_output``, ``reasoning``, ...) are labelled with their type.
* Messages and parts may be dicts or SDK objects with attributes (pydantic models). Anything not
  understood is rendered with ``json.dumps``/``str()`` (long base64-like runs shortened); rendering
  never raises. Content that is ``None`` is empty; a number is its text.
* The messages may be any iterable (a tuple, a deque, a generator). A one-shot iterator that the SDK
  has already consumed cannot be read again: it is recorded as :data:`CONSUMED_ITERATOR` rather than
  as ``<generator object ...>``.
* A row that holds the messages as a list (the seed wrapper's ``{"kwargs": {"messages": [...]}}``
  handed to ``_write_to_azure_sql``) gets the same two columns from :func:`prompt_fields`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum
from typing import Any

from wonkalytics.access import field, json_text, safe_str
from wonkalytics.record.params import is_absent

__all__ = [
    "CONSUMED_ITERATOR",
    "SYSTEM_ROLES",
    "chat_message_fields",
    "prompt_fields",
    "render_content",
    "render_conversation",
    "responses_message_fields",
]

SYSTEM_ROLES: frozenset[str] = frozenset({"system", "developer"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text", "summary_text", "reasoning_text"})
_BLOB = re.compile(r"[A-Za-z0-9+/_-]{256,}={0,2}")
_PLAIN_MESSAGE_KEYS = frozenset({"role", "content"})
"""A plain dict message with only these keys takes the fast path of :func:`render_conversation`."""
CONSUMED_ITERATOR = "[the messages were an iterator the SDK had already read; pass a list to record them]"


def _shorten_blobs(text: str) -> str:
    return _BLOB.sub(lambda m: f"… ({len(m.group(0))} characters)", text)


def _unknown(value: Any) -> str:
    """Text for a value we do not understand: containers as JSON when they serialise, else ``str()``."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if not isinstance(value, Mapping | list | tuple):
        return _shorten_blobs(safe_str(value))
    return _shorten_blobs(json_text(value))


def _describe_url(url: Any) -> str:
    if not isinstance(url, str):
        return _unknown(url)
    if not url.startswith("data:"):
        return _shorten_blobs(url)
    header, _, data = url.partition(",")
    size = len(data) * 3 // 4 - data.count("=") if header.endswith(";base64") else len(data)
    return f"{header},… ({size} bytes)"


def _kind(obj: Any) -> str | None:
    kind = field(obj, "type")
    return kind if isinstance(kind, str) else None


def _render_part(part: Any) -> str:
    if isinstance(part, str):
        return part
    kind = _kind(part)
    text = field(part, "text")
    if kind in _TEXT_PARTS or (kind is None and isinstance(text, str)):
        return text if isinstance(text, str) else _unknown(text)
    if kind == "refusal":
        return _unknown(field(part, "refusal"))
    if kind in ("image_url", "input_image"):
        image = field(part, "image_url")
        url = image if isinstance(image, str) else field(image, "url")
        url = url if url is not None else field(part, "file_id")
        return "[image]" if url is None else f"[image: {_describe_url(url)}]"
    if kind in ("input_audio", "audio"):
        return "[audio]"
    if kind in ("file", "input_file"):
        file = field(part, "file") if kind == "file" else part
        name = field(file, "filename") or field(file, "file_id") or field(file, "file_url")
        return "[file]" if name is None else f"[file: {_unknown(name)}]"
    return _unknown(part)


def render_content(content: Any) -> str:
    """Render a message's content: a string, a list of parts, a single part or anything else.

    >>> render_content([{"type": "text", "text": "What is this?"},
    ...                 {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}])
    'What is this?\\n[image: data:image/png;base64,… (3 bytes)]'
    """
    if content is None or is_absent(content):
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        return "\n".join(text for text in map(_render_part, content) if text)
    return _render_part(content)


def _render_call(call: Any) -> str:
    function = field(call, "function") or field(call, "custom") or call
    name = field(function, "name")
    arguments = field(function, "arguments")
    if arguments is None:
        arguments = field(function, "input")
    if name is None:
        return _unknown(call)
    return f"{safe_str(name)}({'' if arguments is None else _unknown(arguments)})"


def _render_calls(calls: Any) -> list[str]:
    if is_absent(calls):
        return []
    if not isinstance(calls, list | tuple):
        return [_unknown(calls)]
    return [_render_call(call) for call in calls]


def _role(message: Any) -> str | None:
    role = field(message, "role")
    if role is None:
        return None
    if isinstance(role, Enum):
        role = role.value
    return role if isinstance(role, str) else safe_str(role)


def _render_message(role: str, message: Any) -> tuple[str, str]:
    """(label, body) of a message that has a role."""
    content = render_content(field(message, "content"))
    refusal = field(message, "refusal")
    lines = [content or (refusal if isinstance(refusal, str) else "")]
    lines += _render_calls(field(message, "tool_calls"))
    legacy_call = field(message, "function_call")
    if not is_absent(legacy_call):
        lines.append(_render_call({"function": legacy_call}))
    if not is_absent(field(message, "audio")) and role == "assistant":
        lines.append("[audio]")
    label = role
    if role == "tool" and field(message, "tool_call_id") is not None:
        label = f"tool ({safe_str(field(message, 'tool_call_id'))})"
    elif role == "function" and field(message, "name") is not None:
        label = f"function ({safe_str(field(message, 'name'))})"
    return label, "\n".join(line for line in lines if line)


def _render_item(item: Any) -> tuple[str, str]:
    """(label, body) of a Responses API input item without a role."""
    kind = _kind(item)
    label = kind or "item"
    if kind in ("function_call", "custom_tool_call"):
        return label, _render_call(item)
    if kind in ("function_call_output", "custom_tool_call_output"):
        call_id = field(item, "call_id")
        label = label if call_id is None else f"{label} ({safe_str(call_id)})"
        return label, render_content(field(item, "output"))
    if kind == "reasoning":
        return label, render_content(field(item, "summary")) or "[reasoning]"
    if kind == "item_reference":
        return label, f"[item: {safe_str(field(item, 'id'))}]"
    return label, render_content(field(item, "content")) or _unknown(item)


def render_conversation(items: Any, *, instructions: Any = None) -> tuple[str | None, str]:
    """Split a conversation into ``(system_msg, messages)`` in the seed's format.

    >>> render_conversation([{"role": "system", "content": "Be short."},
    ...                      {"role": "user", "content": "Hi"}])
    ('Be short.', 'user:\\nHi\\n\\n')
    """
    if type(items) is list:
        pass  # the usual: a list of messages, as every branch below leaves it (no ABC checks)
    elif is_absent(items):
        items = []
    elif isinstance(items, Iterator) and _role(items) is None:
        items = list(items)
        if not items:
            return None, CONSUMED_ITERATOR
    elif _is_sequence_of_messages(items):
        items = list(items)
    elif not isinstance(items, list | tuple):  # a bare string, a single message, anything else
        items = [items]
    rendered: list[tuple[str, str]] = []
    system_msg: str | None = None
    if not is_absent(instructions):
        system_msg = render_content(instructions)
    for item in items:
        if type(item) is dict and item.keys() <= _PLAIN_MESSAGE_KEYS:
            # The common message, {"role": ..., "content": "text"}: what the general path below makes
            # of it (label = role, body = content), without its six field look-ups (bench/writer_cpu.py).
            role, content = item.get("role"), item.get("content")
            if type(role) is str and type(content) is str:
                if role in SYSTEM_ROLES:
                    system_msg = content
                else:
                    rendered.append((role, content))
                continue
        if isinstance(item, str):
            rendered.append(("user", item))
            continue
        role = _role(item)
        if role is None:
            rendered.append(_render_item(item))
            continue
        if role in SYSTEM_ROLES:  # the last one wins; earlier ones are in neither column (the seed)
            system_msg = _render_message(role, item)[1]
            continue
        rendered.append(_render_message(role, item))
    text = "".join(f"{label}:\n{body}\n\n" for label, body in rendered)
    return system_msg, text


def _is_sequence_of_messages(items: Any) -> bool:
    """A deque, a dict's values, a range of messages...: not a string, a mapping or one message object."""
    return (
        isinstance(items, Iterable)
        and not isinstance(items, str | bytes | bytearray | Mapping | list | tuple)
        and _role(items) is None
        and field(items, "content") is None
        and not hasattr(items, "model_dump")  # a pydantic object iterates over its fields
    )


def prompt_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Step: a row whose ``messages`` is a conversation (a list) gets the seed's two text columns.

    The seed wrapper handed ``_write_to_azure_sql`` the call's own arguments under ``kwargs``; once
    flattened, ``messages`` is the list the SDK was given. A ``system_msg`` the row already has wins.

    >>> prompt_fields({"messages": [{"role": "system", "content": "Be short."}, {"role": "user", "content": "Hi"}]})
    {'messages': 'user:\\nHi\\n\\n', 'system_msg': 'Be short.'}
    >>> prompt_fields({"messages": "already text"})
    {'messages': 'already text'}
    """
    messages = row.get("messages")
    if messages is None or (not isinstance(messages, list | tuple) and not isinstance(messages, Iterator)):
        return row
    system_msg, text = render_conversation(messages)
    new = {**row, "messages": text}
    if system_msg is not None and row.get("system_msg") is None:
        new["system_msg"] = system_msg
    return new


def chat_message_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """``system_msg`` and ``messages`` from a chat.completions call's ``messages``."""
    messages = params.get("messages")
    if is_absent(messages):
        return {}
    system_msg, text = render_conversation(messages)
    return {"system_msg": system_msg, "messages": text}


def responses_message_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """``system_msg`` and ``messages`` from a responses.create call's ``instructions`` and ``input``.

    >>> responses_message_fields({"instructions": "Be short.", "input": "Hi"})
    {'system_msg': 'Be short.', 'messages': 'user:\\nHi\\n\\n'}
    """
    instructions, items = params.get("instructions"), params.get("input")
    if is_absent(instructions) and is_absent(items):
        return {}
    system_msg, text = render_conversation(items, instructions=instructions)
    return {"system_msg": system_msg, "messages": text}
