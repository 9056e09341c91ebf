"""The seed's key quirks: nested dicts become ``PARENT_CHILD`` keys; ``kwargs_``/``request_`` go.

Both steps are pure ``dict -> new dict`` functions and both resolve collisions the same way:
**the key given more plainly wins**.

* :func:`flatten`: a key written at a shallower level beats one built from deeper nesting
  (``{"a_b": 1, "a": {"b": 2}}`` gives ``{"a_b": 1}``); at equal depth the first one seen wins.
* :func:`strip_prefixes`: a key with fewer prefixes stripped beats one with more
  (``{"response_id": "r1", "request_response_id": "r2"}`` gives ``{"response_id": "r1"}``);
  with the same number stripped the first one seen wins.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from wonkalytics.internal_errors import log_limited

__all__ = ["OPAQUE_KEYS", "PREFIXES", "SEPARATOR", "flatten", "strip_prefixes"]

SEPARATOR = "_"
PREFIXES: tuple[str, ...] = ("kwargs_", "request_")
"""Leading parts of a key that the seed removed: ``request_kwargs_x`` is stored as ``x``."""
_LEAVES = frozenset({str, int, float, bool, type(None)})  # values that are never a mapping to flatten
OPAQUE_KEYS: frozenset[str] = frozenset({"auth_info"})
"""Keys whose mapping value is kept whole rather than flattened (the identity step parses it)."""


def flatten(item: Mapping[Any, Any], *, opaque: frozenset[str] = OPAQUE_KEYS) -> dict[str, Any]:
    """Flatten nested mappings to ``PARENT_CHILD`` keys, to any depth; lists stay values.

    Keys are turned into strings; a key whose ``str()`` raises is dropped (that key alone, with a
    warning: the other fields of the row are kept); an empty nested mapping has no leaves and disappears; a mapping
    under a key named in ``opaque`` stays one value, as does a mapping that contains itself.

    >>> flatten({"request": {"name": "Ann", "scores": {"math": 9}}, "tags": ["a"]})
    {'tags': ['a'], 'request_name': 'Ann', 'request_scores_math': 9}
    """
    if type(item) is dict and all(type(key) is str for key in item) and all(
        type(value) in _LEAVES for value in item.values()
    ):
        return dict(item)  # nothing nested (the usual request fields): the walk below would copy it as is
    flat: dict[str, Any] = {}
    # Breadth first, so every shallower key is placed before any deeper one can collide with it.
    pending: deque[tuple[str, Mapping[Any, Any], tuple[int, ...]]] = deque([("", item, (id(item),))])
    while pending:
        prefix, mapping, ancestors = pending.popleft()
        for raw_key, value in mapping.items():
            if isinstance(raw_key, str):
                key = raw_key
            else:
                try:
                    key = str(raw_key)
                except Exception:  # the app's own object: it must not cost the row its other fields
                    _warn_unprintable(raw_key)
                    continue
            name = prefix + key
            if isinstance(value, Mapping) and key not in opaque and id(value) not in ancestors:
                pending.append((name + SEPARATOR, value, (*ancestors, id(value))))
            elif name not in flat:
                flat[name] = value
    return flat


def _warn_unprintable(raw_key: object) -> None:
    log_limited(
        "unprintable-key", logging.WARNING,
        "wonkalytics: a field key of type %s has no str() (it raised); that one field was dropped, "
        "the rest of the row is kept", type(raw_key).__name__,
    )


def _strip(key: str) -> tuple[str, int]:
    stripped = 0
    while True:
        for prefix in PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                key = key[len(prefix) :]
                stripped += 1
                break
        else:
            return key, stripped


def strip_prefixes(row: Mapping[str, Any]) -> dict[str, Any]:
    """Remove leading ``kwargs_`` / ``request_`` from every key, repeatedly.

    >>> strip_prefixes({"request_kwargs_name": "Ann", "request_start_time": 1.5})
    {'name': 'Ann', 'start_time': 1.5}
    >>> strip_prefixes({"request_response_id": "r2", "response_id": "r1"})
    {'response_id': 'r1'}
    """
    if not any(key.startswith(PREFIXES) for key in row):
        return dict(row)  # no key to strip (the usual request fields): the same fields, in a new dict
    stripped: dict[str, Any] = {}
    prefixes_removed: dict[str, int] = {}
    for key, value in row.items():
        name, removed = _strip(key)
        if name not in stripped or removed < prefixes_removed[name]:
            stripped[name] = value
            prefixes_removed[name] = removed
    return stripped
