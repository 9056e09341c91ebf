"""The dashboard in a real browser (Playwright driving Debian's Chromium): KPIs equal the database, a filter,
an interaction's detail, the CSV download; no console error and no request beyond 127.0.0.1.

Screenshots land in ``test-artifacts/browser/`` (or ``$WONKALYTICS_TEST_ARTIFACTS``) for a human to look at.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from tests.browser.steps import filter_interactions, wait_for_charts
from tests.dashboard.server import running
from tests.read.seed import seed_rows

from wonkalytics.dashboard.app import create_app
from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.queries import ReadStore
from wonkalytics.store.sql import TableStore

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"  # Debian's package (apt-get install chromium); no browser download here
ARTIFACTS = Path(os.environ.get("WONKALYTICS_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
PERIOD = "since=2026-03-27&until=2026-03-31&tz=Europe/Amsterdam"


@pytest.fixture
def base_url(sqlite_url: str, table_name: str) -> Iterator[str]:
    store = TableStore(sqlite_url, table_name)
    store.create_table()
    store.insert_many(seed_rows())
    with running(create_app(ReadStore(sqlite_url, table_name))) as url:
        yield url
    dispose_engines()


@pytest.fixture
def page(base_url: str) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    (ARTIFACTS / "browser").mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.problems = []  # type: ignore[attr-defined]
        page.on("console", lambda m: m.type in ("error", "warning") and page.problems.append(f"console {m.type}: "
                                                                                               f"{m.text}"))
        page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
        page.on("request", lambda r: urlsplit(r.url).hostname not in ("127.0.0.1", None)
                and page.problems.append(f"request beyond loopback: {r.url}"))
        page.on("requestfailed", lambda r: page.problems.append(f"request failed: {r.url}"))
        yield page
        context.close()
        browser.close()


def sql_count(url: str, table: str, where: str = "1=1") -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(
                f"SELECT COUNT(*) FROM {table} WHERE model IS NOT NULL AND timestamp >= '2026-03-26 23:00:00' "
                f"AND timestamp < '2026-03-31 22:00:00' AND {where}")).scalar_one())
    finally:
        engine.dispose()


def test_dashboard_in_chromium(page: Any, base_url: str, sqlite_url: str, table_name: str, tmp_path: Path) -> None:
    shots = ARTIFACTS / "browser"
    page.goto(f"{base_url}/?{PERIOD}")
    kpi = page.locator('[data-kpi="interactions"] .value')
    assert kpi.inner_text().replace(",", "") == str(sql_count(sqlite_url, table_name))
    charts = page.locator("[data-chart]")
    assert charts.count() >= 8
    wait_for_charts(page)
    page.screenshot(path=str(shots / "overview.png"), full_page=True)
    # the breakdown by user draws /api/counts: its longest bar is the busiest user's interactions
    bars = page.evaluate("document.querySelector('[data-chart=breakdown][data-field=username]').data[0].x")
    busiest = sql_count(sqlite_url, table_name, "username = (SELECT username FROM " + table_name +
                        " WHERE model IS NOT NULL AND timestamp >= '2026-03-26 23:00:00' AND timestamp < "
                        "'2026-03-31 22:00:00' GROUP BY username ORDER BY COUNT(*) DESC LIMIT 1)")
    assert max(bars) == busiest > 0

    filter_interactions(page, "gpt-4o", "ok")
    expected = sql_count(sqlite_url, table_name, "model = 'gpt-4o' AND status = 'ok'")
    assert page.locator("#summary").inner_text().startswith(f"{expected} interactions match the filter")
    assert page.locator("#rows tbody tr").count() == min(expected, 50)
    page.screenshot(path=str(shots / "interactions.png"), full_page=True)

    with page.expect_download() as download_info:
        page.click("#export")
    saved = tmp_path / "export.csv"
    download_info.value.save_as(saved)
    with saved.open(newline="", encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert len(exported) == expected and {r["model"] for r in exported} == {"gpt-4o"}

    first = page.locator("#rows tbody tr").first
    key = first.get_attribute("data-key")
    first.locator("td.when a").click()
    page.wait_for_selector("#detail")
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        response = conn.execute(sa.text(f"SELECT response FROM {table_name} WHERE row_pk = :k"), {"k": key}).scalar()
    engine.dispose()
    assert page.locator("#response").inner_text() == response
    page.screenshot(path=str(shots / "detail.png"), full_page=True)

    page.goto(f"{base_url}/?since=2020-01-01&until=2020-01-02")
    assert "wonkalytics demo" in page.locator("#empty").inner_text()
    page.screenshot(path=str(shots / "empty.png"))
    assert page.problems == []  # type: ignore[attr-defined]
