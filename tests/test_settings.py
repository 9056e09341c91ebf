"""Configuration from the environment and from configure(); secrets never leak."""

from __future__ import annotations

import pytest

from wonkalytics.errors import ConfigurationError
from wonkalytics.settings import DEFAULT_TABLE, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("WONKALYTICS_", "AZURE_SQL_", "AZURE_TABLE")):
            monkeypatch.delenv(name)


def test_defaults_are_sqlite_in_the_working_directory() -> None:
    settings = load_settings()
    assert str(settings.url()) == "sqlite:///wonkalytics.db"
    assert settings.table == DEFAULT_TABLE and settings.durability == "memory" and settings.column_map == {}


def test_environment_and_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WONKALYTICS_DATABASE_URL", "postgresql+psycopg://app:pw@db/analytics")
    monkeypatch.setenv("WONKALYTICS_COLUMN_MAP", '{"response": "answer", "username": "user_name"}')
    monkeypatch.setenv("WONKALYTICS_DURABILITY", "disk")
    monkeypatch.setenv("WONKALYTICS_SPOOL_DIR", "/var/spool/wl")
    settings = load_settings()
    assert settings.url().host == "db" and settings.column_map == {"response": "answer", "username": "user_name"}
    assert settings.durability == "disk" and str(settings.spool_dir) == "/var/spool/wl"
    assert load_settings(table="calls", durability="memory").table == "calls"  # keywords win


@pytest.mark.parametrize(("options", "message"), [
    ({"table": "a b"}, "not a plain SQL identifier"),
    ({"column_map": '{"response": "answer; --"}'}, "not a plain SQL column name"),
    ({"column_map": "{not json"}, "must be a JSON object"),
    ({"durability": "cloud"}, "durability"),
    ({"database_url": "not a url"}, "not a valid SQLAlchemy URL"),
])
def test_bad_settings_say_what_is_wrong(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(**options)


def test_a_password_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(database_url="postgresql+psycopg://app:Tr0ub4dor@db/analytics")
    assert "Tr0ub4dor" not in repr(settings) and "Tr0ub4dor" not in str(settings)
    assert "Tr0ub4dor" not in settings.safe_url()
    with pytest.raises(ConfigurationError) as error:
        load_settings(database_url="postgresql+psycopg://app:Tr0ub4dor@db:notaport/analytics")
    assert "Tr0ub4dor" not in str(error.value)
    monkeypatch.setenv("AZURE_SQL_SERVER", "tcp:x.database.windows.net,1433")
    monkeypatch.setenv("AZURE_SQL_DB", "db")
    monkeypatch.setenv("AZURE_SQL_USER", "admin")
    monkeypatch.setenv("AZURE_SQL_PASSWORD", "Tr0ub4dor")
    azure = load_settings()
    assert "Tr0ub4dor" not in repr(azure) and "Tr0ub4dor" not in azure.safe_url()


def test_seed_connection_options_shape_the_azure_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AZURE_SQL_SERVER": "tcp:x.database.windows.net", "AZURE_SQL_DB": "db",
                        "AZURE_SQL_USER": "admin", "AZURE_SQL_PASSWORD": "pw"}.items():
        monkeypatch.setenv(name, value)
    url = load_settings(encrypt="no", trust_server_certificate="yes", connection_timeout=5).url()
    assert url.port == 1433
    assert (url.query["Encrypt"], url.query["TrustServerCertificate"], url.query["Connection Timeout"]) == (
        "no", "yes", "5")
