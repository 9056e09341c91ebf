"""The row half of the read side: pages of interactions, one row, and every row of a period streamed.

:class:`RowReads` (moved out of store/queries.py verbatim; queries.py re-exports every name) reads
the table itself, never the rollups: lists are pages with a bounded ``LIMIT`` (the covering index
gives the order), exports are streamed from a server-side cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from wonkalytics.store.filters import Filters
from wonkalytics.store.periods import Period
from wonkalytics.store.read_base import TableReads

__all__ = ["SEARCH_COUNT_CAP", "SORTABLE", "Page", "RowReads"]

SORTABLE = ("timestamp", "model", "username", "tenant_id", "status", "score", "duration_ms", "ttft_ms",
            "total_tokens", "cost_usd")
"""Columns the interactions page can be sorted by."""

SEARCH_COUNT_CAP = 1000
"""The dashboard's text search counts matches up to this many, then says "1,000+" (``count_cap``).

A needle in 12 % of the rows (bench/search.py's common needle, 14k of the 7-day period's 115k rows)
had its page of 50 newest matches after a few hundred rows, but its exact count tested every row of
the period: the whole 0.3-0.5 s of the request. Stopping at 1,000 matches tests ~7 % of the rows. A
rare needle is counted exactly (fewer matches than the cap), and ``/api/interactions`` always is."""

_PAGE_SIZE_MAX = 500
_SNIPPET = 160


# --- filters and pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of interactions: the rows (a few columns and text snippets), and the total that match."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    capped: bool = False
    """True when counting stopped at ``total``: at least that many rows match (see ``count_cap``)."""

    @property
    def pages(self) -> int:
        """How many pages the filter has (at least 1; at least this many when ``capped``)."""
        return max(1, -(-self.total // self.page_size))


class RowReads(TableReads):
    """Pages, rows and exports of one table (see the module docstring)."""

    # -- rows -------------------------------------------------------------------------------------

    def _snippet(self, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
        if self.dialect == "mssql":  # SQL Server has no SUBSTR; the others all have it
            return sa.func.substring(column, 1, _SNIPPET)
        return sa.func.substr(column, 1, _SNIPPET)

    def interactions(self, period: Period, filters: Filters | None = None, *, sort: str = "timestamp",
                     descending: bool = True, page: int = 1, page_size: int = 50,
                     count_cap: int | None = None) -> Page:
        """One page of interactions (newest first by default): list columns and text snippets.

        ``count_cap``: count the matching rows only up to this many (at least up to the end of this
        page); past it the page says ``capped`` and "N+" (the dashboard's text search, where the exact
        count of a common needle is a scan of the whole period: :data:`SEARCH_COUNT_CAP`).
        """
        if sort not in SORTABLE:
            raise ValueError(f"cannot sort by {sort!r}; choose one of: {', '.join(SORTABLE)}")
        page, page_size = max(1, page), max(1, min(page_size, _PAGE_SIZE_MAX))
        order_column = self.require(sort)
        key = self.key_column()
        shown = ["timestamp", "model", "username", "tenant_id", "status", "score", "duration_ms", "ttft_ms",
                 "prompt_tokens", "completion_tokens", "cost_usd"]
        columns: list[sa.ColumnElement[Any]] = [c.label(n) for n in shown if (c := self.column(n)) is not None]
        for name in ("messages", "response"):
            c = self.column(name)
            if c is not None:
                columns.append(self._snippet(c).label(name))
        if key is not None:
            columns.insert(0, key.label("key"))
        where = self.where(period, filters)
        # Rows without a value last in both directions (NULLS LAST is not portable: MySQL, SQL Server);
        # the period's range already excludes a NULL timestamp, and without the CASE the index gives the order.
        order = [order_column.desc() if descending else order_column.asc()]
        if sort != "timestamp":
            order.insert(0, sa.case((order_column.is_(None), 1), else_=0).asc())
        if key is not None and key is not order_column:
            order.append(key.desc() if descending else key.asc())
        query = (sa.select(*columns).where(*where).order_by(*order)
                 .limit(page_size).offset((page - 1) * page_size))
        counted: sa.Select[Any] = sa.select(sa.func.count()).where(*where).select_from(self.table)
        limit = None if count_cap is None else max(count_cap, page * page_size)
        if limit is not None:   # the database stops at the (limit+1)-th match instead of testing every row
            matches = sa.select(sa.literal(1).label("one")).select_from(self.table).where(*where).limit(limit + 1)
            counted = sa.select(sa.func.count()).select_from(matches.subquery())
        with self.reading() as conn:
            total = int(conn.execute(counted).scalar_one())
            rows = [dict(r) for r in conn.execute(query).mappings()]
        capped = limit is not None and total > limit
        return Page(rows=rows, total=min(total, limit) if capped and limit is not None else total, page=page,
                    page_size=page_size, capped=capped)

    def interaction(self, key: str) -> dict[str, Any] | None:
        """Every column of the row named ``key`` (see :meth:`key_column`), or None when there is none."""
        column = self.key_column()
        if column is None:
            return None
        value: Any = key
        if isinstance(column.type, sa.Integer):
            try:
                value = int(key)
            except ValueError:
                return None
        with self.reading() as conn:
            row = conn.execute(sa.select(self.table).where(column == value).limit(1)).mappings().first()
        return None if row is None else dict(row)

    def iter_rows(self, period: Period, filters: Filters | None = None, *, events: bool = True,
                  batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Every row of ``period`` (events too, unless ``events`` is false), streamed in ``batch``-sized
        fetches from a server-side cursor: memory stays constant however many rows there are."""
        query = sa.select(self.table).where(*self.where(period, filters, events=events))
        key = self.key_column()
        query = query.order_by(self.require("timestamp"), *([key] if key is not None else []))
        with self.reading() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
            for row in result.mappings():
                yield dict(row)
