"""score() and update_row_property() as queued updates, on real SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import configure_default, read_rows, require_server
from tests.store.helpers import run_sql

import wonkalytics
from wonkalytics.errors import UnknownColumnError
from wonkalytics.recorder import Recorder, default_recorder
from wonkalytics.testing.proxy import FaultProxy


@pytest.fixture
def recorder_on(db_url: str, table_name: str, tmp_path: Path) -> Iterator[Recorder]:
    yield configure_default(db_url, table_name, tmp_path / "spool")
    default_recorder.shutdown(5)


def _through(proxy: FaultProxy, url: str) -> str:
    return sa.make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


@pytest.mark.parametrize("value", [87.6, 4.5, 0, -1, 100])
def test_scores_read_back_exactly(recorder_on: Recorder, db_url: str, table_name: str, value: float) -> None:
    wonkalytics.log(response_id="r1", model="gpt-4o", action="chat")
    assert wonkalytics.score("r1", 55) is True
    assert wonkalytics.score("r1", value) is True
    [row] = read_rows(db_url, table_name, "row_pk")
    assert row["score"] == value and isinstance(row["score"], float)


@pytest.mark.parametrize("bad", ["abc", float("nan"), float("inf"), [1], {"a": 1}, True])
def test_a_score_that_is_not_a_number_raises_and_keeps_the_stored_one(
    recorder_on: Recorder, db_url: str, table_name: str, bad: object
) -> None:
    wonkalytics.log(response_id="r1", model="gpt-4o")
    assert wonkalytics.score("r1", 70) is True
    with pytest.raises(ValueError, match="column 'score' holds float values"):
        wonkalytics.score("r1", bad)  # type: ignore[arg-type]
    [row] = read_rows(db_url, table_name, "row_pk")
    assert row["score"] == 70


def test_an_integer_team_column_refuses_what_it_cannot_hold(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    run_sql(db_url, f"CREATE TABLE {table_name} (event_id VARCHAR(64) UNIQUE, response_id VARCHAR(64), "
                    "model VARCHAR(64), points INTEGER)")
    configure_default(db_url, table_name, tmp_path / "spool", column_map={"score": "points"})
    try:
        wonkalytics.log(response_id="r1", model="m")
        assert wonkalytics.score("r1", 3) is True
        for bad in (87.6, "abc"):
            with pytest.raises(ValueError, match=r"column 'points' holds int values; .* \((float|str)\)"):
                wonkalytics.score("r1", bad)  # type: ignore[arg-type]
        assert wonkalytics.score("r1", "42") is True  # a numeric string that fits exactly
        [row] = read_rows(db_url, table_name, "event_id")
        assert row["points"] == 42
    finally:
        default_recorder.shutdown(5)


def test_team_columns_score_and_response_id_work_for_inserts_and_updates(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    run_sql(db_url, f'CREATE TABLE {table_name} (event_id VARCHAR(64) UNIQUE, "Response_Id" VARCHAR(64), '
                    '"Score" FLOAT, model VARCHAR(64))'.replace('"', "`" if "mysql" in db_url else '"'))
    configure_default(db_url, table_name, tmp_path / "spool")
    try:
        wonkalytics.log(response_id="r-team", model="m")
        assert wonkalytics.update_row_property("r-team", "score", 9.5) is True
        assert wonkalytics.score("r-team", 10.25) is True
        [row] = read_rows(db_url, table_name, "event_id")
        assert row["Response_Id"] == "r-team" and row["Score"] == 10.25
        with pytest.raises(UnknownColumnError, match="no column 'scroe'"):
            wonkalytics.update_row_property("r-team", "scroe", 1)
    finally:
        default_recorder.shutdown(5)


def test_no_row_with_that_id_is_false_and_wait_false_returns_at_once(recorder_on: Recorder) -> None:
    assert wonkalytics.score("nobody", 5, timeout=5) is False
    assert wonkalytics.score("nobody", 5, wait=False) is None
    assert wonkalytics.health()["table"].pending_updates >= 1  # kept for update_grace: it may still come


@pytest.mark.db
@pytest.mark.parametrize("fault", ["refuse", "blackhole"])
def test_an_update_while_the_database_is_unreachable_returns_in_time_and_lands_later(
    table_name: str, tmp_path: Path, fault: str
) -> None:
    url = require_server("postgresql")
    with FaultProxy(sa.make_url(url).port or 5432) as proxy:
        configure_default(_through(proxy, url), table_name, tmp_path / "spool", statement_timeout=2,
                          connect_timeout=2)
        try:
            wonkalytics.log(response_id="r-out", model="m")
            assert wonkalytics.flush(10)
            getattr(proxy, fault)()
            started = time.monotonic()
            assert wonkalytics.score("r-out", 81.5, timeout=1.5) is False  # not confirmed in time
            assert time.monotonic() - started < 1.5 + 0.5
            proxy.recover()
            assert wonkalytics.flush(30)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                rows = read_rows(url, table_name, "row_pk")
                if rows and rows[0]["score"] == 81.5:
                    break
                time.sleep(0.1)
            assert [row["score"] for row in read_rows(url, table_name, "row_pk")] == [81.5]
        finally:
            default_recorder.shutdown(5)
            run_sql(url, f"DROP TABLE IF EXISTS {table_name}")


@pytest.mark.db
def test_an_update_from_another_process_for_a_row_written_a_second_later(table_name: str, tmp_path: Path) -> None:
    url = require_server("postgresql")
    script = textwrap.dedent(f"""
        import time, wonkalytics
        wonkalytics.configure(database_url={url!r}, table={table_name!r}, spool_dir={str(tmp_path / 'b')!r},
                              flush_interval=0.01)
        wonkalytics.log(action="process-b-starts")   # the table exists before A writes
        assert wonkalytics.flush(10)
        print("ready", flush=True)
        assert wonkalytics.score("r-cross", 64.5, wait=False) is None
        assert wonkalytics.flush(10)   # parked, not lost
        deadline = time.time() + 30
        while time.time() < deadline and wonkalytics.health()["table"].pending_updates:
            time.sleep(0.05)
        assert wonkalytics.health()["table"].pending_updates == 0
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WONKALYTICS_")}
    process_b = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process_b.stdout is not None and process_b.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # B's update is queued before A's row exists
        configure_default(url, table_name, tmp_path / "a")
        wonkalytics.log(response_id="r-cross", model="m", action="chat")
        assert wonkalytics.flush(10)
        assert process_b.wait(60) == 0
        rows = [row for row in read_rows(url, table_name, "row_pk") if row["response_id"] == "r-cross"]
        assert [row["score"] for row in rows] == [64.5]
    finally:
        process_b.kill()
        process_b.wait(10)
        if process_b.stdout is not None:
            process_b.stdout.close()
        default_recorder.shutdown(5)
        run_sql(url, f"DROP TABLE IF EXISTS {table_name}")


@pytest.mark.db
def test_rows_spilled_by_configure_during_an_outage_are_written_by_this_process(
    table_name: str, tmp_path: Path
) -> None:
    url = require_server("postgresql")
    with FaultProxy(sa.make_url(url).port or 5432) as proxy:
        through = _through(proxy, url)
        configure_default(through, table_name, tmp_path / "spool", connect_timeout=2, statement_timeout=2,
                          exit_timeout=0.5)
        try:
            wonkalytics.log(action="warm-up", model="m")
            assert wonkalytics.flush(10)
            proxy.refuse()
            wonkalytics.log(action="spilled-by-configure", model="m")
            configure_default(through, table_name, tmp_path / "spool", connect_timeout=2, statement_timeout=2)
            proxy.recover()
            wonkalytics.log(action="after", model="m")
            assert wonkalytics.flush(30)
            actions = [row["action"] for row in read_rows(url, table_name, "row_pk")]
            assert actions == ["warm-up", "spilled-by-configure", "after"]  # in order, by this process
        finally:
            default_recorder.shutdown(5)
            run_sql(url, f"DROP TABLE IF EXISTS {table_name}")
