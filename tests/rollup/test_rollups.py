"""Rollups rebuilt from the table equal independent SQL over the raw rows, on every database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.read.seed import START, seed_rows

from wonkalytics.store import rollups
from wonkalytics.store.engine import dispose_engines
from wonkalytics.store.migrations import plan_upgrade, upgrade
from wonkalytics.store.rollup_model import DAY, HOUR, LEVELS, QUARTER, grain_names
from wonkalytics.store.rollups import Rollup, probe_levels, rebuild, rollup_tables
from wonkalytics.store.sketch import ALPHA, Sketch
from wonkalytics.store.sql import TableStore


@pytest.fixture(autouse=True)
def _dispose() -> Iterator[None]:
    yield
    dispose_engines()


def _seed(url: str, name: str) -> tuple[sa.Engine, sa.Table]:
    store = TableStore(url, name)
    store.create_table()
    store.insert_many(seed_rows())
    return store.engine, store.table


def _exact_quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    rank = q * (len(s) - 1)
    low = int(rank)
    return s[low] if low == rank else s[low] + (s[low + 1] - s[low]) * (rank - low)


def test_upgrade_creates_the_rollup_tables_once(db_url: str, table_name: str) -> None:
    engine, _ = _seed(db_url, table_name)
    plans = {p.step: p for p in upgrade(engine, table_name)}
    assert len(plans["m007_rollup_tables"].statements) == 2   # two tables (keyed by the bucket first: no index)
    names = set(sa.inspect(engine).get_table_names())
    assert {f"{table_name}_rollup", f"{table_name}_rollup_users"} <= names
    # the day level, the per-model tables and the users per tenant / status
    assert len(plans["m008_rollup_levels"].statements) == 10
    assert {f"{table_name}_rollup_day", f"{table_name}_rollup_day_users", f"{table_name}_rollup_model",
            f"{table_name}_rollup_day_model_users", f"{table_name}_rollup_day_by_status_users",
            f"{table_name}_rollup_by_tenant_id_users"} <= set(sa.inspect(engine).get_table_names())
    # the hour level: full keys and per model, users, per model and per tenant / status
    assert len(plans["m010_rollup_hours"].statements) == 6
    assert {f"{table_name}_rollup_hour", f"{table_name}_rollup_hour_users", f"{table_name}_rollup_hour_model",
            f"{table_name}_rollup_hour_model_users", f"{table_name}_rollup_hour_by_status_users",
            f"{table_name}_rollup_hour_by_tenant_id_users"} <= set(sa.inspect(engine).get_table_names())
    again = {p.step: p for p in upgrade(engine, table_name)}
    assert again["m007_rollup_tables"].statements == [] and again["m008_rollup_levels"].statements == []
    assert again["m010_rollup_hours"].statements == []
    assert plans["m011_rollup_bucket_first"].statements == []   # created keyed by the bucket first


def test_the_catalogue_and_the_probes_agree_on_which_rollups_exist(db_url: str, table_name: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    engine, table = _seed(db_url, table_name)
    upgrade(engine, table_name)
    keeper = Rollup(table)
    for level in keeper.levels:   # the names probe_levels looks for are the tables Rollup builds
        assert grain_names(table_name, level, keeper.names[1:]) == [
            t.name for t in (*keeper.models[level], *keeper.by[level].values())]

    def both() -> tuple[object, object]:
        with engine.connect() as conn:
            listed = probe_levels(conn, table)
            with monkeypatch.context() as m:   # as for a table the catalogue listing does not show
                m.setattr(rollups, "_catalogue", lambda conn, table: None)
                probed = probe_levels(conn, table)
        return listed, probed

    assert both() == (((), LEVELS, True),) * 2
    with engine.begin() as conn:
        keeper.by[DAY][1].drop(conn)   # one users-per-dimension table gone: no per-model reads
    assert both() == (((), LEVELS, False),) * 2
    with engine.begin() as conn:
        keeper.tables[HOUR][1].drop(conn)   # the hour level's users gone: no hour level
    assert both() == (((), (QUARTER, DAY), False),) * 2
    with engine.begin() as conn:
        for target in reversed(keeper.all_tables()):
            target.drop(conn, checkfirst=True)
    assert both() == (None, None)


def test_rollup_ddl_compiles_for_sql_server() -> None:
    from sqlalchemy.dialects import mssql

    table = sa.Table("t", sa.MetaData(), sa.Column("timestamp", sa.DateTime), sa.Column("model", sa.String(50)))
    plan = next(p for p in plan_upgrade(table, mssql.dialect()) if p.step == "m007_rollup_tables")
    assert "CREATE TABLE t_rollup (" in plan.statements[0] and "DATETIME2" in plan.statements[0]
    assert "IF NOT EXISTS" not in plan.statements[0]
    assert "PRIMARY KEY (bucket, key_hash)" in plan.statements[0] and "UNIQUE (key_hash)" in plan.statements[0]
    # a rollup table of an earlier release, keyed by key_hash alone: re-keyed, clustered by the bucket first
    table.info["rollup_keys"] = {"t_rollup_hour": ("PK__t_rollup__1", ["key_hash"], False),
                                 "t_rollup": (None, ["bucket", "key_hash"], True)}
    rekey = next(p for p in plan_upgrade(table, mssql.dialect()) if p.step == "m011_rollup_bucket_first")
    assert rekey.statements == ["ALTER TABLE t_rollup_hour DROP CONSTRAINT [PK__t_rollup__1]",
                                "ALTER TABLE t_rollup_hour ADD PRIMARY KEY CLUSTERED (bucket, key_hash)",
                                "ALTER TABLE t_rollup_hour ADD UNIQUE (key_hash)"]


def test_rebuild_equals_sql_over_the_raw_rows(db_url: str, table_name: str) -> None:
    engine, table = _seed(db_url, table_name)
    assert rebuild(engine, table) == sum(1 for r in seed_rows() if r.get("model"))
    rollup, users = rollup_tables(table_name)
    c = table.c
    interactions = c.model.is_not(None)
    with engine.connect() as conn:
        want = conn.execute(sa.select(
            sa.func.count(), sa.func.sum(c.prompt_tokens), sa.func.sum(c.completion_tokens),
            sa.func.count(c.score), sa.func.sum(c.score), sa.func.min(c.score), sa.func.max(c.score),
            sa.func.sum(c.cost_usd), sa.func.count(sa.distinct(c.username)),
        ).where(interactions)).one()
        r = rollup.c
        got = conn.execute(sa.select(
            sa.func.sum(r.interactions), sa.func.sum(r.prompt_tokens), sa.func.sum(r.completion_tokens),
            sa.func.sum(r.scored), sa.func.sum(r.score_sum), sa.func.min(r.score_min), sa.func.max(r.score_max),
            sa.func.sum(r.cost_usd),
        )).one()
        distinct = conn.execute(sa.select(sa.func.count(sa.distinct(users.c.username)))).scalar_one()
        by_status = dict(conn.execute(
            sa.select(c.status, sa.func.count()).where(interactions).group_by(c.status)).all())
        got_status = dict(conn.execute(sa.select(r.status, sa.func.sum(r.interactions)).group_by(r.status)).all())
        durations = [float(v) for (v,) in conn.execute(sa.select(c.duration_ms).where(interactions))]
        sketches = [s for (s,) in conn.execute(sa.select(r.duration_sketch))]
    assert [int(v) for v in got[:4]] == [int(v) for v in want[:4]]
    assert float(got[4]) == pytest.approx(float(want[4]))
    assert (float(got[5]), float(got[6])) == (float(want[5]), float(want[6]))
    assert float(got[7]) == pytest.approx(float(want[7]))
    assert distinct == want[8]
    assert {k: int(v) for k, v in got_status.items()} == by_status
    merged = Sketch()
    for text in sketches:
        merged.merge(Sketch.loads(text))
    for q in (0.5, 0.95):
        exact = _exact_quantile(durations, q)
        got_q = merged.quantile(q)
        assert got_q is not None and abs(got_q - exact) <= ALPHA * exact


def test_rebuild_since_recomputes_only_the_later_buckets(db_url: str, table_name: str) -> None:
    engine, table = _seed(db_url, table_name)
    rebuild(engine, table)
    rollup, _ = rollup_tables(table_name)
    cut = START + timedelta(days=2)
    late: dict[str, Any] = {"event_id": "late", "timestamp": cut + timedelta(hours=1), "model": "gpt-4o",
                            "status": "ok", "prompt_tokens": 3}
    old: dict[str, Any] = {"event_id": "old", "timestamp": START, "model": "gpt-4o", "status": "ok"}
    with engine.begin() as conn:   # written by another tool: the writer's upkeep never saw them
        conn.execute(sa.insert(table), [late, {**old, "prompt_tokens": None}])
    rebuild(engine, table, since=cut)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.sum(rollup.c.interactions))).scalar_one()
    # the late row in the rebuilt range counts; the old one, before --since, waits for a full rebuild
    assert int(total) == sum(1 for r in seed_rows() if r.get("model")) + 1


def test_cli_rebuild_keys_by_the_rollup_fields_setting(db_url: str, table_name: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from wonkalytics.cli import app

    engine, _ = _seed(db_url, table_name)
    upgrade(engine, table_name)          # the rollup tables without app fields
    monkeypatch.setenv("WONKALYTICS_ROLLUP_FIELDS", "language")
    result = CliRunner().invoke(app, ["rollup", "--rebuild", "--database-url", db_url, "--table", table_name])
    assert result.exit_code == 0, result.output
    interactions = [r for r in seed_rows() if r.get("model")]
    assert f"rebuilt from {len(interactions)} interactions" in result.output
    rollup, _ = rollup_tables(table_name, fields=("language",))
    with engine.connect() as conn:
        got = dict(conn.execute(sa.select(rollup.c.language, sa.func.sum(rollup.c.interactions))
                                .group_by(rollup.c.language)).all())
    want: dict[Any, int] = {}
    for r in interactions:
        want[r["language"]] = want.get(r["language"], 0) + 1
    assert {k: int(v) for k, v in got.items()} == want
    refused = CliRunner().invoke(app, ["rollup", "--database-url", db_url, "--table", table_name])
    assert refused.exit_code == 1 and "--rebuild" in refused.output


def test_rollup_fields_setting_refuses_a_bad_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from wonkalytics.errors import ConfigurationError
    from wonkalytics.settings import load_settings

    monkeypatch.setenv("WONKALYTICS_ROLLUP_FIELDS", "language, level")
    assert load_settings().rollup_fields == ("language", "level")
    monkeypatch.setenv("WONKALYTICS_ROLLUP_FIELDS", "language;drop")
    with pytest.raises(ConfigurationError, match="rollup_fields"):
        load_settings()
