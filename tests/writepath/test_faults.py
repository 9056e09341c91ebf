"""The writer through faults that a clean outage test misses, on real PostgreSQL and MariaDB.

A TCP proxy of ours (wonkalytics.testing.proxy) sits between the writer and the server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import configure_default, read_rows, require_server
from tests.store.helpers import run_sql

import wonkalytics
from wonkalytics.recorder import default_recorder
from wonkalytics.testing.proxy import FaultProxy

pytestmark = pytest.mark.db

SERVERS = ["postgresql", "mariadb"]


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, table_name: str) -> Iterator[tuple[str, FaultProxy]]:
    url = require_server(request.param)
    with FaultProxy(sa.make_url(url).port or 0) as proxy:
        yield url, proxy
    run_sql(url, f"DROP TABLE IF EXISTS {table_name}")


def _through(proxy: FaultProxy, url: str) -> str:
    return sa.make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def test_connections_that_hang_after_a_failover_are_dropped_and_the_writer_recovers(
    server: tuple[str, FaultProxy], table_name: str, tmp_path: Path
) -> None:
    url, proxy = server
    configure_default(_through(proxy, url), table_name, tmp_path / "spool", statement_timeout=2, connect_timeout=2)
    try:
        wonkalytics.log(action="before", model="m")
        assert wonkalytics.flush(10)  # the pool now holds an open connection
        proxy.hang_existing()  # old connections never answer again; new ones work
        started = time.monotonic()
        for n in range(20):
            wonkalytics.log(action=f"after-{n}", model="m")
        assert wonkalytics.flush(30)
        assert time.monotonic() - started < 15  # by itself, within seconds: no hand reset
        assert len(read_rows(url, table_name, "row_pk")) == 21
    finally:
        default_recorder.shutdown(5)


def test_lost_commit_acknowledgements_on_a_table_without_a_unique_index_make_no_duplicates(
    server: tuple[str, FaultProxy], table_name: str, tmp_path: Path
) -> None:
    url, proxy = server
    run_sql(url, f"CREATE TABLE {table_name} (event_id VARCHAR(64), model VARCHAR(64), action VARCHAR(64))")
    configure_default(_through(proxy, url), table_name, tmp_path / "spool", statement_timeout=3, batch_size=10)
    try:
        proxy.drop_reply_after(b"COMMIT", times=3)
        ids = [wonkalytics.log(action=f"a{n}", model="m") for n in range(100)]
        assert wonkalytics.flush(60)
        assert proxy.dropped_replies == 3  # the fault really happened
        rows = read_rows(url, table_name, "event_id")
        assert sorted(row["event_id"] for row in rows) == sorted(ids)  # 100 rows for 100, not 160
    finally:
        default_recorder.shutdown(5)


def test_a_value_over_the_packet_limit_is_set_aside_and_the_other_rows_land(
    table_name: str, tmp_path: Path
) -> None:
    url = require_server("mariadb")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        limit = int(conn.scalar(sa.text("SELECT @@max_allowed_packet")) or 0)
    engine.dispose()
    configure_default(url, table_name, tmp_path / "spool", batch_size=10)
    try:
        wonkalytics.log(action="a", model="m")
        wonkalytics.log(action="huge", model="m", response="x" * max(20_000_000, limit + 1_000_000))
        wonkalytics.log(action="c", model="m")
        assert wonkalytics.flush(90)
        assert [row["action"] for row in read_rows(url, table_name, "row_pk")] == ["a", "c"]
        health = wonkalytics.health()["table"]
        assert health.rejected == 1
        assert list((tmp_path / "spool" / "table").glob("rejected-*.jsonl"))  # kept, replayable
        wonkalytics.log(action="after", model="m")  # the lane flows on
        assert wonkalytics.flush(10)
    finally:
        default_recorder.shutdown(5)
        run_sql(url, f"DROP TABLE IF EXISTS {table_name}")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_a_table_dropped_while_writing_is_recreated(kind: str, table_name: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'drop.db'}" if kind == "sqlite" else require_server(kind)
    configure_default(url, table_name, tmp_path / "spool")
    try:
        wonkalytics.log(action="first", model="m")
        assert wonkalytics.flush(10)
        run_sql(url, f"DROP TABLE {table_name}")
        wonkalytics.log(action="second", model="m")
        assert wonkalytics.flush(20)
        assert wonkalytics.score("nothing-here", 1, timeout=2) is False  # updates work on the new table too
        assert [row["action"] for row in read_rows(url, table_name, "row_pk")] == ["second"]
        assert wonkalytics.health()["table"].rejected == 0
    finally:
        default_recorder.shutdown(5)
        if kind != "sqlite":
            run_sql(url, f"DROP TABLE IF EXISTS {table_name}")
