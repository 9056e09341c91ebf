"""The PostgreSQL COPY path (store/bulk.py) on the real server: same rows, same dedupe, same errors."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from wonkalytics.errors import StoreError
from wonkalytics.store.bulk import MIN_COPY_ROWS, CopyInsert, supports_copy
from wonkalytics.store.dialects import dialect_for, insert_plan
from wonkalytics.store.engine import get_engine
from wonkalytics.store.schema import default_table
from wonkalytics.store.sql import TableStore, is_transient

from .helpers import read_rows, recorded_sql, run_sql

pytestmark = pytest.mark.db

TRICKY = ["tab\there", "new\nline", "back\\slash", "\\N", "", "quote ' and \"", "emoji 🍫", "crlf\r\n", "é" * 100]


def _row(i: int, **extra: object) -> dict[str, object]:
    return {"event_id": f"ev-{i}", "response_id": f"chatcmpl-{i}", "model": "gpt-4o", **extra}


def _copied(statements: list[str]) -> bool:
    return any("wl_stage_" in s for s in statements)


def test_plan_has_the_copy_path_only_on_psycopg3() -> None:
    table = default_table("wl")
    assert insert_plan(table, {"event_id", "model"}, dialect_for("postgresql"), "event_id").bulk is not None
    psycopg2 = sa.make_url("postgresql+psycopg2://x/y").get_dialect()()
    assert not supports_copy(psycopg2)
    assert insert_plan(table, {"event_id", "model"}, psycopg2, "event_id").bulk is None
    # Without a unique event_id among the keys there is nothing to skip: the plain INSERT.
    assert insert_plan(table, {"model"}, dialect_for("postgresql"), "event_id").bulk is None


def test_large_groups_are_copied_and_values_round_trip(postgres_url: str, table_name: str) -> None:
    store = TableStore(postgres_url, table_name)
    store.table  # noqa: B018 - reflect outside the recording
    when = datetime(2024, 5, 1, 12, 30, 15, 123456)
    rows = [
        _row(i, response=TRICKY[i % len(TRICKY)], score=i + 0.5, max_tokens=i, timestamp=when, error=None)
        for i in range(40)
    ]
    with recorded_sql(postgres_url) as statements:
        assert store.insert_many(rows) == 40
    assert _copied(statements)
    stored = read_rows(postgres_url, table_name)
    # Submission order is kept (row_pk grows with it), and every value reads back as written.
    assert [r["event_id"] for r in stored] == [f"ev-{i}" for i in range(40)]
    for i, row in enumerate(stored):
        assert row["response"] == TRICKY[i % len(TRICKY)]
        assert row["score"] == i + 0.5
        assert row["max_tokens"] == i
        assert row["timestamp"] == when
        assert row["error"] is None


def test_small_groups_take_the_plain_insert(postgres_url: str, table_name: str) -> None:
    store = TableStore(postgres_url, table_name)
    store.table  # noqa: B018
    with recorded_sql(postgres_url) as statements:
        assert store.insert_many([_row(i) for i in range(MIN_COPY_ROWS - 1)]) == MIN_COPY_ROWS - 1
    assert not _copied(statements)


def test_existing_and_repeated_event_ids_are_skipped(postgres_url: str, table_name: str) -> None:
    store = TableStore(postgres_url, table_name)
    assert store.insert_many([_row(i) for i in range(20)]) == 20
    # A retried batch overlapping the first, with a duplicate inside itself: only new rows count.
    retried = [_row(i, score=99) for i in range(15, 35)] + [_row(30, score=7)]
    assert store.insert_many(retried) == 15
    stored = read_rows(postgres_url, table_name)
    assert sorted(r["event_id"] for r in stored) == sorted(f"ev-{i}" for i in range(35))
    scores = {r["event_id"]: r["score"] for r in stored}
    assert scores["ev-15"] is None  # the first write wins
    assert scores["ev-30"] == 99  # the first of the two in one batch


def test_a_rolled_back_transaction_does_not_break_the_next_batch(postgres_url: str, table_name: str) -> None:
    store = TableStore(postgres_url, table_name)
    plan = insert_plan(store.table, set(_row(0)), get_engine(postgres_url).dialect, "event_id")
    assert plan.bulk is not None
    engine = get_engine(postgres_url)
    with engine.connect() as conn:
        trans = conn.begin()
        assert plan.bulk.run(conn, [_row(i) for i in range(10)]) == 10  # creates the staging table
        trans.rollback()  # ... and takes it away again
        with conn.begin():
            assert plan.bulk.run(conn, [_row(i) for i in range(10, 30)]) == 20
    assert len(read_rows(postgres_url, table_name)) == 20


def test_a_new_set_of_columns_gets_its_own_staging_table(postgres_url: str, table_name: str) -> None:
    table = default_table(table_name)
    a = CopyInsert.build(table, {"event_id", "model"}, "event_id")
    b = CopyInsert.build(table, {"event_id", "model", "score"}, "event_id")
    assert a.stage != b.stage
    assert a.columns == ("model", "event_id")  # table order
    store = TableStore(postgres_url, table_name)
    assert store.insert_many([_row(i) for i in range(10)] + [_row(i, score=1.0) for i in range(10, 20)]) == 20


def test_data_the_column_cannot_hold_is_a_store_error_not_an_outage(postgres_url: str, table_name: str) -> None:
    store = TableStore(postgres_url, table_name)
    rows = [_row(i, status="x" * 100) for i in range(MIN_COPY_ROWS)]  # status is VARCHAR(32)
    with pytest.raises(StoreError) as caught:
        store.insert_many(rows)
    assert isinstance(caught.value.__cause__, sa.exc.DataError)
    assert not is_transient(caught.value)
    assert read_rows(postgres_url, table_name) == []
    assert store.insert_many([_row(i) for i in range(MIN_COPY_ROWS)]) == MIN_COPY_ROWS  # the connection is fine


def test_team_table_with_quoted_names(postgres_url: str, table_name: str) -> None:
    run_sql(
        postgres_url,
        f'CREATE TABLE {table_name} (pk SERIAL PRIMARY KEY, "UserName" TEXT, "select" TEXT, event_id TEXT UNIQUE)',
    )
    store = TableStore(postgres_url, table_name, create=False)
    rows = [{"UserName": f"ann{i}", "select": "s", "event_id": f"e{i}"} for i in range(12)]
    assert store.insert_many(rows) == 12
    assert store.insert_many(rows[:6]) == 0
    stored = read_rows(postgres_url, table_name, order_by="pk")
    assert [r["UserName"] for r in stored] == [f"ann{i}" for i in range(12)]


def test_sql_server_through_pyodbc_uses_fast_executemany() -> None:
    from wonkalytics.store.engine import _engine_options

    _, options = _engine_options(sa.make_url("mssql+pyodbc://sa:pw@db/analytics?driver=ODBC+Driver+18+for+SQL+Server"))
    assert options["fast_executemany"] is True
    _, others = _engine_options(sa.make_url("mssql+pymssql://sa:pw@db/analytics"))
    assert "fast_executemany" not in others
    # The pyodbc dialect takes the option (compiled without a server; pyodbc itself need not be installed).
    dialect_cls = sa.make_url("mssql+pyodbc://").get_dialect()
    assert "fast_executemany" in dialect_cls.__init__.__code__.co_varnames
