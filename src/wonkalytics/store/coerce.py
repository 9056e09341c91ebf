"""Coercing one value to a column's kind: exactly, or not at all.

The value side of :mod:`wonkalytics.store.fit` (which re-exports every public name here): fit.py
matches fields to columns, this module turns each value into what its column holds. Per kind:

==========  ===========================================================================
text        ``str`` as is; dict/list/tuple/set as JSON; datetime/date as ISO; bytes decoded
            as UTF-8; anything else ``str()``
int         ``int``, ``bool``, integral ``float``, numeric string; within signed 64 bits
float       ``int``, ``float``, numeric string; NaN and infinities become ``None``
datetime    ``datetime``, ``date``, ISO string, epoch seconds (a number, not a string);
            always naive UTC (aware values are converted, naive ones kept as they are)
bool        ``bool``, 0/1, "true"/"false"/"yes"/"no"/"on"/"off"/"t"/"f"/"y"/"n"/"1"/"0"
==========  ===========================================================================

Every text value is made safe for every driver: NUL characters are removed (PostgreSQL rejects
them) and lone surrogates are replaced by U+FFFD (no driver can encode them).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from wonkalytics.access import json_text, safe_str
from wonkalytics.utc import naive_utc

__all__ = [
    "ColumnKind",
    "clean_text",
    "coerce",
    "exact_value",
    "to_bool",
    "to_datetime",
    "to_float",
    "to_int",
    "to_text",
]

ColumnKind = Literal["text", "int", "float", "datetime", "bool"]
"""What kind of value a column takes; the store derives it from the reflected column type."""

_INT64 = range(-(2**63), 2**63)
_REAL = (numbers.Real, Decimal)  # Decimal is a number but not registered as numbers.Real
_SURROGATE = re.compile("[\ud800-\udfff]")
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_text(text: str) -> str:
    """Remove NUL characters and replace lone surrogates, so any database driver accepts ``text``.

    >>> clean_text("a\\x00b\\ud800c")
    'ab\\ufffdc'
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    # Only surrogates make strict UTF-8 encoding fail; isascii() and encode() are C scans, measured at
    # 0.03 and 1.1 µs for a 1.8 KB answer against 4.3 µs for the regex search they spare.
    if not text.isascii() and not _encodes(text) and _SURROGATE.search(text):
        # Through UTF-16: a high+low pair becomes the character it encodes, a lone one U+FFFD.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def to_text(value: Any) -> str | None:
    """Coerce to text: containers as JSON, datetimes as ISO, anything else ``str()``.

    >>> to_text({"a": [1, "é"]}), to_text(datetime(2024, 1, 2, 3, 4)), to_text(1.5)
    ('{"a": [1, "é"]}', '2024-01-02T03:04:00', '1.5')
    """
    if value is None:
        return None
    if type(value) is str:  # the common case first, before the ABC isinstance checks below
        # clean_text's own first checks, inline: most texts need nothing (one call less per text field)
        return value if value.isascii() and "\x00" not in value else clean_text(value)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping | list | tuple | set | frozenset):
        text = json_text(value)  # a container that contains itself: a placeholder, never an error
    elif isinstance(value, datetime | date | time):
        text = value.isoformat()
    elif isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("utf-8", "replace")
    else:
        text = safe_str(value)
    return clean_text(text)


def _real(value: Any) -> float | None:
    """A finite float from a number or numeric string, else None."""
    if type(value) is float:  # exact float first: isinstance(numbers.Real) is an ABC check
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    elif isinstance(value, _REAL):
        try:
            number = float(value)
        except (OverflowError, ValueError):
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def to_int(value: Any) -> int | None:
    """Coerce to an integer (within signed 64 bits), else ``None``.

    >>> to_int(True), to_int(3.0), to_int(" 42 "), to_int("7.0"), to_int(2.5), to_int("x")
    (1, 3, 42, 7, None, None)
    """
    if type(value) is int:  # exact int first: isinstance(numbers.Integral) is an ABC check (~0.5 µs)
        return value if value in _INT64 else None
    number: int | None = None
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            real = _real(value)
            number = int(real) if real is not None and real.is_integer() else None
    elif isinstance(value, _REAL):
        real = _real(value)
        number = int(real) if real is not None and real.is_integer() else None
    return number if number is not None and number in _INT64 else None


def to_float(value: Any) -> float | None:
    """Coerce to a finite float, else ``None``.

    >>> to_float(2), to_float("2.5"), to_float(float("nan")), to_float("abc")
    (2.0, 2.5, None, None)
    """
    if type(value) is float:  # _real's first case, inline (one call less per float field)
        return value if math.isfinite(value) else None
    return _real(value)


def _from_epoch(value: float | numbers.Real | Decimal) -> datetime | None:
    seconds = _real(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def to_datetime(value: Any) -> datetime | None:
    """Coerce to a naive UTC datetime: datetime, date, ISO string or epoch seconds, else ``None``.

    >>> to_datetime("2024-05-01T12:00:00+02:00"), to_datetime(0)
    (datetime.datetime(2024, 5, 1, 10, 0), datetime.datetime(1970, 1, 1, 0, 0))
    """
    if type(value) is float:  # epoch seconds (every interaction's start_time): before the ABC checks below
        return _from_epoch(value)
    if isinstance(value, datetime):
        return value if value.tzinfo is None else naive_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            return naive_utc(datetime.fromisoformat(value.strip()))
        except ValueError:  # a numeric string is not taken as epoch seconds: "2024" is no 1970 date
            return None
    return _from_epoch(value) if isinstance(value, _REAL) else None


def to_bool(value: Any) -> bool | None:
    """Coerce to a boolean: bools, 0/1 and the usual words, else ``None``.

    >>> to_bool(1), to_bool("False"), to_bool("yes"), to_bool(2)
    (True, False, True, None)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    number = _real(value) if isinstance(value, _REAL) else None
    if number is not None:
        return True if number == 1 else False if number == 0 else None
    return None


_COERCE: dict[str, Callable[[Any], Any]] = {
    "text": to_text,
    "int": to_int,
    "float": to_float,
    "datetime": to_datetime,
    "bool": to_bool,
}


def coerce(value: Any, kind: ColumnKind) -> Any:
    """Coerce one value to a column kind, as :func:`fit_to_table` does (unknown kinds: text).

    >>> coerce("12", "int"), coerce(12, "text"), coerce("yes", "bool")
    (12, '12', True)
    """
    convert: Callable[[Any], Any] = _COERCE.get(kind, to_text)
    return convert(value)


_MAX_EXACT_FLOAT_INT = 2**53  # integers beyond this have no exact float


def _refuse(value: Any, kind: str, column: str, why: str) -> ValueError:
    shown = safe_str(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ValueError(
        f"column {column!r} holds {kind} values; {shown!r} ({type(value).__name__}) {why}. "
        "Pass a value of that type, or store it in a text column."
    )


def exact_value(value: Any, kind: ColumnKind, *, column: str) -> Any:
    """``value`` as column ``column`` of ``kind`` can hold it exactly, else ValueError (never a silent NULL).

    For updates (``score()``, ``update_row_property()``), checked on the caller's thread: 87.6 into an
    INTEGER column, "abc" into a number column, NaN or infinity anywhere are refused with a message
    naming the column, its type and the value. ``None`` clears the column.

    >>> exact_value(87.6, "float", column="score"), exact_value("100", "int", column="score")
    (87.6, 100)
    >>> exact_value(87.6, "int", column="points")
    Traceback (most recent call last):
    ...
    ValueError: column 'points' holds int values; '87.6' (float) is not a whole number. Pass a value ...
    """
    if value is None:
        return None
    if kind == "text":
        return to_text(value)
    if kind == "bool":
        result = to_bool(value)
        if result is None:
            raise _refuse(value, kind, column, "is not true or false")
        return result
    if kind == "datetime":
        moment = to_datetime(value) if not isinstance(value, bool) else None
        if moment is None:
            raise _refuse(value, kind, column, "is not a date or time")
        return moment
    if isinstance(value, bool) or not isinstance(value, str | numbers.Real | Decimal):
        raise _refuse(value, kind, column, "is not a number")
    number = _real(value)
    if number is None:
        raise _refuse(value, kind, column, "is not a finite number")
    if kind == "int":
        whole = to_int(value)
        if whole is None:
            raise _refuse(value, kind, column, "is not a whole number" if number.is_integer() is False
                          else "does not fit in 64 bits")
        return whole
    if isinstance(value, numbers.Integral) and abs(int(value)) > _MAX_EXACT_FLOAT_INT:
        raise _refuse(value, kind, column, "has more digits than a float holds")
    return number
