"""configure() and the environment: every mistake is caught where it is made, with a fix to act on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.conftest import configure_default, read_rows

import wonkalytics
from wonkalytics.errors import ConfigurationError
from wonkalytics.recorder import Recorder, default_recorder
from wonkalytics.settings import check_database_url, load_settings

PASSWORD = "Sup3r-s3cret-pw"


# -- unknown keywords ------------------------------------------------------------------------------


@pytest.mark.parametrize(("typo", "meant"), [
    ("databse_url", "database_url"), ("tabel", "table"), ("colum_map", "column_map"),
    ("durabilty", "durability"), ("spooldir", "spool_dir"), ("sample_rat", "sample_rate"),
])
def test_a_misspelled_keyword_is_a_type_error_with_the_close_match(typo: str, meant: str) -> None:
    with pytest.raises(TypeError) as info:
        wonkalytics.configure(**{typo: "x"})
    message = str(info.value)
    assert f"unexpected keyword argument {typo!r}" in message
    assert f"did you mean {meant!r}?" in message
    assert "database_url" in message and "durability" in message  # the valid names are listed


def test_a_keyword_with_no_close_match_still_lists_the_valid_names() -> None:
    with pytest.raises(TypeError, match=r"'colour'; valid keywords: .*database_url"):
        wonkalytics.configure(colour="blue")


def test_the_cli_loader_rejects_unknown_keywords_too() -> None:
    with pytest.raises(TypeError, match="did you mean 'table'"):
        load_settings(tabel="x")


# -- database URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    (f"postgressql+psycopg://app:{PASSWORD}@db/analytics", "did you mean postgresql+psycopg://?"),
    (f"postgresql+psycopq://app:{PASSWORD}@db/analytics", "did you mean postgresql+psycopg://?"),
    (f"mysq+pymysql://app:{PASSWORD}@db/analytics", "did you mean mysql+pymysql://?"),
    (f"postgres://app:{PASSWORD}@db/analytics", "write postgresql+psycopg://"),
    (f"mysql://app:{PASSWORD}@db/analytics", "use mysql+pymysql://"),
    (f"postgresql+asyncpg://app:{PASSWORD}@db/analytics", "use postgresql+psycopg://"),
    (f"oracle://app:{PASSWORD}@db/analytics", "SQLite, PostgreSQL, MySQL/MariaDB and SQL Server"),
    (f"nosuchdb://app:{PASSWORD}@db/analytics", "unknown database URL scheme 'nosuchdb'"),
])
def test_a_bad_url_is_refused_by_configure_with_a_hint(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        wonkalytics.configure(database_url=url)
    assert expected in str(info.value)
    assert PASSWORD not in str(info.value)
    assert info.value.__cause__ is None  # the parser's message (which may quote the URL) is not chained


def test_postgres_and_mysql_hints_name_exactly_one_extra() -> None:
    for url, extra in (("postgres://u@h/d", "postgres"), ("mysql://u@h/d", "mysql")):
        with pytest.raises(ConfigurationError) as info:
            check_database_url(url)
        message = str(info.value)
        assert f"pip install 'wonkalytics[{extra}]'" in message
        assert message.count("wonkalytics[") == 1


@pytest.mark.parametrize(("url", "module", "extra"), [
    ("mysql+pymysql://root@127.0.0.1/test", "pymysql", "mysql"),
    ("mariadb+pymysql://root@127.0.0.1/test", "pymysql", "mysql"),
    ("postgresql+psycopg://postgres@127.0.0.1/test", "psycopg", "postgres"),
    ("mssql+pyodbc://sa:pw@server/db?driver=ODBC+Driver+18+for+SQL+Server", "pyodbc", "mssql"),
    ("mssql+pymssql://sa:pw@server/db", "pymssql", "pymssql"),
])
def test_a_missing_driver_names_the_one_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what Python does for a module that is not installed
    with pytest.raises(ConfigurationError) as info:
        wonkalytics.configure(database_url=url)
    message = str(info.value)
    assert f"is not installed: pip install 'wonkalytics[{extra}]'" in message
    assert message.count("wonkalytics[") == 1


def test_a_driver_that_is_installed_but_cannot_load_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(cls: object) -> None:  # pyodbc present, its system library (unixODBC) absent
        raise ImportError("libodbc.so.2: cannot open shared object file")

    monkeypatch.setattr("sqlalchemy.dialects.mssql.pyodbc.MSDialect_pyodbc.import_dbapi", classmethod(fail))
    with pytest.raises(ConfigurationError, match=r"installed but cannot load \(libodbc\.so\.2.*ODBC Driver 18"):
        check_database_url("mssql+pyodbc://sa:pw@server/db")


def test_good_urls_pass() -> None:
    for url in ("sqlite:///x.db", "sqlite://", "postgresql+psycopg://u:p@h/d", "postgresql://u:p@h/d",
                "mysql+pymysql://u:p@h/d", "mariadb+pymysql://u:p@h/d"):
        check_database_url(url)


def test_a_url_from_the_environment_is_checked_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WONKALYTICS_DATABASE_URL", f"postgressql+psycopg://app:{PASSWORD}@db/analytics")
    with pytest.raises(ConfigurationError, match="did you mean postgresql") as info:
        Recorder().settings  # noqa: B018 - the property reads the environment
    assert PASSWORD not in str(info.value)


def test_the_seed_azure_variables_are_not_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed reports a missing pyodbc by _write_to_azure_sql returning False, so loading must not raise."""
    for name, value in {"AZURE_SQL_SERVER": "tcp:x.database.windows.net", "AZURE_SQL_DB": "db",
                        "AZURE_SQL_USER": "admin", "AZURE_SQL_PASSWORD": PASSWORD}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, "pyodbc", None)
    assert load_settings().url().drivername == "mssql+pyodbc"


# -- the column map ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "problem"), [
    ("{not json", "not valid JSON"),
    ('{"response": "answer",}', "not valid JSON"),
    ('["response", "answer"]', "must be a JSON object"),
    ('"response=answer"', "must be a JSON object"),
    ('{"response": 3}', "both strings"),
    ('{"response": {"column": "answer"}}', "both strings"),
    ('{"response": ""}', "not a plain SQL column name"),
    ('{"response": "answer; DROP TABLE x"}', "not a plain SQL column name"),
])
def test_a_bad_column_map_variable_names_the_variable_and_the_problem(
    monkeypatch: pytest.MonkeyPatch, raw: str, problem: str
) -> None:
    monkeypatch.setenv("WONKALYTICS_COLUMN_MAP", raw)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "WONKALYTICS_COLUMN_MAP" in str(info.value) and problem in str(info.value)
    assert "SettingsError" not in str(info.value)


def test_team_column_names_with_spaces_reserved_words_and_umlauts_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WONKALYTICS_COLUMN_MAP", '{"username": "user name", "level": "order", "notes": "Größe"}')
    assert load_settings().column_map == {"username": "user name", "level": "order", "notes": "Größe"}


def test_a_bad_column_map_keyword_names_the_keyword() -> None:
    with pytest.raises(ConfigurationError, match="column_map must be a JSON object"):
        load_settings(column_map=["response"])


# -- table names, switches ---------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"table": "t" * 64}, "64 characters long; at most 63"),
    ({"table": "analytics." + "t" * 70}, "70 characters long"),
    ({"table": "my-table"}, "not a plain SQL identifier"),
    ({"sample_rate": 1.5}, "sample_rate"),
    ({"sample_rate": -0.1}, "sample_rate"),
    ({"queue_size": 0}, "queue_size"),
    ({"durability": "cloud"}, "durability"),
    ({"redact": "emial"}, "did you mean 'email'"),
    ({"redact": 42}, "redact must be a callable"),
    ({"redact": ["email", "ssn"]}, "unknown redactor 'ssn'"),
])
def test_bad_values_are_configuration_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        wonkalytics.configure(**options)


def test_switches_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WONKALYTICS_ENABLED", "false")
    monkeypatch.setenv("WONKALYTICS_SAMPLE_RATE", "0.25")
    monkeypatch.setenv("WONKALYTICS_REDACT", "email, phone")
    settings = load_settings()
    assert (settings.enabled, settings.sample_rate, settings.redact) == (False, 0.25, ("email", "phone"))
    monkeypatch.setenv("WONKALYTICS_ENABLED", "maybe")
    with pytest.raises(ConfigurationError, match="enabled"):
        load_settings()


def test_a_redact_callable_is_kept() -> None:
    def scrub(row: dict[str, object]) -> dict[str, object]:
        return row

    assert load_settings(redact=scrub).redact == (scrub,)


def test_a_failed_configure_leaves_the_previous_configuration_working(
    sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    configure_default(sqlite_url, table_name, tmp_path / "spool")
    try:
        wonkalytics.log(action="before")
        for bad in ({"table": "x" * 80}, {"database_url": "postgres://u@h/d"}, {"tabel": "other"},
                    {"column_map": "{oops"}):
            with pytest.raises((ConfigurationError, TypeError)):
                wonkalytics.configure(**bad)  # type: ignore[arg-type]
        wonkalytics.log(action="after")
        assert wonkalytics.flush(10)
        assert [row["action"] for row in read_rows(sqlite_url, table_name, order_by="timestamp")] == [
            "before", "after"]
        assert default_recorder.settings.table == table_name
    finally:
        default_recorder.shutdown(5)
