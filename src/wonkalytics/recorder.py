"""The one default :class:`Recorder` that ``configure()`` reconfigures and module functions use.

A recorder is a facade: it owns the settings, and turns ``record`` / ``log`` / ``score`` /
``update_row_property`` / ``flush`` / ``shutdown`` into ops for the writer. :func:`assemble` builds
the sinks and their lanes from the settings, in one place. The recorder is built lazily (the
environment is read on first use, so ``wrap()`` at import time works) and reconfigured in place, so
``wonkalytics.flush`` and clients wrapped before ``configure()`` keep working.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
import random
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from wonkalytics.destinations import table_destination
from wonkalytics.interaction import Interaction, Record, new_event_id
from wonkalytics.internal_errors import log_limited, swallow
from wonkalytics.ops import Builder, Insert, Op, Outcome, Update
from wonkalytics.record.build import RowStep, record_builder
from wonkalytics.record.cost import use_prices_file
from wonkalytics.record.pipeline import event_row
from wonkalytics.record.redact import redactor
from wonkalytics.record.secrets import drop_secrets
from wonkalytics.record.structured import call_view
from wonkalytics.settings import Settings, load_settings
from wonkalytics.sinks.base import ColumnCheck, Sink
from wonkalytics.sinks.table import TableSink
from wonkalytics.store.sql import TableStore
from wonkalytics.utc import utcnow
from wonkalytics.writer.front import Writer
from wonkalytics.writer.health import Health
from wonkalytics.writer.lane import Lane
from wonkalytics.writer.spool import Spool

__all__ = ["DEFAULT_FLUSH_TIMEOUT", "Recorder", "assemble", "default_recorder", "event_record_row", "row_steps"]

logger = logging.getLogger("wonkalytics")

DEFAULT_FLUSH_TIMEOUT = 30.0
_CHECK_TIMEOUT = 3.0  # longest a caller waits to learn the table's columns when it is not reflected yet
_BUILT_IN_SINKS = frozenset({"base", "table"})


def event_record_row(fields: Mapping[str, Any]) -> dict[str, Any]:
    """An event row with its timestamp and idempotency key (the record steps of an event)."""
    row = event_row(fields, now=utcnow())
    row.setdefault("event_id", new_event_id())
    return row


# -- assembling sinks and lanes --------------------------------------------------------------------

SinkFactory = Callable[[Settings, Callable[[Op], None]], Sink | None]


def _sink_factories() -> list[SinkFactory]:
    """``from_settings`` of every module in ``wonkalytics.sinks`` (a new sink is one new module)."""
    import wonkalytics.sinks as package

    factories: list[SinkFactory] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name in _BUILT_IN_SINKS or info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{package.__name__}.{info.name}")
        except ImportError as exc:  # a sink whose library is not installed cannot be on; say so once
            log_limited(
                f"sink-import-{info.name}", logging.WARNING,
                "wonkalytics: the %s sink is not available (%s); install its extra to use it", info.name, exc,
            )
            continue
        factory = getattr(module, "from_settings", None)
        if callable(factory):
            factories.append(factory)
    return factories


def row_steps(settings: Settings) -> list[RowStep]:
    """Secret fields out, then the configured redaction (both before a row leaves the process)."""
    known = [settings.url().password, *(secret.get_secret_value() for secret in (
        settings.promptlayer_api_key, settings.azure_sql_password) if secret is not None),
        settings.clickhouse_password()]
    known_secrets = [value for value in known if isinstance(value, str) and value]
    # The configured secrets are masked wherever they appear in a text (an error echoing the URL, a
    # key pasted into a prompt), beside the fields that name a credential.
    steps: list[RowStep] = [partial(drop_secrets, known=known_secrets) if known_secrets else drop_secrets]
    if settings.redact is not None:
        step = redactor(settings.redact)
        if step is not None:
            steps.append(step)
    return steps


def _guarded(build: Builder) -> Builder:
    """A builder that never loses the call: a bug in record building keeps a minimal row."""

    def guarded(source: object) -> Record:
        try:
            return build(source)
        except Exception:
            swallow("building an analytics record", "a minimal row was kept instead")
            if isinstance(source, Interaction):
                row: dict[str, Any] = {
                    "event_id": source.event_id, "status": source.status, "start_time": source.start_time,
                    "end_time": source.end_time, "response_id": source.response_id,
                    "error": "wonkalytics could not build this row; see the app's log",
                }
                return Record(kind="interaction", event_id=source.event_id, row=row)
            raise

    return guarded


def assemble(settings: Settings, submit: Callable[[Op], None]) -> tuple[Writer, ColumnCheck, list[Sink]]:
    """Sinks and lanes from the settings: the table, then every enabled sink of ``wonkalytics.sinks``.

    Returns the writer, the one checker of update columns and values (the primary sink's), and the sinks.
    """
    table = TableSink(TableStore.from_settings(settings), settings.column_map)
    sinks: list[Sink] = [table]
    for factory in _sink_factories():
        sink = factory(settings, submit)
        if sink is not None:
            sinks.append(sink)
    try:
        use_prices_file(settings.prices_file)  # cost_usd is priced on the lanes' threads with these overrides
    except Exception as exc:  # a broken overrides file must not cost the rows: list prices only
        logger.error("wonkalytics: WONKALYTICS_PRICES is not usable (%s); pricing from list prices only", exc)
        use_prices_file(None)
    view = call_view if any(sink.needs_call for sink in sinks) else None
    build = _guarded(record_builder(call_view=view, transforms=row_steps(settings)))
    lanes = [
        Lane(
            sink,
            # The table's ops are spooled for its table and database: never adopted by another one.
            spool=Spool(settings.spool_dir / sink.name, fsync=settings.durability == "disk",
                        destination=table_destination(settings.url(), settings.table) if sink is table else None),
            build=build,
            durability=settings.durability,
            queue_size=settings.queue_size,
            # A sink may ask for its own batching (ClickHouse: >= 1,000 rows or one insert per second).
            batch_size=getattr(sink, "batch_size", settings.batch_size),
            flush_interval=getattr(sink, "flush_interval", settings.flush_interval),
            update_grace=settings.update_grace,
            legacy_spool=settings.spool_dir if sink is table else None,  # release 0.1's bare-row segments
        )
        for sink in sinks
    ]
    return Writer(lanes, exit_timeout=settings.exit_timeout, enabled=settings.enabled), table.check_update, sinks


class Recorder:
    """Settings + the writer's lanes, built on first use; every write is an op."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._lock = threading.RLock()
        self._settings = settings
        self._options: dict[str, Any] = {}
        self._writer: Writer | None = None
        self._check: ColumnCheck | None = None
        self._sinks: list[Sink] = []
        self.trace_hook: Callable[[], Mapping[str, Any] | None] | None = None
        """Captures the caller's current span when a call starts; set only when the OpenTelemetry sink is on."""

    # -- configuration -----------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings in force (read from the environment on first use)."""
        with self._lock:
            if self._settings is None:
                self._settings = load_settings(**self._options)
            return self._settings

    @property
    def enabled(self) -> bool:
        """False when ``enabled`` is off: nothing is recorded and SDK calls are left as they are."""
        return self.settings.enabled

    def configure(self, **options: Any) -> Recorder:
        """Replace the configuration; ops queued under the old one go to the old destinations first.

        The new settings are checked before anything changes: when they are invalid the previous
        configuration keeps working and ``ConfigurationError`` says what to fix.
        """
        settings = load_settings(**options)
        with self._lock:
            old = self._writer
            self._settings, self._options = settings, dict(options)
            self._writer, self._check, self._sinks = None, None, []
            self.trace_hook = None
        if old is not None:
            old.shutdown()
            # Spilled during an outage: a new writer for the same destination writes them once it can;
            # another destination's stay on disk for it (`wonkalytics spool replay`). shutdown() closed the sinks.
            old.release_spools()
        # Thread start and the spool scan happen here, at start-up, rather than in the first LLM call.
        self.writer.start()
        return self

    def enable_promptlayer(self, api_key: str) -> None:
        """Turn the PromptLayer sink on with ``api_key`` (the seed's ``openai_wrapper.api_key``), once."""
        settings = self.settings
        current = settings.promptlayer_api_key
        if current is not None and current.get_secret_value() == api_key:
            return
        self.configure(**{**self._options, "promptlayer_api_key": api_key})

    @property
    def writer(self) -> Writer:
        """The writer (its lanes' threads start with the first op, or at ``configure()``)."""
        writer = self._writer
        if writer is not None:
            return writer
        with self._lock:
            if self._writer is None:
                self._writer, self._check, self._sinks = assemble(self.settings, self.submit)
                for sink in self._sinks:
                    hook = getattr(sink, "trace_hook", None)
                    if callable(hook):
                        self.trace_hook = hook
            return self._writer

    @property
    def check(self) -> ColumnCheck:
        """The checker of update columns and values (the primary sink's, from :func:`assemble`)."""
        self.writer  # noqa: B018 - assembles the sinks
        assert self._check is not None
        return self._check

    @property
    def sink(self) -> TableSink:
        """The SQL table sink, for the seed's synchronous paths (``analytics``, ``demo``); the recorder's
        own writes and updates go through ops and :attr:`check` only."""
        sink = next(lane.sink for lane in self.writer.lanes if lane.sink.primary)
        assert isinstance(sink, TableSink)
        return sink

    def submit(self, op: Op) -> None:
        """Queue one op for every sink (sinks use this for their follow-ups, e.g. PromptLayer's id)."""
        self.writer.submit(op)

    # -- writing -----------------------------------------------------------------------------------

    def record(self, item: object) -> None:
        """Queue an ``Interaction`` (or an event row) as an insert for every sink."""
        settings = self.settings
        if not settings.enabled:
            return
        if isinstance(item, Interaction) and settings.sample_rate < 1 and random.random() >= settings.sample_rate:
            return  # sampled out (events and updates are always recorded)
        self.writer.submit(Insert(source=item))

    def log(self, **fields: Any) -> str:
        """Queue one analytics event row; returns its ``event_id``. Never blocks on the database."""
        row = event_record_row(fields)
        if self.settings.enabled:
            self.writer.submit(Insert(source=row))
        return str(row["event_id"])

    async def alog(self, **fields: Any) -> str:
        """Async twin of :meth:`log` (queueing never blocks, so it runs inline)."""
        return self.log(**fields)

    def flush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT) -> bool:
        """Block until queued ops are handled by every sink; False when ``timeout`` seconds passed first."""
        writer = self._writer
        return True if writer is None else writer.flush(timeout)

    async def aflush(self, timeout: float | None = DEFAULT_FLUSH_TIMEOUT) -> bool:
        """Async twin of :meth:`flush`, waiting in a worker thread."""
        return await asyncio.to_thread(self.flush, timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush with a bounded wait (one deadline for all sinks) and stop the lanes (done at exit too)."""
        writer = self._writer
        return True if writer is None else writer.shutdown(timeout)

    def health(self) -> Health:
        """Per sink: queued, written, retried, spooled, rejected, pending updates, last error and success."""
        return self.writer.health()

    # -- updating a logged row ---------------------------------------------------------------------

    def _queue_update(
        self, response_id: Any, name: str, value: Any, *, wait: bool, timeout: float | None,
        key_field: str = "response_id",
    ) -> tuple[Outcome | None, float]:
        """Check the column and value now (raising), then queue the update; returns its waiter."""
        settings = self.settings
        budget = settings.update_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        if not isinstance(name, str) or not name:
            raise ValueError(f"the column name must be a non-empty string, not {name!r}")
        checked = self.check(name, value, key_field, min(_CHECK_TIMEOUT, budget))
        outcome = Outcome() if wait else None
        self.writer.submit(Update(key=response_id, field=name, value=checked, key_field=key_field, outcome=outcome))
        return outcome, deadline

    def update_row_property(
        self, response_id: str, name: str, value: Any, *, wait: bool = True, timeout: float | None = None
    ) -> bool | None:
        """Set column ``name`` of the row(s) with ``response_id``, as an op queued behind earlier rows.

        Raises ``UnknownColumnError`` (a ``ValueError``) when ``name`` is not a column of the table, and
        ``ValueError`` when the column cannot hold ``value`` exactly. With ``wait`` it returns True when
        a row was updated, False when none has that id or the database did not answer within
        ``timeout`` (default: the ``update_timeout`` setting; the update then stays queued and is
        applied later). Without ``wait`` it returns None at once.
        """
        if response_id is None or response_id == "":
            log_limited(
                "update-no-id", logging.WARNING,
                "wonkalytics: update of %s without a response id (the stream had no id yet?): nothing updated", name,
            )
            self.check(name, value, "response_id", _CHECK_TIMEOUT)
            return False if wait else None
        outcome, deadline = self._queue_update(response_id, name, value, wait=wait, timeout=timeout)
        if outcome is None:
            return None
        result = outcome.wait(max(0.0, deadline - time.monotonic()))
        if result is None:
            log_limited(
                "update-timeout", logging.WARNING,
                "wonkalytics: the database did not confirm the update of %s in time; it stays queued and is "
                "applied when the database answers", name,
            )
            return False
        return result

    def score(
        self, response_id: str, score: float, *, wait: bool = True, timeout: float | None = None
    ) -> bool | None:
        """Set the ``score`` of the row with ``response_id`` (see :meth:`update_row_property`)."""
        return self.update_row_property(response_id, "score", score, wait=wait, timeout=timeout)

    async def aupdate_row_property(
        self, response_id: str, name: str, value: Any, *, wait: bool = True, timeout: float | None = None
    ) -> bool | None:
        """Async twin of :meth:`update_row_property` (the checks run in a thread; the wait never blocks the loop)."""
        if not wait:
            return await asyncio.to_thread(self.update_row_property, response_id, name, value, wait=False)
        return await asyncio.to_thread(self.update_row_property, response_id, name, value, timeout=timeout)

    async def ascore(
        self, response_id: str, score: float, *, wait: bool = True, timeout: float | None = None
    ) -> bool | None:
        """Async twin of :meth:`score`."""
        return await self.aupdate_row_property(response_id, "score", score, wait=wait, timeout=timeout)


default_recorder = Recorder()
"""The process-wide recorder behind ``wonkalytics.configure``, ``log``, ``score``, ``flush``, ..."""
