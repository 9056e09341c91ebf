"""ClickHouse, the engine for interactions that outgrow a row store: URL, connection, tables, types.

Shared by the ClickHouse sink (:mod:`wonkalytics.sinks.clickhouse`) and the ClickHouse read side
(:mod:`wonkalytics.store.clickhouse_reads`). It talks the native protocol through
``clickhouse-driver`` (the ``[clickhouse]`` extra), imported only when a ClickHouse URL is used.

Two tables, both created on first write:

* ``<table>`` -- one row per interaction or event, the default columns of
  :data:`~wonkalytics.store.schema.DEFAULT_COLUMNS` (without the SQL table's surrogate ``row_pk``)::

      ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (toDate(timestamp), event_id)

  A retried insert repeats rows with the same sorting key; ClickHouse collapses them when it merges
  parts, and every read is exact before that because it reads ``FINAL``.
* ``<table>_updates`` -- ``score()`` and ``update_row_property()`` as rows (``key_field``, ``key``,
  ``field``, ``value``, ``is_null``, ``at``, ``id``), ``ReplacingMergeTree ORDER BY (key, field, id)``:
  never ``ALTER TABLE ... UPDATE`` (a mutation rewrites whole parts, per score). At read time the
  latest ``at`` per key and field wins.

Where ClickHouse 18.16 (Debian's server, the one CI tests) forces a choice: ``DateTime('UTC')``
(seconds) for ``timestamp``, because ``DateTime64`` came in 20.1 -- the exact start and end stay in
``start_time`` / ``end_time`` (epoch seconds as Float64) and ``at`` is epoch seconds as Float64 for
the same reason. Everything here is also accepted by current ClickHouse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from wonkalytics.errors import ConfigurationError
from wonkalytics.store.engine import safe_url
from wonkalytics.store.fit import ColumnKind
from wonkalytics.store.schema import DEFAULT_COLUMNS, ROW_KEY

if TYPE_CHECKING:
    from clickhouse_driver import Client

__all__ = [
    "INSTALL_HINT",
    "SCHEMES",
    "SORTING_KEY",
    "ClickHouseTarget",
    "check_clickhouse_url",
    "column_kinds",
    "create_statements",
    "is_clickhouse_url",
    "quote",
]

SCHEMES = ("clickhouse", "clickhouses")
"""``clickhouse://user:password@host:9000/database``; ``clickhouses://`` for TLS (port 9440)."""
INSTALL_HINT = "pip install 'wonkalytics[clickhouse]'"

_TYPES: Mapping[ColumnKind, str] = {"text": "String", "int": "Int64", "float": "Float64", "bool": "UInt8",
                                    "datetime": "DateTime('UTC')"}
_KINDS: Mapping[str, ColumnKind] = {"String": "text", "Int64": "int", "Int32": "int", "UInt8": "int",
                                    "UInt32": "int", "UInt64": "int", "Float64": "float", "Float32": "float",
                                    "DateTime": "datetime", "Date": "datetime"}
_KEY_COLUMNS = {"timestamp": "DateTime('UTC')", "event_id": "String"}  # in the sorting key: never NULL
SORTING_KEY = frozenset(_KEY_COLUMNS)
"""Columns no update changes: they place and deduplicate a row (the sink rejects such updates)."""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_clickhouse_url(url: str | sa.URL | None) -> bool:
    """True for a ``clickhouse://`` (or ``clickhouses://``) URL.

    >>> is_clickhouse_url("clickhouse://default@127.0.0.1:9000/default"), is_clickhouse_url("sqlite://")
    (True, False)
    """
    if url is None:
        return False
    text = url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else str(url)
    return text.split("://", 1)[0].lower() in SCHEMES


def check_clickhouse_url(url: str) -> None:
    """Raise :class:`ConfigurationError` when ``url`` is no ClickHouse URL or the driver is missing.

    The one-line message names the extra to install; it never contains the password.
    """
    try:
        parsed = sa.make_url(url)
    except Exception:
        raise ConfigurationError(
            "the ClickHouse URL is not valid; expected e.g. clickhouse://default@127.0.0.1:9000/default"
        ) from None
    if parsed.drivername not in SCHEMES:
        raise ConfigurationError(f"a ClickHouse URL starts with clickhouse:// or clickhouses://, not "
                                 f"{parsed.drivername}://")
    try:
        import clickhouse_driver  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            f"ClickHouse ({safe_url(parsed)}) needs clickhouse-driver, which is not installed: {INSTALL_HINT}"
        ) from None


def quote(name: str) -> str:
    """A ClickHouse identifier in backquotes (names come from our schema or the reflected table).

    >>> quote("score"), quote("my col")
    ('`score`', '`my col`')
    """
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def create_statements(table: str) -> list[str]:
    """The ``CREATE TABLE IF NOT EXISTS`` statements of the interactions and updates tables."""
    columns = []
    for column in DEFAULT_COLUMNS:
        if column.name == ROW_KEY:
            continue
        key_type = _KEY_COLUMNS.get(column.name)
        columns.append(f"{quote(column.name)} {key_type or 'Nullable(' + _TYPES[column.kind] + ')'}")
    interactions = (
        f"CREATE TABLE IF NOT EXISTS {quote(table)} ({', '.join(columns)}) "
        "ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (toDate(timestamp), event_id)"
    )
    updates = (
        f"CREATE TABLE IF NOT EXISTS {quote(table + '_updates')} (key_field String, key String, field String, "
        "value String, is_null UInt8, at Float64, id String) "
        "ENGINE = ReplacingMergeTree ORDER BY (key, field, id)"
    )
    return [interactions, updates]


def column_kinds(types: Mapping[str, str]) -> dict[str, ColumnKind]:
    """ClickHouse column types (``Nullable(Float64)``, ``DateTime('UTC')``) -> the kinds of :mod:`.fit`.

    >>> column_kinds({"score": "Nullable(Float64)", "timestamp": "DateTime('UTC')", "x": "Array(String)"})
    {'score': 'float', 'timestamp': 'datetime', 'x': 'text'}
    """
    kinds: dict[str, ColumnKind] = {}
    for name, type_ in types.items():
        bare = type_.removeprefix("Nullable(").removesuffix(")") if type_.startswith("Nullable(") else type_
        bare = bare.removeprefix("LowCardinality(").rstrip(")") if bare.startswith("LowCardinality(") else bare
        kinds[name] = _KINDS.get(bare.split("(", 1)[0], "text")
    return kinds


@dataclass(frozen=True)
class ClickHouseTarget:
    """Where to connect: a parsed ClickHouse URL, the table, and the timeouts (seconds)."""

    url: sa.URL
    table: str
    connect_timeout: float = 10.0
    statement_timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str, table: str, *, connect_timeout: float = 10.0,
                 statement_timeout: float = 30.0) -> ClickHouseTarget:
        """Parse and check ``url`` (raises :class:`ConfigurationError` naming the extra when it is missing)."""
        check_clickhouse_url(url)
        if not _IDENTIFIER.match(table):
            raise ConfigurationError(f"ClickHouse table name {table!r} is not a plain identifier (letters, digits, _)")
        return cls(sa.make_url(url), table, connect_timeout, statement_timeout)

    @property
    def updates(self) -> str:
        """The name of the updates table."""
        return self.table + "_updates"

    def safe_url(self) -> str:
        """The URL without its password."""
        return safe_url(self.url)

    def client(self) -> Client:
        """A new native-protocol client (connects on its first query; not thread-safe: one per thread)."""
        from clickhouse_driver import Client

        url = self.url
        secure = url.drivername == "clickhouses"
        return Client(
            host=url.host or "127.0.0.1", port=url.port or (9440 if secure else 9000),
            user=url.username or "default", password=url.password or "", database=url.database or "default",
            secure=secure, connect_timeout=self.connect_timeout, send_receive_timeout=self.statement_timeout,
            sync_request_timeout=min(5.0, self.statement_timeout),
            settings={"max_execution_time": int(max(1, self.statement_timeout))},
        )

    def columns(self, client: Client) -> dict[str, str]:
        """The interactions table's columns and their ClickHouse types, in table order ({} when missing)."""
        rows = client.execute(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = %(t)s",
            {"t": self.table},
        )
        return {str(name): str(type_) for name, type_ in rows}

    def create(self, client: Client) -> None:
        """Create both tables when they are missing (idempotent)."""
        for statement in create_statements(self.table):
            client.execute(statement)


def server_version(client: Client) -> str:
    """The server's version string (``18.16.1``)."""
    rows: list[tuple[Any, ...]] = client.execute("SELECT version()")
    return str(rows[0][0])
