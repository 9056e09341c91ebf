"""TableStore against real SQLite, PostgreSQL and MariaDB: one fresh table per test."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from wonkalytics.errors import ConfigurationError, StoreError, UnknownColumnError
from wonkalytics.store.dialects import insert_plan
from wonkalytics.store.engine import get_engine
from wonkalytics.store.schema import DEFAULT_COLUMNS, ROW_KEY
from wonkalytics.store.sql import TableStore, create_default_table, is_transient

from .helpers import read_rows, recorded_sql, run_sql

REFLECTION_MARKERS = ("information_schema", "pg_catalog", "pragma", "sqlite_master", "show ")


def _reflection_sql(statements: list[str]) -> list[str]:
    return [s for s in statements if any(m in s.lower() for m in REFLECTION_MARKERS)]


def _inserts(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("INSERT")]


def _row(i: int, **extra: object) -> dict[str, object]:
    return {"event_id": f"ev-{i}", "response_id": f"chatcmpl-{i}", "model": "gpt-4o", **extra}


# -- creating and reflecting ---------------------------------------------------------------------------


def test_missing_table_is_created_on_first_use(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    assert not sa.inspect(get_engine(db_url)).has_table(table_name)
    assert [c.name for c in store.table.columns] == [c.name for c in DEFAULT_COLUMNS]
    inspector = sa.inspect(get_engine(db_url))
    assert inspector.has_table(table_name)
    indexed = {tuple(ix["column_names"]): ix["unique"] for ix in inspector.get_indexes(table_name)}
    uniques = [tuple(u["column_names"]) for u in inspector.get_unique_constraints(table_name)]
    assert ("response_id",) in indexed and not indexed[("response_id",)]
    assert ("event_id",) in uniques or indexed.get(("event_id",))


def test_columns_are_writable_columns_with_kinds(db_url: str, table_name: str) -> None:
    columns = TableStore(db_url, table_name).columns
    assert ROW_KEY not in columns  # auto-increment: never written
    assert columns["score"] == "float"
    assert columns["max_tokens"] == "int"
    assert columns["temperature"] == "float"
    assert columns["timestamp"] == "datetime"
    assert columns["messages"] == columns["response_id"] == "text"
    assert set(columns) == {c.name for c in DEFAULT_COLUMNS} - {ROW_KEY}


def test_table_is_reflected_once(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    with recorded_sql(db_url) as first:
        table = store.table
    assert _reflection_sql(first), "the first access reflects"
    with recorded_sql(db_url) as later:
        assert store.table is table
        assert store.columns
        store.insert_many([_row(1)])
        store.update_where("response_id", "chatcmpl-1", "score", 5)
        store.check_columns(["score"])
    assert _reflection_sql(later) == []


def test_missing_table_without_create_is_a_clear_error(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name, create=False)
    with pytest.raises(StoreError, match=rf"table '{table_name}' does not exist.*wonkalytics init"):
        store.insert_many([_row(1)])
    assert not sa.inspect(get_engine(db_url)).has_table(table_name)


def test_create_default_table_reports_whether_it_created(db_url: str, table_name: str) -> None:
    assert create_default_table(db_url, table_name) is True
    assert create_default_table(db_url, table_name) is False
    assert TableStore(db_url, table_name, create=False).count() == 0


def test_create_table_after_reflection_failure(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name, create=False)
    assert store.create_table() is True
    assert store.insert_many([_row(1)]) == 1


@pytest.mark.parametrize("name", ["t; DROP TABLE x", "a.b.c", "1abc", "", "naïve", "a-b", "t ", "x" * 64])
def test_table_names_are_validated(name: str) -> None:
    with pytest.raises(ConfigurationError, match="plain identifier"):
        TableStore("sqlite://", name)


def test_schema_qualified_table(postgres_url: str, table_name: str) -> None:
    store = TableStore(postgres_url, f"public.{table_name}")
    assert store.insert_many([_row(1)]) == 1
    assert read_rows(postgres_url, table_name)[0]["event_id"] == "ev-1"


# -- inserting ------------------------------------------------------------------------------------------


def test_insert_many_is_one_executemany_per_run_of_a_key_set_in_order(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    store.table  # noqa: B018 - reflect outside the recording
    rows = [_row(i) for i in range(50)] + [_row(i, score=i) for i in range(50, 80)]
    rows += [_row(i) for i in range(80, 100)]  # same keys as the first run: a run of its own, stored last
    with recorded_sql(db_url) as statements:
        assert store.insert_many(rows) == 100
    assert len(_inserts(statements)) == 3
    stored = read_rows(db_url, table_name, order_by="row_pk")
    assert [r["event_id"] for r in stored] == [f"ev-{i}" for i in range(100)]  # submission order
    assert {r["event_id"]: r["score"] for r in stored}["ev-60"] == 60


def test_duplicate_event_ids_are_skipped(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    assert store.insert_many([_row(i) for i in range(5)]) == 5
    # A retried batch: only the new rows land, and nothing raises.
    assert store.insert_many([_row(i, score=99) for i in range(3, 8)]) == 3
    # Duplicates inside one batch.
    assert store.insert_many([_row(10), _row(10), _row(11)]) == 2
    stored = read_rows(db_url, table_name)
    assert sorted(r["event_id"] for r in stored) == sorted({f"ev-{i}" for i in [*range(8), 10, 11]})
    assert {r["event_id"]: r["score"] for r in stored}["ev-3"] is None  # the first write wins


def test_rows_without_event_id_are_never_deduplicated(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    assert store.insert_many([{"action": "login"}, {"action": "login"}, {"event_id": None}]) == 3
    assert store.insert_many([{"action": "login", "event_id": None}]) == 1
    assert store.count() == 4


def test_empty_batch_is_a_no_op(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    with recorded_sql(db_url) as statements:
        assert store.insert_many([]) == 0
    assert statements == []


def test_unknown_column_in_insert_raises_before_any_sql(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    store.table  # noqa: B018
    with recorded_sql(db_url) as statements, pytest.raises(UnknownColumnError) as info:
        store.insert_many([_row(1), {"event_id": "x", "notes_long": "?"}])
    assert statements == []
    assert info.value.column == "notes_long" and info.value.table == table_name
    assert isinstance(info.value, ValueError)
    assert store.count() == 0


def test_values_round_trip(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    when = datetime(2024, 5, 17, 13, 45, 30, 123456)
    row = _row(1, timestamp=when, temperature=0.1234567890123, max_tokens=4096, score=-3)
    store.insert_many([row])
    stored = store.fetch_all()[0]
    assert stored["timestamp"] == when
    assert stored["temperature"] == pytest.approx(0.1234567890123, rel=1e-12)  # double precision
    assert stored["max_tokens"] == 4096 and stored["score"] == -3


def test_unicode_and_emoji_round_trip(db_url: str, table_name: str) -> None:
    text = "héllo 🦄 世界 — \U0001d518nicode ✓ Ω 👩\u200d💻"  # 4-byte characters need utf8mb4
    store = TableStore(db_url, table_name)
    name = "Zoë \U0001f469\u200d\U0001f4bb"
    store.insert_many([_row(1, messages=text, username=name, status="ok ✓")])
    stored = store.fetch_all()[0]
    assert (stored["messages"], stored["username"], stored["status"]) == (text, name, "ok ✓")
    assert read_rows(db_url, table_name)[0]["messages"] == text


def test_one_megabyte_of_text_round_trips(db_url: str, table_name: str) -> None:
    big = ("0123456789abcdef" * 65_536) + "🦄"  # 1 MiB + one 4-byte character
    store = TableStore(db_url, table_name)
    store.insert_many([_row(1, response=big)])
    assert store.fetch_all()[0]["response"] == big


def test_ids_are_case_sensitive(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    assert store.insert_many([_row(1, event_id="AbC", response_id="chatcmpl-AbC")]) == 1
    assert store.insert_many([_row(2, event_id="abc", response_id="chatcmpl-abc")]) == 1
    assert store.update_where("response_id", "chatcmpl-ABC", "score", 1) is False
    assert store.update_where("response_id", "chatcmpl-abc", "score", 1) is True
    assert [r["score"] for r in store.fetch_all()] == [None, 1]


# -- updating -------------------------------------------------------------------------------------------


def test_update_where_reports_matched_rows(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    store.insert_many([_row(1), _row(2)])
    assert store.update_where("response_id", "chatcmpl-1", "score", 100) is True
    # Same value again: still a match (MySQL would say 0 changed rows without CLIENT_FOUND_ROWS).
    assert store.update_where("response_id", "chatcmpl-1", "score", 100) is True
    assert store.update_where("response_id", "chatcmpl-404", "score", 100) is False
    store.insert_many([{"event_id": "no-response-id"}])
    assert store.update_where("response_id", None, "score", 1) is False  # not "WHERE ... IS NULL"
    assert store.update_where("response_id", "chatcmpl-2", "notes", "late property") is True
    by_id = {r["response_id"]: r for r in read_rows(db_url, table_name)}
    assert by_id[None]["score"] is None
    assert by_id["chatcmpl-1"]["score"] == 100 and by_id["chatcmpl-2"]["score"] is None
    assert by_id["chatcmpl-2"]["notes"] == "late property"


def test_update_with_unknown_columns_raises_before_any_sql(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    store.insert_many([_row(1)])
    with recorded_sql(db_url) as statements:
        with pytest.raises(UnknownColumnError, match=rf"table '{table_name}' has no column 'points'"):
            store.update_where("response_id", "chatcmpl-1", "points", 1)
        with pytest.raises(UnknownColumnError, match="no column 'resp_id'"):
            store.update_where("resp_id", "chatcmpl-1", "score", 1)
    assert statements == []


# -- a team's own table -----------------------------------------------------------------------------------


def test_existing_team_table_with_its_own_columns(db_url: str, table_name: str) -> None:
    run_sql(
        db_url,
        f"CREATE TABLE {table_name} (response_id VARCHAR(100), points INTEGER, answer TEXT, "
        "latency DOUBLE PRECISION, day DATE)",
    )
    store = TableStore(db_url, table_name)
    assert store.columns == {
        "response_id": "text", "points": "int", "answer": "text", "latency": "float", "day": "datetime"
    }
    assert store.insert_many([{"response_id": "r1", "answer": "hi", "latency": 1.5}]) == 1
    # No event_id column: rows are plain inserts, a second copy lands too.
    assert store.insert_many([{"response_id": "r1", "answer": "hi"}]) == 1
    assert store.update_where("response_id", "r1", "points", 7) is True
    with pytest.raises(UnknownColumnError, match="columns are: answer, day, latency, points, response_id"):
        store.insert_many([{"response_id": "r2", "score": 1}])
    with pytest.raises(UnknownColumnError):
        store.update_where("response_id", "r1", "score", 1)
    assert [r["points"] for r in read_rows(db_url, table_name, order_by="answer")] == [7, 7]


def test_team_table_with_a_non_unique_event_id(db_url: str, table_name: str) -> None:
    run_sql(db_url, f"CREATE TABLE {table_name} (event_id VARCHAR(64), answer TEXT)")
    store = TableStore(db_url, table_name)
    # No unique key to lean on (ON CONFLICT would fail on PostgreSQL): the ids the table holds are
    # looked up and left out, so a batch retried after a lost COMMIT acknowledgement is not doubled.
    assert store.insert_many([{"event_id": "e1", "answer": "a"}]) == 1
    assert store.insert_many([{"event_id": "e1", "answer": "a"}, {"event_id": "e2", "answer": "b"}]) == 1
    assert store.insert_many([{"event_id": None, "answer": "c"}, {"event_id": None, "answer": "d"}]) == 2
    assert store.count() == 4


def test_team_table_with_a_unique_event_id(db_url: str, table_name: str) -> None:
    run_sql(db_url, f"CREATE TABLE {table_name} (event_id VARCHAR(64) UNIQUE, answer TEXT)")
    store = TableStore(db_url, table_name)
    assert store.insert_many([{"event_id": "e1", "answer": "a"}, {"event_id": "e2"}]) == 2
    assert store.insert_many([{"event_id": "e1", "answer": "b"}, {"event_id": "e3"}]) == 1
    assert sorted(r["event_id"] for r in store.fetch_all(order_by="event_id")) == ["e1", "e2", "e3"]


def test_sql_server_dedupe_statement_semantics(db_url: str, table_name: str) -> None:
    """The INSERT ... SELECT ... WHERE NOT EXISTS built for SQL Server, run on the servers we have.

    (Its SQL Server lock hints are dropped by the other dialects; the logic is the same.)
    """
    store = TableStore(db_url, table_name)
    store.insert_many([_row(1)])
    mssql_dialect = sa.make_url("mssql+pyodbc://").get_dialect()()
    plan = insert_plan(store.table, {"event_id", "response_id", "model"}, mssql_dialect, "event_id")
    with get_engine(db_url).begin() as conn:
        conn.execute(plan.statement, [_row(1), _row(2), _row(3)])
    assert sorted(r["event_id"] for r in store.fetch_all()) == ["ev-1", "ev-2", "ev-3"]


# -- reading --------------------------------------------------------------------------------------------


def test_count_and_fetch_all(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    store.insert_many([_row(i, score=10 - i) for i in range(3)])
    assert store.count() == 3
    assert [r["event_id"] for r in store.fetch_all()] == ["ev-0", "ev-1", "ev-2"]
    assert [r["score"] for r in store.fetch_all(order_by="score")] == [8, 9, 10]
    with pytest.raises(UnknownColumnError):
        store.fetch_all(order_by="score DESC; --")


# -- errors -----------------------------------------------------------------------------------------------


def test_database_errors_become_store_errors(db_url: str, table_name: str) -> None:
    run_sql(db_url, f"CREATE TABLE {table_name} (event_id VARCHAR(8) NOT NULL, answer TEXT)")
    store = TableStore(db_url, table_name)
    with pytest.raises(StoreError) as info:
        store.insert_many([{"event_id": None, "answer": "no key"}])
    message = str(info.value)
    assert message.startswith(f"insert into table '{table_name}' at ")
    assert isinstance(info.value.__cause__, sa.exc.DBAPIError)
    assert not is_transient(info.value)
    assert store.count() == 0


@pytest.mark.parametrize("url_fixture", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.db)])
def test_team_table_with_a_partial_unique_event_id_index(
    url_fixture: str, table_name: str, request: pytest.FixtureRequest
) -> None:
    db_url = request.getfixturevalue(url_fixture)  # MySQL/MariaDB have no partial indexes
    run_sql(
        db_url,
        f"CREATE TABLE {table_name} (event_id VARCHAR(64), answer TEXT)",
        f"CREATE UNIQUE INDEX ux_{table_name} ON {table_name} (event_id) WHERE answer IS NOT NULL",
    )
    store = TableStore(db_url, table_name)
    # ON CONFLICT (event_id) would be refused: such an index does not make event_id unique.
    assert store.insert_many([{"event_id": "e1"}, {"event_id": "e1"}]) == 2
