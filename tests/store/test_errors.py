"""Which database errors are worth retrying, and deadlock victims rerun at once."""

from __future__ import annotations

import sqlite3

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from wonkalytics.errors import ConfigurationError, NoMatchingColumnsError, StoreError, UnknownColumnError
from wonkalytics.store.failures import is_deadlock
from wonkalytics.store.sql import TableStore, is_transient


def _wrapped(kind: type[sa.exc.DBAPIError], orig: BaseException) -> sa.exc.DBAPIError:
    return kind("INSERT ...", {}, orig)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_wrapped(sa.exc.OperationalError, pymysql.err.OperationalError(2003, "Can't connect")), True),
        (_wrapped(sa.exc.OperationalError, pymysql.err.OperationalError(2013, "Lost connection")), True),
        (_wrapped(sa.exc.OperationalError, pymysql.err.OperationalError(1213, "Deadlock found")), True),
        (_wrapped(sa.exc.OperationalError, pymysql.err.OperationalError(1054, "Unknown column")), False),
        (_wrapped(sa.exc.DataError, pymysql.err.DataError(1406, "Data too long")), False),
        (_wrapped(sa.exc.IntegrityError, pymysql.err.IntegrityError(1062, "Duplicate")), False),
        (_wrapped(sa.exc.OperationalError, sqlite3.OperationalError("database is locked")), True),
        (_wrapped(sa.exc.OperationalError, sqlite3.OperationalError("no such column: x")), False),
        (_wrapped(sa.exc.OperationalError, psycopg.OperationalError("connection failed")), True),
        (_wrapped(sa.exc.ProgrammingError, psycopg.errors.UndefinedColumn("no column")), False),
        (sa.exc.TimeoutError("QueuePool limit reached"), True),
        (ConnectionResetError(), True),
        (UnknownColumnError("x", "t", ["y"]), False),
        (NoMatchingColumnsError(["x"], "t", ["y"]), False),
        (ConfigurationError("bad"), False),
        (ValueError("bad"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
    try:
        raise StoreError("wrapped") from error
    except StoreError as store_error:
        assert is_transient(store_error) is transient


@pytest.mark.parametrize(
    ("orig", "deadlock"),
    [
        (pymysql.err.OperationalError(1213, "Deadlock found"), True),
        (pymysql.err.OperationalError(1205, "Lock wait timeout"), False),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.SerializationFailure("could not serialize"), True),
        (psycopg.errors.UniqueViolation("duplicate"), False),
        (sqlite3.OperationalError("database is locked"), False),
    ],
)
def test_is_deadlock(orig: BaseException, deadlock: bool) -> None:
    assert is_deadlock(_wrapped(sa.exc.OperationalError, orig)) is deadlock


def test_a_deadlock_victim_is_rerun(sqlite_url: str, table_name: str) -> None:
    store = TableStore(sqlite_url, table_name)
    attempts: list[int] = []

    def work(conn: sa.Connection) -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise _wrapped(sa.exc.OperationalError, pymysql.err.OperationalError(1213, "Deadlock found"))
        return 7

    assert store._transaction("insert into", work) == 7
    assert len(attempts) == 3


def test_other_errors_are_not_rerun_and_keep_their_retry_verdict(sqlite_url: str, table_name: str) -> None:
    store = TableStore(sqlite_url, table_name)
    attempts: list[int] = []

    def work(conn: sa.Connection) -> int:
        attempts.append(1)
        raise _wrapped(sa.exc.OperationalError, pymysql.err.OperationalError(2006, "MySQL server has gone away"))

    with pytest.raises(StoreError, match=r"insert into table '\w+' at sqlite:///.* gone away") as info:
        store._transaction("insert into", work)
    assert len(attempts) == 1
    assert is_transient(info.value)
