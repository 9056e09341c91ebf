"""The seed version's analytics API, on the modern core (same names, same return values).

Example::

    from wonkalytics.analytics import _write_to_azure_sql, score, update_row_property

    _write_to_azure_sql({"username": "ada", "action": "test_log", "timestamp": datetime.now()})
    score("chatcmpl-8jnIJAkEKBQJn5cs7QCJ1wIcBaII2", 100)

``score`` / ``update_row_property`` are updates queued behind the rows they follow (see
:meth:`wonkalytics.Recorder.update_row_property`), waited for as the seed did. The seed-only
synchronous write, ``_write_to_azure_sql``, lives here: it writes one row now, on the caller's thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from wonkalytics import ascore, aupdate_row_property
from wonkalytics.errors import WonkalyticsError
from wonkalytics.ops import Insert
from wonkalytics.record.build import record_builder
from wonkalytics.recorder import default_recorder, event_record_row, row_steps
from wonkalytics.settings import Settings
from wonkalytics.sinks.table import TableSink
from wonkalytics.store.sql import TableStore

__all__ = ["_write_to_azure_sql", "ascore", "aupdate_row_property", "score", "update_row_property"]

logger = logging.getLogger("wonkalytics")

_side_lock = threading.Lock()
_side_sinks: dict[str, TableSink] = {}


def _connection_settings(**connection: Any) -> Settings:
    """The settings in force, with the seed's per-call Azure SQL options (used only without a URL)."""
    settings = default_recorder.settings
    overrides = {key: value for key, value in connection.items() if value is not None}
    if not overrides or settings.database_url is not None:
        return settings
    return settings.model_copy(update=overrides)


def _sink_for(settings: Settings) -> TableSink:
    """The default table sink, or one for other connection options (cached per URL)."""
    if settings is default_recorder.settings:
        return default_recorder.sink
    key = settings.url().render_as_string(hide_password=False)
    if key == default_recorder.settings.url().render_as_string(hide_password=False):
        return default_recorder.sink
    with _side_lock:
        if key not in _side_sinks:
            _side_sinks[key] = TableSink(TableStore.from_settings(settings), settings.column_map)
        return _side_sinks[key]


def _write_to_azure_sql(
    item: dict[str, Any],
    encrypt: str = "yes",
    connection_timeout: int = 30,
    trust_server_certificate: str = "no",
) -> bool:
    """Write one analytics row now; True when it landed, False (with the reason logged) otherwise.

    Nested dicts are flattened to ``PARENT_CHILD`` keys, ``kwargs_`` / ``request_`` prefixes are
    stripped, ``auth_info`` becomes username / email / tenant_id, and keys with no column are
    ignored. Like the seed it never raises for a failure to write (no database, no driver, no table,
    no matching column): it returns False and logs why. The connection options apply to the Azure
    SQL connection built from ``AZURE_SQL_*`` variables.
    """
    try:
        if not isinstance(item, Mapping):
            raise TypeError(f"_write_to_azure_sql takes a dict, not {type(item).__name__}")
        settings = _connection_settings(
            encrypt=encrypt, connection_timeout=connection_timeout, trust_server_certificate=trust_server_certificate
        )
        sink = _sink_for(settings)
        build = record_builder(transforms=row_steps(settings))  # secrets out, redaction: as on the lanes
        op = Insert(built=build(event_record_row(item)))
        for rejection in sink.write([op]):
            raise rejection.error
    except (WonkalyticsError, ValueError, TypeError) as exc:
        logger.error("wonkalytics: the analytics row was not written: %s", exc)
        return False
    except Exception as exc:  # a driver's own error type: the seed returned False here too
        logger.error("wonkalytics: the analytics row was not written: %s: %s", type(exc).__name__, exc)
        return False
    return True


def _seed_update(response_id: str, name: str, value: Any, **connection: Any) -> bool:
    settings = _connection_settings(**connection)
    if settings is default_recorder.settings or _sink_for(settings) is default_recorder.sink:
        return bool(default_recorder.update_row_property(response_id, name, value))
    # Other connection options than the configured ones (the seed passed them per call): write now.
    sink = _sink_for(settings)
    column = sink.column(name)
    checked = sink.check_update(name, value, "response_id", settings.update_timeout)
    default_recorder.flush(settings.update_timeout)
    try:
        return sink.store.update_where(sink.column("response_id"), response_id, column, checked)
    except WonkalyticsError as exc:
        logger.error("wonkalytics: updating %s for response_id %r failed: %s", name, response_id, exc)
        return False


def score(
    response_id: str,
    score: float,
    encrypt: str = "yes",
    connection_timeout: int = 30,
    trust_server_certificate: str = "no",
) -> bool:
    """Set the ``score`` of the row with ``response_id``: True when a row was updated, else False.

    The update is queued behind rows still being written, so an interaction logged a moment ago is
    found; it waits at most ``update_timeout`` seconds (False then, and the update stays queued).
    ``ValueError`` when the score is not a number the column can hold exactly.
    """
    return _seed_update(
        response_id, "score", score, encrypt=encrypt, connection_timeout=connection_timeout,
        trust_server_certificate=trust_server_certificate,
    )


def update_row_property(
    response_id: str,
    property_name: str,
    property_value: Any,
    encrypt: str = "yes",
    connection_timeout: int = 30,
    trust_server_certificate: str = "no",
) -> bool:
    """Set column ``property_name`` of the row with ``response_id``; True when a row was updated.

    Raises ``ValueError`` naming the column and the table when ``property_name`` is not one of the
    table's columns (no SQL is ever built from it), or when the column cannot hold the value.
    """
    return _seed_update(
        response_id, property_name, property_value, encrypt=encrypt, connection_timeout=connection_timeout,
        trust_server_certificate=trust_server_certificate,
    )
