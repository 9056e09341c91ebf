"""Bad input: every case is a clear exception or a value stored safely, never a lost row.

Each test runs with both durability settings (``memory`` and ``disk``) and, where the database
matters, on SQLite, PostgreSQL and MariaDB; rows are read back with plain SQL (not through us).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import configure_default, read_rows

import wonkalytics
from wonkalytics.recorder import default_recorder
from wonkalytics.testing import FakeOpenAI


@dataclass
class Setup:
    """The recorder under test: where it writes, and helpers to read back with plain SQL."""

    url: str
    table: str
    spool: Path
    durability: str
    fake: FakeOpenAI

    def rows(self, order_by: str = "row_pk") -> list[dict[str, Any]]:
        assert wonkalytics.flush(30), "rows still queued after 30 s"
        return read_rows(self.url, self.table, order_by=order_by)

    def one(self) -> dict[str, Any]:
        rows = self.rows()
        assert len(rows) == 1, rows
        return rows[0]

    def client(self) -> openai.OpenAI:
        return wonkalytics.wrap(openai.OpenAI(base_url=self.fake.base_url, api_key="sk-test-key-123456",
                                              max_retries=0))

    def spool_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.spool.rglob("*") if p.is_file())


@pytest.fixture(params=["memory", "disk"])
def durability(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _setup(url: str, table: str, tmp_path: Path, durability: str, fake: FakeOpenAI,
           **options: Any) -> Iterator[Setup]:
    spool = tmp_path / "spool"
    configure_default(url, table, spool, durability=durability, **options)
    try:
        yield Setup(url, table, spool, durability, fake)
    finally:
        default_recorder.shutdown(10)


@pytest.fixture
def wl(db_url: str, table_name: str, tmp_path: Path, durability: str, fake: FakeOpenAI) -> Iterator[Setup]:
    """The default recorder on each database, with each durability."""
    yield from _setup(db_url, table_name, tmp_path, durability, fake)


@pytest.fixture
def wl_sqlite(sqlite_url: str, table_name: str, tmp_path: Path, durability: str, fake: FakeOpenAI
              ) -> Iterator[Setup]:
    """The default recorder on SQLite only (cases where the database makes no difference)."""
    yield from _setup(sqlite_url, table_name, tmp_path, durability, fake)
