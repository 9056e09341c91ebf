"""The writer's rollups (kept in the insert's / update's transaction) equal a rebuild from the table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from wonkalytics.store import rollup_keeper
from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.migrations import upgrade
from wonkalytics.store.rollup_model import LEVELS, dimension_users, model_tables
from wonkalytics.store.rollups import rebuild, rollup_tables
from wonkalytics.store.sql import TableStore

START = datetime(2026, 3, 28, 23, 50)


@pytest.fixture(autouse=True)
def _dispose() -> Iterator[None]:
    yield
    dispose_engines()


def _row(n: int, minute: int, model: str | None, user: str | None, status: str, score: float | None,
         duration: float | None) -> dict[str, Any]:
    return {"event_id": f"ev-{n}", "response_id": f"r-{n}", "timestamp": START + timedelta(minutes=minute),
            "model": model, "username": user, "tenant_id": "t" if n % 2 else None, "status": status,
            "score": score, "duration_ms": duration, "ttft_ms": None if duration is None else duration / 3,
            "prompt_tokens": n % 17, "completion_tokens": n % 5, "total_tokens": n % 17 + n % 5,
            "cost_usd": None if n % 3 == 0 else n / 1e6}


def _snapshot(engine: sa.Engine, name: str) -> list[tuple[list[Any], ...]]:
    """Every level's rollup rows and user counts (the day level too: it must equal a rebuild as well)."""
    out = []
    for level in LEVELS:
        rollup, users = rollup_tables(name, level=level)
        r = rollup.c
        with engine.connect() as conn:
            rows = conn.execute(sa.select(r.key_hash, r.bucket, r.interactions, r.errors, r.aborted, r.prompt_tokens,
                                          r.total_tokens, r.priced, r.scored, r.score_min, r.score_max, r.score_hist,
                                          r.duration_sketch, r.ttft_sketch, r.timed, r.score_sum, r.cost_usd)
                                .order_by(r.key_hash)).all()
            people = conn.execute(sa.select(users.c.bucket, users.c.username, users.c.n)
                                  .order_by(users.c.bucket, users.c.username)).all()
        # float sums: the order of additions differs between upkeep and rebuild (last-bit differences only)
        shaped = [(*x[:-2], None if x[-2] is None else round(float(x[-2]), 6),
                   None if x[-1] is None else round(float(x[-1]) * 1e6, 3)) for x in rows]
        out.append((shaped, [tuple(x) for x in people]))
        rows_m, users_m = model_tables(name, level=level)
        with engine.connect() as conn:
            m = rows_m.c
            models = conn.execute(sa.select(m.key_hash, m.bucket, m.model, m.interactions, m.scored, m.score_hist,
                                            m.duration_sketch, m.ttft_sketch, m.timed).order_by(m.key_hash)).all()
            people_m = conn.execute(sa.select(users_m).order_by(*users_m.primary_key.columns)).all()
            by_dim = [tuple(x) for dim in ("tenant_id", "status") for x in conn.execute(
                sa.select(dimension_users(name, level=level, dim=dim)).order_by(sa.text("bucket, value, username")))]
        out.append(([tuple(x) for x in models], [tuple(x) for x in people_m], by_dim))
    return out


def _prepared(url: str, name: str) -> tuple[TableStore, sa.Engine]:
    store = TableStore(url, name)
    store.create_table()
    upgrade(store.engine, name)
    rollup_keeper.forget(store.table)
    return store, store.engine


rows_st = st.lists(
    st.tuples(st.one_of(st.integers(0, 120), st.integers(-1500, 3000)), st.sampled_from(["a", "b", None]),
              st.sampled_from(["u1", "u2", None]),
              st.sampled_from(["ok", "error", "aborted"]), st.one_of(st.none(), st.sampled_from([1.0, 2.5, 5.0])),
              st.one_of(st.none(), st.floats(0, 5000))),
    min_size=1, max_size=25)
ops_st = st.lists(st.tuples(st.sampled_from(["score", "replay", "user", "duration"]), st.integers(0, 30),
                            st.sampled_from([0.0, 3.0, 4.5, None])), max_size=15)


@settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows_st, ops_st)
def test_incremental_equals_rebuilt_on_random_workloads(tmp_path_factory: pytest.TempPathFactory,
                                                         spec: list[Any], ops: list[Any]) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('inc') / 'w.db'}"
    store, engine = _prepared(url, "wl_inc")
    rows = [_row(n, *s) for n, s in enumerate(spec)]
    half = len(rows) // 2
    store.insert_many(rows[:half])
    store.insert_many(rows[half:])
    for op, n, value in ops:
        target = f"r-{n}"
        if op == "score":
            store.update_where("response_id", target, "score", value)
        elif op == "duration":
            store.update_where("response_id", target, "duration_ms", None if value is None else value * 100)
        elif op == "user":
            store.update_where("response_id", target, "username", None if value is None else f"u{value}")
        else:   # a retried batch: its first rows landed already (lost COMMIT ack), the rest are new
            store.insert_many([*rows[: n % (len(rows) + 1)], _row(1000 + n, n, "a", "u9", "ok", None, 1.0)])
    incremental = _snapshot(engine, "wl_inc")
    rebuild(engine, store.table)
    assert incremental == _snapshot(engine, "wl_inc")
    engine.dispose()


def test_replays_and_double_score_changes_on_every_database(db_url: str, table_name: str) -> None:
    store, engine = _prepared(db_url, table_name)
    rows = [_row(n, n * 7, "a" if n % 3 else "b", f"u{n % 4}", "ok", None, 10.0 * n) for n in range(40)]
    store.insert_many(rows)
    store.insert_many(rows[:25])                     # the same batch again: nothing lands twice
    late = _row(99, -600, "a", "late", "ok", 4.0, 1.0)   # into an hour long closed
    store.insert_many([late])
    for value in (3.0, 5.0):                         # a score changed twice
        assert store.update_where("response_id", "r-3", "score", value)
    assert store.update_where("response_id", "r-4", "username", "someone-else")
    incremental = _snapshot(engine, table_name)
    with engine.connect() as conn:
        for level in LEVELS:
            rollup, _ = rollup_tables(table_name, level=level)
            assert int(conn.execute(sa.select(sa.func.sum(rollup.c.interactions))).scalar_one()) == 41
    rebuild(engine, store.table)
    assert incremental == _snapshot(engine, table_name)


def test_a_table_without_rollup_tables_is_written_as_before(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    store.create_table()
    assert store.insert_many([_row(1, 0, "a", "u", "ok", 1.0, 2.0)]) == 1
    assert store.update_where("response_id", "r-1", "score", 2.0)
    assert f"{table_name}_rollup" not in sa.inspect(store.engine).get_table_names()


def _keyed_by_hash(table: sa.Table) -> sa.Table:
    """``table`` as releases before 0.5 created it: keyed by ``key_hash`` alone, the bucket indexed."""
    return sa.Table(table.name, sa.MetaData(), *[
        sa.Column(c.name, c.type, nullable=c.nullable, primary_key=c.name == "key_hash", index=c.name == "bucket",
                  server_default=None if c.server_default is None else c.server_default.arg)  # type: ignore[attr-defined]
        for c in table.columns], schema=table.schema, **table.dialect_kwargs)


def test_upgrade_rekeys_rollup_tables_keyed_by_hash_and_the_writer_keeps_them(db_url: str, table_name: str) -> None:
    store, engine = _prepared(db_url, table_name)
    for level in LEVELS:   # new tables: the bucket first, key_hash unique on its own
        rollup = rollup_tables(table_name, level=level)[0]
        assert sa.inspect(engine).get_pk_constraint(rollup.name)["constrained_columns"] == ["bucket", "key_hash"]
    old = [rollup_tables(table_name, level=level)[0] for level in LEVELS]
    old += [model_tables(table_name, level=level)[0] for level in LEVELS]
    with engine.begin() as conn:   # every keyed table as an earlier release left it
        for target in old:
            target.drop(conn)
            _keyed_by_hash(target).create(conn)
    rollup_keeper.forget(store.table)
    rows = [_row(n, n * 11, "a" if n % 3 else "b", f"u{n % 5}", "ok" if n % 4 else "error", None, 3.0 * n)
            for n in range(60)]
    store.insert_many(rows[:30])
    kept = _snapshot(engine, table_name)
    plan = next(p for p in upgrade(engine, table_name) if p.step == "m011_rollup_bucket_first")
    inspector = sa.inspect(engine)
    keys = [inspector.get_pk_constraint(t.name)["constrained_columns"] for t in old]
    if engine.dialect.name == "mysql":   # InnoDB keeps rows in key order: re-keyed, one ALTER a table
        assert len(plan.statements) == len(old) and keys == [["bucket", "key_hash"]] * len(old)
        for target in old:
            assert any(i["unique"] and i["column_names"] == ["key_hash"] for i in inspector.get_indexes(target.name))
    else:   # rows in insertion order already: left as they are, still unique by key_hash
        assert plan.statements == [] and keys == [["key_hash"]] * len(old)
    assert _snapshot(engine, table_name) == kept   # every row kept
    again = next(p for p in upgrade(engine, table_name) if p.step == "m011_rollup_bucket_first")
    assert again.statements == []
    rollup_keeper.forget(store.table)
    store.insert_many(rows[25:])                     # the writer upserts into the re-keyed tables (5 replayed)
    assert store.update_where("response_id", "r-7", "score", 4.0)
    incremental = _snapshot(engine, table_name)
    rebuild(engine, store.table)
    assert incremental == _snapshot(engine, table_name)
