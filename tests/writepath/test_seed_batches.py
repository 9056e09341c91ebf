"""Issue 15, items 13 and 19: one batch of the table lane, as the writer really hands it to the sink.

The ops are submitted within a long ``flush_interval`` so the lane takes them as one batch.

* 13: a team table without an ``event_id`` column; a batch of inserts, an update, and an insert the
  database refuses (a number out of an INTEGER column's range). The refused row is set aside; the
  batch's other inserts are stored once each (before: the failed batch's first inserts stayed
  committed and the lane's op-by-op retry stored them again), the update applied once.
* 19: rows of one batch with different field sets are stored in submission order, not grouped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import read_rows
from tests.store.helpers import run_sql

import wonkalytics
from wonkalytics.recorder import default_recorder


@pytest.fixture
def one_batch(tmp_path: Path) -> Iterator[None]:
    yield
    default_recorder.shutdown(10)


def _configure(url: str, table: str, tmp_path: Path) -> None:
    # One batch: nothing is written before flush() wakes the lane (the interval is longer than the test).
    default_recorder.configure(database_url=url, table=table, spool_dir=str(tmp_path / "spool"),
                               flush_interval=30)


def test_a_refused_row_after_an_update_does_not_double_the_batch_on_a_table_without_event_id(
    db_url: str, table_name: str, tmp_path: Path, one_batch: None
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite stores any integer in an INTEGER column: nothing refuses the row")
    url = db_url
    pk = "pk SERIAL PRIMARY KEY" if url.startswith("postgresql") else "pk INTEGER AUTO_INCREMENT PRIMARY KEY"
    run_sql(url, f"CREATE TABLE {table_name} ({pk}, action VARCHAR(50), response_id VARCHAR(50), "
                 "score FLOAT, max_tokens INTEGER)")
    _configure(url, table_name, tmp_path)
    wonkalytics.log(action="first", response_id="r1")
    wonkalytics.log(action="second", response_id="r2")
    assert wonkalytics.score("r1", 5.5, wait=False) is None
    wonkalytics.log(action="refused", max_tokens=2**40)  # fits int64 (our check), not INTEGER (the database's)
    wonkalytics.log(action="third")
    assert wonkalytics.flush(30)
    rows = read_rows(url, table_name, order_by="pk")
    assert [(r["action"], r["score"]) for r in rows] == [("first", 5.5), ("second", None), ("third", None)]
    assert wonkalytics.health()["table"].rejected == 1


def test_rows_of_one_batch_keep_submission_order_across_field_sets(
    db_url: str, table_name: str, tmp_path: Path, one_batch: None
) -> None:
    _configure(db_url, table_name, tmp_path)
    for n in range(6):
        fields = {"username": f"u{n}"} if n % 2 else {"email": f"e{n}@example.com", "tenant_id": "t"}
        wonkalytics.log(action=f"a{n}", **fields)
    assert wonkalytics.flush(30)
    assert [r["action"] for r in read_rows(db_url, table_name, order_by="row_pk")] == [f"a{n}" for n in range(6)]
