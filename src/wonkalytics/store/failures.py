"""Database failures: what we tell the caller, and whether trying again can help.

The background writer retries *transient* failures (the server is down, a lock or deadlock) and sets
aside rows the database refuses for good (bad data, a missing column). Drivers report these
differently; the knowledge of their codes lives here.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from wonkalytics.errors import StoreError, WonkalyticsError
from wonkalytics.store.engine import redact, safe_url

__all__ = ["is_deadlock", "is_schema_changed", "is_transient", "store_error"]


def store_error(what: str, url: str | sa.URL, exc: sa.exc.SQLAlchemyError) -> StoreError:
    """A :class:`StoreError` saying ``what`` failed, where (safe URL) and the driver's first line.

    The retry verdict is decided here and kept on the error (``.transient``), because the caller may
    have to cut the exception chain to keep a password out of it.

    >>> err = store_error("read table 't'", "postgresql://u:pw@h/db", sa.exc.OperationalError("", {}, None))
    >>> str(err).startswith("read table 't' at postgresql://u:***@h/db failed: OperationalError")
    True
    """
    original = getattr(exc, "orig", None) or exc
    detail = redact((str(original).strip().splitlines() or [""])[0], url)
    error = StoreError(f"{what} at {safe_url(url)} failed: {type(original).__name__}: {detail}")
    error.transient = is_transient(exc)
    return error


_DEADLOCK_SQLSTATES = {"40001", "40P01"}  # serialization failure / deadlock (PostgreSQL, SQL Server/ODBC)
_MYSQL_DEADLOCK = 1213


def is_deadlock(exc: sa.exc.DBAPIError) -> bool:
    """True when the database rolled the transaction back to break a deadlock (safe to rerun at once).

    InnoDB picks such victims among concurrent ``INSERT ... ON DUPLICATE KEY UPDATE`` batches (next-key
    locks on the unique ``event_id`` index); PostgreSQL and SQL Server can do the same.
    """
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _DEADLOCK_SQLSTATES:  # psycopg
        return True
    args = getattr(orig, "args", ())
    if not args:
        return False
    if args[0] == _MYSQL_DEADLOCK and type(orig).__module__.split(".")[0] in ("pymysql", "MySQLdb"):
        return True
    return args[0] in _DEADLOCK_SQLSTATES  # pyodbc: (sqlstate, message)


# MySQL/MariaDB: too many connections, lock wait timeout, deadlock, and client-side connection errors.
_MYSQL_TRANSIENT = {1040, 1205, 1213, 2002, 2003, 2005, 2006, 2013, 2055}
_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o", "unable to open")
_TRANSIENT_TYPES = (sa.exc.TimeoutError, sa.exc.DisconnectionError, ConnectionError, TimeoutError)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _operational_is_transient(orig: BaseException | None) -> bool:
    if orig is None:
        return True
    module = type(orig).__module__
    if module.startswith("pymysql") or module.startswith("MySQLdb"):
        code = orig.args[0] if orig.args and isinstance(orig.args[0], int) else None
        return code is None or code in _MYSQL_TRANSIENT
    if module.startswith("sqlite3"):
        message = str(orig).lower()
        return any(marker in message for marker in _SQLITE_TRANSIENT)
    return True  # psycopg / pyodbc: connection trouble, lock and serialization failures


def is_transient(exc: BaseException) -> bool:
    """True when retrying later may succeed (connection trouble, locks); False for refused data.

    >>> from wonkalytics.errors import UnknownColumnError
    >>> is_transient(UnknownColumnError("x", "t", ["y"]))
    False
    """
    for error in _chain(exc):
        flagged = vars(error).get("transient")  # set on the instance: decided where it was raised
        if isinstance(error, StoreError) and isinstance(flagged, bool):
            return flagged
        if isinstance(error, WonkalyticsError) and not isinstance(error, StoreError):
            return False
        if isinstance(error, sa.exc.DBAPIError):
            if error.connection_invalidated:
                return True
            if isinstance(error, sa.exc.OperationalError | sa.exc.InterfaceError):
                return _operational_is_transient(error.orig)
            return False
        if isinstance(error, _TRANSIENT_TYPES):
            return True
    return False


_MISSING_SQLSTATES = {"42P01", "42703", "42S02", "42S22"}  # undefined table / column (PostgreSQL, ODBC)
_MYSQL_MISSING = {1146, 1054}  # no such table, unknown column
_MSSQL_MISSING = {208, 207}  # invalid object name, invalid column name
_SQLITE_MISSING = ("no such table", "has no column named", "no such column")


def is_schema_changed(exc: BaseException) -> bool:
    """True when the table (or one of its columns) is gone since it was reflected: reflect again.

    A table dropped while the app runs (or recreated by a migration) must not send every later row
    to the rejected file: the store forgets its reflection and the writer retries.
    """
    for error in _chain(exc):
        orig = getattr(error, "orig", None)
        if orig is None:
            continue
        if getattr(orig, "sqlstate", None) in _MISSING_SQLSTATES:
            return True
        args = getattr(orig, "args", ())
        module = type(orig).__module__
        if module.startswith(("pymysql", "MySQLdb")) and args and args[0] in _MYSQL_MISSING:
            return True
        if module.startswith("sqlite3"):
            return any(marker in str(orig).lower() for marker in _SQLITE_MISSING)
        if args and (args[0] in _MISSING_SQLSTATES or any(f"({code})" in str(orig) for code in _MSSQL_MISSING)):
            return True
    return False
