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
   silent NULL. What each kind takes is listed in :mod:`wonkalytics.store.coerce` (the coercion
   functions live there and are re-exported here).

Every text value is made safe for every driver: NUL characters are removed (PostgreSQL rejects
them) and lone surrogates are replaced by U+FFFD (no driver can encode them).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from wonkalytics.errors import NoMatchingColumnsError, SchemaError
from wonkalytics.internal_errors import log_limited
from wonkalytics.store.coerce import (
    _COERCE,
    ColumnKind,
    clean_text,
    coerce,
    exact_value,
    to_bool,
    to_datetime,
    to_float,
    to_int,
    to_text,
)

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

AUTOMATIC_FIELDS: frozenset[str] = frozenset({"timestamp", "event_id", "id"})
"""Fields a row may get without the app saying anything (re-exported by :mod:`.pipeline`). A row whose
only fields with a column are these is refused by :func:`fit_to_table`: it would record nothing."""


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
    refused: list[tuple[str, str]] = []  # (column, why)
    for name, column, kind, convert, _ in plan.steps:
        value = row[name]
        if value is None:  # None stays None in every kind: no converter call (a third of a row's fields)
            fitted[column] = None
            continue
        result = convert(value)
        if result is None:
            refused.append((column, _refusal(column, kind, value)))
            continue
        fitted[column] = result
    # Whether a field of the app's landed matters only when some were refused: asked then, not per field.
    if refused and not any(payload and column in fitted for _, column, _, _, payload in plan.steps):
        # nothing of the app's would land: set the row aside, whole
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
