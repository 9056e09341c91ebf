"""Steps both dashboard browser tests take (SQLite in tests/browser, ClickHouse in tests/clickhouse)."""

from __future__ import annotations

from typing import Any

__all__ = ["filter_interactions", "wait_for_charts"]


def wait_for_charts(page: Any, timeout: float = 20_000) -> None:
    """Wait until every chart of the page is drawn (or says it has no data), and none failed."""
    page.wait_for_function("[...document.querySelectorAll('[data-chart]')].every("
                           "c => c.dataset.drawn || c.querySelector('.nodata'))", timeout=timeout)
    assert page.locator(".failed").count() == 0


def filter_interactions(page: Any, model: str, status: str) -> None:
    """Open the Interactions page from the header and submit the filter for ``model`` and ``status``."""
    page.click("header nav >> text=Interactions")
    page.select_option("select[name=model]", model)
    page.select_option("select[name=status]", status)
    page.click("#filters button[type=submit]")
