"""Engines: one per URL per process, SQLite tuned for a writer thread, MySQL in utf8mb4, no passwords."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from wonkalytics.errors import ConfigurationError
from wonkalytics.store.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    dispose_engines,
    get_engine,
    parse_url,
    redact,
    safe_url,
)

SECRET = "Sup3r-S3cret-pw"


def test_one_engine_per_url(sqlite_url: str, tmp_path: Path) -> None:
    engine = get_engine(sqlite_url)
    assert get_engine(sqlite_url) is engine
    assert get_engine(sa.make_url(sqlite_url)) is engine
    assert get_engine(f"sqlite:///{tmp_path / 'other.db'}") is not engine
    assert engine.pool._pre_ping  # type: ignore[attr-defined]


def test_engine_cache_is_thread_safe(sqlite_url: str) -> None:
    barrier = threading.Barrier(8)
    found: list[sa.Engine] = []

    def worker() -> None:
        barrier.wait()
        found.append(get_engine(sqlite_url))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and len({id(engine) for engine in found}) == 1


def test_dispose_engines_forgets_them(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    dispose_engines()
    assert get_engine(sqlite_url) is not engine
    # An engine handed out earlier keeps working (with a fresh pool).
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT 1")) == 1
    engine.dispose()


def test_dispose_without_closing_for_forked_children(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    dispose_engines(close=False)
    assert get_engine(sqlite_url) is not engine


def test_sqlite_file_uses_wal_and_busy_timeout(sqlite_url: str) -> None:
    with get_engine(sqlite_url).connect() as conn:
        assert conn.scalar(sa.text("PRAGMA journal_mode")) == "wal"
        assert conn.scalar(sa.text("PRAGMA busy_timeout")) == SQLITE_BUSY_TIMEOUT_MS


def test_sqlite_memory_is_one_database_for_all_threads() -> None:
    engine = get_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE shared (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO shared VALUES (1)"))
    seen: list[int] = []

    def reader() -> None:
        with engine.connect() as conn:
            seen.append(conn.scalar(sa.text("SELECT count(*) FROM shared")))

    thread = threading.Thread(target=reader)
    thread.start()
    thread.join()
    assert seen == [1]


def test_mysql_urls_get_utf8mb4_unless_they_say_otherwise() -> None:
    assert get_engine("mysql+pymysql://u@127.0.0.1:1/db").url.query["charset"] == "utf8mb4"
    assert get_engine("mariadb+pymysql://u@127.0.0.1:1/db").url.query["charset"] == "utf8mb4"
    assert get_engine("mysql+pymysql://u@127.0.0.1:1/db?charset=latin1").url.query["charset"] == "latin1"


def test_safe_url_hides_passwords_and_secret_query_values() -> None:
    assert safe_url(f"postgresql+psycopg://app:{SECRET}@db/x") == "postgresql+psycopg://app:***@db/x"
    odbc = f"mssql+pyodbc://sa:{SECRET}@srv/db?driver=ODBC+Driver+18+for+SQL+Server&PWD={SECRET}"
    assert SECRET not in safe_url(odbc)
    assert "driver=ODBC+Driver+18" in safe_url(odbc)
    assert safe_url("sqlite:///wonkalytics.db") == "sqlite:///wonkalytics.db"
    assert safe_url(f"not a url {SECRET}") == "<invalid database URL>"


def test_redact_removes_the_password_from_any_text() -> None:
    url = f"mysql+pymysql://root:{SECRET}@h/db"
    assert redact(f"login with {SECRET} refused", url) == "login with *** refused"


@pytest.mark.parametrize(
    "bad", [f"postgresql://u:{SECRET}@host:notaport/db", f"{SECRET}", f"::{SECRET}::"]
)
def test_invalid_url_is_a_configuration_error_that_does_not_echo_it(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        get_engine(bad)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None
    assert parse_url("sqlite://").drivername == "sqlite"


def test_missing_driver_is_a_configuration_error() -> None:
    # pg8000 is not a dependency of ours, so it is absent from the test environment.
    with pytest.raises(ConfigurationError, match=r"not installed or cannot load") as info:
        get_engine(f"postgresql+pg8000://app:{SECRET}@127.0.0.1:1/db")
    assert SECRET not in str(info.value)
    assert "app:***@127.0.0.1:1/db" in str(info.value)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_fresh_engines_and_leaves_the_parents_connections_alone(
    postgres_url: str,
) -> None:
    engine = get_engine(postgres_url)
    with engine.connect() as conn:
        parent_backend = conn.scalar(sa.text("SELECT pg_backend_pid()"))
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            child_engine = get_engine(postgres_url)
            with child_engine.connect() as conn:
                child_backend = conn.scalar(sa.text("SELECT pg_backend_pid()"))
            status = 0 if child_engine is not engine and child_backend != parent_backend else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with engine.connect() as conn:  # the parent's pooled connection survived the child
        assert conn.scalar(sa.text("SELECT pg_backend_pid()")) == parent_backend
