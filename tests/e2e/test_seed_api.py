"""The seed README's examples, run as written, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import configure_default, read_rows

from wonkalytics.recorder import Recorder, default_recorder

AUTH_INFO = {
    "clientPrincipal": {
        "claims": [
            {"typ": "iss", "val": "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0"},
            {"typ": "name", "val": "Test username"},
            {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "user-1"},
            {"typ": "preferred_username", "val": "test@testmail.eu"},
            {"typ": "http://schemas.microsoft.com/identity/claims/tenantid",
             "val": "11111111-2222-3333-4444-555555555555"},
            {"typ": "ver", "val": "2.0"},
        ],
        "identityProvider": "aad",
        "userDetails": "test@testmail.eu",
        "userId": "user-1",
        "userRoles": ["authenticated", "anonymous"],
    }
}


@pytest.fixture
def seeded(db_url: str, table_name: str, tmp_path: Path) -> Any:
    recorder = configure_default(db_url, table_name, tmp_path / "spool")
    yield recorder, db_url, table_name
    default_recorder.shutdown(5)


def test_simple_analytics_log(seeded: tuple[Recorder, str, str]) -> None:
    from wonkalytics.analytics import _write_to_azure_sql

    _, url, table = seeded
    log_item = {
        "username": "logging_test",
        "action": "test_log",
        "timestamp": datetime.now(),
        "tenant_id": "test_tenant_id",
        "email": "logtestmail@wonka.com",
    }
    assert _write_to_azure_sql(log_item) is True
    [row] = read_rows(url, table, order_by="timestamp")
    assert (row["username"], row["action"], row["tenant_id"], row["email"]) == (
        "logging_test", "test_log", "test_tenant_id", "logtestmail@wonka.com")
    stored = row["timestamp"]  # SQLite hands plain SQL a string
    stored = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
    assert abs((stored - log_item["timestamp"]).total_seconds()) < 1


def test_nested_dicts_prefixes_and_auth_info(seeded: tuple[Recorder, str, str]) -> None:
    from wonkalytics.analytics import _write_to_azure_sql

    _, url, table = seeded
    item = {
        "action": "nested",
        "request": {"response_id": "chatcmpl-nested", "name": "Ada", "auth_info": AUTH_INFO},
        "kwargs": {"temperature": 0.5, "model": "gpt-4o"},
        "unknown_key": "ignored",
    }
    assert _write_to_azure_sql(item) is True
    [row] = read_rows(url, table, order_by="timestamp")
    assert row["response_id"] == "chatcmpl-nested" and row["name"] == "Ada"
    assert (row["temperature"], row["model"]) == (0.5, "gpt-4o")
    assert (row["username"], row["email"], row["tenant_id"]) == (
        "Test username", "test@testmail.eu", "11111111-2222-3333-4444-555555555555")
    assert row["timestamp"] is not None


def test_score_and_update_row_property(seeded: tuple[Recorder, str, str]) -> None:
    from wonkalytics.analytics import score, update_row_property

    recorder, url, table = seeded
    response_id = "chatcmpl-8jnIJAkEKBQJn5cs7QCJ1wIcBaII2"
    recorder.log(action="chat", response_id=response_id)  # queued: score must wait for it
    assert score(response_id, 100) is True
    assert score(response_id, 100) is True  # same value again still "a row was updated"
    assert update_row_property(response_id, "notes", "property_value") is True
    assert score("chatcmpl-unknown", 5) is False
    with pytest.raises(ValueError, match="property_name") as error:
        update_row_property(response_id, "property_name", "property_value")
    assert table in str(error.value)
    [row] = read_rows(url, table, order_by="timestamp")
    assert (row["score"], row["notes"]) == (100, "property_value")


def test_an_injection_through_a_column_name_raises_and_leaves_the_table_intact(
    seeded: tuple[Recorder, str, str],
) -> None:
    from wonkalytics.analytics import update_row_property

    recorder, url, table = seeded
    recorder.log(action="chat", response_id="r1", notes="keep me")
    assert recorder.flush(10)
    for name in (f"score = 1; DROP TABLE {table}; --", "score=0 WHERE 1=1 --", "notes\"", "[score]"):
        with pytest.raises(ValueError):
            update_row_property("r1", name, 1)
    [row] = read_rows(url, table, order_by="timestamp")
    assert row["notes"] == "keep me" and row["score"] is None
    # values are bound parameters: SQL in a value is stored literally
    assert update_row_property("r1", "notes", f"'; DROP TABLE {table}; --") is True
    [row] = read_rows(url, table, order_by="timestamp")
    assert row["notes"] == f"'; DROP TABLE {table}; --"


def test_a_record_with_no_matching_column_returns_false_and_says_why(
    seeded: tuple[Recorder, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    from wonkalytics.analytics import _write_to_azure_sql

    # The seed promises False (never an exception) for every failure to write.
    assert _write_to_azure_sql({"colour": "blue", "shape": "round"}) is False
    assert "none of the fields colour" in caplog.text


def test_unreachable_database_returns_false_and_never_logs_the_password(
    table_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from wonkalytics.analytics import _write_to_azure_sql, score

    configure_default("postgresql+psycopg://app:S3cr3t-pw@127.0.0.1:1/analytics", table_name, tmp_path / "spool")
    try:
        with caplog.at_level(logging.DEBUG, logger="wonkalytics"):
            assert _write_to_azure_sql({"action": "x"}) is False
            assert score("r1", 1) is False
    finally:
        default_recorder.shutdown(0.2)
    assert "127.0.0.1:1" in caplog.text or "analytics" in caplog.text
    assert "S3cr3t-pw" not in caplog.text
    assert "S3cr3t-pw" not in repr(default_recorder.settings)


def test_seed_environment_builds_the_azure_sql_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from wonkalytics.settings import load_settings

    for name, value in {"AZURE_SQL_SERVER": "tcp:wonka.database.windows.net,1433", "AZURE_SQL_DB": "analytics",
                        "AZURE_SQL_USER": "admin", "AZURE_SQL_PASSWORD": "p@ss;w0rd",
                        "AZURE_TABLE_NAME": "itzu_analytics"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WONKALYTICS_DATABASE_URL", raising=False)
    monkeypatch.delenv("WONKALYTICS_TABLE", raising=False)
    settings = load_settings()
    url = settings.url()
    assert url.drivername == "mssql+pyodbc" and url.host == "wonka.database.windows.net" and url.port == 1433
    assert url.password == "p@ss;w0rd" and url.query["driver"] == "ODBC Driver 18 for SQL Server"
    assert url.query["Encrypt"] == "yes" and url.query["TrustServerCertificate"] == "no"
    assert settings.table == "itzu_analytics"
    assert "p@ss;w0rd" not in settings.safe_url() and "p@ss;w0rd" not in repr(settings)
    monkeypatch.setenv("WONKALYTICS_TABLE", "explicit")
    assert load_settings().table == "explicit"


def test_mssql_statements_compile(table_name: str) -> None:
    from wonkalytics.store.sql import TableStore

    ddl = TableStore("mssql+pyodbc://u:p@h/db?driver=x", table_name, create=False).ddl("mssql")
    assert "NVARCHAR(max)" in ddl and "FLOAT(53)" in ddl and "CREATE" in ddl and "response_id" in ddl
    assert "p@h" not in ddl
    assert sa.dialects.mssql.dialect().name == "mssql"
