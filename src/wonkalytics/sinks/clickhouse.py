"""The ClickHouse sink: every interaction and event as a row of a ReplacingMergeTree, every update as a row.

On when ``clickhouse_url`` (``WONKALYTICS_CLICKHOUSE_URL``, e.g.
``clickhouse://default@127.0.0.1:9000/default``) is set, with the ``[clickhouse]`` extra installed.
The SQL table stays the writer's primary sink; ClickHouse has a lane of its own, so ClickHouse being
slow or down never delays the caller's stream, the SQL row or another sink.

What is written (tables of :mod:`wonkalytics.store.clickhouse`, created on first write):

* an insert -> one row of ``<table>`` (the record's fields that are columns, coerced as for SQL);
* ``score`` / ``update_row_property`` -> one row of ``<table>_updates`` (``key_field``, ``key``,
  ``field``, ``value`` as text, ``is_null``, ``at``, ``id``): the latest ``at`` per key and field wins
  when the read side reads. No ``ALTER TABLE ... UPDATE``. Datetimes are written as UTC text; an update
  of ``timestamp`` or ``event_id`` (the sorting key) is rejected, as is a datetime that is no time.

Batching: ClickHouse wants few large inserts (each insert makes a part that must be merged), so this
lane sends at least 1,000 rows per insert or one insert per second (``batch_size`` 1,000 and
``flush_interval`` 1 s for this lane; ``flush()`` sends at once).

Guarantee: a batch whose acknowledgement was lost is sent again with the same ``event_id`` (and the
same update ``id``); the copies collapse into one row, and reads (``FINAL`` / the updates' ``id``)
count it once before ClickHouse has merged them. Rows and updates land exactly once as far as every
read can tell, through refused connections, resets, black holes and lost replies.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wonkalytics.access import json_text
from wonkalytics.errors import NoMatchingColumnsError
from wonkalytics.ops import Insert, Op, Update
from wonkalytics.settings import Settings
from wonkalytics.sinks.base import Rejection
from wonkalytics.store.clickhouse import SORTING_KEY, ClickHouseTarget, column_kinds, quote
from wonkalytics.store.fit import ColumnKind, exact_value, fit_to_table, resolve_column
from wonkalytics.utc import utcnow

if TYPE_CHECKING:
    from clickhouse_driver import Client

__all__ = ["BATCH_SIZE", "FLUSH_INTERVAL", "ClickHouseSink", "from_settings"]

logger = logging.getLogger("wonkalytics")

BATCH_SIZE = 1_000
"""Rows per insert at most, and the count that sends a batch before its second is up."""
FLUSH_INTERVAL = 1.0
"""Seconds the lane gathers rows before it inserts what it has."""
_UPDATE_COLUMNS = "(key_field, key, field, value, is_null, at, id)"
# Server errors that say "try again later" (the rest is about the data: the lane isolates the op).
_TRANSIENT_CODES = frozenset({
    3,    # UNEXPECTED_END_OF_FILE
    60,   # UNKNOWN_TABLE: dropped under us; the next try creates it again
    81,   # UNKNOWN_DATABASE: the database may still be being created
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    252,  # TOO_MANY_PARTS: inserts too fast for the merges; backing off is the cure
    394,  # QUERY_WAS_CANCELLED
})


class ClickHouseSink:
    """Writes records and updates to ClickHouse (see the module docstring)."""

    name = "clickhouse"
    primary = False
    needs_call = False
    batch_size = BATCH_SIZE
    flush_interval = FLUSH_INTERVAL

    def __init__(self, target: ClickHouseTarget, column_map: dict[str, str] | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.target = target
        self.column_map = dict(column_map or {})
        self._clock = clock
        self._client: Client | None = None
        self._kinds: dict[str, ColumnKind] | None = None
        self._order: list[str] = []

    def __repr__(self) -> str:
        return f"ClickHouseSink({self.target.safe_url()!r}, table={self.target.table!r})"  # never the password

    # -- the lane's interface ----------------------------------------------------------------------

    def write(self, ops: Sequence[Op]) -> list[Rejection]:
        """Insert the batch's rows in one INSERT and its updates in another (rows first)."""
        try:
            client = self._connect()
            kinds = self._columns(client)
            rejected: list[Rejection] = []
            rows: list[tuple[Any, ...]] = []
            updates: list[tuple[Any, ...]] = []
            now = self._clock()
            for op in ops:
                if isinstance(op, Insert):
                    try:
                        rows.append(self._row(op.record.row, kinds))
                    except (NoMatchingColumnsError, ValueError, TypeError) as exc:
                        rejected.append(Rejection(op, exc))
                else:
                    try:  # later ops of a batch are later updates: a microsecond apart keeps their order
                        updates.append(self._update(op, kinds, now + len(updates) * 1e-6))
                    except ValueError as exc:
                        rejected.append(Rejection(op, exc))
            if rows:
                columns = ", ".join(quote(c) for c in self._order)
                client.execute(f"INSERT INTO {quote(self.target.table)} ({columns}) VALUES", rows)
            if updates:
                client.execute(f"INSERT INTO {quote(self.target.updates)} {_UPDATE_COLUMNS} VALUES", updates)
        except Exception as exc:
            self._drop()  # a connection that failed mid-query is in an unknown state: reconnect next time
            if self.is_transient(exc):
                self._kinds = None  # the table may have gone (or never been made): look again
            raise
        return rejected

    def _row(self, row: Mapping[str, Any], kinds: dict[str, ColumnKind]) -> tuple[Any, ...]:
        fitted = fit_to_table(row, kinds, table=self.target.table, column_map=self.column_map)
        if fitted.get("timestamp") is None and "timestamp" in kinds:
            fitted["timestamp"] = utcnow()
        if not fitted.get("event_id") and "event_id" in kinds:
            raise ValueError("a row without event_id cannot be written to ClickHouse (it is the sorting key)")
        return tuple(fitted.get(c) for c in self._order)

    def _update(self, op: Update, kinds: dict[str, ColumnKind], at: float) -> tuple[Any, ...]:
        field = resolve_column(op.field, kinds, self.column_map) or op.field
        key_field = resolve_column(op.key_field, kinds, self.column_map) or op.key_field
        if field in SORTING_KEY:
            raise ValueError(f"ClickHouse cannot update {field!r}: it is in the sorting key "
                             "(toDate(timestamp), event_id) that places and deduplicates the row")
        value = op.value
        if value is None:
            text = ""
        elif kinds.get(field) == "datetime":
            # UTC text the read side parses back (store/clickhouse_relation.py); whole seconds, as the
            # DateTime('UTC') column holds them. A value that is no time is refused, never a NULL.
            text = exact_value(value, "datetime", column=field).strftime("%Y-%m-%d %H:%M:%S")
        elif isinstance(value, str):
            text = value
        elif isinstance(value, bool | int | float):
            text = json.dumps(value)  # 87.6 -> "87.6": toFloat64OrNull() reads it back exactly
        else:
            text = json_text(value)
        return (key_field, str(op.key), field, text, 1 if value is None else 0, at, op.id)

    def is_transient(self, exc: BaseException) -> bool:
        """Connection trouble, timeouts and server overload are retried; errors about the data are not."""
        from clickhouse_driver import errors

        if isinstance(exc, errors.ServerException):
            return exc.code in _TRANSIENT_CODES
        return isinstance(exc, errors.NetworkError | errors.SocketTimeoutError | errors.UnexpectedPacketFromServerError
                          | EOFError | OSError | TimeoutError)

    def probe(self) -> bool:
        """True when the server answers ``SELECT 1`` (``doctor``; the lane's poison-op check)."""
        client = self.target.client()
        try:
            client.execute("SELECT 1")
        except Exception:
            return False
        finally:
            client.disconnect()
        return True

    def close(self, timeout: float) -> None:
        """Close the connection."""
        self._drop()

    def after_fork(self) -> None:
        """The child opens its own connection; the parent's socket is left to the parent."""
        self._client = None

    # -- connection and table ----------------------------------------------------------------------

    def _connect(self) -> Client:
        if self._client is None:
            self._client = self.target.client()
        return self._client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            except Exception as exc:  # already broken: nothing more to release
                logger.debug("wonkalytics: closing the ClickHouse connection: %s", exc)

    def _columns(self, client: Client) -> dict[str, ColumnKind]:
        if self._kinds is None:
            self.target.create(client)  # both tables, IF NOT EXISTS: once per connection, not per batch
            types = self.target.columns(client)
            self._kinds = column_kinds(types)
            self._order = list(types)
        return self._kinds


def from_settings(settings: Settings, submit: Callable[[Op], None]) -> ClickHouseSink | None:
    """The sink for ``settings.clickhouse_url`` (``WONKALYTICS_CLICKHOUSE_URL``), or None when unset."""
    secret = settings.clickhouse_url
    if secret is None:
        return None
    target = ClickHouseTarget.from_url(
        secret.get_secret_value(), settings.table.rsplit(".", 1)[-1],
        connect_timeout=settings.connect_timeout, statement_timeout=settings.statement_timeout,
    )
    return ClickHouseSink(target, settings.column_map)
