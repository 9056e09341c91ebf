"""Redaction: the ``redact`` setting turned into one pure ``row -> row`` function.

``redact`` is a callable ``row -> row``, the name of a built-in redactor, or a list of both (applied
in order); ``WONKALYTICS_REDACT=email,phone`` names built-ins from the environment. The recorder
applies the result to every row before it leaves the caller's process (the spool included).

Built-ins replace what they find inside every text value, nested lists and dicts included, and
leave numbers, dates and keys alone:

* ``"email"``: addresses such as ``ada@example.com`` -> ``[email]``;
* ``"phone"``: phone numbers of 9 to 15 digits, with or without ``+``, spaces, dots, dashes or
  brackets (``+31 6 1234 5678``, ``(555) 123-4567``) -> ``[phone]``. Dates such as ``2024-01-31``
  have too few digits to match.

The identity columns (``username``, ``email``, ``tenant_id``) are what the app chose to record about
its user, so the built-ins leave them as given; a team that must not store them leaves them out of
the table (fields without a column are dropped) or passes a callable that removes them.

>>> scrub = redactor("email")
>>> scrub({"messages": "user:\\nmail ada@example.com\\n\\n", "email": "ada@example.com", "score": 9})
{'messages': 'user:\\nmail [email]\\n\\n', 'email': 'ada@example.com', 'score': 9}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from wonkalytics.settings import check_redact

__all__ = ["BUILTIN_REDACTORS", "IDENTITY_FIELDS", "Redactor", "check_redact", "redact_email",
           "redact_phone", "redactor"]

Redactor = Callable[[dict[str, Any]], dict[str, Any]]
"""A pure function ``row -> new row``."""

IDENTITY_FIELDS: frozenset[str] = frozenset({"username", "email", "tenant_id"})
"""Fields the built-in redactors leave as given (the app's deliberate identity of its user)."""

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{1,4}){1,6}(?![\w])")
_PHONE_DIGITS = range(9, 16)  # E.164 allows at most 15 digits; fewer than 9 are dates, years, amounts
_MAX_DEPTH = 50  # deeper values are replaced whole by the marker: nothing unscanned is stored


def _phone(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return "[phone]" if digits in _PHONE_DIGITS else match.group(0)


def _email(match: re.Match[str]) -> str:
    return "[email]"


def _scrub(value: Any, sub: Callable[[str], str], marker: str, depth: int = 0) -> Any:
    if isinstance(value, str):
        return sub(value)
    if depth > _MAX_DEPTH:
        return marker
    if isinstance(value, Mapping):
        return {key: _scrub(item, sub, marker, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, sub, marker, depth + 1) for item in value]
    return value


def _redact_row(row: dict[str, Any], sub: Callable[[str], str], marker: str) -> dict[str, Any]:
    return {key: value if key in IDENTITY_FIELDS else _scrub(value, sub, marker) for key, value in row.items()}


def redact_email(row: dict[str, Any]) -> dict[str, Any]:
    """Built-in ``"email"``: e-mail addresses in text values -> ``[email]`` (identity fields kept).

    >>> redact_email({"response": "Write to a.b@x.co.uk or c@d.org", "tags": ["e@f.io"]})
    {'response': 'Write to [email] or [email]', 'tags': ['[email]']}
    """
    return _redact_row(row, partial(_EMAIL.sub, _email), "[email]")


def redact_phone(row: dict[str, Any]) -> dict[str, Any]:
    """Built-in ``"phone"``: phone numbers in text values -> ``[phone]`` (dates and short numbers kept).

    >>> redact_phone({"messages": "call +31 6 1234 5678 before 2024-01-31, ref 12345"})
    {'messages': 'call [phone] before 2024-01-31, ref 12345'}
    """
    return _redact_row(row, partial(_PHONE.sub, _phone), "[phone]")


BUILTIN_REDACTORS: dict[str, Redactor] = {"email": redact_email, "phone": redact_phone}
"""The names ``redact`` accepts, and their functions."""


def _checked(function: Callable[..., Any]) -> Redactor:
    def apply(row: dict[str, Any]) -> dict[str, Any]:
        result = function(dict(row))  # a copy: the caller's callable may mutate what it gets
        if not isinstance(result, dict):
            raise TypeError(
                f"the redact callable {getattr(function, '__name__', function)!r} returned "
                f"{type(result).__name__}; it must return the row as a dict"
            )
        return result

    return apply


def redactor(setting: Any) -> Redactor | None:
    """The one function that applies a ``redact`` setting, or None when nothing is to be redacted.

    A callable of the app that raises, or returns something other than a dict, makes the row fail
    (its exception propagates): a row is never stored unredacted.

    >>> redactor(None) is None
    True
    >>> redactor(["phone", lambda row: {**row, "notes": None}])({"notes": "x", "summary": "ring 0612345678"})
    {'notes': None, 'summary': 'ring [phone]'}
    """
    items = check_redact(setting)
    if not items:
        return None
    steps = [BUILTIN_REDACTORS[item] if isinstance(item, str) else _checked(item) for item in items]
    if len(steps) == 1:
        return steps[0]

    def apply(row: dict[str, Any]) -> dict[str, Any]:
        for step in steps:
            row = step(row)
        return row

    return apply
