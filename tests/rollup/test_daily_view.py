"""``<table>_daily`` over the rollups equals independent arithmetic over the raw rows, on every database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from tests.rollup.test_reads import _prepared, _raw, _rows

from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.views import create_views, rollups_readable, view_names


@pytest.fixture(autouse=True)
def _dispose() -> Iterator[None]:
    yield
    dispose_engines()


def _day(value: Any) -> str:
    return str(value)[:10]


def test_the_daily_view_reads_the_rollups(db_url: str, table_name: str) -> None:
    store = _prepared(db_url, table_name, ())
    store.insert_many(_rows(500, seed=5))
    assert rollups_readable(store.engine, store.table)
    daily, _calls = create_views(store.engine, store.table)
    try:
        want: dict[tuple[str, str, Any], dict[str, Any]] = {}
        for r in _raw(store):
            if r["model"] is None:
                continue
            w = want.setdefault((_day(r["timestamp"]), r["model"], r["tenant_id"]),
                                {"interactions": 0, "users": set(), "errors": 0, "scores": [], "tokens": 0})
            w["interactions"] += 1
            w["errors"] += r["status"] == "error"
            w["tokens"] += r["prompt_tokens"] or 0
            if r["username"] is not None:
                w["users"].add(r["username"])
            if r["score"] is not None:
                w["scores"].append(float(r["score"]))
        with store.engine.connect() as conn:
            got = [dict(x) for x in conn.execute(sa.text(f"SELECT * FROM {daily}")).mappings()]
            assert len(got) == len(want)
            for g in got:
                w = want[(_day(g["day"]), g["model"], g["tenant_id"])]
                assert (int(g["interactions"]), int(g["users"]), int(g["errors"]), int(g["prompt_tokens"])) == (
                    w["interactions"], len(w["users"]), w["errors"], w["tokens"])
                assert int(g["scored"]) == len(w["scores"])
                if w["scores"]:
                    assert float(g["avg_score"]) == pytest.approx(sum(w["scores"]) / len(w["scores"]))
                else:
                    assert g["avg_score"] is None
        # the additive figures come from the day level: the quarter hours emptied, the same view;
        # the day rows emptied, an empty view
        with store.engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {table_name}_rollup"))
        with store.engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {daily}")).scalar_one() == len(want)
        with store.engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {table_name}_rollup_day"))
        with store.engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {daily}")).scalar_one() == 0
    finally:
        with store.engine.begin() as conn:
            for view in view_names(store.table):
                conn.execute(sa.text(f"DROP VIEW IF EXISTS {view}"))
