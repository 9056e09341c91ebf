"""The ClickHouse read side against the real server: the same answers as PostgreSQL for the same rows.

The rows are the read-side fixture's (tests/read/seed.py), written to PostgreSQL by the table store
and to ClickHouse by the real ClickHouse sink -- each batch twice, as a retry after a lost reply
sends it -- with scores updated twice (and once by event_id, as PromptLayer's follow-up does).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import require_clickhouse, require_server
from tests.read.seed import seed_rows
from typer.testing import CliRunner

from wonkalytics.cli import app
from wonkalytics.dashboard.app import create_app
from wonkalytics.interaction import Record
from wonkalytics.ops import Insert, Update
from wonkalytics.sinks.clickhouse import ClickHouseSink
from wonkalytics.store.clickhouse import ClickHouseTarget
from wonkalytics.store.clickhouse_reads import ClickHouseReads
from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.reader import Reader, open_reader
from wonkalytics.store.sql import TableStore

pytestmark = pytest.mark.db

# (key_field, key, field, value), in order: r3's and r4's scores twice (the later wins), r6's score
# removed, r8's status changed, ev-10's score set by event_id, r12 by response_id then by event_id.
UPDATES = [
    ("response_id", "chatcmpl-3", "score", 11.5), ("response_id", "chatcmpl-3", "score", 97.25),
    ("response_id", "chatcmpl-4", "score", 3.0), ("response_id", "chatcmpl-4", "score", 42.0),
    ("response_id", "chatcmpl-6", "score", None), ("response_id", "chatcmpl-8", "status", "error"),
    ("event_id", "ev-10", "score", 55.5),
    ("response_id", "chatcmpl-12", "score", 1.0), ("event_id", "ev-12", "score", 77.0),
]
PERIODS = [
    ["--since", "2026-03-28", "--until", "2026-03-30", "--tz", "Europe/Amsterdam"],  # across the DST change
    ["--since", "2026-03-27", "--until", "2026-03-31", "--tz", "Asia/Kolkata"],  # +05:30: quarter hours
    ["--since", "2026-03-01", "--until", "2026-04-30"],
]


@pytest.fixture(scope="module")
def both() -> Iterator[tuple[str, str, str]]:
    """(PostgreSQL URL, ClickHouse URL, table): the same rows and updates in both."""
    pg, ch = require_server("postgresql"), require_clickhouse()
    table = f"wl_chr_{uuid.uuid4().hex[:10]}"
    rows = seed_rows()
    store = TableStore(pg, table)
    store.create_table()
    store.insert_many(rows)
    for key_field, key, field, value in UPDATES:
        assert store.update_where(key_field, key, field, value)
    sink = ClickHouseSink(ClickHouseTarget.from_url(ch, table))
    inserts = [Insert(built=Record("interaction" if r.get("model") else "event", r["event_id"], r)) for r in rows]
    updates = [Update(key=k, field=f, value=v, key_field=kf) for kf, k, f, v in UPDATES]
    for _ in range(2):  # a retried batch: the same event_ids and update ids land twice
        assert sink.write(inserts[:50]) == []
        assert sink.write(inserts[50:]) == []
        assert sink.write(updates) == []
    sink.close(1)
    yield pg, ch, table
    client = ClickHouseTarget.from_url(ch, table).client()
    try:
        client.execute(f"DROP TABLE IF EXISTS {table}")
        client.execute(f"DROP TABLE IF EXISTS {table}_updates")
    finally:
        client.disconnect()
    TableStore(pg, table).engine.dispose()
    from tests.conftest import _drop

    _drop(pg, table)
    dispose_engines()


def assert_same(left: Any, right: Any, where: str = "") -> None:
    """Equal JSON values, floats to 1e-9 relative (the engines sum doubles in different orders)."""
    if isinstance(left, float) or isinstance(right, float):
        assert left is not None and right is not None, f"{where}: {left!r} != {right!r}"
        assert math.isclose(float(left), float(right), rel_tol=1e-9, abs_tol=1e-12), f"{where}: {left} != {right}"
    elif isinstance(left, dict):
        assert isinstance(right, dict) and set(left) == set(right), f"{where}: keys {set(left) ^ set(right)}"
        for key in left:
            assert_same(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list):
        assert isinstance(right, list) and len(left) == len(right), f"{where}: {len(left)} != {len(right)} items"
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert left == right, f"{where}: {left!r} != {right!r}"


def _stats(url: str, table: str, *args: str) -> Any:
    result = CliRunner().invoke(app, ["stats", "--json", "--database-url", url, "--table", table, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("period", PERIODS, ids=["amsterdam-dst", "kolkata", "utc-months"])
@pytest.mark.parametrize("by", [None, "model", "user", "status"])
def test_stats_json_on_clickhouse_equals_postgresql(both: tuple[str, str, str], period: list[str],
                                                    by: str | None) -> None:
    pg, ch, table = both
    extra = ["--by", by] if by else []
    expected = _stats(pg, table, *period, *extra)
    assert expected["interactions"] > 0 and expected["scored"] > 0
    assert_same(_stats(ch, table, *period, *extra), expected, "stats")


def test_overview_without_medians_leaves_the_p50s_out_and_keeps_the_rest(both: tuple[str, str, str]) -> None:
    pg, ch, table = both
    expected = open_reader(pg, table).overview(_period())
    got = open_reader(ch, table).overview(_period(), medians=False)
    for name in ("duration_ms", "ttft_ms"):
        assert expected[name]["p50"] is not None and got[name]["p50"] is None, name
        expected[name]["p50"] = None  # PostgreSQL computes them in the same aggregate anyway
    assert_same(got, expected, "overview(medians=False)")


def test_updates_apply_latest_wins_and_duplicates_count_once(both: tuple[str, str, str]) -> None:
    _, ch, table = both
    reader = open_reader(ch, table)
    assert isinstance(reader, ClickHouseReads) and isinstance(reader, Reader)
    assert reader.interaction("ev-3")["score"] == 97.25  # type: ignore[index]
    assert reader.interaction("ev-4")["score"] == 42.0  # type: ignore[index]
    assert reader.interaction("ev-6")["score"] is None  # type: ignore[index]
    assert reader.interaction("ev-8")["status"] == "error"  # type: ignore[index]
    assert reader.interaction("ev-10")["score"] == 55.5  # type: ignore[index]
    assert reader.interaction("ev-12")["score"] == 77.0  # type: ignore[index]
    assert reader.interaction("nope") is None
    client = ClickHouseTarget.from_url(ch, table).client()
    try:  # the raw table really holds the retried copies: FINAL is what makes the reads exact
        raw = client.execute(f"SELECT count() FROM {table}")[0][0]
    finally:
        client.disconnect()
    assert raw in (len(seed_rows()), 2 * len(seed_rows()))
    assert sum(1 for _ in reader.iter_rows(_period())) == len(seed_rows())


def _period() -> Any:
    from wonkalytics.store.periods import make_period

    return make_period("2026-03-01", "2026-04-30")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_equals_postgresql(both: tuple[str, str, str], fmt: str, tmp_path: Any) -> None:
    pg, ch, table = both
    out: dict[str, list[dict[str, Any]]] = {}
    for name, url in (("pg", pg), ("ch", ch)):
        path = tmp_path / f"{name}.{fmt}"
        result = CliRunner().invoke(app, ["export", "--format", fmt, "--output", str(path), "--database-url", url,
                                          "--table", table, "--since", "2026-03-01", "--until", "2026-04-30"])
        assert result.exit_code == 0, result.output
        if fmt == "jsonl":
            out[name] = [json.loads(line) for line in path.read_text().splitlines()]
        else:
            import csv

            with path.open() as stream:
                out[name] = list(csv.DictReader(stream))
    common = set(out["ch"][0]) & set(out["pg"][0])
    assert {"event_id", "timestamp", "score", "messages", "cost_usd"} <= common
    assert len(out["ch"]) == len(out["pg"]) == len(seed_rows())
    for ch_row, pg_row in zip(out["ch"], out["pg"], strict=True):
        for column in common:
            a, b = ch_row[column], pg_row[column]
            if fmt == "csv" and a != b and a and b:
                a, b = float(a), float(b)  # 12.0 vs 12
            assert_same(a, b, f"{pg_row['event_id']}.{column}")


ENDPOINTS = ["/api/overview?by=model", "/api/groups?by=username&percentiles=true", "/api/counts?by=username",
             "/api/counts?by=model&status=ok", "/api/timeseries",
             "/api/timeseries?bucket=day", "/api/scores", "/api/fields", "/api/interactions?sort=score&order=asc",
             "/api/interactions?q=needle_%25_&page_size=5", "/api/interactions?score_min=50&model=gpt-4o"]


@pytest.mark.parametrize("tz", ["Europe/Amsterdam", "Asia/Kolkata"])
def test_dashboard_api_on_clickhouse_equals_postgresql(both: tuple[str, str, str], tz: str) -> None:
    pg, ch, table = both
    apps = {name: TestClient(create_app(open_reader(url, table))) for name, url in (("pg", pg), ("ch", ch))}
    query = f"since=2026-03-27&until=2026-03-31&tz={tz}"
    for endpoint in ENDPOINTS:
        glue = "&" if "?" in endpoint else "?"
        answers = {}
        for name, client in apps.items():
            response = client.get(endpoint + glue + query)
            assert response.status_code == 200, (name, endpoint, response.text)
            answers[name] = response.json()
        if endpoint.startswith("/api/interactions"):  # the key column differs: row_pk there, event_id here
            for answer in answers.values():
                for row in answer["rows"]:
                    row.pop("key")
        if endpoint == "/api/fields":
            assert set(answers["ch"]) >= set(answers["pg"]) - {"row_pk"}
            continue
        assert_same(answers["ch"], answers["pg"], endpoint)
    page = apps["ch"].get(f"/interactions?{query}")
    assert page.status_code == 200 and "gpt-4o" in page.text
    assert apps["ch"].get(f"/interactions/ev-3?{query}").status_code == 200
    assert apps["ch"].get("/healthz").json() == {"status": "ok"}
    assert apps["ch"].get(f"/export.csv?{query}").text.count("\n") > 10


def test_missing_table_says_what_to_do() -> None:
    reader = open_reader(require_clickhouse(), f"wl_absent_{uuid.uuid4().hex[:8]}")
    with pytest.raises(Exception, match="creates it on its first write"):
        reader.probe()


HOOK = """
import sys
class NoDriver:
    def find_spec(self, name, path=None, target=None):
        if name == "clickhouse_driver" or name.startswith("clickhouse_driver."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoDriver())
sys.argv = ["wonkalytics", *sys.argv[1:]]
from wonkalytics.cli import main
main()
"""


@pytest.mark.parametrize("command", ["stats", "export", "dashboard"])
def test_clickhouse_url_without_the_extra_gives_the_install_hint(command: str) -> None:
    result = subprocess.run([sys.executable, "-c", HOOK, command, "--database-url",
                             "clickhouse://default:s3cret@127.0.0.1:9000/default"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "400"})  # Rich wraps at the terminal's width
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "pip install 'wonkalytics[clickhouse]'" in lines[0] and "s3cret" not in result.stderr
