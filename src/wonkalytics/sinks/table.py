"""The SQL table sink: fit canonical rows onto the team's table and insert them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wonkalytics.capture.interaction import Interaction
from wonkalytics.errors import SchemaError
from wonkalytics.record.columns import fit_to_table
from wonkalytics.record.pipeline import interaction_row
from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.sql import TableStore, is_transient

__all__ = ["TableSink"]


class TableSink:
    """Rows of canonical fields -> the columns of one table (through the column map) -> INSERT."""

    def __init__(self, store: TableStore, column_map: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.column_map = dict(column_map or {})

    def to_row(self, item: object) -> dict[str, Any]:
        """An ``Interaction`` becomes its row; an event row (already built) passes through."""
        if isinstance(item, Interaction):
            return interaction_row(item)
        if isinstance(item, dict):
            return item
        raise TypeError(f"cannot record a {type(item).__name__}; expected an Interaction or a row dict")

    def fit(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The row as the table's columns and value types (raises SchemaError when nothing fits)."""
        return fit_to_table(row, self.store.columns, table=self.store.name, column_map=self.column_map)

    def write(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Exception]]:
        """Insert the rows that fit the table; return the ones that never will, with the reason."""
        fitted: list[dict[str, Any]] = []
        rejected: list[tuple[Mapping[str, Any], Exception]] = []
        for row in rows:
            try:
                fitted.append(self.fit(row))
            except SchemaError as exc:
                rejected.append((row, exc))
        if fitted:
            self.store.insert_many(fitted)
        return rejected

    def is_transient(self, exc: BaseException) -> bool:
        """Connection trouble is retried; data the database refuses is not."""
        return is_transient(exc)

    def after_fork(self) -> None:
        """Never share the parent's pooled connections with a forked child."""
        dispose_engines(close=False)

    def column(self, field: str) -> str:
        """The table's column for one of our field names (through the column map)."""
        return self.column_map.get(field, field)
