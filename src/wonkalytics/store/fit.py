"""Fitting a row onto a table's columns: rename, match, drop, coerce, make text safe.

:func:`resolve_column` is the one rule that finds a field's column -- the column map first, then the
exact name, then a case-insensitive match -- used alike by inserts, updates and reads.

:func:`fit_to_table` is the last record step and the only one that knows the table. It

1. renames fields through ``column_map`` (field -> the team's own column name);
2. finds each field's column: the exact name, else a case-insensitive match (returning the table's
   own spelling). When two fields land on one column, a field renamed by ``column_map`` beats one
   that is not, an exact match beats a case-insensitive one, and otherwise the first field wins;
3. drops fields that have no column, and raises :class:`~wonkalytics.errors.NoMatchingColumnsError`
   when no field outside :data:`AUTOMATIC_FIELDS` has one;
4. coerces each value to its column's kind (``None`` stays ``None``). A value the column cannot hold
   exactly (87.6 into an INTEGER column, "abc" into a number column, NaN) is *refused*: that one
   field is left out of the row with a warning naming table, column, type and value, and the rest of
   the row is stored -- "stored exactly or refused loudly", as ``score()`` does for updates, never a
   silent NULL:

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

import functools
import logging
import math
import numbers
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal

from wonkalytics.access import json_text, safe_str
from wonkalytics.errors import NoMatchingColumnsError, SchemaError
from wonkalytics.internal_errors import log_limited
from wonkalytics.utc import naive_utc

__all__ = [
    "AUTOMATIC_FIELDS",
    "ColumnKind",
    "clean_text",
    "coerce",
    "column_index",
    "exact_value",
    "fit_to_table",
    "resolve_column",
    "to_bool",
    "to_datetime",
    "to_float",
    "to_int",
    "to_text",
]

ColumnKind = Literal["text", "int", "float", "datetime", "bool"]
"""What kind of value a column takes; the store derives it from the reflected column type."""

AUTOMATIC_FIELDS: frozenset[str] = frozenset({"timestamp", "event_id", "id"})
"""Fields a row may get without the app saying anything (re-exported by :mod:`.pipeline`). A row whose
only fields with a column are these is refused by :func:`fit_to_table`: it would record nothing."""

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
        return clean_text(value)
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
    return _real(value)


def _from_epoch(value: numbers.Real | Decimal) -> datetime | None:
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


def fold_name(name: str) -> str:
    """The key two spellings of one column (or table) name share: the resolver's case-insensitive rule.

    Every comparison of names that ignores case goes through here or :func:`resolve_column`
    (``tests/store/test_one_folding.py`` fails on a local ``.casefold()`` of a name).

    >>> fold_name("Response_Id") == fold_name("response_ID")
    True
    """
    return name.casefold()


def column_index(columns: Iterable[str]) -> dict[str, str]:
    """Case-folded column name -> the table's own spelling (the first of two that fold alike wins).

    >>> column_index(["Score", "Response_Id"])
    {'score': 'Score', 'response_id': 'Response_Id'}
    """
    folded: dict[str, str] = {}
    for real_name in columns:
        folded.setdefault(fold_name(real_name), real_name)
    return folded


@functools.lru_cache(maxsize=64)
def _column_index_of(columns: tuple[str, ...]) -> dict[str, str]:
    # Built once per column set rather than per row (it was ~16 µs of each row's fit); the dict is
    # shared, and only ever read.
    return column_index(columns)


def resolve_column(
    name: str,
    columns: Collection[str],
    column_map: Mapping[str, str] | None = None,
    *,
    folded: Mapping[str, str] | None = None,
) -> str | None:
    """The table's column for field ``name``: through the column map, then exact, then case-insensitive.

    ``folded`` is :func:`column_index` of ``columns``, when the caller keeps one. None: no column.

    >>> resolve_column("score", ["Score", "Response_Id"]), resolve_column("response", ["a"], {"response": "a"})
    ('Score', 'a')
    """
    target = (column_map or {}).get(name, name)
    if target in columns:
        return target
    return (folded if folded is not None else column_index(columns)).get(fold_name(target))


def fit_to_table(
    row: Mapping[str, Any],
    columns: Mapping[str, ColumnKind],
    *,
    table: str,
    column_map: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keep the fields of ``row`` that have a column in ``columns``, renamed and coerced to fit.

    ``columns`` maps the table's column names to their kind; ``table`` only names the table in the
    error. Fields without a column are dropped; columns without a field are left out (the row stays
    sparse, so database defaults apply).

    >>> fit_to_table({"username": "ann", "score": "7", "unknown": 1, "timestamp": 0},
    ...              {"UserName": "text", "points": "int", "timestamp": "datetime"},
    ...              table="events", column_map={"score": "points"})
    {'UserName': 'ann', 'points': 7, 'timestamp': datetime.datetime(1970, 1, 1, 0, 0)}

    Raises:
        NoMatchingColumnsError: no field other than the automatic ones (timestamp, ids) has a column.
        SchemaError: every such field's value was refused (the writer sets the row aside for replay).
    """
    renames = column_map if column_map else _NO_MAP  # one object for "no map", so its plans are found
    plan = _plan_for(tuple(row), columns, renames)
    if not plan.has_payload:
        raise NoMatchingColumnsError(row.keys(), table, columns)
    fitted: dict[str, Any] = {}
    kept_payload = False
    refused: list[tuple[str, str]] = []  # (column, why)
    for name, column, kind, convert, payload in plan.steps:
        value = row[name]
        result = convert(value)
        if result is None and value is not None:
            refused.append((column, _refusal(column, kind, value)))
            continue
        fitted[column] = result
        kept_payload = kept_payload or payload
    if refused and not kept_payload:  # nothing of the app's would land: set the row aside, whole
        reasons = "; ".join(why for _, why in refused)
        raise SchemaError(
            f"no field of the row could be stored in table {table!r}: {reasons}. The row is set aside; "
            "`wonkalytics spool replay` writes it once the columns can hold its values."
        )
    for column, why in refused:
        _warn_refused(table, column, why)
    return fitted


def _refusal(column: str, kind: ColumnKind, value: Any) -> str:
    try:
        exact_value(value, kind, column=column)
    except ValueError as error:
        return str(error)
    return f"column {column!r} cannot hold a {type(value).__name__} value"


def _warn_refused(table: str, column: str, why: str) -> None:
    """Say loudly (once a minute per column) that a field was left out of a row rather than NULLed."""
    log_limited(
        f"refused-{table}-{column}", logging.WARNING,
        "wonkalytics: a field was left out of a row of table %r (the rest of the row is stored): %s",
        table, why,
    )


@dataclass(frozen=True)
class _FitPlan:
    """How rows with one sequence of field names fit one table: compiled once, then reused per row.

    Resolving each field's column (column map, exact, case-folded), ranking fields that land on one
    column and looking up each converter was the per-row work of the fit; with a plan per table and
    field set it is done once (rows of one kind repeat the same keys).
    """

    columns: Mapping[str, ColumnKind]
    column_map: dict[str, str]
    steps: tuple[tuple[str, str, ColumnKind, Callable[[Any], Any], bool], ...]  # field, column, kind, convert, payload
    has_payload: bool


_NO_MAP: Mapping[str, str] = MappingProxyType({})
_PLANS: dict[tuple[int, int, tuple[str, ...]], _FitPlan] = {}
_MAX_PLANS = 1024  # distinct (table, column map, field set) combinations kept; beyond, start afresh


def _plan_for(keys: tuple[str, ...], columns: Mapping[str, ColumnKind], renames: Mapping[str, str]) -> _FitPlan:
    cache_key = (id(columns), id(renames), keys)
    plan = _PLANS.get(cache_key)
    # The ids are only a hint: the plan holds its mapping objects and is used only for those very
    # objects, with the same column map contents (a map changed in place compiles a new plan).
    if plan is not None and plan.columns is columns and plan.column_map == renames:
        return plan
    plan = _compile(keys, columns, renames)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[cache_key] = plan
    return plan


def _compile(keys: tuple[str, ...], columns: Mapping[str, ColumnKind], renames: Mapping[str, str]) -> _FitPlan:
    folded = _column_index_of(tuple(columns))
    chosen: dict[str, tuple[tuple[bool, bool], str]] = {}  # column -> (rank, field); lower rank wins
    has_payload = False
    for name in keys:
        column = resolve_column(name, columns, renames, folded=folded)
        if column is None:
            continue
        has_payload = has_payload or name not in AUTOMATIC_FIELDS
        rank = (name not in renames, column != renames.get(name, name))
        if column not in chosen or rank < chosen[column][0]:
            chosen[column] = (rank, name)
    steps = tuple(
        (name, column, columns[column], _COERCE.get(columns[column], to_text), name not in AUTOMATIC_FIELDS)
        for column, (_, name) in chosen.items()
    )
    return _FitPlan(columns, dict(renames), steps, has_payload)
