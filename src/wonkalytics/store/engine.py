"""One SQLAlchemy engine (and connection pool) per database URL per process.

>>> from wonkalytics.store.engine import get_engine, safe_url
>>> safe_url("postgresql+psycopg://app:s3cret@db.example.com/analytics")
'postgresql+psycopg://app:***@db.example.com/analytics'
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, pool
from sqlalchemy.engine import Engine

from wonkalytics.errors import ConfigurationError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_STATEMENT_TIMEOUT",
    "SQLITE_BUSY_TIMEOUT_MS",
    "dispose_engines",
    "get_engine",
    "parse_url",
    "redact",
    "safe_url",
    "statement_deadline",
]

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a new connection (a server that accepts and never answers must not hang us)."""
DEFAULT_STATEMENT_TIMEOUT = 30.0
"""Seconds one statement may take before its connection is cut and the work retried on a fresh one."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite writer waits for the file lock held by another thread or process."""

_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|key|odbc_connect|credential", re.IGNORECASE)
_MASK = "***"

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def parse_url(url: str | sa.URL) -> sa.URL:
    """Parse a database URL, raising :class:`ConfigurationError` (never echoing it) when invalid."""
    if isinstance(url, sa.URL):
        return url
    try:
        return sa.make_url(url)
    except Exception as exc:
        # Not chained: the parser's message may quote the string, password included.
        raise ConfigurationError(
            f"invalid database URL ({type(exc).__name__}); expected dialect+driver://user:password@host:port"
            "/database, e.g. postgresql+psycopg://..., mysql+pymysql://..., mssql+pyodbc://..., "
            "sqlite:///wonkalytics.db"
        ) from None


def safe_url(url: str | sa.URL) -> str:
    """Render ``url`` with its password (and secret-looking query values) replaced by ``***``.

    >>> safe_url("mssql+pyodbc://sa:pw@server/db?driver=ODBC+Driver+18+for+SQL+Server&Pwd=x")
    'mssql+pyodbc://sa:***@server/db?Pwd=***&driver=ODBC+Driver+18+for+SQL+Server'
    """
    try:
        parsed = parse_url(url)
    except ConfigurationError:
        return "<invalid database URL>"
    masked = {
        key: (_MASK if _SECRET_QUERY_KEY.search(key) else value) for key, value in parsed.query.items()
    }
    rendered = parsed.set(query=masked).render_as_string(hide_password=True)
    # Query values are URL-escaped when rendered; show our mask as typed.
    return rendered.replace("%2A%2A%2A", _MASK)


def redact(text: str, url: str | sa.URL) -> str:
    """Replace the password (and secret-looking query values) of ``url`` in ``text`` with ``***``.

    >>> redact("login failed for s3cret", "postgresql://app:s3cret@db/x")
    'login failed for ***'
    """
    try:
        parsed = parse_url(url)
    except ConfigurationError:
        return text
    secrets: list[str] = [parsed.password] if isinstance(parsed.password, str) else []
    for key, value in parsed.query.items():
        if _SECRET_QUERY_KEY.search(key):
            secrets.extend([value] if isinstance(value, str) else value)
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def _is_sqlite_memory(url: sa.URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or database.startswith("file::memory:") or (
        url.query.get("mode") == "memory"
    )


def _timeout_args(url: sa.URL, connect: float, statement: float) -> dict[str, Any]:
    """Driver arguments so that no connect, read or statement can wait forever (a failover, a black hole)."""
    driver = url.get_driver_name()
    backend = url.get_backend_name()
    given = set(url.query)
    args: dict[str, Any] = {}
    if backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        args["connect_timeout"] = max(1, math.ceil(connect))
        # Dead peers (no ACKs) are noticed by the kernel; a server that ACKs and never answers is cut by
        # statement_deadline(), and a slow statement by the server itself.
        args.update(keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
        args["tcp_user_timeout"] = int(statement * 1000)
        if "options" not in given:
            args["options"] = f"-c statement_timeout={int(statement * 1000)}"
    elif backend in ("mysql", "mariadb") and driver == "pymysql":
        args.update(connect_timeout=max(1, math.ceil(connect)), read_timeout=statement, write_timeout=statement)
    elif backend == "mssql" and driver == "pyodbc":
        args["timeout"] = max(1, math.ceil(connect))  # the login timeout; the query timeout is set on connect
    elif backend == "mssql" and driver == "pymssql":
        args.update(login_timeout=max(1, math.ceil(connect)), timeout=max(1, math.ceil(statement)))
    return {key: value for key, value in args.items() if key not in given}


def _engine_options(
    url: sa.URL, connect: float = DEFAULT_CONNECT_TIMEOUT, statement: float = DEFAULT_STATEMENT_TIMEOUT
) -> tuple[sa.URL, dict[str, Any]]:
    backend = url.get_backend_name()
    # PostgreSQL: no pre-ping. A ping on a connection that hangs would hang before statement_deadline()
    # knows the connection; a stale one fails its first statement instead, which the writer retries.
    options: dict[str, Any] = {"pool_pre_ping": backend != "postgresql"}
    connect_args = _timeout_args(url, connect, statement)
    if connect_args:
        options["connect_args"] = connect_args
    if backend in ("mysql", "mariadb") and "charset" not in url.query:
        # Without it the driver may talk latin1/utf8mb3 and emoji fail or turn into '?'.
        url = url.update_query_dict({"charset": "utf8mb4"})
    if backend == "mssql" and url.get_driver_name() == "pyodbc":
        # pyodbc sends an executemany as one array of parameters instead of a round trip per row
        # (SQLAlchemy's documented switch; the ODBC Driver 18 supports it).
        options["fast_executemany"] = True
    if backend == "sqlite" and _is_sqlite_memory(url):
        # One shared connection: otherwise each thread (the writer!) would see its own empty database.
        options["poolclass"] = pool.StaticPool
        options["connect_args"] = {"check_same_thread": False}
    return url, options


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transactions away from pysqlite, which starts them lazily and never for DDL or reads: we
    # emit BEGIN ourselves (below), so reflection reads one consistent schema and CREATE TABLE +
    # CREATE INDEX commit together (SQLAlchemy's documented recipe for pysqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets caller threads read and update while the writer thread appends; busy_timeout makes a
        # second writer wait for the lock instead of failing with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS:d}")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    # Deferred: the write lock is taken by the first INSERT/UPDATE (always our first statement in a
    # write transaction, so busy_timeout applies), and reads never block the writer.
    conn.exec_driver_sql("BEGIN")


def _create_engine(url: sa.URL, connect: float, statement: float) -> Engine:
    url, options = _engine_options(url, connect, statement)
    try:
        engine = sa.create_engine(url, **options)
    except ImportError as exc:  # the driver, or a library it needs (pyodbc: libodbc / ODBC Driver 18)
        raise ConfigurationError(
            f"the database driver for {safe_url(url)} is not installed or cannot load ({exc}); install "
            "it, e.g. pip install 'wonkalytics[postgres]' / '[mysql]' / '[mssql]' (plus the ODBC driver)"
        ) from None
    except sa.exc.SQLAlchemyError as exc:
        detail = redact(str(exc), url)
        raise ConfigurationError(f"cannot use database URL {safe_url(url)}: {detail}") from None
    if engine.dialect.name == "sqlite" and not _is_sqlite_memory(url):
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    if engine.dialect.name == "mssql" and url.get_driver_name() == "pyodbc":
        seconds = max(1, math.ceil(statement))
        event.listen(engine, "connect", lambda dbapi_conn, _record: setattr(dbapi_conn, "timeout", seconds))
    event.listen(engine, "checkout", _note_checkout)
    event.listen(engine, "checkin", _note_checkin)
    return engine


# -- cutting a connection that hangs ---------------------------------------------------------------

_in_use: dict[int, Any] = {}  # thread ident -> the DBAPI connection it has checked out


def _note_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    _in_use[threading.get_ident()] = dbapi_conn


def _note_checkin(dbapi_conn: Any, _record: Any) -> None:
    ident = threading.get_ident()
    if _in_use.get(ident) is dbapi_conn:
        _in_use.pop(ident, None)


def _socket_fd(dbapi_conn: Any) -> int | None:
    pgconn = getattr(dbapi_conn, "pgconn", None)  # psycopg 3
    if pgconn is not None:
        with contextlib.suppress(Exception):
            return int(pgconn.socket)
    sock = getattr(dbapi_conn, "_sock", None)  # PyMySQL
    if isinstance(sock, socket.socket):
        return sock.fileno()
    with contextlib.suppress(Exception):
        return int(dbapi_conn.fileno())  # psycopg2
    return None


def _cut(ident: int) -> None:
    """Shut the socket of the connection thread ``ident`` waits on: its driver raises at once."""
    dbapi_conn = _in_use.get(ident)
    fd = _socket_fd(dbapi_conn) if dbapi_conn is not None else None
    if fd is None or fd < 0:
        return
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that cuts the connections of threads past their deadline.

    A ``threading.Timer`` per transaction would start a thread for every batch (measured as part of
    the writer's per-batch cost); here a deadline is a dict entry and the thread sleeps until the
    earliest one.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadlines: dict[int, float] = {}  # thread ident -> monotonic deadline
        self._thread: threading.Thread | None = None
        self._wakes_at = -math.inf  # when the sleeping thread looks next; -inf: it is not asleep
        self._idle = 60.0  # how long it sleeps with no deadline: the shortest timeout armed (1-60 s)

    def arm(self, ident: int, seconds: float) -> float | None:
        """Set thread ``ident``'s deadline; returns the one it replaces (nested deadlines)."""
        with self._cond:
            previous = self._deadlines.get(ident)
            deadline = self._deadlines[ident] = time.monotonic() + seconds
            # Idle, it sleeps no longer than a timeout: a deadline armed later then falls after its look.
            self._idle = min(self._idle, max(1.0, seconds))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wonkalytics-watchdog", daemon=True)
                self._thread.start()
            if deadline < self._wakes_at:
                # Only a deadline before the sleeper's next look needs it awake now. With one statement
                # timeout each new deadline is later than the ones it sleeps for, so a transaction no
                # longer wakes a second thread (a GIL hand-off and a context switch per batch of the writer).
                self._cond.notify()
            return previous

    def disarm(self, ident: int, previous: float | None) -> None:
        with self._cond:
            if previous is None:
                self._deadlines.pop(ident, None)
            else:
                self._deadlines[ident] = previous

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [ident for ident, deadline in self._deadlines.items() if deadline <= now]
                for ident in due:
                    del self._deadlines[ident]
                if not due:
                    wait = max(0.01, min(self._deadlines.values(), default=now + self._idle) - now)
                    self._wakes_at = now + wait
                    self._cond.wait(wait)
                    self._wakes_at = -math.inf  # awake: it looks at every deadline before sleeping again
                    continue
            for ident in due:
                _cut(ident)

    def after_fork(self) -> None:
        self._cond = threading.Condition()
        self._deadlines = {}
        self._thread = None
        self._wakes_at = -math.inf
        self._idle = 60.0


_watchdog = _Watchdog()


@contextlib.contextmanager
def statement_deadline(seconds: float | None) -> Iterator[None]:
    """Cut this thread's database connection if the work inside takes longer than ``seconds``.

    Drivers that wait on a socket without a timeout of their own (psycopg: libpq has no read
    timeout) would otherwise wait forever on a server that accepts and never answers, as after a
    failover. The cut connection raises a disconnect error, SQLAlchemy invalidates the pool, and the
    writer retries on fresh connections.
    """
    if seconds is None:
        yield
        return
    ident = threading.get_ident()
    previous = _watchdog.arm(ident, seconds)
    try:
        yield
    finally:
        _watchdog.disarm(ident, previous)


def get_engine(
    url: str | sa.URL,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
) -> Engine:
    """The process-wide engine for ``url`` (and timeouts): created on first use, then shared (thread-safe).

    Engines are lazy: nothing connects until the first statement.

    >>> get_engine("sqlite:///analytics.db") is get_engine("sqlite:///analytics.db")
    True
    """
    parsed = parse_url(url)
    key = f"{parsed.render_as_string(hide_password=False)}#{connect_timeout}/{statement_timeout}"
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create_engine(parsed, connect_timeout, statement_timeout)
        return engine


def dispose_engines(*, close: bool = True) -> None:
    """Drop every pooled connection and forget all engines (tests, shutdown, after ``fork()``).

    ``close=False`` leaves the sockets alone, for a child process whose connections belong to its
    parent (done automatically after ``os.fork()``). Engines already handed out stay usable: they
    open fresh connections when used again.
    """
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose(close=close)


def _after_fork_in_child() -> None:
    global _lock
    _watchdog.after_fork()
    # The parent's lock may have been held by another thread at fork time; the child has only us.
    _lock = threading.Lock()
    for engine in _engines.values():
        # close=False: those sockets belong to the parent; closing them here would break its sessions.
        engine.dispose(close=False)
    _engines.clear()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)
