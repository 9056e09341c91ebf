"""How a reader talks to the database: reflected once (columns and key only), one transaction per page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from wonkalytics.dashboard.app import create_app
from wonkalytics.errors import StoreError
from wonkalytics.store.engine import get_engine
from wonkalytics.store.queries import ReadStore
from wonkalytics.store.reader import SqlReader, warm_up, with_previous
from wonkalytics.store.sql import TableStore

PERIOD = {"since": "2026-03-01", "until": "2026-04-30", "tz": "Europe/Amsterdam"}


@contextmanager
def counting(url: str) -> Iterator[dict[str, list[Any]]]:
    """The statements run and the connections checked out of ``url``'s shared engine while inside."""
    engine = get_engine(url)
    seen: dict[str, list[Any]] = {"statements": [], "checkouts": []}

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        seen["statements"].append(text)

    def checkout(dbapi_conn: Any, *_: Any) -> None:
        seen["checkouts"].append(dbapi_conn)

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "checkout", checkout)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "checkout", checkout)


def test_the_reader_reflects_columns_and_key_only(seeded: str, table_name: str) -> None:
    writer = TableStore(seeded, table_name, create=False).table
    reader = ReadStore(seeded, table_name)
    with counting(seeded) as seen:
        table = reader.table
    assert table.c.keys() == writer.c.keys()
    assert [c.name for c in table.primary_key.columns] == [c.name for c in writer.primary_key.columns]
    assert [type(c.type) for c in table.columns] == [type(c.type) for c in writer.columns]
    # full reflection asks for indexes, constraints and comments too: 10-15 statements on these dialects
    assert len(seen["statements"]) <= 6, seen["statements"]
    with counting(seeded) as seen:
        assert reader.table is table
    assert seen["statements"] == []


def test_a_missing_table_says_what_to_do(sqlite_url: str) -> None:
    with pytest.raises(StoreError, match="wonkalytics init"):
        ReadStore(sqlite_url, "no_such_table").table  # noqa: B018


def test_the_overview_page_is_one_transaction_after_warm_up(seeded: str, table_name: str) -> None:
    reader = SqlReader(ReadStore(seeded, table_name))
    warm_up(reader)
    client = TestClient(create_app(reader))
    with counting(seeded) as seen:
        assert client.get("/", params=PERIOD).status_code == 200
    # this period and the previous one (the KPIs' change) on one connection (one read-only
    # transaction); nothing reflected or probed again
    assert len(seen["checkouts"]) == 1
    assert not any("sqlite_master" in s or "information_schema" in s or "pg_catalog" in s
                   for s in seen["statements"])


def test_with_previous_equals_two_overviews(seeded: str, table_name: str) -> None:
    from wonkalytics.store.queries import make_period

    reader = SqlReader(ReadStore(seeded, table_name))
    period = make_period(PERIOD["since"], PERIOD["until"], PERIOD["tz"])
    now, before = with_previous(reader, period)
    assert now == reader.overview(period)
    assert before == reader.overview(period.previous(), medians=False)


def test_a_capped_count_stops_at_the_cap_and_says_so(seeded: str, table_name: str,
                                                     rows: list[dict[str, Any]]) -> None:
    from wonkalytics.store.queries import Filters, make_period

    reader = ReadStore(seeded, table_name)
    period = make_period(PERIOD["since"], PERIOD["until"], PERIOD["tz"])
    needle = Filters(text="question number")
    exact = reader.interactions(period, needle, page_size=10)
    matching = sum("question number" in (r.get("messages") or "") for r in rows if r.get("model"))
    assert exact.total == matching > 30 and not exact.capped
    capped = reader.interactions(period, needle, page_size=10, count_cap=25)
    assert (capped.total, capped.capped, capped.rows) == (25, True, exact.rows)
    # a later page counts at least to its own end; a count under the cap is exact
    assert reader.interactions(period, needle, page_size=10, page=4, count_cap=25).total == 40
    assert reader.interactions(period, needle, page_size=10, count_cap=10_000) == exact


def test_the_search_page_shows_a_capped_count(seeded: str, table_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import wonkalytics.dashboard.app as dashboard

    monkeypatch.setattr(dashboard, "SEARCH_COUNT_CAP", 5)
    client = TestClient(create_app(ReadStore(seeded, table_name)))
    html = client.get("/interactions", params={**PERIOD, "q": "question number"}).text
    assert "50+ interactions match the filter" in html and 'rel="next"' in html
    api = client.get("/api/interactions", params={**PERIOD, "q": "question number"}).json()
    assert api["total"] > 50   # the JSON total stays exact


def test_values_are_a_fields_choices_most_used_first(db_url: str, table_name: str) -> None:
    from tests.rollup.test_reads import PERIODS, _prepared, _raw, _rows, _selected

    from wonkalytics.store.queries import Filters, make_period

    store = _prepared(db_url, table_name)
    store.insert_many(_rows(300, seed=7))
    raw = _raw(store)
    reader = ReadStore(db_url, table_name)
    for since, until, tz in PERIODS:
        period = make_period(since, until, tz)
        for by, filters, equal in (("model", None, {}), ("tenant_id", Filters(status="ok"), {"status": "ok"}),
                                   ("language", Filters(text="growth"), None)):   # the last: read from the table
            assert (reader._rollups.plan(period, filters, by) is None) == (equal is None)
            rows = [r for r in _selected(raw, period, equal or {})
                    if equal is not None or "growth" in (r.get("messages") or "")]
            counts: dict[Any, int] = {}
            for r in rows:
                counts[r[by]] = counts.get(r[by], 0) + 1
            got = reader.values(period, by, filters)
            assert set(got) == set(counts)
            assert [counts[v] for v in got] == sorted(counts.values(), reverse=True)
