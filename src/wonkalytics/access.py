"""Reading foreign values without ever raising: dicts or SDK objects, printable or not.

The OpenAI SDK accepts both plain dicts and its own pydantic models (``ChatCompletionMessage``, ...)
almost everywhere, and apps hand us whatever they like. Record building runs on the writer thread,
where an exception would cost the whole row, so every look-up into foreign data goes through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

__all__ = ["field", "is_absent", "json_safe", "safe_str"]

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


def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data: pydantic models dumped, sentinels dropped from containers.

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
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items() if not is_absent(v) or v is None}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, depth + 1) for v in value if not is_absent(v) or v is None]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return json_safe(dump(mode="json"), depth + 1)
        except Exception:  # a broken model: keep what str() says rather than lose the record
            return safe_str(value)
    if isinstance(value, Enum):
        return json_safe(value.value, depth + 1)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return safe_str(value)
