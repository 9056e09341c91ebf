"""Seed fidelity on inserts: a value a team column cannot hold exactly is refused loudly, never NULLed.

The seed's default schema has ``[score] INT``. ``score()`` refuses 87.6 for such a column; an insert
(``log()``, the seed's ``_write_to_azure_sql``) must not store it as a silent NULL either: the field is
left out with a warning naming the column, its type and the value, and the rest of the row lands.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import configure_default, read_rows

import wonkalytics
from wonkalytics.analytics import _write_to_azure_sql
from wonkalytics.recorder import default_recorder

from .conftest import Setup


@pytest.fixture
def int_score_table(db_url: str, table_name: str, tmp_path: Path, durability: str) -> Iterator[str]:
    """A team table in the seed's shape: an INTEGER score column, no event_id."""
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {table_name} (username VARCHAR(100), action VARCHAR(100), "
                                 "score INTEGER, max_tokens INTEGER)"))
    finally:
        engine.dispose()
    configure_default(db_url, table_name, tmp_path / "spool", durability=durability)
    try:
        yield db_url
    finally:
        default_recorder.shutdown(10)


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "left out of a row" in r.getMessage()]


def test_a_fractional_score_through_write_to_azure_sql_is_refused_loudly(
    int_score_table: str, table_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wonkalytics")
    assert _write_to_azure_sql({"username": "ann", "action": "rated", "score": 87.6, "max_tokens": 5}) is True
    rows = read_rows(int_score_table, table_name, order_by="username")
    assert [(r["username"], r["action"], r["score"], r["max_tokens"]) for r in rows] == [
        ("ann", "rated", None, 5)
    ]
    messages = _refusals(caplog)
    assert len(messages) == 1, messages
    assert "'score'" in messages[0] and "int" in messages[0] and "87.6" in messages[0]
    assert table_name in messages[0]


def test_a_fractional_score_through_log_keeps_the_rest_of_the_row(
    int_score_table: str, table_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wonkalytics")
    wonkalytics.log(username="bob", action="rated", score=2.5)
    wonkalytics.log(username="cy", action="rated", score=3.0)  # a whole float is stored exactly
    assert wonkalytics.flush(30)
    rows = read_rows(int_score_table, table_name, order_by="username")
    assert [(r["username"], r["action"], r["score"]) for r in rows] == [("bob", "rated", None), ("cy", "rated", 3)]
    messages = _refusals(caplog)
    assert len(messages) == 1 and "'score'" in messages[0] and "2.5" in messages[0], messages


class _KeyWithoutStr:
    """A dict key whose str() raises (an app's own object used as a request field's key)."""

    def __str__(self) -> str:
        raise RuntimeError("no str for this key")

    __repr__ = __str__

    def __hash__(self) -> int:
        return 7


def test_a_request_key_whose_str_raises_drops_that_key_only(
    wl_sqlite: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wonkalytics")
    client = wl_sqlite.client()
    client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}],
        wl_request={"name": "Ann", _KeyWithoutStr(): "lost", "level": "senior",  # type: ignore[call-arg]
                    "nested": {_KeyWithoutStr(): 1}, "language": "nl"},
    )
    row = wl_sqlite.one()
    assert (row["name"], row["level"], row["language"], row["status"]) == ("Ann", "senior", "nl", "ok")
    assert any("_KeyWithoutStr" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)
