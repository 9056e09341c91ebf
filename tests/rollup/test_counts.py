"""Interactions per value (the breakdown charts): from the rollups' users tables by user, equal to the raw rows.

The oracle counts the table's rows in Python; each check also asserts which path answered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.rollup.test_reads import PERIODS, _prepared, _raw, _rows, _selected

from wonkalytics.dashboard.app import create_app
from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.periods import Period, make_period
from wonkalytics.store.queries import Filters, ReadStore


@pytest.fixture(autouse=True)
def _dispose() -> Iterator[None]:
    yield
    dispose_engines()


def _want(raw: list[dict[str, Any]], period: Period, by: str, wanted: dict[str, Any]) -> Counter[Any]:
    return Counter(r[by] for r in _selected(raw, period, wanted))


def _check(reader: ReadStore, raw: list[dict[str, Any]], period: Period, filters: Filters | None,
           wanted: dict[str, Any], *, rolled: bool) -> None:
    assert (reader._rollups.user_counts(period, filters, limit=5) is not None) is rolled
    want = _want(raw, period, "username", wanted)
    got = reader.counts(period, "username", filters, limit=1000)
    assert {c["value"]: c["interactions"] for c in got} == dict(want)
    assert [c["interactions"] for c in got] == sorted(want.values(), reverse=True)
    top = reader.counts(period, "username", filters, limit=5)   # ties make the names ambiguous, not the counts
    assert [c["interactions"] for c in top] == sorted(want.values(), reverse=True)[:5]
    assert all(want[c["value"]] == c["interactions"] for c in top)


def test_interactions_per_user_come_from_the_users_tables(db_url: str, table_name: str) -> None:
    store = _prepared(db_url, table_name)
    store.insert_many(_rows(700, seed=11))
    reader = ReadStore(db_url, table_name)
    raw = _raw(store)
    assert any(r["username"] is None and r["model"] is not None for r in raw)   # anonymous interactions too
    for since, until, tz in PERIODS:
        period = make_period(since, until, tz)
        _check(reader, raw, period, None, {}, rolled=True)
        _check(reader, raw, period, Filters(model="o3"), {"model": "o3"}, rolled=True)
        # filters the users tables are not keyed by: the table counts
        _check(reader, raw, period, Filters(tenant="t1"), {"tenant_id": "t1"}, rolled=False)
        _check(reader, raw, period, Filters(model="o3", status="ok"), {"model": "o3", "status": "ok"}, rolled=False)

    # late rows and a user renamed afterwards: the writer moves the interaction between users
    late = _rows(60, seed=12, days=3.0, prefix="late")
    store.insert_many(late)
    named = next(r for r in late if r.get("model") is not None and r.get("username") is not None)
    assert store.update_where("response_id", named["response_id"], "username", "renamed")
    raw = _raw(store)
    period = make_period(*PERIODS[0])
    _check(reader, raw, period, None, {}, rolled=True)
    assert {c["value"]: c["interactions"] for c in reader.counts(period, "username", limit=1000)}["renamed"] == 1


def test_which_names_are_one_user_is_the_databases_choice(db_url: str, table_name: str) -> None:
    store = _prepared(db_url, table_name)
    rows = _rows(200, seed=15)
    for n, row in enumerate(r for r in rows if r.get("model") is not None):
        row["username"] = ("Ann", "ann", "ANN ", "Bob")[n % 4]   # one user where the collation folds case
    # the edges of PERIODS[0] (under a quarter hour at each end, read from the table): other spellings of
    # the whole buckets' users, and a user seen only there, twice spelt
    edge = [datetime(2026, 3, 6, 3, 9), datetime(2026, 3, 6, 3, 12), datetime(2026, 3, 9, 17, 47),
            datetime(2026, 3, 9, 17, 50)]
    for n, (moment, name) in enumerate(zip(edge * 2, ("aNN", "bob ", "Zed", "zed", "BOB", "ann", "zed", "Ann"),
                                           strict=True)):
        rows.append({**rows[1], "event_id": f"edge{n}", "response_id": f"edge-resp-{n}", "timestamp": moment,
                     "model": ("gpt-4o", "o3")[n % 2], "username": name})
    store.insert_many(rows)
    reader = ReadStore(db_url, table_name)
    period = make_period(*PERIODS[0])
    assert reader._rollups.user_counts(period, None, limit=5) is not None
    user, model = store.table.c.username, store.table.c.model
    since, until = period.utc_bounds
    with store.engine.connect() as conn:   # the table's own GROUP BY decides, as the table path does
        want = sorted(int(n) for n in conn.execute(
            sa.select(sa.func.count()).where(model.is_not(None), store.table.c.timestamp >= since,
                                             store.table.c.timestamp < until).group_by(user)).scalars())
    got = sorted(c["interactions"] for c in reader.counts(period, "username", limit=1000))
    assert got == want
    # distinct users too, with the edges' spellings matched against the whole buckets' by the database
    with store.engine.connect() as conn:
        where = [store.table.c.timestamp >= since, store.table.c.timestamp < until]
        distinct = int(conn.execute(sa.select(sa.func.count(sa.distinct(user))).where(*where,
                                                                                      model.is_not(None))).scalar_one())
        per_model = dict(conn.execute(sa.select(model, sa.func.count(sa.distinct(user)))
                                      .where(*where, model.is_not(None)).group_by(model)).all())
    assert reader._rollups.plan(period, None) is not None
    assert reader.overview(period)["users"] == distinct
    assert {g["value"]: g["users"] for g in reader.groups(period, "model")} == per_model


def test_counts_of_rolled_up_fields_and_of_the_table(db_url: str, table_name: str) -> None:
    store = _prepared(db_url, table_name)
    store.insert_many(_rows(400, seed=13))
    reader = ReadStore(db_url, table_name)
    raw = _raw(store)
    period = make_period(*PERIODS[2])
    for by, rolled in (("model", True), ("tenant_id", True), ("language", True), ("level", False)):
        assert (reader._rollups.plan(period, None, by) is not None) is rolled
        want = _want(raw, period, by, {})
        got = reader.counts(period, by, limit=1000)
        assert {c["value"]: c["interactions"] for c in got} == dict(want), by
        assert [c["interactions"] for c in got] == sorted(want.values(), reverse=True)
    assert reader.values(period, "model") == [c["value"] for c in reader.counts(period, "model", limit=100)]


def test_the_breakdown_charts_ask_for_counts(sqlite_url: str, table_name: str) -> None:
    store = _prepared(sqlite_url, table_name)
    store.insert_many(_rows(300, seed=14))
    raw = _raw(store)
    since, until, tz = PERIODS[0]
    client = TestClient(create_app(ReadStore(sqlite_url, table_name)))
    params = {"since": since, "until": until, "tz": tz}
    page = client.get("/", params=params).text
    assert 'data-src="/api/counts?by=username' in page and 'data-src="/api/groups?by=username' not in page
    got = client.get("/api/counts", params={**params, "by": "username", "limit": 1000}).json()
    assert {c["value"]: c["interactions"] for c in got} == dict(_want(raw, make_period(since, until, tz),
                                                                      "username", {}))
    assert "no column 'nope'" in client.get("/api/counts", params={"by": "nope"}).json()["error"]
