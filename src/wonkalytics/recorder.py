"""The one default :class:`Recorder` that ``configure()`` reconfigures and module functions use.

A recorder owns the settings, the table sink and the background writer. It is built lazily (the
environment is read on first use, so ``wrap()`` at import time works) and reconfigured in place, so
``wonkalytics.flush`` and clients wrapped before ``configure()`` keep working.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from wonkalytics.errors import StoreError
from wonkalytics.interaction import new_event_id
from wonkalytics.internal_errors import log_limited
from wonkalytics.record.pipeline import event_row
from wonkalytics.settings import Settings, load_settings
from wonkalytics.sinks.table import TableSink
from wonkalytics.store.fit import coerce
from wonkalytics.store.sql import TableStore
from wonkalytics.writer.spool import Spool
from wonkalytics.writer.worker import BackgroundWriter

__all__ = ["Recorder", "default_recorder"]

logger = logging.getLogger("wonkalytics")

DEFAULT_FLUSH_TIMEOUT = 30.0


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _event(fields: Mapping[str, Any]) -> dict[str, Any]:
    """An event row with its timestamp and idempotency key."""
    row = event_row(fields, now=_utcnow())
    row.setdefault("event_id", new_event_id())
    return row


class Recorder:
    """Settings + table sink + background writer, built on first use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._lock = threading.RLock()
        self._settings = settings
        self._sink: TableSink | None = None
        self._writer: BackgroundWriter | None = None
        self._side_sinks: dict[str, TableSink] = {}
        self.trace_hook: Callable[[], Mapping[str, Any] | None] | None = None
        """Captures the caller's current span when a call starts; set only when the OpenTelemetry sink is on."""

    # -- configuration -----------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings in force (read from the environment on first use)."""
        with self._lock:
            if self._settings is None:
                self._settings = load_settings()
            return self._settings

    def configure(self, **options: Any) -> Recorder:
        """Replace the configuration; rows queued under the old one are flushed to the old database."""
        settings = load_settings(**options)
        with self._lock:
            old_writer = self._writer
            self._settings, self._sink, self._writer = settings, None, None
            self._side_sinks.clear()
        if old_writer is not None:
            old_writer.shutdown()
        # Thread start and the spool scan happen here, at start-up, rather than in the first LLM call.
        self.writer.start()
        return self

    @property
    def sink(self) -> TableSink:
        """The table sink (the table is reflected on its first write, not here)."""
        with self._lock:
            if self._sink is None:
                settings = self.settings
                store = TableStore(settings.url(), settings.table, create=settings.create_table)
                self._sink = TableSink(store, settings.column_map)
            return self._sink

    @property
    def writer(self) -> BackgroundWriter:
        """The background writer (its thread starts on the first row)."""
        writer = self._writer
        if writer is not None:
            return writer
        with self._lock:
            if self._writer is None:
                settings = self.settings
                self._writer = BackgroundWriter(
                    self.sink,
                    spool=Spool(settings.spool_dir, fsync=settings.durability == "disk"),
                    durability=settings.durability,
                    queue_size=settings.queue_size,
                    batch_size=settings.batch_size,
                    flush_interval=settings.flush_interval,
                    exit_timeout=settings.exit_timeout,
                )
            return self._writer

    # -- writing -----------------------------------------------------------------------------------

    def record(self, item: object) -> None:
        """Queue an ``Interaction`` (or an event row) for the background writer."""
        self.writer.submit(item)

    def log(self, **fields: Any) -> str:
        """Queue one analytics event row; returns its ``event_id``. Never blocks on the database."""
        row = _event(fields)
        self.writer.submit(row)
        return str(row["event_id"])

    async def alog(self, **fields: Any) -> str:
        """Async twin of :meth:`log` (queueing never blocks, so it runs inline)."""
        return self.log(**fields)

    def write_now(self, item: Mapping[str, Any], **connection: Any) -> bool:
        """Write one event row synchronously; True when it landed, False (logged) when it did not.

        A record that fits no column is a mistake, not a database failure: it raises.
        """
        sink = self._sink_for(**connection)
        try:
            rejected = sink.write([_event(item)])
        except StoreError as exc:
            logger.error("wonkalytics: the analytics row was not written: %s", exc)
            return False
        for _, why in rejected:
            raise why
        return True

    def _sink_for(self, **connection: Any) -> TableSink:
        """The default sink, or one for the seed's per-call Azure SQL connection options."""
        overrides = {key: value for key, value in connection.items() if value is not None}
        settings = self.settings
        if not overrides or settings.database_url is not None:
            return self.sink
        custom = settings.model_copy(update=overrides)
        key = custom.url().render_as_string(hide_password=False)
        if key == settings.url().render_as_string(hide_password=False):
            return self.sink
        with self._lock:
            if key not in self._side_sinks:
                store = TableStore(custom.url(), custom.table, create=custom.create_table)
                self._side_sinks[key] = TableSink(store, custom.column_map)
            return self._side_sinks[key]

    def flush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT) -> bool:
        """Block until queued rows are written; False when ``timeout`` seconds passed first."""
        writer = self._writer
        return True if writer is None else writer.flush(timeout)

    async def aflush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT) -> bool:
        """Async twin of :meth:`flush`, waiting in a worker thread."""
        return await asyncio.to_thread(self.flush, timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush with a bounded wait and stop the writer thread (done at interpreter exit too)."""
        writer = self._writer
        return True if writer is None else writer.shutdown(timeout)

    # -- updating a logged row ---------------------------------------------------------------------

    def update_row_property(self, response_id: str, name: str, value: Any, **connection: Any) -> bool:
        """Set column ``name`` of the row(s) with ``response_id``; True when a row was updated.

        Waits (bounded) for rows still queued first, so an interaction logged a moment ago is found.
        Raises ``ValueError`` (``UnknownColumnError``) when ``name`` is not a column of the table.
        ``connection`` takes the seed's Azure SQL options (encrypt, connection_timeout, ...).
        """
        sink = self._sink_for(**connection)
        column = sink.column(name)
        key_column = sink.column("response_id")
        try:
            sink.store.check_columns([column, key_column])  # before any SQL: names are never trusted
            if not self.flush(DEFAULT_FLUSH_TIMEOUT):
                log_limited(
                    "update-before-flush", logging.WARNING,
                    "wonkalytics: rows are still queued (the database is slow or down); updating %s may "
                    "miss a row that is not written yet", column,
                )
            value = coerce(value, sink.store.columns[column])
            return sink.store.update_where(key_column, response_id, column, value)
        except StoreError as exc:
            logger.error("wonkalytics: updating %s for response_id %r failed: %s", column, response_id, exc)
            return False

    def score(self, response_id: str, score: float, **connection: Any) -> bool:
        """Set the ``score`` column of the row with ``response_id``; True when a row was updated."""
        return self.update_row_property(response_id, "score", score, **connection)

    async def aupdate_row_property(self, response_id: str, name: str, value: Any) -> bool:
        """Async twin of :meth:`update_row_property` (runs in a worker thread)."""
        return await asyncio.to_thread(self.update_row_property, response_id, name, value)

    async def ascore(self, response_id: str, score: float) -> bool:
        """Async twin of :meth:`score` (runs in a worker thread)."""
        return await asyncio.to_thread(self.score, response_id, score)


default_recorder = Recorder()
"""The process-wide recorder behind ``wonkalytics.configure``, ``log``, ``score``, ``flush``, ..."""
