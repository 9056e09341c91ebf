"""The text search with its index returns exactly the rows of the plain scan, on every database.

Rows are written before the upgrade (the index must be filled from them), after it (the SQLite
triggers, PostgreSQL's and MariaDB's index maintenance), then updated and deleted; every needle is
compared against the plain condition (the search's meaning, store/search.py) evaluated as a scan.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql
from tests.store.helpers import run_sql

from wonkalytics.store.migrations import STEPS, plan_upgrade, upgrade
from wonkalytics.store.queries import Filters, ReadStore, make_period
from wonkalytics.store.search import SearchIndex, detect, fulltext_words, plain_condition, search_condition
from wonkalytics.store.sql import TableStore

START = datetime(2026, 3, 2, 9, 0)
TEXTS = [
    ("You are terse.", "user:\nthe growth clear summary please\n\n", "Growth is CLEAR in the summary."),
    ("You are terse.", "user:\noutgrowth clearly\n\n", "a clear summary and report of growth"),
    (None, "user:\n100% sure a_b c\\d\n\n", "50% off_limits back\\slash"),
    ("Réponds en français.", "user:\nÉCOLE naïve café\n\n", "l'école est fermée"),
    ("Be kind", 'user:\nsay "hi" and \'bye\'\n\n', "naïve CAFÉ"),
    ("System", "user:\nthe report is on the table\n\n", None),
    ("Système", None, "résumé: growth clear concise answer"),
    ("ab", "user:\nxyzzy summary and report here\n\n", "nothing"),
]
NEEDLES = ["growth", "GROWTH clear", "clear summary", "the growth clear summary please", "summary and report",
           "a clear summary and report of", "%", "_", "\\", "50%", "a_b", "c\\d", "off_", "ab", "a", "é", "É",
           "école", "ÉCOLE", "naïve café", "CAFÉ", '"hi"', "'bye'", "the report is on", "zzz not there",
           "  ", "résumé", "user:\nthe", "xyzzy summary and report here", "is on the"]


def _rows(first: int, count: int) -> list[dict[str, Any]]:
    rows = []
    for n in range(first, first + count):
        system, messages, response = TEXTS[n % len(TEXTS)]
        rows.append({"event_id": f"s-{n}", "timestamp": START + timedelta(minutes=n), "model": "gpt-4o",
                     "status": "ok", "system_msg": system, "messages": messages, "response": response})
    return rows


def _found(reader: ReadStore, needle: str) -> set[str]:
    period = make_period("2026-03-01", "2026-03-05")
    page = reader.interactions(period, Filters(text=needle), page_size=500)
    assert page.total == len(page.rows)
    return {str(r["key"]) for r in page.rows}


def _scanned(url: str, table: str, needle: str, columns: tuple[str, ...] = ("system_msg", "messages", "response"),
             key: str = "row_pk") -> set[str]:
    engine = sa.create_engine(url)
    try:
        t = sa.Table(table, sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            query = sa.select(t.c[key]).where(plain_condition([t.c[c] for c in columns], needle))
            return {str(k) for k in conn.execute(query).scalars()}
    finally:
        engine.dispose()


def test_indexed_search_equals_the_plain_scan(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    store.create_table()
    store.insert_many(_rows(0, 24))                     # before the upgrade
    plans = {p.step: p for p in upgrade(store.engine, table_name)}
    assert plans["m009_search_index"].statements, plans["m009_search_index"]
    assert not plans["m009_search_index"].attention
    store.insert_many(_rows(24, 24))                    # after: kept by triggers / index maintenance
    run_sql(db_url,
             f"UPDATE {table_name} SET response = 'now a clear summary and report too' WHERE event_id = 's-5'",
             f"UPDATE {table_name} SET messages = NULL WHERE event_id = 's-1'",
             f"DELETE FROM {table_name} WHERE event_id = 's-8'")
    again = {p.step: p for p in upgrade(store.engine, table_name)}
    assert not again["m009_search_index"].statements  # re-runnable

    reader = ReadStore(db_url, table_name)
    index = reader.search_index()
    assert index.kind == {"sqlite": "fts5", "postgresql": "trigram", "mariadb": "fulltext"}[reader.dialect], index
    for needle in NEEDLES:
        expected = _scanned(db_url, table_name, needle)
        assert _found(reader, needle) == expected, needle
    # row_pk n + 1 is event s-n (a fresh table counts from 1)
    assert "6" in _found(reader, "clear summary and report too")  # the updated row is found by its new text
    assert "2" not in _found(reader, "outgrowth")                # ... and no longer by its old one
    assert "9" not in _found(reader, "xyzzy")                    # the deleted row is gone
    if reader.dialect == "postgresql":
        # Small tables are scanned by the planner: force the GIN indexes and compare again.
        with reader.reading() as conn:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            table = reader.table
            columns = [table.c.system_msg, table.c.messages, table.c.response]
            for needle in NEEDLES:
                query = sa.select(table.c.row_pk).where(search_condition(table, columns, needle, "postgresql", index))
                assert {str(k) for k in conn.execute(query).scalars()} == _scanned(db_url, table_name, needle)
            plan = "\n".join(conn.execute(sa.text(
                f"EXPLAIN SELECT row_pk FROM {table_name} WHERE response ILIKE :p"), {"p": "%growth%"}).scalars())
            assert "_trgm" in plan, plan


def test_the_index_narrows_the_query_on_sqlite_and_mariadb(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    store.create_table()
    upgrade(store.engine, table_name)
    reader = ReadStore(db_url, table_name)
    table = reader.table
    columns = [table.c.system_msg, table.c.messages, table.c.response]
    dialect = store.engine.dialect

    def sql(needle: str) -> str:
        return str(search_condition(table, columns, needle, reader.dialect, reader.search_index())
                   .compile(dialect=dialect))

    if reader.dialect == "sqlite":
        assert "MATCH" in sql("growth") and "MATCH" not in sql("gr")   # < 3 characters: the scan
    elif reader.dialect == "mariadb":
        assert "MATCH" in sql("the growth clear summary") and "MATCH" not in sql("growth")
    else:
        assert "ILIKE" in sql("growth")


def test_a_team_table_through_the_column_map(db_url: str, table_name: str) -> None:
    run_sql(db_url, f"CREATE TABLE {table_name} (id INTEGER PRIMARY KEY, ts TIMESTAMP NULL, model VARCHAR(40), "
                     "Prompt_Text TEXT, answer_text TEXT)")
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            for n, (_, messages, response) in enumerate(TEXTS):
                conn.execute(sa.text(f"INSERT INTO {table_name} (id, ts, model, Prompt_Text, answer_text) "
                                     "VALUES (:i, :t, 'm', :p, :a)"),
                             {"i": n + 1, "t": START + timedelta(minutes=n), "p": messages, "a": response})
    finally:
        engine.dispose()
    column_map = {"messages": "prompt_text", "response": "answer_text", "timestamp": "ts"}
    engine = sa.create_engine(db_url)
    try:
        plans = {p.step: p for p in upgrade(engine, table_name, column_map=column_map)}
    finally:
        engine.dispose()
    assert plans["m009_search_index"].statements, plans["m009_search_index"].note
    reader = ReadStore(db_url, table_name, column_map)
    assert reader.search_index().kind is not None
    real = [c.name for c in reader.table.columns if c.name.casefold() in ("prompt_text", "answer_text")]
    for needle in NEEDLES:
        assert _found(reader, needle) == _scanned(db_url, table_name, needle, tuple(real), "id"), needle


def test_fulltext_words_keeps_only_words_whole_in_every_match() -> None:
    kwargs: dict[str, Any] = {"min_token": 3, "max_token": 84, "stopwords": frozenset({"the", "and"})}
    assert fulltext_words("growth", **kwargs) == []                        # may be inside "outgrowth"
    assert fulltext_words("growth clear", **kwargs) == []                  # "clear" may begin "clearly"
    assert fulltext_words("a clear summary and report", **kwargs) == ["clear", "summary"]
    assert fulltext_words("x an_b 50% it ok y", **kwargs) == []            # not plain words / too short
    assert fulltext_words(" summary ", **kwargs) == ["summary"]            # bounded by the needle's spaces
    assert fulltext_words("x\u00a0summary\u00a0y", **kwargs) == []         # only ASCII whitespace separates


def test_sql_server_has_no_index_and_the_search_compiles() -> None:
    table = sa.Table("t", sa.MetaData(), sa.Column("row_pk", sa.Integer, primary_key=True),
                     sa.Column("messages", sa.UnicodeText), sa.Column("response", sa.UnicodeText))
    plan = next(p for p in plan_upgrade(table, mssql.dialect()) if p.step == "m009_search_index")
    assert not plan.statements and "LIKE" in (plan.note or "")
    condition = search_condition(table, [table.c.messages, table.c.response], "50%_x", "mssql",
                                 SearchIndex(None))
    sql = str(sa.select(table.c.row_pk).where(condition).compile(dialect=mssql.dialect()))
    assert "LIKE" in sql and "ESCAPE" in sql


def test_migration_steps_are_counted() -> None:
    step = next(s for s in STEPS if s.name == "m009_search_index")
    assert step.probe is not None and [s.name for s in STEPS].index(step.name) == 8
    assert callable(detect)


@pytest.mark.parametrize("needle", ["", "ab"])
def test_short_needles_scan(needle: str) -> None:
    table = sa.Table("t", sa.MetaData(), sa.Column("row_pk", sa.Integer, primary_key=True),
                     sa.Column("response", sa.Text))
    condition = search_condition(table, [table.c.response], needle, "sqlite", SearchIndex("fts5", ("response",)))
    assert "MATCH" not in str(condition.compile())


def test_pg_trgm_without_the_privilege_says_what_to_run_and_search_still_answers(postgres_url: str) -> None:
    """A role without CREATE on its database: the upgrade names the superuser's statement; search scans."""
    from typer.testing import CliRunner

    from wonkalytics.cli import app
    from wonkalytics.store.engine import dispose_engines

    suffix = uuid.uuid4().hex[:10]
    role, database = f"wl_search_role_{suffix}", f"wl_search_db_{suffix}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    role_url = sa.make_url(postgres_url).set(username=role, database=database).render_as_string(hide_password=False)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            conn.exec_driver_sql(f"CREATE DATABASE {database}")  # without pg_trgm, CREATE only for its owner
        fresh = sa.create_engine(sa.make_url(postgres_url).set(database=database), isolation_level="AUTOCOMMIT")
        with fresh.connect() as conn:
            conn.exec_driver_sql(f"GRANT CREATE ON SCHEMA public TO {role}")  # tables, but no extension
        fresh.dispose()
        table = "wl_search_perm"
        store = TableStore(role_url, table)
        store.create_table()
        store.insert_many(_rows(0, 16))
        result = CliRunner().invoke(app, ["init", "--upgrade", "--database-url", role_url, "--table", table])
        assert result.exit_code == 0, result.output
        output = " ".join(result.output.split())
        assert "needs attention" in output and "superuser" in output, output
        assert "CREATE EXTENSION IF NOT EXISTS pg_trgm;" in output and database in output and role in output
        reader = ReadStore(role_url, table)
        assert reader.search_index().kind is None
        for needle in ("growth", "clear summary", "%", "é"):
            assert _found(reader, needle) == _scanned(role_url, table, needle), needle
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        admin.dispose()


def test_doctor_reports_the_search_index(db_url: str, table_name: str, tmp_path: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from wonkalytics.cli import app

    monkeypatch.setenv("WONKALYTICS_SPOOL_DIR", str(tmp_path / "spool"))
    runner = CliRunner()

    def check() -> dict[str, Any]:
        result = runner.invoke(app, ["doctor", "--json", "--database-url", db_url, "--table", table_name])
        return next(c for c in json.loads(result.output)["checks"] if c["name"] == "search index")

    TableStore(db_url, table_name).create_table()        # as the writer creates it: no search index
    absent = check()
    assert absent["status"] == "warn" and "init --upgrade" in absent["fix"], absent
    assert runner.invoke(app, ["init", "--upgrade", "--database-url", db_url, "--table", table_name]).exit_code == 0
    present = check()
    assert present["status"] == "ok" and present["detail"], present


def test_a_prefilter_finding_too_many_rows_is_left_out(db_url: str, table_name: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from wonkalytics.store import search

    store = TableStore(db_url, table_name)
    store.create_table()
    store.insert_many(_rows(0, 24))
    upgrade(store.engine, table_name)
    reader = ReadStore(db_url, table_name)
    table, index = reader.table, reader.search_index()
    columns = [table.c.system_msg, table.c.messages, table.c.response]
    needle = "a clear summary and report of"  # in 3 of the 24 rows; MariaDB prefilters on "clear summary"
    monkeypatch.setattr(search, "CANDIDATES_MAX", 2)
    with reader.reading() as conn:
        sql = str(search_condition(table, columns, needle, reader.dialect, index, conn)
                  .compile(dialect=store.engine.dialect))
    assert "MATCH" not in sql
    assert _found(reader, needle) == _scanned(db_url, table_name, needle) and len(_found(reader, needle)) == 3
    monkeypatch.setattr(search, "CANDIDATES_MAX", 3)
    with reader.reading() as conn:
        sql = str(search_condition(table, columns, needle, reader.dialect, index, conn)
                  .compile(dialect=store.engine.dialect))
    assert ("MATCH" in sql) == (reader.dialect != "postgresql")
