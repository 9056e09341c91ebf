"""The dashboard in Chromium on a ClickHouse read URL: KPIs, the charts, a filter, the detail view."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.steps import filter_interactions, wait_for_charts
from tests.browser.test_dashboard_browser import ARTIFACTS, PERIOD, page  # noqa: F401 - the page fixture
from tests.clickhouse.test_reads import both  # noqa: F401 - the module's seeded tables
from tests.dashboard.server import running

from wonkalytics.dashboard.app import create_app
from wonkalytics.store.periods import make_period
from wonkalytics.store.queries import Filters
from wonkalytics.store.reader import open_reader

pytestmark = pytest.mark.db


@pytest.fixture
def base_url(both: tuple[str, str, str]) -> Iterator[str]:  # noqa: F811 - named as the page fixture wants
    _, ch, table = both
    with running(create_app(open_reader(ch, table))) as url:
        yield url


def test_dashboard_on_clickhouse_in_chromium(page: Any, base_url: str, both: tuple[str, str, str],  # noqa: F811
                                             tmp_path: Path) -> None:
    pg, _, table = both
    sql = open_reader(pg, table)  # the SQL side's answers for the same rows
    period = make_period("2026-03-27", "2026-03-31", "Europe/Amsterdam")
    shots = ARTIFACTS / "browser"
    page.goto(f"{base_url}/?{PERIOD}")
    kpi = page.locator('[data-kpi="interactions"] .value')
    assert kpi.inner_text().replace(",", "") == str(sql.overview(period)["interactions"])
    wait_for_charts(page)
    page.screenshot(path=str(shots / "clickhouse-overview.png"), full_page=True)

    filter_interactions(page, "gpt-4o", "ok")
    expected = sql.overview(period, Filters(model="gpt-4o", status="ok"))["interactions"]
    assert page.locator("#summary").inner_text().startswith(f"{expected} interactions match the filter")
    assert page.locator("#rows tbody tr").count() == min(expected, 50)  # the CSV download: test_reads.py
    key = page.locator("#rows tbody tr").first.get_attribute("data-key")
    page.goto(f"{base_url}/interactions/{key}?{PERIOD}")
    page.wait_for_selector("#detail")
    row = open_reader(both[1], table).interaction(str(key))
    assert row is not None and page.locator("#response").inner_text() == row["response"]
    assert page.problems == []  # type: ignore[attr-defined]
