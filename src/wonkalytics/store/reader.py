"""The read interface of ``stats``, ``export`` and the dashboard, and the factory that picks the engine.

>>> reader = open_reader("sqlite:///wonkalytics.db", "wonkalytics_interactions")   # doctest: +SKIP
>>> reader.overview(make_period("7d"))["interactions"]                             # doctest: +SKIP
42

:class:`Reader` is what the command line and the dashboard call; they never learn which engine
answers. :func:`open_reader` gives a SQL URL the SQLAlchemy implementation
(:class:`~wonkalytics.store.queries.ReadStore`, wrapped by :class:`SqlReader`) and a
``clickhouse://`` URL :class:`~wonkalytics.store.clickhouse_reads.ClickHouseReads`. Both answer
the contract's keys (``stats --json``, ``/api/*``) with the same values for the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa

from wonkalytics.store.clickhouse import is_clickhouse_url
from wonkalytics.store.periods import Period, make_period
from wonkalytics.store.queries import Filters, Page, ReadStore

__all__ = ["Reader", "SqlReader", "as_reader", "make_period", "open_reader", "warm_up", "with_previous"]


@runtime_checkable
class Reader(Protocol):
    """Read-only questions about one analytics table (every method may raise :class:`StoreError`).

    Field names are the library's (``username``, ``score``; aliases ``user``/``tenant``), resolved
    through the column map; ``UnknownColumnError`` where the caller named a field the table lacks.
    """

    name: str
    """The table's name (shown by the dashboard)."""

    def columns(self) -> list[str]:
        """The table's columns in table order (the header of an export)."""
        ...

    def field_column(self, name: str) -> str | None:
        """The table's column that holds field ``name``, or None when the table has none."""
        ...

    def key_name(self) -> str | None:
        """The column whose value names one row in links (``/interactions/{key}``)."""
        ...

    def check(self, period: Period, filters: Filters | None = None) -> None:
        """Raise ``UnknownColumnError`` / ``ValueError`` when ``filters`` name a field the table lacks."""
        ...

    def probe(self) -> None:
        """Raise :class:`StoreError` unless the database answers and the table exists."""
        ...

    def category_fields(self) -> list[str]:
        """Fields offered for breakdowns."""
        ...

    def overview(self, period: Period, filters: Filters | None = None, *, medians: bool = True) -> dict[str, Any]:
        """The ``stats --json`` object of ``period``."""
        ...

    def groups(self, period: Period, by: str, filters: Filters | None = None, *, limit: int = 50,
               percentiles: bool = True) -> list[dict[str, Any]]:
        """The overview per value of field ``by``, largest first."""
        ...

    def counts(self, period: Period, by: str, filters: Filters | None = None, *,
               limit: int = 50) -> list[dict[str, Any]]:
        """``{"value", "interactions"}`` per value of field ``by``, most first: a breakdown chart's bars."""
        ...

    def timeseries(self, period: Period, filters: Filters | None = None, *,
                   bucket: str = "auto") -> list[dict[str, Any]]:
        """Totals per local hour or day of ``period``, gaps as zeros."""
        ...

    def score_distribution(self, period: Period, filters: Filters | None = None, *,
                           bins: int = 10) -> list[dict[str, Any]]:
        """Scored interactions per score range."""
        ...

    def interactions(self, period: Period, filters: Filters | None = None, *, sort: str = "timestamp",
                     descending: bool = True, page: int = 1, page_size: int = 50) -> Page:
        """One page of interactions."""
        ...

    def interaction(self, key: str) -> dict[str, Any] | None:
        """Every column of the row named ``key``, or None."""
        ...

    def iter_rows(self, period: Period, filters: Filters | None = None, *, events: bool = True,
                  batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every row of ``period``, oldest first, streamed."""
        ...


class SqlReader:
    """:class:`Reader` on a SQL table: :class:`~wonkalytics.store.queries.ReadStore` (and its rollups)."""

    def __init__(self, store: ReadStore) -> None:
        self.store = store
        self.name = store.name
        self.overview = store.overview
        self.groups = store.groups
        self.counts = store.counts
        self.timeseries = store.timeseries
        self.score_distribution = store.score_distribution
        self.interactions = store.interactions
        self.interaction = store.interaction
        self.iter_rows = store.iter_rows
        self.category_fields = store.category_fields

    def columns(self) -> list[str]:
        """The reflected table's columns."""
        return list(self.store.table.c.keys())

    def field_column(self, name: str) -> str | None:
        """The column of field ``name`` (column map, exact, case-insensitive)."""
        column = self.store.column(name)
        return None if column is None else column.name

    def key_name(self) -> str | None:
        """The primary key (else ``event_id``)."""
        column = self.store.key_column()
        return None if column is None else column.name

    def check(self, period: Period, filters: Filters | None = None) -> None:
        """Build the WHERE conditions once: an unknown field raises before anything runs."""
        self.store.where(period, filters)

    def probe(self) -> None:
        """Reflect the table (cached after the first success)."""
        self.store.table  # noqa: B018 - reflecting proves the database answers and the table exists


def with_previous(reader: Reader, period: Period,
                  filters: Filters | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The overview of ``period`` and, without its p50s, of the period before it (the dashboard's KPIs).

    On SQL both in one read-only transaction (:meth:`ReadStore.overviews`); other engines ask twice.
    """
    if isinstance(reader, SqlReader):
        now, before = reader.store.overviews([(period, True), (period.previous(), False)], filters)
        return now, before
    return reader.overview(period, filters), reader.overview(period.previous(), filters, medians=False)


def warm_up(reader: Reader) -> None:
    """Connect, reflect and look for the rollups and the search index before the first request.

    A long-lived reader (the dashboard) pays this once at start instead of on its first page; raises
    :class:`StoreError` like :meth:`Reader.probe` when the database does not answer.
    """
    reader.probe()
    if isinstance(reader, SqlReader):
        reader.store.warm()


def as_reader(reader: Reader | ReadStore) -> Reader:
    """``reader`` as a :class:`Reader` (a bare :class:`ReadStore` is wrapped)."""
    return SqlReader(reader) if isinstance(reader, ReadStore) else reader


def open_reader(url: str | sa.URL, table: str, column_map: Mapping[str, str] | None = None, *,
                connect_timeout: float = 10.0, statement_timeout: float = 30.0) -> Reader:
    """The :class:`Reader` for ``url``: SQLAlchemy for a SQL URL, ClickHouse for ``clickhouse://``.

    The ClickHouse one needs the ``[clickhouse]`` extra; without it this raises
    :class:`~wonkalytics.errors.ConfigurationError` with the one-line install hint.
    """
    if is_clickhouse_url(url):
        from wonkalytics.store.clickhouse_reads import ClickHouseReads

        text = url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else url
        return ClickHouseReads.open(text, table.rsplit(".", 1)[-1], column_map, connect_timeout=connect_timeout,
                                    statement_timeout=statement_timeout)
    return SqlReader(ReadStore(url, table, column_map, connect_timeout=connect_timeout,
                               statement_timeout=statement_timeout))
