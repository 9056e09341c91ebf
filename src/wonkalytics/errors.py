"""Every exception Wonkalytics raises on purpose.

Hierarchy::

    WonkalyticsError                 base class; catch this to catch them all
    ├── ConfigurationError           bad settings (URL, table name, column map, durability)
    ├── SchemaError                  the table does not fit what we are asked to write
    │   ├── UnknownColumnError       a column name that the table does not have (also a ValueError)
    │   └── NoMatchingColumnsError   a record none of whose fields has a column (also a ValueError)
    └── StoreError                   the database refused or could not be reached

Messages say what was wrong and what to do about it; they never contain a password.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConfigurationError",
    "NoMatchingColumnsError",
    "SchemaError",
    "StoreError",
    "UnknownColumnError",
    "WonkalyticsError",
]


class WonkalyticsError(Exception):
    """Base class of every exception raised by Wonkalytics on purpose."""


class ConfigurationError(WonkalyticsError, ValueError):
    """A setting is missing or invalid; the message names it and how to fix it."""


class SchemaError(WonkalyticsError):
    """The analytics table does not fit what we were asked to write."""


def _preview(names: Iterable[str], limit: int = 40) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class UnknownColumnError(SchemaError, ValueError):
    """A column name that the table does not have. No SQL is ever built from it."""

    def __init__(self, column: str, table: str, columns: Iterable[str]) -> None:
        self.column = column
        self.table = table
        super().__init__(
            f"table {table!r} has no column {column!r}; its columns are: {_preview(columns)}. "
            "Add the column to the table, or set WONKALYTICS_COLUMN_MAP / configure(column_map=...) "
            "to map this field onto one of your columns."
        )


class NoMatchingColumnsError(SchemaError, ValueError):
    """None of a record's fields has a column in the table, so nothing could be written."""

    def __init__(self, fields: Iterable[str], table: str, columns: Iterable[str]) -> None:
        self.fields = sorted(fields)
        self.table = table
        super().__init__(
            f"none of the fields {_preview(self.fields)} matches a column of table {table!r} "
            f"(its columns are: {_preview(columns)}). Check WONKALYTICS_TABLE, or map your fields onto "
            "the table's columns with WONKALYTICS_COLUMN_MAP / configure(column_map=...)."
        )


class StoreError(WonkalyticsError):
    """The database could not be reached or refused a statement (the message hides passwords).

    ``transient`` says whether retrying may help (a lost connection) or not (data the database
    refuses); the writer retries the first kind and sets rows of the second kind aside.
    """

    transient: bool = False
