"""The SQL table sink: fit canonical rows onto the team's table and insert them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from wonkalytics.errors import SchemaError
from wonkalytics.interaction import Interaction
from wonkalytics.record.pipeline import interaction_row
from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.fit import fit_to_table
from wonkalytics.store.sql import TableStore, is_transient

__all__ = ["TableSink"]

logger = logging.getLogger("wonkalytics")


class TableSink:
    """Rows of canonical fields -> the columns of one table (through the column map) -> INSERT."""

    def __init__(self, store: TableStore, column_map: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.column_map = dict(column_map or {})
        self._map_checked = False

    def to_row(self, item: object) -> dict[str, Any]:
        """An ``Interaction`` becomes its row; an event row (already built) passes through."""
        if isinstance(item, Interaction):
            return interaction_row(item)
        if isinstance(item, dict):
            return item
        raise TypeError(f"cannot record a {type(item).__name__}; expected an Interaction or a row dict")

    def fit(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The row as the table's columns and value types (raises SchemaError when nothing fits)."""
        columns = self.store.columns
        if not self._map_checked:
            self._check_column_map(columns)
        return fit_to_table(row, columns, table=self.store.name, column_map=self.column_map)

    def _check_column_map(self, columns: Mapping[str, Any]) -> None:
        """Say once, loudly, when the column map points at columns the table does not have."""
        self._map_checked = True
        folded = {name.casefold() for name in columns}
        missing = {f: c for f, c in self.column_map.items() if c.casefold() not in folded}
        if missing:
            logger.warning(
                "wonkalytics: WONKALYTICS_COLUMN_MAP maps %s onto columns that table %r does not have; "
                "those fields will not be stored. Its columns are: %s",
                ", ".join(f"{field}->{column}" for field, column in sorted(missing.items())),
                self.store.name, ", ".join(sorted(columns)),
            )

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
