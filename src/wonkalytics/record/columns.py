"""Compatibility home of the table fitting, which lives next to the store that owns the table's types.

See :mod:`wonkalytics.store.fit`.
"""

from wonkalytics.store.fit import (
    AUTOMATIC_FIELDS,
    ColumnKind,
    clean_text,
    coerce,
    fit_to_table,
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
    "fit_to_table",
    "to_bool",
    "to_datetime",
    "to_float",
    "to_int",
    "to_text",
]
