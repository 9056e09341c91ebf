"""Wonkalytics: LLM analytics in your own SQL database.

Wrap your OpenAI client once; every chat it streams becomes one row of a table you own::

    import openai, wonkalytics

    wonkalytics.configure(database_url="postgresql+psycopg://app@db/analytics")
    client = wonkalytics.wrap(openai.AsyncOpenAI())
    stream = await client.chat.completions.create(model=..., messages=..., stream=True,
                                                  wl_request={"name": "Ada"})
    async for chunk in stream:  # the SDK's own chunks, unchanged
        ...
    wonkalytics.score(stream.response_id, 100)
"""

from __future__ import annotations

from typing import Any

from wonkalytics._version import __version__ as __version__
from wonkalytics.capture.client import is_wrapped, wrap
from wonkalytics.capture.context import context
from wonkalytics.capture.streams import response_id_of
from wonkalytics.errors import (
    ConfigurationError,
    NoMatchingColumnsError,
    SchemaError,
    StoreError,
    UnknownColumnError,
    WonkalyticsError,
)
from wonkalytics.interaction import Interaction
from wonkalytics.record.identity import identity_from_headers
from wonkalytics.recorder import DEFAULT_FLUSH_TIMEOUT, Recorder, default_recorder
from wonkalytics.settings import Settings, check_keywords
from wonkalytics.writer.health import Health, SinkHealth

__all__ = [
    "ConfigurationError",
    "Health",
    "Interaction",
    "NoMatchingColumnsError",
    "Recorder",
    "SchemaError",
    "Settings",
    "SinkHealth",
    "StoreError",
    "UnknownColumnError",
    "WonkalyticsError",
    "alog",
    "ascore",
    "aupdate_row_property",
    "configure",
    "context",
    "flush",
    "health",
    "identity_from_headers",
    "is_wrapped",
    "log",
    "response_id_of",
    "score",
    "shutdown",
    "update_row_property",
    "wrap",
]


def configure(
    database_url: str | None = None,
    table: str | None = None,
    column_map: dict[str, str] | None = None,
    durability: str | None = None,
    spool_dir: str | None = None,
    **options: Any,
) -> Recorder:
    """Configure the process-wide recorder (again: the new settings replace the old ones).

    Unset arguments come from the environment (``WONKALYTICS_*``) or the defaults. Rows queued under
    the previous configuration are written to the previous database first.

    Mistakes are caught here, before anything changes (the previous configuration stays in force):
    a keyword that is no setting raises ``TypeError`` naming the valid ones and the closest match; a
    bad value, an unknown URL scheme or a driver that is not installed raises
    :class:`ConfigurationError` saying what to do (e.g. ``pip install 'wonkalytics[postgres]'``).

    Example::

        wonkalytics.configure(database_url="sqlite:///analytics.db", column_map={"response": "answer"})
    """
    check_keywords(options)
    return default_recorder.configure(
        database_url=database_url, table=table, column_map=column_map, durability=durability,
        spool_dir=spool_dir, **options,
    )


def log(**fields: Any) -> str:
    """Queue one analytics event (``action``, ``username``, ...); returns its ``event_id``.

    Example: ``wonkalytics.log(action="export_pdf", username="ada", tenant_id=tenant)``.
    """
    return default_recorder.log(**fields)


async def alog(**fields: Any) -> str:
    """Async twin of :func:`log` (never blocks the event loop)."""
    return await default_recorder.alog(**fields)


def flush(timeout: float | None = DEFAULT_FLUSH_TIMEOUT) -> bool:
    """Block until queued rows are in the database; False when ``timeout`` seconds passed first."""
    return default_recorder.flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush with a bounded wait and stop the writer thread (done at interpreter exit too)."""
    return default_recorder.shutdown(timeout)


def health() -> Health:
    """Per sink: ``queued``, ``written``, ``retried``, ``spooled``, ``rejected``, ``pending_updates``,
    ``last_error`` (never a secret) and ``last_success_at``. Plain data, cheap to call.

    Example: ``wonkalytics.health()["table"].queued``.
    """
    return default_recorder.health()


def score(response_id: str, score: float, *, wait: bool = True, timeout: float | None = None) -> bool | None:
    """Set the ``score`` of the row with ``response_id``, queued behind the rows it follows.

    The value is checked now (``ValueError`` when the column cannot hold it exactly). With ``wait`` it
    returns True when a row was updated, False when none has that id or the database did not answer
    within ``timeout`` (default: setting ``update_timeout``, 10 s; the update then stays queued and is
    applied later). ``wait=False`` returns None at once.
    """
    return default_recorder.score(response_id, score, wait=wait, timeout=timeout)


def update_row_property(
    response_id: str, name: str, value: Any, *, wait: bool = True, timeout: float | None = None
) -> bool | None:
    """Set column ``name`` of the row with ``response_id`` (see :func:`score`); ``UnknownColumnError``
    (a ValueError) when there is no such column."""
    return default_recorder.update_row_property(response_id, name, value, wait=wait, timeout=timeout)


async def ascore(
    response_id: str, score: float, *, wait: bool = True, timeout: float | None = None
) -> bool | None:
    """Async twin of :func:`score` (the wait never blocks the event loop)."""
    return await default_recorder.ascore(response_id, score, wait=wait, timeout=timeout)


async def aupdate_row_property(
    response_id: str, name: str, value: Any, *, wait: bool = True, timeout: float | None = None
) -> bool | None:
    """Async twin of :func:`update_row_property` (the wait never blocks the event loop)."""
    return await default_recorder.aupdate_row_property(response_id, name, value, wait=wait, timeout=timeout)
