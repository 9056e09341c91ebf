"""The seed's ``_write_to_azure_sql``: its wrapper's dict shape, and False (logged) for every failure."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import configure_default, read_rows

from wonkalytics.analytics import _write_to_azure_sql
from wonkalytics.recorder import default_recorder

from .conftest import Setup

SEED_ITEM = {  # what the seed's OpenAIWrapper handed _write_to_azure_sql after a chat
    "function_name": "openai.ChatCompletion.create",
    "provider_type": "openai",
    "args": [],
    "kwargs": {
        "model": "gpt-4-1106-preview", "temperature": 1, "max_tokens": 4096, "top_p": 1,
        "frequency_penalty": 0.5, "presence_penalty": 0.5, "stream": True,
        "messages": [
            {"role": "system", "content": "Guess a number between 1 and 10."},
            {"role": "user", "content": "You must guess a number between 1 and 10."},
            {"role": "assistant", "content": "7"},
            {"role": "system", "content": "Respond very shortly."},
        ],
        "api_key": "sk-seed-secret-0123456789",
    },
    "tags": ["competence", "tests"],
    "request": {"name": "Ada", "level": "senior", "response_id": "chatcmpl-seed-1",
                "auth_info": {"clientPrincipal": {"userDetails": "ada@example.com", "claims": []}}},
    "request_start_time": 1700000000.0,
    "request_end_time": 1700000001.5,
}


def test_the_seed_wrapper_shape_renders_system_msg_and_messages_as_the_seed_did(wl: Setup) -> None:
    assert _write_to_azure_sql(SEED_ITEM) is True
    row = wl.one()
    assert row["system_msg"] == "Respond very shortly."  # the last system message
    # earlier system messages are in neither column (the seed's _map_messages_to_keyvals)
    assert row["messages"] == "user:\nYou must guess a number between 1 and 10.\n\nassistant:\n7\n\n"
    assert (row["model"], row["temperature"], row["max_tokens"], row["name"], row["email"]) == (
        "gpt-4-1106-preview", 1, 4096, "Ada", "ada@example.com")
    assert row["response_id"] == "chatcmpl-seed-1" and row["start_time"] == 1700000000.0
    assert "sk-seed-secret" not in repr(row)


def test_a_system_msg_given_plainly_wins(wl_sqlite: Setup) -> None:
    item = {"system_msg": "given", "kwargs": {"messages": [{"role": "system", "content": "rendered"},
                                                           {"role": "user", "content": "q"}]}}
    assert _write_to_azure_sql(item) is True
    row = wl_sqlite.one()
    assert (row["system_msg"], row["messages"]) == ("given", "user:\nq\n\n")


def test_a_seed_item_with_an_api_key_column_never_stores_the_key(
    sqlite_url: str, table_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table_name} (pk INTEGER PRIMARY KEY, model TEXT, api_key TEXT)"))
    engine.dispose()
    configure_default(sqlite_url, table_name, tmp_path / "spool")
    try:
        assert _write_to_azure_sql(SEED_ITEM) is True
        [row] = read_rows(sqlite_url, table_name, order_by="pk")
        assert row["model"] == "gpt-4-1106-preview" and row["api_key"] is None
    finally:
        default_recorder.shutdown(5)


@pytest.mark.parametrize("case", ["refused", "missing_driver", "no_matching_column", "not_a_dict"])
def test_every_failure_to_write_is_false_and_logged(
    case: str, tmp_path: Path, table_name: str, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = "Seed-Pw-987654"
    item: object = {"action": "seed", "username": "ada"}
    if case == "refused":
        configure_default(f"postgresql+psycopg://postgres:{password}@127.0.0.1:9/test", table_name,
                          tmp_path / "spool", connect_timeout=2)
    elif case == "missing_driver":
        for name, value in {"AZURE_SQL_SERVER": "tcp:127.0.0.1,9", "AZURE_SQL_DB": "db",
                            "AZURE_SQL_USER": "admin", "AZURE_SQL_PASSWORD": password}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("WONKALYTICS_DATABASE_URL", raising=False)
        monkeypatch.setitem(sys.modules, "pyodbc", None)
        default_recorder.configure(table=table_name, spool_dir=str(tmp_path / "spool"))
    else:
        configure_default(f"sqlite:///{tmp_path / 'x.db'}", table_name, tmp_path / "spool")
        item = {"nothing_matches": 1} if case == "no_matching_column" else ["not", "a", "dict"]
    try:
        with caplog.at_level(logging.ERROR, logger="wonkalytics"):
            assert _write_to_azure_sql(item) is False  # type: ignore[arg-type]
        assert "not written" in caplog.text
        assert password not in caplog.text
    finally:
        default_recorder.shutdown(5)
