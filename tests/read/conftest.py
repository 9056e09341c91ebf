"""Fixtures of the read-side tests: a default table seeded with known rows on each database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.read.seed import seed_rows

from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.sql import TableStore


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    dispose_engines()


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return seed_rows()


@pytest.fixture
def seeded(db_url: str, table_name: str, rows: list[dict[str, Any]]) -> str:
    """The URL of a database whose table ``table_name`` holds :func:`seed_rows` (written by the store)."""
    store = TableStore(db_url, table_name)
    store.create_table()
    assert store.insert_many(rows) == len(rows)
    return db_url
