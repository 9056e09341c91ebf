"""`wonkalytics stats`: --json with the contract's keys on every database, --by, and markup shown as typed."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from tests.read.seed import expected_overview
from tests.read.test_queries import assert_overview
from typer.testing import CliRunner

from wonkalytics.cli import app
from wonkalytics.store.sql import TableStore

PERIOD = ["--since", "2026-03-28", "--until", "2026-03-30", "--tz", "Europe/Amsterdam"]
KEYS = {"since", "until", "interactions", "users", "tenants", "status", "scored", "avg_score", "duration_ms",
        "ttft_ms", "prompt_tokens", "completion_tokens", "cost_usd"}


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_stats_json_matches_the_database(seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    out = json.loads(run("stats", "--json", "--database-url", seeded, "--table", table_name, *PERIOD).stdout)
    assert set(out) == KEYS and set(out["status"]) == {"ok", "error", "aborted"}
    assert set(out["duration_ms"]) == set(out["ttft_ms"]) == {"p50", "p95"}
    from wonkalytics.store.queries import make_period

    since, until = make_period("2026-03-28", "2026-03-30", "Europe/Amsterdam").utc_bounds
    assert_overview(out, expected_overview(rows, lambda r: since <= r["timestamp"] < until))


def test_stats_by_model_json(seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    out = json.loads(run("stats", "--json", "--by", "model", "--database-url", seeded, "--table", table_name,
                         "--since", "2026-03-01", "--until", "2026-04-30").stdout)
    groups = out["groups"]
    assert [g["interactions"] for g in groups] == sorted((g["interactions"] for g in groups), reverse=True)
    assert sum(g["interactions"] for g in groups) == out["interactions"]
    for group in groups:
        assert set(group) == KEYS | {"value"}
        assert_overview(group, expected_overview(rows, lambda r, v=group["value"]: r.get("model") == v))


def test_stats_tables_show_markup_as_typed(sqlite_url: str, table_name: str) -> None:
    store = TableStore(sqlite_url, table_name)
    store.create_table()
    store.insert_many([{"event_id": "1", "model": "gpt-4o", "username": "[red]eve[/]", "status": "ok",
                        "timestamp": datetime(2026, 3, 2, 10)}])
    out = run("stats", "--by", "user", "--database-url", sqlite_url, "--table", table_name, "--since", "2026-03-01",
              "--until", "2026-03-03").stdout
    assert "[red]eve[/]" in out and "unknown" in out  # the cost of an unpriced call


def test_stats_errors_say_what_to_do(sqlite_url: str, table_name: str) -> None:
    result = CliRunner().invoke(app, ["stats", "--database-url", sqlite_url, "--table", table_name])
    assert result.exit_code == 1 and "wonkalytics init" in result.output
    TableStore(sqlite_url, table_name).create_table()
    result = CliRunner().invoke(app, ["stats", "--database-url", sqlite_url, "--table", table_name, "--by", "nope"])
    assert result.exit_code == 1 and "no column 'nope'" in result.output
    result = CliRunner().invoke(app, ["stats", "--database-url", sqlite_url, "--table", table_name, "--since", "x"])
    assert result.exit_code == 1 and "duration (90m, 24h, 7d, 2w)" in result.output
    empty = run("stats", "--database-url", sqlite_url, "--table", table_name).stdout
    assert "wonkalytics demo" in empty


@pytest.mark.parametrize("command", ["stats", "export", "dashboard"])
def test_help_shows_an_example(command: str) -> None:
    assert f"wonkalytics {command}" in run(command, "--help").stdout.split("Example")[-1]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_streams_every_row(seeded: str, table_name: str, rows: list[dict[str, Any]], fmt: str,
                                  tmp_path: Any) -> None:
    out = tmp_path / f"rows.{fmt}"
    run("export", "--format", fmt, "--output", str(out), "--database-url", seeded, "--table", table_name,
        "--since", "2026-03-01", "--until", "2026-04-30")
    if fmt == "csv":
        import csv

        with out.open(newline="", encoding="utf-8") as f:
            exported = list(csv.DictReader(f))
    else:
        exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["event_id"] for r in exported) == sorted(r["event_id"] for r in rows)
    by_id = {r["event_id"]: r for r in exported}
    needle = next(r for r in rows if "NEEDLE" in (r.get("response") or ""))
    assert by_id[needle["event_id"]]["response"] == needle["response"]
    stamps = [r["timestamp"] for r in exported]
    assert stamps == sorted(stamps)  # oldest first
    chats = run("export", "--format", "jsonl", "--no-events", "--database-url", seeded, "--table", table_name,
                "--since", "2026-03-01", "--until", "2026-04-30").stdout.splitlines()
    assert len(chats) == sum(r.get("model") is not None for r in rows)
