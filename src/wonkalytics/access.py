"""Reading foreign values without ever raising: dicts or SDK objects, printable or not.

The OpenAI SDK accepts both plain dicts and its own pydantic models (``ChatCompletionMessage``, ...)
almost everywhere, and apps hand us whatever they like. Record building runs on the writer thread,
where an exception would cost the whole row, so every look-up into foreign data goes through here.

It is also the one home of JSON safety (issue 18: five private fallbacks became these three):
:func:`json_safe` turns a value into plain JSON data, :func:`json_default` is the ``default=`` hook
every ``json.dumps`` of foreign values passes, and :func:`json_text` is ``json.dumps`` that never
raises (the spool, the JSON-lines, OTel and ClickHouse sinks, text columns and message rendering use
it). ``tests/test_json_safety.py`` fails when a ``default=`` hook of another name appears.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, time
from enum import Enum
from typing import Any

__all__ = ["field", "is_absent", "json_default", "json_safe", "json_text", "safe_str"]

_SENTINEL_TYPES = frozenset({"NotGiven", "Omit"})
_MAX_DEPTH = 40  # deeper values become their str(): nothing recursive can overflow the stack


def field(obj: Any, name: str) -> Any:
    """Return ``obj[name]`` for a mapping, else ``obj.name``; ``None`` when absent or unreadable.

    >>> field({"role": "user"}, "role"), field(object(), "role")
    ('user', None)
    """
    if type(obj) is dict:  # plain dicts (most messages) skip the ABC isinstance check: ~0.3 µs a look-up
        return obj.get(name)
    try:
        if isinstance(obj, Mapping):
            return obj.get(name)
        return getattr(obj, name, None)
    except Exception:  # a property or __getitem__ that raises is just an absent field to us
        return None


def safe_str(value: Any) -> str:
    """``str(value)``, or a placeholder naming the type when its ``__str__`` fails.

    >>> safe_str(3), safe_str("x")
    ('3', 'x')
    """
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:  # __str__ raising, or RecursionError on a deeply nested container
        return f"<unprintable {type(value).__name__}>"


def is_absent(value: Any) -> bool:
    """True for ``None`` and the SDK's ``NOT_GIVEN`` / ``omit`` sentinels.

    The sentinels are recognised by class name, so this works without importing ``openai`` and for
    the other SDKs generated the same way (they share these names and meaning).

    >>> import openai
    >>> is_absent(None), is_absent(openai.NOT_GIVEN), is_absent(openai.omit), is_absent(0)
    (True, True, True, False)
    """
    return value is None or type(value).__name__ in _SENTINEL_TYPES


def json_safe(value: Any, depth: int = 0, _open: frozenset[int] = frozenset()) -> Any:
    """``value`` as plain JSON data: pydantic models dumped, sentinels dropped from containers.

    A container met again inside itself becomes ``"<circular list>"`` (``_open`` holds the ids of the
    containers being walked): without it ``x = [x, x]`` took 2**40 steps to reach the depth limit.

    >>> import openai
    >>> json_safe({"a": (1, 2), "b": openai.NOT_GIVEN, "c": {3}})
    {'a': [1, 2], 'c': [3]}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else safe_str(value)
    if depth > _MAX_DEPTH:
        return safe_str(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        if id(value) in _open:
            return f"<circular {type(value).__name__}>"
        inner = _open | {id(value)}
        if isinstance(value, Mapping):
            return {str(k): json_safe(v, depth + 1, inner) for k, v in value.items() if not is_absent(v) or v is None}
        return [json_safe(v, depth + 1, inner) for v in value if not is_absent(v) or v is None]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return json_safe(dump(mode="json"), depth + 1, _open)
        except Exception:  # a broken model: keep what str() says rather than lose the record
            return safe_str(value)
    if isinstance(value, Enum):
        return json_safe(value.value, depth + 1, _open)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return safe_str(value)


def json_default(value: Any) -> Any:
    """The ``default=`` hook for ``json.dumps``: a value JSON cannot hold as the nearest one it can.

    Timestamps, dates and times as ISO text, sets as lists, bytes as UTF-8 text (undecodable bytes
    replaced), other mappings as dicts, pydantic models dumped, enums by value, anything else its
    ``str()`` (a placeholder when that raises). Never raises, so a row is never lost to its encoding.

    >>> import json, datetime
    >>> json.dumps({"at": datetime.date(2024, 1, 2), "s": {1}, "b": b"hi"}, default=json_default)
    '{"at": "2024-01-02", "s": [1], "b": "hi"}'
    """
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Enum):
        return value.value
    dump = field(value, "model_dump")
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:  # not pydantic after all, or a model that cannot dump: fall back to str()
            return safe_str(value)
    return safe_str(value)


def json_text(value: Any, *, compact: bool = False) -> str:
    """``json.dumps(value)`` that never raises: odd values through :func:`json_default`, and a value
    JSON refuses whole (a container holding itself, nesting too deep, keys that are not text) through
    :func:`json_safe`. Not ASCII-escaped; ``compact`` drops the spaces after ``,`` and ``:``.

    >>> circular = [1]; circular.append(circular)
    >>> json_text({"x": circular}, compact=True)
    '{"x":[1,"<circular list>"]}'
    """
    separators = (",", ":") if compact else None
    try:
        return json.dumps(value, ensure_ascii=False, default=json_default, separators=separators)
    except (ValueError, TypeError, RecursionError):
        return json.dumps(json_safe(value), ensure_ascii=False, separators=separators)
