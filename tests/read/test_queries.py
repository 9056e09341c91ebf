"""The read layer on SQLite, PostgreSQL and MariaDB, against aggregates computed in Python over the same rows."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from tests.read.seed import expected_overview, percentile

from wonkalytics.errors import StoreError, UnknownColumnError
from wonkalytics.store.engine import get_engine
from wonkalytics.store.queries import Filters, ReadStore, make_period
from wonkalytics.store.sql import TableStore

AMS = ZoneInfo("Europe/Amsterdam")


def in_period(period: Any) -> Any:
    since, until = period.utc_bounds
    return lambda r: since <= r["timestamp"] < until


def assert_overview(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if isinstance(value, dict) and key != "status":
            for q, v in value.items():
                assert got[key][q] == pytest.approx(v, rel=1e-9), (key, q)
        elif isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9), key
        else:
            assert got[key] == value, key


def test_overview_matches_python(seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    reader = ReadStore(seeded, table_name)
    period = make_period("2026-03-28", "2026-03-30", "Europe/Amsterdam")
    got = reader.overview(period)
    expected = expected_overview(rows, in_period(period))
    assert 20 < expected["interactions"] < 90  # the period cuts the rows, and keeps enough of them
    assert_overview(got, expected)
    assert set(got) == {"since", "until", "interactions", "users", "tenants", "status", "scored", "avg_score",
                        "duration_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "cost_usd"}
    assert got["since"] == "2026-03-28T00:00:00+01:00" and got["until"] == "2026-03-31T00:00:00+02:00"


def test_events_are_not_interactions(seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    reader = ReadStore(seeded, table_name)
    period = make_period("2026-03-01", "2026-04-30")
    assert reader.overview(period)["interactions"] == sum(r.get("model") is not None for r in rows)
    assert "zed" not in {g["value"] for g in reader.groups(period, "user")}
    assert len(list(reader.iter_rows(period))) == len(rows)  # the export keeps events
    assert len(list(reader.iter_rows(period, events=False))) == len(rows) - 4


@pytest.mark.parametrize("by,column", [("model", "model"), ("language", "language"), ("tenant", "tenant_id")])
def test_groups_match_python(seeded: str, table_name: str, rows: list[dict[str, Any]], by: str, column: str) -> None:
    reader = ReadStore(seeded, table_name)
    period = make_period("2026-03-01", "2026-04-30")
    groups = reader.groups(period, by)
    values = {r.get(column) for r in rows if r.get("model") is not None}
    assert {g["value"] for g in groups} == values
    counts = [g["interactions"] for g in groups]
    assert counts == sorted(counts, reverse=True)
    for group in groups:
        assert_overview(group, expected_overview(rows, lambda r, v=group["value"]: r.get(column) == v))
        assert group["since"] == period.since.isoformat()


def test_filters(seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    reader = ReadStore(seeded, table_name)
    period = make_period("2026-03-01", "2026-04-30")
    filters = Filters(model="gpt-4o", status="ok", score_min=20, score_max=80.5, fields={"language": "nl"})
    expected = expected_overview(rows, lambda r: r["model"] == "gpt-4o" and r["status"] == "ok"
                                 and r["score"] is not None and 20 <= r["score"] <= 80.5 and r["language"] == "nl")
    assert expected["interactions"] > 0
    assert_overview(reader.overview(period, filters), expected)
    # The text search is literal (% and _ are not wildcards) and case-insensitive, over prompt and response.
    needle = reader.interactions(period, Filters(text="needle_%_"), page_size=500)
    assert needle.total == sum("NEEDLE_%_" in (r.get("response") or "") for r in rows) > 0
    assert reader.interactions(period, Filters(text="needle_x")).total == 0
    rust = reader.interactions(period, Filters(text="rust"), page_size=500)
    assert rust.total == sum("Rust" in (r.get("messages") or "") for r in rows)
    with pytest.raises(UnknownColumnError, match="no column 'nope'"):
        reader.overview(period, Filters(fields={"nope": "x"}))


def test_interactions_page_sort_and_detail(seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    reader = ReadStore(seeded, table_name)
    period = make_period("2026-03-01", "2026-04-30")
    chats = [r for r in rows if r.get("model") is not None]
    first = reader.interactions(period, page=1, page_size=20)
    last = reader.interactions(period, page=first.pages, page_size=20)
    assert first.total == len(chats) and first.pages == -(-len(chats) // 20)
    assert len(last.rows) == len(chats) - 20 * (first.pages - 1)
    newest = sorted(chats, key=lambda r: r["timestamp"], reverse=True)
    assert [r["timestamp"] for r in first.rows] == [r["timestamp"] for r in newest[:20]]
    by_cost = reader.interactions(period, sort="cost_usd", descending=True, page_size=5).rows
    assert by_cost[0]["cost_usd"] == pytest.approx(max(r["cost_usd"] for r in chats if r["cost_usd"] is not None))
    detail = reader.interaction(str(first.rows[0]["key"]))
    assert detail is not None
    assert detail["event_id"] == newest[0]["event_id"] and detail["response"] == newest[0]["response"]
    assert reader.interaction("999999") is None and reader.interaction("not-a-number") is None
    with pytest.raises(ValueError, match="cannot sort by 'messages'"):
        reader.interactions(period, sort="messages")


def test_days_in_local_time_across_dst(seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    reader = ReadStore(seeded, table_name)
    period = make_period("2026-03-27", "2026-03-31", "Europe/Amsterdam")
    series = reader.timeseries(period, bucket="day")
    local_day = Counter(r["timestamp"].replace(tzinfo=UTC).astimezone(AMS).date().isoformat()
                        for r in rows if r.get("model") is not None and in_period(period)(r))
    assert [s["start"] for s in series] == [f"2026-03-{d}T00:00:00+0{1 if d < 30 else 2}:00" for d in range(27, 32)]
    assert {s["start"][:10]: s["interactions"] for s in series} == {
        f"2026-03-{d}": local_day.get(f"2026-03-{d}", 0) for d in range(27, 32)}
    # Local days differ from UTC days here: the check above would fail on UTC buckets.
    utc_day = Counter(r["timestamp"].date().isoformat() for r in rows if r.get("model") is not None)
    assert any(utc_day[d] != n for d, n in local_day.items())
    errors = sum(s["errors"] for s in series)
    assert errors == sum(r.get("status") == "error" for r in rows if in_period(period)(r))


def test_hours_and_half_hour_zone(seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    reader = ReadStore(seeded, table_name)
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: UTC hours straddle its midnights
    period = make_period("2026-03-28", "2026-03-30", "Asia/Kolkata")
    expected = Counter(r["timestamp"].replace(tzinfo=UTC).astimezone(kolkata).date().isoformat()
                       for r in rows if r.get("model") is not None and in_period(period)(r))
    got = {s["start"][:10]: s["interactions"] for s in reader.timeseries(period, bucket="day")}
    assert got == {d: expected.get(d, 0) for d in ("2026-03-28", "2026-03-29", "2026-03-30")}
    hours = reader.timeseries(make_period("2026-03-29T00:00", "2026-03-29T06:00", "Europe/Amsterdam"), bucket="hour")
    # 00:00-06:00 local on the night the clocks jump from 02:00 to 03:00 has five hours, not six
    assert [h["start"][11:] for h in hours] == ["00:00:00+01:00", "01:00:00+01:00", "03:00:00+02:00",
                                                "04:00:00+02:00", "05:00:00+02:00"]


def test_score_distribution(seeded: str, table_name: str, rows: list[dict[str, Any]]) -> None:
    reader = ReadStore(seeded, table_name)
    bins = reader.score_distribution(make_period("2026-03-01", "2026-04-30"), bins=5)
    scores = [r["score"] for r in rows if r.get("score") is not None]
    assert sum(b["count"] for b in bins) == len(scores)
    assert bins[0]["low"] == min(scores) and bins[-1]["high"] == pytest.approx(max(scores))
    for b in bins[:-1]:
        assert b["count"] == sum(b["low"] <= s < b["high"] for s in scores)


def test_reads_are_read_only(seeded: str, table_name: str) -> None:
    reader = ReadStore(seeded, table_name)
    with pytest.raises(StoreError, match=r"(?i)read.?only"), reader.reading() as conn:
        conn.execute(sa.text(f"DELETE FROM {table_name}"))
    assert reader.overview(make_period("2026-03-01", "2026-04-30"))["interactions"] == 90
    # The pooled connection is writable again for a writer of the same process.
    assert TableStore(seeded, table_name).update_where("response_id", "chatcmpl-1", "score", 5.5)


def test_team_table_with_own_column_names(db_url: str, table_name: str) -> None:
    # Mixed-case names: SQLAlchemy quotes them, so PostgreSQL keeps their case too.
    sa.Table(table_name, sa.MetaData(), sa.Column("Response_Id", sa.String(64)), sa.Column("TimeStamp", sa.DateTime),
             sa.Column("Model", sa.String(64)), sa.Column("UserName", sa.String(64)), sa.Column("Score", sa.Float),
             sa.Column("Duration_MS", sa.Float), sa.Column("answer_text", sa.String(200)),
             sa.Column("Department", sa.String(40))).create(get_engine(db_url))
    base = datetime(2026, 5, 1, 12)
    team = [{"Response_Id": f"r{n}", "TimeStamp": base + timedelta(minutes=n), "Model": "gpt-4o" if n % 2 else "o3",
             "UserName": f"u{n % 3}", "Score": n * 1.5, "Duration_MS": 100.0 + n * n, "Department": "sales" if n < 4
             else "support", "answer_text": "hello BLUE" if n == 3 else "hi"} for n in range(10)]
    TableStore(db_url, table_name, create=False).insert_many(team)
    reader = ReadStore(db_url, table_name, column_map={"response": "answer_text"})
    period = make_period("2026-05-01", "2026-05-01")
    got = reader.overview(period)
    durations = [r["Duration_MS"] for r in team]
    assert got["interactions"] == 10 and got["users"] == 3 and got["tenants"] == 0
    assert got["avg_score"] == pytest.approx(sum(r["Score"] for r in team) / 10)
    assert got["duration_ms"]["p95"] == pytest.approx(percentile(durations, 0.95))
    assert got["ttft_ms"] == {"p50": None, "p95": None} and got["cost_usd"] is None
    assert {g["value"]: g["interactions"] for g in reader.groups(period, "department")} == {"sales": 4, "support": 6}
    assert "Department" in reader.category_fields()
    assert reader.interactions(period, Filters(text="blue")).total == 1
    with pytest.raises(UnknownColumnError, match="no column 'language'"):
        reader.groups(period, "language")


def test_missing_table_says_what_to_do(sqlite_url: str) -> None:
    with pytest.raises(StoreError, match="wonkalytics init"):
        ReadStore(sqlite_url, "nothing_here").overview(make_period())


@pytest.mark.parametrize("text,message", [("yesterday", "not a date"), ("2026-13-01", "not a date")])
def test_bad_period(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_period(text)
    with pytest.raises(ValueError, match="unknown time zone"):
        make_period(tz="Mars/Olympus")
    with pytest.raises(ValueError, match="the period is empty"):
        make_period("2026-03-02", "2026-03-01")


@pytest.mark.parametrize("durations", [[5.0], [5.0, 7.0], [1.0, 2.0, 3.0, 4.0, 100.0], [3.0] * 4 + [9.5] * 3])
def test_percentiles_of_few_values(db_url: str, table_name: str, durations: list[float]) -> None:
    store = TableStore(db_url, table_name)
    store.create_table()
    base = datetime(2026, 6, 1, 8)
    store.insert_many([{"event_id": f"d{n}", "model": "m", "status": "ok", "duration_ms": d,
                        "timestamp": base + timedelta(minutes=n)} for n, d in enumerate(durations)]
                      + [{"event_id": "none", "model": "m", "status": "ok", "timestamp": base}])
    reader = ReadStore(db_url, table_name)
    period = make_period("2026-06-01", "2026-06-01")
    got = reader.overview(period)["duration_ms"]
    assert got["p50"] == pytest.approx(percentile(durations, 0.5))
    assert got["p95"] == pytest.approx(percentile(durations, 0.95))
    assert reader.overview(period, medians=False)["duration_ms"]["p95"] == pytest.approx(got["p95"])
    (group,) = reader.groups(period, "model")
    assert group["duration_ms"] == pytest.approx(got)


def test_sql_server_statements_compile() -> None:
    from sqlalchemy.dialects import mssql

    from wonkalytics.store.queries import utc_hour, window_percentile_query
    from wonkalytics.store.schema import default_table

    table = default_table("llm")
    where = [table.c.timestamp >= datetime(2026, 1, 1), table.c.model.is_not(None)]
    grouped = str(window_percentile_query(table.c.duration_ms, where, table.c.model).compile(dialect=mssql.dialect()))
    window = "WITHIN GROUP (ORDER BY llm.duration_ms ASC) OVER (PARTITION BY llm.model)"
    assert "percentile_cont(" in grouped and window in grouped and "GROUP BY anon_1.g" in grouped
    plain = str(window_percentile_query(table.c.ttft_ms, where, None).compile(dialect=mssql.dialect()))
    assert "OVER ()" in plain and "GROUP BY" not in plain
    hour = str(utc_hour(table.c.timestamp, "mssql").compile(dialect=mssql.dialect()))
    assert hour.startswith("dateadd(hour, datediff(hour, ") and "llm.timestamp)" in hour
