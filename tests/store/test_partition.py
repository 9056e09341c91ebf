"""The monthly partitioned default table on the real PostgreSQL: rows in their months, event_id idempotent."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from wonkalytics.cli import app
from wonkalytics.errors import ConfigurationError
from wonkalytics.store.bulk import MIN_COPY_ROWS
from wonkalytics.store.engine import get_engine
from wonkalytics.store.partition import create_partitioned_table, months
from wonkalytics.store.sql import TableStore

from .helpers import read_rows, run_sql

pytestmark = pytest.mark.db

TODAY = date(2024, 5, 17)


def _row(i: int, when: datetime, **extra: object) -> dict[str, object]:
    return {"event_id": f"ev-{i}", "response_id": f"chatcmpl-{i}", "model": "gpt-4o", "timestamp": when, **extra}


def _partition_of(url: str, table: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = f"SELECT event_id, tableoid::regclass::text FROM {table}"
            return {str(k): str(v) for k, v in conn.execute(sa.text(query))}
    finally:
        engine.dispose()


@pytest.fixture
def partitioned(postgres_url: str, table_name: str) -> str:
    assert create_partitioned_table(get_engine(postgres_url), table_name, months_ahead=2, today=TODAY)
    yield table_name
    run_sql(postgres_url, f"DROP TABLE IF EXISTS {table_name} CASCADE")


def test_months_cross_the_year() -> None:
    assert months(date(2024, 12, 31), back=1, ahead=1) == [
        (date(2024, 11, 1), date(2024, 12, 1)),
        (date(2024, 12, 1), date(2025, 1, 1)),
        (date(2025, 1, 1), date(2025, 2, 1)),
    ]


def test_rows_land_in_their_month_and_far_dates_in_default(postgres_url: str, partitioned: str) -> None:
    store = TableStore(postgres_url, partitioned, create=False)
    rows = [
        _row(1, datetime(2024, 4, 30, 23, 59, 59)),
        _row(2, datetime(2024, 5, 1)),
        _row(3, datetime(2024, 7, 15)),
        _row(4, datetime(2031, 1, 1)),  # no month partition that far ahead: the DEFAULT one takes it
    ]
    assert store.insert_many(rows) == 4
    assert _partition_of(postgres_url, partitioned) == {
        "ev-1": f"{partitioned}_p2024_04",
        "ev-2": f"{partitioned}_p2024_05",
        "ev-3": f"{partitioned}_p2024_07",
        "ev-4": f"{partitioned}_default",
    }


@pytest.mark.parametrize("size", [3, MIN_COPY_ROWS * 3], ids=["insert", "copy"])
def test_a_retried_batch_is_skipped_across_partitions(postgres_url: str, partitioned: str, size: int) -> None:
    store = TableStore(postgres_url, partitioned, create=False)
    months_of = [datetime(2024, 4, 10), datetime(2024, 5, 10), datetime(2024, 6, 10), datetime(2030, 1, 1)]
    rows = [_row(i, months_of[i % 4]) for i in range(size)]
    assert store.insert_many(rows) == size
    # The same rows again (a retry after a lost COMMIT acknowledgement), plus one new row.
    assert store.insert_many([*rows, _row(size, months_of[0])]) == 1
    stored = read_rows(postgres_url, partitioned)
    assert sorted(r["event_id"] for r in stored) == sorted(f"ev-{i}" for i in range(size + 1))


def test_every_partition_has_the_indexes(postgres_url: str, partitioned: str) -> None:
    inspector = sa.inspect(get_engine(postgres_url))
    for child in (f"{partitioned}_p2024_05", f"{partitioned}_default"):
        indexed = {tuple(ix["column_names"]): ix["unique"] for ix in inspector.get_indexes(child)}
        assert indexed.get(("response_id",)) is False
        assert ("timestamp",) in indexed
        assert indexed.get(("event_id", "timestamp")) is True


def test_score_updates_find_rows_in_any_partition(postgres_url: str, partitioned: str) -> None:
    store = TableStore(postgres_url, partitioned, create=False)
    store.insert_many([_row(1, datetime(2024, 4, 2)), _row(2, datetime(2024, 6, 2))])
    assert store.update_where("response_id", "chatcmpl-2", "score", 87.5)
    assert {r["event_id"]: r["score"] for r in read_rows(postgres_url, partitioned)} == {"ev-1": None, "ev-2": 87.5}


def test_rerunning_adds_months_and_keeps_rows(postgres_url: str, partitioned: str) -> None:
    store = TableStore(postgres_url, partitioned, create=False)
    store.insert_many([_row(1, datetime(2024, 5, 3))])
    later = date(2024, 9, 1)
    assert not create_partitioned_table(get_engine(postgres_url), partitioned, months_ahead=2, today=later)
    names = set(sa.inspect(get_engine(postgres_url)).get_table_names())
    assert {f"{partitioned}_p2024_10", f"{partitioned}_p2024_11"} <= names
    assert len(read_rows(postgres_url, partitioned)) == 1


def test_a_plain_table_of_that_name_is_refused(postgres_url: str, table_name: str) -> None:
    TableStore(postgres_url, table_name).create_table()
    with pytest.raises(ConfigurationError, match="not partitioned"):
        create_partitioned_table(get_engine(postgres_url), table_name)


def test_other_databases_are_refused(sqlite_url: str) -> None:
    with pytest.raises(ConfigurationError, match="needs PostgreSQL"):
        create_partitioned_table(get_engine(sqlite_url), "t")


def test_cli_creates_the_partitioned_table(postgres_url: str, table_name: str) -> None:
    try:
        result = CliRunner().invoke(
            app, ["init", "--partition", "monthly", "--database-url", postgres_url, "--table", table_name]
        )
        assert result.exit_code == 0, result.output
        assert "partitioned by month" in result.output
        engine = get_engine(postgres_url)
        with engine.connect() as conn:
            kind = conn.execute(sa.text("SELECT relkind FROM pg_class WHERE relname = :t"), {"t": table_name}).scalar()
        assert kind == "p"
        again = CliRunner().invoke(
            app, ["init", "--partition", "monthly", "--database-url", postgres_url, "--table", table_name]
        )
        assert again.exit_code == 0 and "already exists" in again.output
    finally:
        run_sql(postgres_url, f"DROP TABLE IF EXISTS {table_name} CASCADE")
