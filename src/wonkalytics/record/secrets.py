"""Known secret fields never reach a row, a log line or the spool.

:func:`drop_secrets` removes, from a row of canonical fields and recursively from the dicts and lists
inside its values, every key that names a credential: ``api_key`` (the OpenAI and PromptLayer keys
the seed wrapper puts in ``kwargs``), ``Authorization`` and other auth headers, passwords, tokens,
client secrets, cookies. Key names are compared case-insensitively with ``-`` read as ``_``, and a
key that *ends* in one of these names counts too (``extra_headers_Authorization`` after flattening,
``openai_api_key``, ``X-MS-TOKEN-AAD-ACCESS-TOKEN``). Counters such as ``total_tokens`` do not.

``known`` takes secret *values* the caller holds (the configured keys, the database password): each
occurrence inside a text value is replaced with ``***``, so a key echoed in an error text or pasted
in a prompt is not stored either.

>>> drop_secrets({"model": "gpt-4o", "api_key": "sk-1", "extra_headers": {"Authorization": "Bearer x"},
...               "total_tokens": 7, "error": "401 for key pl_abc"}, known=["pl_abc"])
{'model': 'gpt-4o', 'extra_headers': {}, 'total_tokens': 7, 'error': '401 for key ***'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

__all__ = ["SECRET_NAMES", "drop_secrets", "is_secret_key"]

SECRET_NAMES: frozenset[str] = frozenset({
    "api_key", "apikey", "x_api_key", "api_token", "auth_token", "access_token", "refresh_token",
    "id_token", "token", "authorization", "proxy_authorization", "x_ms_client_principal_secret",
    "password", "passwd", "pwd", "db_password", "secret", "client_secret", "secret_key", "private_key",
    "cookie", "set_cookie", "promptlayer_api_key", "pl_api_key", "azure_sql_password",
})
"""Key names (lower case, ``_`` for ``-``) whose values are credentials."""
_SUFFIXES = tuple(sorted({"_" + name for name in SECRET_NAMES if name != "token"} | {"_token", "_password"}))
_MASK = "***"
_PLAIN = frozenset({str, int, float, bool, type(None), datetime})  # nothing inside them can be a secret key
_MAX_DEPTH = 50


def is_secret_key(key: object) -> bool:
    """True when ``key`` names a credential (see the module docstring).

    >>> [is_secret_key(k) for k in ("API-Key", "kwargs_api_key", "Authorization", "total_tokens", "notes")]
    [True, True, True, False, False]
    """
    return isinstance(key, str) and _secret_name(key)


@lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    # Rows repeat the same few dozen keys: cached, the check costs a dict look-up instead of ~0.4 µs
    # of lower() + endswith(30 suffixes) per key (measured 26 -> 6 µs per row of the bench workload).
    name = key.lower().replace("-", "_")
    return name in SECRET_NAMES or name.endswith(_SUFFIXES)


@lru_cache(maxsize=256)
def _has_secret_key(keys: tuple[Any, ...]) -> bool:
    # One look-up per row instead of one per key (36 per row of the bench workload; measured in
    # BENCHMARKS.md's writer-CPU section).
    return any(type(key) is str and _secret_name(key) for key in keys)


def _clean(value: Any, known: tuple[str, ...], depth: int) -> Any:
    if isinstance(value, str):
        for secret in known:
            if secret in value:
                value = value.replace(secret, _MASK)
        return value
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {k: _clean(v, known, depth + 1) for k, v in value.items() if not is_secret_key(k)}
    if isinstance(value, list | tuple):
        return [_clean(item, known, depth + 1) for item in value]
    return value


def drop_secrets(row: Mapping[str, Any], known: Iterable[str | None] = ()) -> dict[str, Any]:
    """A copy of ``row`` without credential fields (nested too), known secret values masked.

    ``known`` values shorter than 6 characters are ignored: masking every ``"pw"`` in a prompt would
    garble text and protect nothing.
    """
    secrets = tuple(sorted({s for s in known if isinstance(s, str) and len(s) >= 6}, key=len, reverse=True))
    if not secrets:  # the common case: only keys to drop, and plain values need no look at all
        if not _has_secret_key(tuple(row)):  # rows of one kind repeat one key set: decided once for it
            return {key: value if type(value) in _PLAIN else _clean(value, (), 1) for key, value in row.items()}
        return {
            key: value if type(value) in _PLAIN else _clean(value, secrets, 1)
            for key, value in row.items()
            if not (type(key) is str and _secret_name(key))
        }
    return {key: _clean(value, secrets, 1) for key, value in row.items() if not is_secret_key(key)}
