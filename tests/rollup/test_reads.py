"""The read side from the rollups equals independent arithmetic over the raw rows, on every database.

The oracle here fetches the table's rows with one plain SELECT and computes every figure in Python
(no code of the read side): counts, sums and distinct users must match exactly, percentiles within
the sketch's stated relative error. Each test also checks which path answered (rollups or table).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from wonkalytics.store import rollup_keeper
from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.migrations import upgrade
from wonkalytics.store.periods import Period, make_period
from wonkalytics.store.queries import Filters, ReadStore
from wonkalytics.store.rollup_model import DAY, HOUR, QUARTER
from wonkalytics.store.rollups import Rollup
from wonkalytics.store.sketch import ALPHA
from wonkalytics.store.sql import TableStore

BASE = datetime(2026, 3, 6)   # America/St_Johns (UTC-3:30) moves to UTC-2:30 on 2026-03-08 (a 23-hour day)
MODELS = ["gpt-4o", "gpt-4o-mini", "o3"]
TENANTS = ["t1", "t2", None]
STATUSES = ["ok", "ok", "ok", "error", "aborted"]


@pytest.fixture(autouse=True)
def _dispose() -> Iterator[None]:
    yield
    dispose_engines()


def _rows(count: int, seed: int, days: float = 4.0, prefix: str = "r") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        moment = BASE + timedelta(seconds=rng.randrange(int(days * 86400)), microseconds=rng.randrange(10**6))
        if rng.random() < 0.05:   # an event: counted nowhere
            rows.append({"event_id": f"{prefix}{n}", "action": "login", "username": f"u{n % 7}", "timestamp": moment})
            continue
        duration = rng.lognormvariate(6.5, 0.8) if rng.random() < 0.9 else None
        rows.append({
            "event_id": f"{prefix}{n}", "response_id": f"{prefix}-resp-{n}", "timestamp": moment,
            "model": rng.choice(MODELS), "tenant_id": rng.choice(TENANTS), "status": rng.choice(STATUSES),
            "username": rng.choice([f"u{rng.randrange(40)}", None]), "language": rng.choice(["en", "nl", None]),
            "level": rng.choice(["junior", "senior"]),
            "score": rng.choice([None, None, float(rng.randrange(0, 101)), round(rng.uniform(0, 5), 2)]),
            "duration_ms": duration, "ttft_ms": None if duration is None else duration * rng.uniform(0.05, 0.4),
            "prompt_tokens": rng.randrange(2000), "completion_tokens": rng.randrange(500),
            "cost_usd": None if rng.random() < 0.2 else rng.randrange(1, 10**6) / 1e8,
            "messages": "user:\nhello growth\n\n" if n % 3 else "user:\nplain\n\n",
        })
    return rows


def _prepared(url: str, name: str, fields: tuple[str, ...] = ("language",)) -> TableStore:
    store = TableStore(url, name)
    store.create_table()
    upgrade(store.engine, name)
    with store.engine.begin() as conn:   # rebuilt keyed by `language` too (what WONKALYTICS_ROLLUP_FIELDS does)
        keeper = Rollup(store.table, None, fields)
        for target in reversed(keeper.all_tables()):
            target.drop(conn, checkfirst=True)
        keeper.create(conn)
    rollup_keeper.forget(store.table)
    return store


def _raw(store: TableStore) -> list[dict[str, Any]]:
    t = store.table
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(t)).mappings()]
    for r in rows:
        if isinstance(r["timestamp"], str):
            r["timestamp"] = datetime.fromisoformat(r["timestamp"])
    return rows


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    rank = q * (len(s) - 1)
    low = int(rank)
    return s[low] if low == rank else s[low] + (s[low + 1] - s[low]) * (rank - low)


def _selected(raw: list[dict[str, Any]], period: Period, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
    since, until = period.utc_bounds
    return [r for r in raw if r["model"] is not None and since <= r["timestamp"] < until
            and all(r[k] == v for k, v in filters.items())]


def _expected(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scores = [float(r["score"]) for r in rows if r["score"] is not None]
    costs = [float(r["cost_usd"]) for r in rows if r["cost_usd"] is not None]
    return {
        "interactions": len(rows),
        "users": len({r["username"] for r in rows if r["username"] is not None}),
        "tenants": len({r["tenant_id"] for r in rows if r["tenant_id"] is not None}),
        "status": {s: sum(r["status"] == s for r in rows) for s in ("ok", "error", "aborted")},
        "scored": len(scores), "avg_score": sum(scores) / len(scores) if scores else None,
        "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in rows),
        "completion_tokens": sum(r["completion_tokens"] or 0 for r in rows),
        "cost_usd": sum(costs) if costs else None,
        **{name: {q: _quantile([float(r[name]) for r in rows if r[name] is not None], v)
                  for q, v in (("p50", 0.5), ("p95", 0.95))} for name in ("duration_ms", "ttft_ms")},
    }


def _close(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= rel * max(abs(b), 1e-12) + 1e-12


def _check(got: Mapping[str, Any], want: Mapping[str, Any], *, sketched: bool = True) -> None:
    for key in ("interactions", "users", "tenants", "status", "scored", "prompt_tokens", "completion_tokens"):
        assert got[key] == want[key], key
    for key in ("avg_score", "cost_usd"):
        assert _close(got[key], want[key]), (key, got[key], want[key])
    for name in ("duration_ms", "ttft_ms"):
        for q in ("p50", "p95"):
            assert _close(got[name][q], want[name][q], ALPHA if sketched else 1e-9), (name, q, got[name], want[name])
    assert ("approx" in got) is sketched


def _check_series(reader: ReadStore, raw: list[dict[str, Any]], period: Period, bucket: str) -> None:
    series = reader.timeseries(period, bucket=bucket)
    counts: dict[str, int] = {}
    for r in _selected(raw, period, {}):
        local = r["timestamp"].replace(tzinfo=UTC).astimezone(period.tz)
        if bucket == "day":
            start = datetime(local.year, local.month, local.day, tzinfo=period.tz)
        else:
            start = r["timestamp"].replace(minute=0, second=0, microsecond=0, tzinfo=UTC).astimezone(period.tz)
        counts[start.isoformat()] = counts.get(start.isoformat(), 0) + 1
    got = {s["start"]: s["interactions"] for s in series if s["interactions"]}
    assert got == counts
    assert sum(s["completion_tokens"] for s in series) == sum(r["completion_tokens"] or 0
                                                              for r in _selected(raw, period, {}))


PERIODS = [
    ("2026-03-06T03:07:31", "2026-03-09T17:52:10", "UTC"),            # partial edges at both ends
    ("2026-03-07", "2026-03-09", "America/St_Johns"),                 # local days with -3:30 / DST on 03-08
    ("2026-03-06T09:40", "2026-03-08T20:05", "Asia/Kolkata"),          # +5:30, partial edges
    ("2026-03-06T10:20", "2026-03-09T08:05", "America/New_York"),      # whole hours, DST on 03-08: UTC hours
]


def _unsigned(reader: ReadStore) -> None:
    """Plans without buckets taken out, as on a database whose collation folds names (MariaDB)."""
    found = reader._rollups.found()
    assert found is not None
    reader._rollups._found = dataclasses.replace(found, exact_text=False)


def _check_all(reader: ReadStore, raw: list[dict[str, Any]]) -> None:
    signed = 0
    for since, until, tz in PERIODS:
        period = make_period(since, until, tz)
        plan = reader._rollups.plan(period, None)
        assert plan is not None   # answered from the rollups, the whole UTC days inside from the day level
        levels = [s.level for s in plan.segments]
        assert DAY in levels and HOUR in levels, (since, until, tz)
        assert QUARTER in levels or plan.takes_out, (since, until, tz)
        signed += plan.takes_out
        _check(reader.overview(period), _expected(_selected(raw, period, {})))
        _check(reader.overview(period, Filters(model="gpt-4o", status="ok")),
               _expected(_selected(raw, period, {"model": "gpt-4o", "status": "ok"})))
        for by in ("model", "tenant_id", "status", "language"):
            groups = reader.groups(period, by)
            values = {r[by] for r in _selected(raw, period, {})}
            assert {g["value"] for g in groups} == values
            for g in groups:
                _check(g, _expected(_selected(raw, period, {by: g["value"]})))
            counts = [g["interactions"] for g in groups]
            assert counts == sorted(counts, reverse=True)
        for bucket in ("day", "hour"):
            _check_series(reader, raw, period, bucket)
        scores = sorted(float(r["score"]) for r in _selected(raw, period, {}) if r["score"] is not None)
        dist = reader.score_distribution(period)
        assert sum(b["count"] for b in dist) == len(scores)
        assert dist[0]["low"] == scores[0] and dist[-1]["high"] == pytest.approx(scores[-1])
        width = (scores[-1] - scores[0]) / 10
        for i, b in enumerate(dist):
            assert b["count"] == sum(1 for s in scores if min(int((s - scores[0]) / width), 9) == i)
    found = reader._rollups.found()
    assert found is not None and bool(signed) is found.exact_text   # PostgreSQL, SQLite: partial days taken out


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_rollup_reads_equal_the_raw_rows(db_url: str, table_name: str, signed: bool) -> None:
    store = _prepared(db_url, table_name)
    store.insert_many(_rows(700, seed=1))
    reader = ReadStore(db_url, table_name)
    if not signed:
        _unsigned(reader)
    raw = _raw(store)
    _check_all(reader, raw)

    # late rows into closed hours, a score changed twice, a duration changed: the writer keeps the rollups
    late = _rows(80, seed=2, days=3.0, prefix="late")
    store.insert_many(late)
    scored = next(r for r in late if r.get("model") is not None)
    for value in (4.0, 97.0):
        assert store.update_where("response_id", scored["response_id"], "score", value)
    assert store.update_where("response_id", scored["response_id"], "duration_ms", 12345.0)
    raw = _raw(store)
    _check_all(reader, raw)


def _figures(reader: ReadStore, period: Period) -> Any:
    overview = reader.overview(period)
    groups = reader.groups(period, "model")
    series = reader.timeseries(period, bucket="day")
    return overview, groups, series, reader.score_distribution(period)


def test_interior_days_are_read_from_the_day_level(db_url: str, table_name: str) -> None:
    store = _prepared(db_url, table_name)
    store.insert_many(_rows(600, seed=4))
    raw = _raw(store)
    period = make_period(*PERIODS[0])   # UTC: the time series in days reads the day level too
    reader = ReadStore(db_url, table_name)
    before = _figures(reader, period)
    interior = (datetime(2026, 3, 7), datetime(2026, 3, 8))
    with store.engine.begin() as conn:   # the interior day's quarter hours gone: nothing changes
        quarter = Rollup(store.table, None, ("language",)).tables[QUARTER]
        for target in quarter:
            gone = conn.execute(sa.delete(target).where(target.c.bucket >= interior[0], target.c.bucket < interior[1]))
            assert gone.rowcount > 0
    assert _figures(reader, period) == before
    _check(before[0], _expected(_selected(raw, period, {})))
    with store.engine.begin() as conn:   # its day rows gone: the figures lose that day (no fallback to the table)
        keeper = Rollup(store.table, None, ("language",))
        for target in (*keeper.tables[DAY], *keeper.models[DAY]):
            conn.execute(sa.delete(target).where(target.c.bucket == interior[0]))
    that_day = [r for r in _selected(raw, period, {}) if interior[0] <= r["timestamp"] < interior[1]]
    assert that_day
    assert reader.overview(period)["interactions"] == before[0]["interactions"] - len(that_day)


def test_percentiles_and_users_per_group_are_read_from_the_grain_tables(db_url: str, table_name: str) -> None:
    store = _prepared(db_url, table_name)
    store.insert_many(_rows(600, seed=7))
    raw = _raw(store)
    period = make_period(*PERIODS[2])   # Kolkata: edges of quarter hours and of rows
    reader = ReadStore(db_url, table_name)
    _unsigned(reader)   # what each table answers, with only added buckets (the rows deleted below break the sums)
    before = reader.overview(period)
    _check(before, _expected(_selected(raw, period, {})))
    for g in reader.groups(period, "model"):
        _check(g, _expected(_selected(raw, period, {"model": g["value"]})))
    keeper = Rollup(store.table, None, ("language",))
    tenants = reader.groups(period, "tenant_id", percentiles=False)
    assert max(g["users"] for g in tenants) > 5
    with store.engine.begin() as conn:   # the per-model rows gone: the breakdown by tenant keeps its sums
        for level in keeper.levels:
            for target in (*keeper.models[level], *keeper.by[level].values()):
                conn.execute(sa.delete(target))
    assert [g["interactions"] for g in reader.groups(period, "tenant_id", percentiles=False)] == [
        g["interactions"] for g in tenants]
    assert all(g["users"] < 5 for g in reader.groups(period, "tenant_id", percentiles=False))
    after = reader.overview(period)   # its sums and percentiles are the per-model tables', its users not
    assert 0 < after["interactions"] < before["interactions"]   # the edges' rows are still read from the table
    assert after["status"]["ok"] == before["status"]["ok"] and after["tenants"] == before["tenants"]   # full keys
    assert after["duration_ms"] != before["duration_ms"] and after["users"] == before["users"]   # (bucket, user)
    assert all(g["users"] < 5 for g in reader.groups(period, "model", percentiles=False))


def test_a_day_level_added_later_is_read_only_for_the_days_it_holds_whole(db_url: str, table_name: str) -> None:
    store = _prepared(db_url, table_name)
    store.insert_many(_rows(600, seed=6))
    with store.engine.begin() as conn:   # as if m008 ran on 2026-03-07 at noon: the day level starts then
        keeper = Rollup(store.table, None, ("language",))
        for target in (*keeper.tables[DAY], *keeper.models[DAY]):
            conn.execute(sa.delete(target).where(target.c.bucket < datetime(2026, 3, 7)))
        keeper = Rollup(store.table, None, ("language",))
        cut = datetime(2026, 3, 7, 12)
        rows = [dict(r) for r in conn.execute(keeper.select_rows().where(
            keeper.columns["timestamp"] >= datetime(2026, 3, 7), keeper.columns["timestamp"] < cut)).mappings()]
        groups, users = keeper.aggregate(rows, -1)   # the morning of 03-07 is not in the day level
        rollup_keeper.Keeper(store.table, None, ("language",)).apply(conn, DAY,
                                                                       dict(keeper.levelled(groups, users))[DAY])
    reader = ReadStore(db_url, table_name)
    raw = _raw(store)
    period = make_period(*PERIODS[0])
    plan = reader._rollups.plan(period, None)
    days = [s.first for s in plan.segments if s.level is DAY] if plan is not None else []
    assert datetime(2026, 3, 8) in days and min(days) == datetime(2026, 3, 8)   # (03-09: its day minus the rest)
    _check(reader.overview(period), _expected(_selected(raw, period, {})))


def test_an_hour_level_added_later_is_read_only_for_the_hours_it_holds_whole(db_url: str, table_name: str) -> None:
    store = _prepared(db_url, table_name)
    store.insert_many(_rows(600, seed=7))
    cut = datetime(2026, 3, 9, 9, 20)
    with store.engine.begin() as conn:   # as if m010 ran on 2026-03-09 at 09:20: the hour level starts then
        keeper = Rollup(store.table, None, ("language",))
        for target in (*keeper.tables[HOUR], *keeper.models[HOUR], *keeper.by[HOUR].values()):
            conn.execute(sa.delete(target).where(target.c.bucket < datetime(2026, 3, 9, 9)))
        rows = [dict(r) for r in conn.execute(keeper.select_rows().where(
            keeper.columns["timestamp"] >= datetime(2026, 3, 9, 9), keeper.columns["timestamp"] < cut)).mappings()]
        groups, users = keeper.aggregate(rows, -1)   # 09:00-09:20 is not in the hour level
        rollup_keeper.Keeper(store.table, None, ("language",)).apply(conn, HOUR,
                                                                       dict(keeper.levelled(groups, users))[HOUR])
    reader = ReadStore(db_url, table_name)
    raw = _raw(store)
    period = make_period(*PERIODS[0])   # 03-06 03:07 .. 03-09 17:52 UTC
    plan = reader._rollups.plan(period, None)
    assert plan is not None
    hours = [(s.first, s.last) for s in plan.segments if s.level is HOUR]
    assert hours and all(first >= datetime(2026, 3, 9, 10) for first, _ in hours), hours
    assert DAY in [s.level for s in plan.segments]   # (the first day minus its first 3 hours: from quarters)
    _check(reader.overview(period), _expected(_selected(raw, period, {})))
    for by in ("model", "tenant_id"):
        for g in reader.groups(period, by):
            _check(g, _expected(_selected(raw, period, {by: g["value"]})))


def test_filters_the_rollups_are_not_keyed_by_read_the_table(db_url: str, table_name: str) -> None:
    store = _prepared(db_url, table_name)
    store.insert_many(_rows(300, seed=3))
    reader = ReadStore(db_url, table_name)
    raw = _raw(store)
    period = make_period(*PERIODS[0])
    for filters, wanted in ((Filters(user="u3"), {"username": "u3"}), (Filters(fields={"level": "junior"}),
                                                                        {"level": "junior"})):
        assert reader._rollups.plan(period, filters) is None
        _check(reader.overview(period, filters), _expected(_selected(raw, period, wanted)), sketched=False)
    text = Filters(text="growth")
    assert reader._rollups.plan(period, text) is None
    want = [r for r in _selected(raw, period, {}) if "growth" in (r["messages"] or "")]
    assert reader.overview(period, text)["interactions"] == len(want)
    assert reader._rollups.plan(period, None, "username") is None
    users = {g["value"]: g["interactions"] for g in reader.groups(period, "username", limit=1000)}
    assert sum(users.values()) == len(_selected(raw, period, {}))
    # a period shorter than one whole quarter hour is answered by the table alone
    short = make_period("2026-03-06T10:01", "2026-03-06T10:14")
    assert reader._rollups.plan(short, None) is None
    _check(reader.overview(short), _expected(_selected(raw, short, {})), sketched=False)


def test_a_table_without_rollup_tables_reads_the_table(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    store.create_table()
    store.insert_many(_rows(200, seed=4))
    reader = ReadStore(db_url, table_name)
    period = make_period(*PERIODS[0])
    assert reader._rollups.plan(period, None) is None
    _check(reader.overview(period), _expected(_selected(_raw(store), period, {})), sketched=False)


def test_a_column_map_the_writer_cannot_follow_reads_the_table(db_url: str, table_name: str) -> None:
    """A team table whose model column is `llm_model` (mapped): the writer's hook resolves no model column,
    so its rollups stay empty; the reader must not trust them."""
    engine = TableStore(db_url, table_name).engine
    metadata = sa.MetaData()
    team = sa.Table(table_name, metadata, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("event_id", sa.String(64)), sa.Column("timestamp", sa.DateTime),
                    sa.Column("llm_model", sa.String(100)), sa.Column("Tenant_ID", sa.String(100)),
                    sa.Column("status", sa.String(20)), sa.Column("username", sa.String(100)),
                    sa.Column("score", sa.Float), sa.Column("duration_ms", sa.Float))
    metadata.create_all(engine)
    rows = [{"event_id": f"e{n}", "timestamp": BASE + timedelta(minutes=7 * n), "llm_model": MODELS[n % 3],
             "Tenant_ID": TENANTS[n % 3], "status": "ok", "username": f"u{n % 5}", "score": float(n % 10),
             "duration_ms": 100.0 + n} for n in range(300)]
    with engine.begin() as conn:
        conn.execute(team.insert(), rows)
    store = TableStore(db_url, table_name, create=False)
    with engine.begin() as conn:
        keeper = Rollup(store.table, {"model": "llm_model"})
        keeper.create(conn)
    mapped = ReadStore(db_url, table_name, {"model": "llm_model"})
    period = make_period("2026-03-06T01:10", "2026-03-07T05:20")
    assert mapped._rollups.plan(period, None) is None
    picked = [r for r in rows if period.utc_bounds[0] <= r["timestamp"] < period.utc_bounds[1]]
    got = mapped.overview(period)
    assert got["interactions"] == len(picked)
    assert got["tenants"] == len({r["Tenant_ID"] for r in picked if r["Tenant_ID"]})
    assert {g["value"] for g in mapped.groups(period, "model")} == {r["llm_model"] for r in picked}


def test_rows_written_by_the_seed_api_only(db_url: str, table_name: str, tmp_path: Any) -> None:
    from tests.conftest import configure_default

    from wonkalytics.analytics import _write_to_azure_sql
    from wonkalytics.recorder import default_recorder

    _prepared(db_url, table_name, ()).engine.dispose()
    configure_default(db_url, table_name, tmp_path / "spool")
    try:
        now = datetime.now(UTC).replace(tzinfo=None)
        for n in range(40):
            item = {"username": f"seed{n % 6}", "action": "chat", "model": MODELS[n % 3], "tenant_id": "acme",
                    "timestamp": now - timedelta(hours=n * 3, minutes=n), "status": "ok", "score": n % 5,
                    "kwargs": {"messages": [{"role": "user", "content": "hi"}]}}
            assert _write_to_azure_sql(item) is True
        reader = ReadStore(db_url, table_name)
        period = make_period("7d", tz="Australia/Adelaide")
        assert reader._rollups.plan(period, None) is not None
        store = TableStore(db_url, table_name, create=False)
        raw = _raw(store)
        _check(reader.overview(period), _expected(_selected(raw, period, {})))
        assert reader.overview(period)["interactions"] == 40
        _check_series(reader, raw, period, "day")
    finally:
        default_recorder.shutdown(5)


def test_approx_percentiles_stay_within_the_stated_error_on_a_long_tail(sqlite_url: str, table_name: str) -> None:
    store = _prepared(sqlite_url, table_name)
    rng = random.Random(9)
    rows = [{"event_id": f"p{n}", "timestamp": BASE + timedelta(seconds=37 * n), "model": "m", "status": "ok",
             "duration_ms": rng.paretovariate(1.2) * 50} for n in range(3000)]
    store.insert_many(rows)
    period = make_period("2026-03-06T00:05", "2026-03-07T06:00")
    got = ReadStore(sqlite_url, table_name).overview(period)
    values = [r["duration_ms"] for r in rows if period.utc_bounds[0] <= r["timestamp"] < period.utc_bounds[1]]
    for q, key in ((0.5, "p50"), (0.95, "p95")):
        want = _quantile(values, q)
        assert want is not None and abs(got["duration_ms"][key] - want) <= ALPHA * want
    assert got["approx"] == {"duration_ms": ALPHA, "ttft_ms": ALPHA}


def test_the_dashboard_marks_sketched_percentiles(sqlite_url: str, table_name: str) -> None:
    from fastapi.testclient import TestClient

    from wonkalytics.dashboard.app import create_app

    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [{**r, "timestamp": now - timedelta(minutes=13 * n)} for n, r in enumerate(_rows(200, seed=6))]
    plain = TableStore(sqlite_url, table_name)
    plain.create_table()
    plain.insert_many(rows)
    page = TestClient(create_app(ReadStore(sqlite_url, table_name))).get("/")
    assert page.status_code == 200 and "±1 %" not in page.text   # exact percentiles: no mark
    store = _prepared(sqlite_url, f"{table_name}_r")
    store.insert_many(rows)
    client = TestClient(create_app(ReadStore(sqlite_url, f"{table_name}_r")))
    page = client.get("/")
    assert page.status_code == 200
    assert page.text.count("±1 %</span>") == 2   # duration p95 and first token p95
    assert client.get("/api/overview").json()["approx"] == {"duration_ms": ALPHA, "ttft_ms": ALPHA}
    assert all(g["approx"] for g in client.get("/api/groups?by=model&percentiles=true").json())
