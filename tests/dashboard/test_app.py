"""The dashboard's routes on a seeded table: /api/overview equals the read layer, pages, CSV, token, empty states."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.read.seed import expected_overview
from tests.read.test_queries import assert_overview
from typer.testing import CliRunner

from wonkalytics.cli import app as cli
from wonkalytics.dashboard.app import create_app
from wonkalytics.store.queries import ReadStore, make_period
from wonkalytics.store.sql import TableStore

PERIOD = {"since": "2026-03-01", "until": "2026-04-30", "tz": "Europe/Amsterdam"}


@pytest.fixture
def client(seeded: str, table_name: str) -> TestClient:
    return TestClient(create_app(ReadStore(seeded, table_name)))


def test_api_overview_is_the_stats_shape(client: TestClient, rows: list[dict[str, Any]]) -> None:
    got = client.get("/api/overview", params={**PERIOD, "by": "language"}).json()
    assert_overview(got, expected_overview(rows, lambda r: True))
    assert {g["value"] for g in got["groups"]} == {"en", "nl", "de", None}
    filtered = client.get("/api/overview", params={**PERIOD, "model": "o3-mini", "f.language": "en"}).json()
    assert_overview(filtered, expected_overview(rows, lambda r: r["model"] == "o3-mini" and r["language"] == "en"))


def test_pages_render(client: TestClient, rows: list[dict[str, Any]]) -> None:
    overview = client.get("/", params=PERIOD)
    assert overview.status_code == 200 and 'data-kpi="interactions"' in overview.text
    assert 'src="/vendor/plotly.min.js"' in overview.text and "cdn" not in overview.text.lower()
    listing = client.get("/interactions", params={**PERIOD, "status": "error", "sort": "duration_ms"})
    errors = sum(r.get("status") == "error" for r in rows)
    assert f"{errors} interactions match the filter" in listing.text
    key = client.get("/api/interactions", params={**PERIOD, "page_size": 1}).json()["rows"][0]["key"]
    detail = client.get(f"/interactions/{key}", params=PERIOD)
    assert detail.status_code == 200 and "Conversation" in detail.text and "Tokens and cost" in detail.text
    assert client.get("/interactions/424242").status_code == 404
    assert client.get("/healthz").json()["status"] == "ok"
    plotly = client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200 and "plotly.js" in plotly.text[:200]


def test_bad_input_is_a_clear_400(client: TestClient) -> None:
    response = client.get("/api/overview", params={"since": "yesterday"})
    assert response.status_code == 400 and "not a date" in response.json()["error"]
    assert "no column 'nope'" in client.get("/api/groups", params={"by": "nope"}).json()["error"]
    page = client.get("/interactions", params={"score_min": "high"})
    assert page.status_code == 400 and "score_min must be a number" in page.text


def test_export_csv_is_the_current_filter(client: TestClient, rows: list[dict[str, Any]]) -> None:
    response = client.get("/export.csv", params={**PERIOD, "model": "gpt-4o"})
    assert response.headers["content-type"].startswith("text/csv")
    exported = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["event_id"] for r in exported) == sorted(r["event_id"] for r in rows if r.get("model") == "gpt-4o")


def test_empty_and_missing_tables_say_what_to_do(sqlite_url: str, table_name: str) -> None:
    missing = TestClient(create_app(ReadStore(sqlite_url, table_name)))
    page = missing.get("/")
    assert page.status_code == 503 and "wonkalytics demo" in page.text
    assert missing.get("/api/overview").status_code == 503
    TableStore(sqlite_url, table_name).create_table()
    empty = TestClient(create_app(ReadStore(sqlite_url, table_name)))
    assert "wonkalytics demo" in empty.get("/").text and "wonkalytics demo" in empty.get("/interactions").text


def test_token_is_required_when_given(seeded: str, table_name: str) -> None:
    client = TestClient(create_app(ReadStore(seeded, table_name), token="s3cret"))
    assert client.get("/api/overview").status_code == 401
    assert client.get("/api/overview", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/overview", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/", params={"token": "s3cret"}).status_code == 200
    assert client.get("/interactions").status_code == 200  # the cookie set by the ?token= link
    assert client.get("/healthz").status_code == 200  # for load balancers; says nothing about the data


def test_cli_refuses_a_public_address_without_token(sqlite_url: str) -> None:
    result = CliRunner().invoke(cli, ["dashboard", "--host", "0.0.0.0", "--database-url", sqlite_url])
    assert result.exit_code == 1 and "--token" in result.output


def test_cli_on_all_addresses_with_token(seeded: str, table_name: str) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "wonkalytics.cli", "dashboard", "--host", "0.0.0.0", "--port",
                                str(port), "--token", "tok-123", "--database-url", seeded, "--table", table_name],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.05)  # not listening yet: poll again (at most 200 times)
        assert httpx.get(f"{base}/api/overview").status_code == 401
        assert httpx.get(f"{base}/api/overview", params={"token": "tok-123"}).status_code == 200
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout:
            process.stdout.close()


def test_period_default_and_previous() -> None:
    period = make_period("7d")
    assert period.previous().until == period.since
