"""Shared fixtures: real databases (SQLite, PostgreSQL, MariaDB), one fresh table per test.

Server URLs come from WONKALYTICS_TEST_POSTGRES_URL / WONKALYTICS_TEST_MARIADB_URL (defaults: the
loopback servers of our CI machine). Under CI=true an unreachable server fails the test; on a laptop
without servers those tests are skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa

from wonkalytics.internal_errors import set_strict
from wonkalytics.store.rollup_model import LEVELS

# Our own bugs must fail our tests; an app's test suite keeps the quiet production behaviour.
set_strict(True)

POSTGRES_URL = os.environ.get(
    "WONKALYTICS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get("WONKALYTICS_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
SERVER_URLS = {"postgresql": POSTGRES_URL, "mariadb": MARIADB_URL}
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@cache
def _unreachable_reason(url: str) -> str | None:
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


def require_server(kind: str) -> str:
    """Return the URL of a database server, failing (CI) or skipping (laptop) when unreachable."""
    url = SERVER_URLS[kind]
    reason = _unreachable_reason(url)
    if reason is not None:
        message = f"{kind} at {sa.make_url(url).render_as_string(hide_password=True)} unreachable: {reason}"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message + " (start the server or set WONKALYTICS_TEST_*_URL)")
    return url


CLICKHOUSE_URL = os.environ.get("WONKALYTICS_TEST_CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:9000/default")


@cache
def _clickhouse_unreachable(url: str) -> str | None:
    try:
        from clickhouse_driver import Client
    except ImportError:
        return "clickhouse-driver is not installed (pip install -e '.[clickhouse]')"
    client = Client.from_url(url)
    client.connection.connect_timeout = 3
    try:
        client.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        client.disconnect()
    return None


def require_clickhouse() -> str:
    """The URL of the ClickHouse server (started by .ci/run), failing (CI) or skipping (laptop) when unreachable."""
    reason = _clickhouse_unreachable(CLICKHOUSE_URL)
    if reason is not None:
        message = f"ClickHouse at {CLICKHOUSE_URL} unreachable: {reason}"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message + " (start clickhouse-server or set WONKALYTICS_TEST_CLICKHOUSE_URL)")
    return CLICKHOUSE_URL


@pytest.fixture
def table_name() -> str:
    """A fresh table name per test, so tests never see each other's rows."""
    return f"wl_test_{uuid.uuid4().hex[:12]}"


def _drop(url: str, table: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            levels = [level.suffix for level in LEVELS]   # store/rollup_model.py
            rollups = [f"{table}_rollup{level}{grain}{users}" for level in levels for grain in ("", "_model")
                       for users in ("", "_users")]
            rollups += [f"{table}_rollup{level}_by_{dim}_users" for level in levels
                        for dim in ("tenant_id", "status", "language", "level")]
            for name in (*rollups, table):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.db),
                        pytest.param("mariadb", marks=pytest.mark.db)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, table_name: str) -> Iterator[str]:
    """A database URL for each of the three databases; the test's table is dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wonkalytics-test.db'}"
        return
    url = require_server(request.param)
    yield url
    _drop(url, table_name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wonkalytics-test.db'}"


@pytest.fixture
def postgres_url(table_name: str) -> Iterator[str]:
    url = require_server("postgresql")
    yield url
    _drop(url, table_name)


# -- the offline OpenAI server and a recorder writing to a throwaway database ----------------------

from wonkalytics.recorder import Recorder, default_recorder  # noqa: E402
from wonkalytics.testing import FakeOpenAI  # noqa: E402


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    """One offline OpenAI-compatible server for the whole run (requests are per-test via clear())."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.clear()
    return fake_openai


def configure_default(url: str, table: str, spool: Path, **options: object) -> Recorder:
    """Point the process-wide recorder at a test database (fast batching, private spool)."""
    return default_recorder.configure(
        database_url=url, table=table, spool_dir=str(spool), flush_interval=0.01, **options
    )


@pytest.fixture
def recorder(sqlite_url: str, table_name: str, tmp_path: Path) -> Iterator[Recorder]:
    """The default recorder, writing to a fresh SQLite table; shut down after the test."""
    yield configure_default(sqlite_url, table_name, tmp_path / "spool")
    default_recorder.shutdown(5)


def read_rows(url: str, table: str, order_by: str = "start_time") -> list[dict[str, object]]:
    """The table's rows, read back with plain SQL (not through Wonkalytics)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return []
            result = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}"))
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_log_limits() -> None:
    """Each test sees its own first log line: the once-a-minute limit must not carry over between tests."""
    from wonkalytics import internal_errors

    internal_errors._last_logged.clear()
