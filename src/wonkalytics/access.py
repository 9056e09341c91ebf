"""Reading foreign values without ever raising: dicts or SDK objects, printable or not.

The OpenAI SDK accepts both plain dicts and its own pydantic models (``ChatCompletionMessage``, ...)
almost everywhere, and apps hand us whatever they like. Record building runs on the writer thread,
where an exception would cost the whole row, so every look-up into foreign data goes through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["field", "safe_str"]


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
