"""The default table: the seed's columns and types, plus ours; DDL per dialect, compiled without a server."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from wonkalytics.errors import ConfigurationError, UnknownColumnError
from wonkalytics.store.dialects import DDL_DIALECTS, ddl_statements, dialect_for, insert_plan
from wonkalytics.store.schema import DEFAULT_COLUMNS, ROW_KEY, column_kind, default_table, schema_markdown
from wonkalytics.store.sql import TableStore, update_statement

SEED_COLUMNS = [
    "id", "action", "username", "tenant_id", "email", "timestamp", "system_msg", "messages", "model",
    "provider_type", "temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty",
    "response_id", "response_system_fingerprint", "start_time", "end_time", "score", "name", "gender",
    "competence", "level", "fixed_test_results", "free_test_results", "motivation_summary", "other_notes",
    "tone", "response_type", "language", "position", "carreer_notes", "test_results", "notes", "summary",
]
OUR_COLUMNS = [
    "response", "prompt_tokens", "completion_tokens", "total_tokens", "status", "error", "ttft_ms",
    "duration_ms", "metadata", "tags", "event_id",
    "finish_reason", "cached_tokens", "reasoning_tokens", "cost_usd", "pl_request_id",
]
KINDS = {c.name: c.kind for c in DEFAULT_COLUMNS}
PYODBC_LIKE = mssql.dialect(paramstyle="qmark")  # what pyodbc would use, without pyodbc


def test_columns_are_the_seeds_then_ours_in_order() -> None:
    assert [c.name for c in DEFAULT_COLUMNS] == [ROW_KEY, *SEED_COLUMNS, *OUR_COLUMNS]
    assert all(c.description for c in DEFAULT_COLUMNS)


def test_seed_types_are_kept() -> None:
    floats = {"temperature", "top_p", "frequency_penalty", "presence_penalty", "start_time", "end_time"}
    ints = {"max_tokens", "prompt_tokens", "completion_tokens", "total_tokens", ROW_KEY,
            "cached_tokens", "reasoning_tokens"}
    # score is a float since 0.2: the seed documents it as one, and 87.6 must read back as 87.6.
    assert {n for n, k in KINDS.items() if k == "float"} == floats | {"ttft_ms", "duration_ms", "score", "cost_usd"}
    assert {n for n, k in KINDS.items() if k == "int"} == ints
    assert {n for n, k in KINDS.items() if k == "datetime"} == {"timestamp"}
    table = default_table("t")
    for name in floats:
        assert table.c[name].type.compile(dialect=mssql.dialect()) == "FLOAT(53)"


def test_markdown_table_lists_every_column() -> None:
    markdown = schema_markdown()
    lines = markdown.strip().splitlines()
    assert lines[0] == "| Column | Kind | SQL Server type | Description |"
    assert len(lines) == 2 + len(DEFAULT_COLUMNS)
    assert "| `response_id` | text | NVARCHAR(255) |" in markdown
    assert "| `messages` | text | NVARCHAR(max) |" in markdown
    assert "| `temperature` | float | FLOAT(53) |" in markdown


@pytest.mark.parametrize(
    ("type_", "kind"),
    [
        (sa.Integer(), "int"),
        (sa.BigInteger(), "int"),
        (sa.SmallInteger(), "int"),
        (sa.Float(53), "float"),
        (sa.Double(), "float"),
        (sa.Numeric(10, 2), "float"),
        (sa.DateTime(), "datetime"),
        (sa.Date(), "datetime"),
        (sa.Boolean(), "bool"),
        (sa.UnicodeText(), "text"),
        (sa.String(10), "text"),
        (sa.JSON(), "text"),
        (mssql.BIT(), "bool"),
    ],
)
def test_column_kind(type_: sa.types.TypeEngine[object], kind: str) -> None:
    assert column_kind(type_) == kind


def _ddl(dialect: str, table: str = "wl_interactions") -> str:
    return "\n".join(ddl_statements(default_table(table), dialect))


def _column_line(ddl: str, column: str) -> str:
    match = re.search(rf"^\s*`?{column}`? (.*?),?\s*$", ddl, re.MULTILINE)
    assert match, f"no column {column} in\n{ddl}"
    return match.group(1)


def test_mssql_ddl() -> None:
    ddl = _ddl("mssql")
    assert _column_line(ddl, "messages") == "NVARCHAR(max) NULL"
    assert _column_line(ddl, "response") == "NVARCHAR(max) NULL"
    assert _column_line(ddl, "response_id").startswith("NVARCHAR(255)")
    assert _column_line(ddl, "event_id").startswith("NVARCHAR(128)")
    assert _column_line(ddl, "id").startswith("NVARCHAR(255)")
    assert _column_line(ddl, "status") == "NVARCHAR(32) NULL"
    assert _column_line(ddl, "temperature") == "FLOAT(53) NULL"
    assert _column_line(ddl, "score") == "FLOAT(53) NULL"
    assert _column_line(ddl, "timestamp").startswith("DATETIME2")
    assert _column_line(ddl, ROW_KEY) == "BIGINT NOT NULL IDENTITY"
    assert "NTEXT" not in ddl and " TEXT" not in ddl
    assert "CREATE INDEX ix_wl_interactions_response_id ON wl_interactions (response_id)" in ddl
    # UNIQUE on SQL Server allows one NULL only: a filtered unique index instead of a constraint.
    assert (
        "CREATE UNIQUE INDEX ux_wl_interactions_event_id ON wl_interactions (event_id) "
        "WHERE event_id IS NOT NULL"
    ) in ddl
    assert "CONSTRAINT" not in ddl


@pytest.mark.parametrize(
    ("dialect", "long_text", "double"),
    [
        ("sqlite", "TEXT", "FLOAT"),
        ("postgresql", "TEXT", "FLOAT(53)"),
        ("mysql", "LONGTEXT", "FLOAT(53)"),
        ("mariadb", "LONGTEXT", "FLOAT(53)"),
    ],
)
def test_ddl_of_other_dialects(dialect: str, long_text: str, double: str) -> None:
    ddl = _ddl(dialect)
    assert _column_line(ddl, "messages") == long_text
    assert _column_line(ddl, "response_id").startswith("VARCHAR(255)")
    assert _column_line(ddl, "temperature") == double
    assert "CONSTRAINT ux_wl_interactions_event_id UNIQUE (event_id)" in ddl
    assert "CREATE INDEX ix_wl_interactions_response_id ON wl_interactions (response_id)" in ddl
    if dialect in ("mysql", "mariadb"):
        assert "CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci" in ddl
        assert "ENGINE=InnoDB" in ddl
        assert "utf8mb4_bin" in _column_line(ddl, "response_id")  # ids compare case-sensitively


def test_long_table_names_give_short_index_names() -> None:
    name = "t" * 63
    for statement in ddl_statements(default_table(name), "postgresql"):
        for index_name in re.findall(r"(?:INDEX|CONSTRAINT) (\w+)", statement):
            assert len(index_name) <= 60


def test_table_store_ddl_needs_no_connection() -> None:
    store = TableStore("mssql+pyodbc://sa:pw@nowhere.invalid/db", "analytics.interactions", create=False)
    ddl = store.ddl("mssql")
    assert ddl.startswith("CREATE TABLE analytics.interactions (")
    assert ddl.count(";") == 4  # table, response_id index, timestamp index, unique event_id
    assert set(DDL_DIALECTS) == {"sqlite", "postgresql", "mysql", "mariadb", "mssql"}
    with pytest.raises(ConfigurationError, match="sqlite, postgresql, mysql, mariadb, mssql"):
        store.ddl("oracle")
    assert store.ddl("postgres") == store.ddl("postgresql") == store.ddl("postgresql+psycopg")
    assert store.ddl("MSSQL") == ddl


def test_mssql_dedupe_insert_compiles_to_insert_select_where_not_exists() -> None:
    table = default_table("wl")
    plan = insert_plan(table, {"event_id", "response_id", "score"}, dialect_for("mssql"), "event_id")
    sql = " ".join(str(plan.statement.compile(dialect=PYODBC_LIKE)).split())
    assert sql == (
        "INSERT INTO wl (response_id, score, event_id) SELECT ? AS anon_1, ? AS anon_2, ? AS anon_3 "
        "WHERE NOT (EXISTS (SELECT 1 FROM wl WITH (UPDLOCK, HOLDLOCK) WHERE wl.event_id = ?))"
    )
    assert plan.count == "preselect"


def test_rows_without_event_id_are_plain_inserts_everywhere() -> None:
    table = default_table("wl")
    for name in DDL_DIALECTS:
        plan = insert_plan(table, {"response_id"}, dialect_for(name), "event_id")
        assert plan.count == "all"
        assert str(plan.statement.compile(dialect=dialect_for(name))).startswith("INSERT INTO wl")


@pytest.mark.parametrize(
    ("dialect", "clause"),
    [
        ("sqlite", "ON CONFLICT (event_id) DO NOTHING"),
        ("postgresql", "ON CONFLICT (event_id) DO NOTHING RETURNING wl.event_id"),
        ("mysql", "ON DUPLICATE KEY UPDATE event_id = wl.event_id"),
        ("mariadb", "ON DUPLICATE KEY UPDATE event_id = wl.event_id"),
    ],
)
def test_dedupe_clause_per_dialect(dialect: str, clause: str) -> None:
    d = dialect_for(dialect)
    plan = insert_plan(default_table("wl"), {"event_id", "score"}, d, "event_id")
    sql = str(plan.statement.compile(dialect=d, column_keys=["event_id", "score"]))
    assert sql.endswith(clause)
    assert "IGNORE" not in sql


def test_mssql_update_is_bound_parameters() -> None:
    statement = update_statement(default_table("wl"), "response_id", "chatcmpl-1", "score", 100)
    compiled = statement.compile(dialect=PYODBC_LIKE)
    assert str(compiled) == "UPDATE wl SET score=? WHERE wl.response_id = ?"
    assert [compiled.params[name] for name in compiled.positiontup or ()] == [100, "chatcmpl-1"]


def test_update_statement_refuses_a_null_key() -> None:
    with pytest.raises(ValueError, match="NULL"):
        update_statement(default_table("wl"), "response_id", None, "score", 1)


def test_update_statement_refuses_unknown_columns() -> None:
    with pytest.raises(UnknownColumnError, match="no column 'score = 1; --'"):
        update_statement(default_table("wl"), "response_id", "x", "score = 1; --", 1)
    with pytest.raises(UnknownColumnError):
        update_statement(default_table("wl"), "response_id OR 1=1", "x", "score", 1)
