"""The writer's batched rollup upkeep (store/rollup_batch.py): few statements a batch, the same figures
as a rebuild on every database (PostgreSQL's one-statement writes included), and its fallbacks."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tests.rollup.test_incremental import _prepared, _row, _snapshot, ops_st, rows_st

from wonkalytics.store import rollup_batch
from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.rollups import rebuild
from wonkalytics.store.sketch import Sketch
from wonkalytics.store.sql import TableStore


@pytest.fixture(autouse=True)
def _dispose() -> Iterator[None]:
    yield
    dispose_engines()


def _statements(store: TableStore, rows: list[dict[str, Any]]) -> int:
    """How many statements ``insert_many(rows)`` sends (the COPY of PostgreSQL's bulk path is not one)."""
    seen: list[str] = []

    def count(*_: Any) -> None:
        seen.append("x")

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        store.insert_many(rows)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    return len(seen)


# The extra statements of a steady-state batch (every rollup row exists): SQLite looks up the batch's ids
# and every level's rows in one statement (after the write lock) and writes table by table; PostgreSQL
# looks up and writes in one statement each. Before store/rollup_batch.py: 18 (SQLite) and 17
# (PostgreSQL): the ids, then one look-up and one write per table. The hour level (m010) adds 6 on
# SQLite (its 2 rollup tables and 4 users tables) and none on PostgreSQL.
EXTRA = {"sqlite": 20, "postgresql": 2}


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.db)])
def test_a_batch_keeps_every_level_in_a_few_statements(dialect: str, request: pytest.FixtureRequest,
                                                      table_name: str) -> None:
    url = request.getfixturevalue("sqlite_url" if dialect == "sqlite" else "postgres_url")
    plain = TableStore(url, f"{table_name}_p")
    plain.create_table()
    store, _ = _prepared(url, table_name)
    try:
        first = [_row(n, 1, "a", f"u{n % 3}", "ok", 2.0, 10.0 * n) for n in range(40)]
        assert store.insert_many(first) == 40   # creates the rollup rows of every level
        assert plain.insert_many(first) == 40
        again = [_row(100 + n, 2, "a", f"u{n % 3}", "ok", 4.0, 5.0 * n) for n in range(40)]
        extra = _statements(store, again) - _statements(plain, again)
        assert extra <= EXTRA[dialect]
    finally:
        with plain.engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table_name}_p"))


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows_st, ops_st)
@pytest.mark.db
def test_incremental_equals_rebuilt_on_postgresql(postgres_url: str, table_name: str, spec: list[Any],
                                                  ops: list[Any]) -> None:
    """The random workloads of test_incremental on PostgreSQL: its one-statement look-up and writes."""
    from tests.conftest import _drop

    _drop(postgres_url, table_name)
    store, engine = _prepared(postgres_url, table_name)
    rows = [_row(n, *s) for n, s in enumerate(spec)]
    store.insert_many(rows[: len(rows) // 2])
    store.insert_many(rows[len(rows) // 2:])
    for op, n, value in ops:
        if op == "score":
            store.update_where("response_id", f"r-{n}", "score", value)
        elif op == "user":
            store.update_where("response_id", f"r-{n}", "username", None if value is None else f"u{value}")
        else:   # a retried batch whose first rows landed already
            store.insert_many([*rows[: n % (len(rows) + 1)], _row(1000 + n, n, "a", "u9", "ok", None, 1.0)])
    incremental = _snapshot(engine, table_name)
    rebuild(engine, store.table)
    assert incremental == _snapshot(engine, table_name)


def test_an_infinite_cost_is_written_table_by_table(db_url: str, table_name: str) -> None:
    """JSON has no Infinity: PostgreSQL's one-statement write gives way to the per-table statements."""
    store, engine = _prepared(db_url, table_name)
    rows = [_row(n, n, "a", "u1", "ok", 1.0, 3.0) for n in range(6)]
    store.insert_many(rows[:3])
    rows[4]["cost_usd"] = math.inf
    if engine.dialect.name in ("mysql", "mariadb"):
        rows[4]["cost_usd"] = 1e300   # MariaDB's DOUBLE holds no infinity: a huge value instead
    store.insert_many(rows[3:])
    incremental = _snapshot(engine, table_name)
    rebuild(engine, store.table)
    assert incremental == _snapshot(engine, table_name)


@pytest.mark.parametrize("count", [3, 1200])
def test_held_finds_exactly_the_stored_ids(db_url: str, table_name: str, count: int) -> None:
    """The batch's id look-up (one list parameter on SQLite / PostgreSQL, chunks elsewhere)."""
    store, engine = _prepared(db_url, table_name)
    store.insert_many([_row(n, n % 50, "a", "u", "ok", None, None) for n in range(0, count, 2)])
    ids = [f"ev-{n}" for n in range(count)] + ["it's \"quoted\"", "ünï"]
    with engine.connect() as conn:
        held = rollup_batch.held_ids(conn, store.table, "event_id", ids)
    assert held == {f"ev-{n}" for n in range(0, count, 2)}


@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6)), max_size=40),
       st.sampled_from([1, -1, 3]))
def test_add_values_is_add_per_value(values: list[float], times: int) -> None:
    one_by_one = Sketch()
    added = 0
    for value in values:
        if 0 <= value < math.inf:
            one_by_one.add(float(value), times)
            added += 1
    many = Sketch()
    assert many.add_values([float(v) for v in values], times) == added
    assert many == one_by_one


@pytest.mark.parametrize("dialect", ["mssql", "mysql", "sqlite", "postgresql"])
def test_the_per_table_statements_compile_on_every_dialect(dialect: str) -> None:
    """SQL Server is checked by compiling: every rollup and users table's statements, and the look-up."""
    from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite

    from wonkalytics.store.rollups import Rollup
    from wonkalytics.store.schema import default_table

    compiler = {"mssql": mssql, "mysql": mysql, "sqlite": sqlite, "postgresql": postgresql}[dialect].dialect()
    keeper = Rollup(default_table("wl_compile"), fields=("language",))
    users_keys = {"users": ("bucket", "username"), "model_users": ("bucket", "model", "username")}
    for target in keeper.all_tables():
        keys = users_keys.get(target.name.removeprefix("wl_compile_rollup_").removeprefix("day_"),
                              ("bucket", "value", "username"))
        sql = rollup_batch.TableStatements(target, dialect, keys)
        texts = [str(s.compile(dialect=compiler)) for s in (sql.lookup, sql.update, sql.insert, sql.upsert,
                                                              sql.returning) if s is not None]
        assert all(target.name in text for text in texts)
        if "key_hash" in target.c:
            # SQLAlchemy renders no lock for SQL Server (its SELECT has no FOR UPDATE; as before this change)
            assert "key_hash" in texts[0] and ("FOR UPDATE" in texts[0]) == (dialect in ("postgresql", "mysql"))
        else:
            assert (sql.upsert is None) == (dialect == "mssql")
