"""The only package that talks SQL (through SQLAlchemy Core).

- :mod:`~wonkalytics.store.engine` — one engine and pool per URL per process; passwords never shown.
- :mod:`~wonkalytics.store.schema` — the default table and its documented columns.
- :mod:`~wonkalytics.store.dialects` — every difference between databases (types, keys, upserts).
- :mod:`~wonkalytics.store.sql` — :class:`TableStore`: reflect once, insert in batches, update safely.
- :mod:`~wonkalytics.store.failures` — database errors as :class:`StoreError`; which ones to retry.
"""

from __future__ import annotations

from wonkalytics.store.engine import dispose_engines, get_engine, safe_url
from wonkalytics.store.failures import is_transient
from wonkalytics.store.schema import DEFAULT_COLUMNS, DefaultColumn, default_table, schema_markdown
from wonkalytics.store.sql import TableStore, create_default_table

__all__ = [
    "DEFAULT_COLUMNS",
    "DefaultColumn",
    "TableStore",
    "create_default_table",
    "default_table",
    "dispose_engines",
    "get_engine",
    "is_transient",
    "safe_url",
    "schema_markdown",
]
