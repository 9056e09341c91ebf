"""Helpers of the store tests: watch the SQL an engine sends; read and write with plain SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from wonkalytics.store.engine import get_engine


@contextmanager
def recorded_sql(url: str) -> Iterator[list[str]]:
    """Collect every statement the process-wide engine of ``url`` sends while the block runs."""
    statements: list[str] = []
    engine = get_engine(url)

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def read_rows(url: str, table: str, order_by: str = "row_pk") -> list[dict[str, Any]]:
    """Rows read back with plain SQL on a separate engine (not through the store)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}"))
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()


def run_sql(url: str, *statements: str) -> None:
    """Run plain SQL on a separate engine (to build a team's own table, say)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()
