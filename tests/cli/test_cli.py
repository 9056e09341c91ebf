"""The ``wonkalytics`` command line, run as users run it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from wonkalytics import __version__
from wonkalytics.cli import _Group, app, example
from wonkalytics.errors import StoreError

runner = CliRunner()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "AZURE_", "OPENAI_"))}


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None, module: str = "wonkalytics"
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env={**_env(), **(env or {})},
                          capture_output=True, text=True, timeout=120, check=False)


def _one_paragraph(text: str) -> str:
    return " ".join(text.split())


def test_init_creates_the_table_once(sqlite_url: str, table_name: str) -> None:
    first = runner.invoke(app, ["init", "--database-url", sqlite_url, "--table", table_name])
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    second = runner.invoke(app, ["init", "--database-url", sqlite_url, "--table", table_name])
    assert second.exit_code == 0 and "already exists" in second.output
    engine = sa.create_engine(sqlite_url)
    try:
        columns = {column["name"] for column in sa.inspect(engine).get_columns(table_name)}
    finally:
        engine.dispose()
    assert {"response_id", "score", "event_id", "response", "messages"} <= columns


def test_init_print_sql_shows_ddl_for_each_dialect_without_connecting(table_name: str) -> None:
    for dialect, marker in [("mssql", "NVARCHAR(max)"), ("postgresql", "TEXT"), ("mysql", "LONGTEXT"),
                            ("sqlite", "CREATE TABLE")]:
        result = runner.invoke(app, ["init", "--print-sql", "--dialect", dialect, "--table", table_name,
                                     "--database-url", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x"])
        assert result.exit_code == 0, result.output
        assert marker in result.output and "CREATE INDEX" in result.output.upper()
        assert "hunter2" not in result.output


def test_init_reports_a_bad_table_name_clearly() -> None:
    result = runner.invoke(app, ["init", "--table", "x; DROP TABLE y"])
    assert result.exit_code != 0
    assert "not a plain SQL identifier" in _one_paragraph(result.output)


def test_version(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"wonkalytics {__version__}"
    for module in ("wonkalytics", "wonkalytics.cli"):  # python -m wonkalytics is the same command line
        done = _cli("--version", cwd=tmp_path, module=module)
        assert done.returncode == 0 and done.stdout.strip() == f"wonkalytics {__version__}", done.stderr


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if hasattr(command, "commands"):  # a group (Typer vendors its own click classes)
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


@pytest.mark.parametrize("path", _commands(typer.main.get_command(app)), ids=lambda p: " ".join(p) or "root")
def test_every_help_shows_an_example_and_no_bool_placeholder(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "wonkalytics " + " ".join(path) in result.output
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output


def test_every_command_is_checked() -> None:
    assert {"demo", "init", "fake-openai"} <= {p[0] for p in _commands(typer.main.get_command(app)) if p}


def test_example_keeps_each_line() -> None:
    assert example("a", "b").endswith("\n  a\n  b")


def _app_that_raises(exc: Exception) -> typer.Typer:
    broken = typer.Typer(cls=_Group, rich_markup_mode=None)

    @broken.callback()
    def root(debug: bool = typer.Option(False, "--debug")) -> None:
        """Root."""

    @broken.command("boom")
    def boom() -> None:
        raise exc

    return broken


def test_brackets_in_messages_print_verbatim_in_one_paragraph() -> None:
    odbc = ("[unixODBC][Driver Manager]Can't open lib 'ODBC Driver 18 for SQL Server' : file not found; "
            "pip install 'wonkalytics[mssql]'")
    result = runner.invoke(_app_that_raises(StoreError(odbc)), ["boom"], terminal_width=60)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {odbc}"  # verbatim, one line (soft-wrapped), no traceback


def test_an_unexpected_error_is_one_paragraph_and_debug_shows_the_traceback() -> None:
    crash = _app_that_raises(RuntimeError("disk [sda1] full\n  detail line"))
    result = runner.invoke(crash, ["boom"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == ("error: RuntimeError: disk [sda1] full (Run `wonkalytics --debug boom ...` "
                                     "to see the traceback.)")
    debug = runner.invoke(crash, ["--debug", "boom"])
    assert isinstance(debug.exception, RuntimeError)  # re-raised: the traceback is shown


def test_demo_runs_offline_into_the_default_sqlite_file(tmp_path: Path) -> None:
    done = _cli("demo", "--delay-ms", "0", cwd=tmp_path, module="wonkalytics.cli")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "aborted" in done.stdout and "average score" in done.stdout
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'wonkalytics.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT status, score, username FROM wonkalytics_interactions ORDER BY row_pk")).all()
    finally:
        engine.dispose()
    assert [row.status for row in rows] == ["ok", "ok", "aborted", None]
    assert [row.score for row in rows] == [100, 80, None, None]
    assert rows[1].username == "Grace Hopper"  # read from the Easy Auth header


def test_demo_streams_quietly_and_says_what_to_do_next(tmp_path: Path) -> None:
    """With the default token delay the aborted chat hangs up mid-stream: the server must not complain."""
    for _ in range(2):  # the second run finds older rows and still shows only the last few
        done = _cli("demo", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr  # no BrokenPipeError traceback from the bundled server
    out = _one_paragraph(done.stdout)
    assert "the last 4 rows" in out and "8 rows in total" in out
    assert "wonkalytics.wrap(openai.OpenAI())" in out and "WONKALYTICS_DATABASE_URL=" in out
    assert "pip install 'wonkalytics[postgres]'" in out
    assert "wonkalytics stats" in out and "wonkalytics dashboard" in out


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql+psycopg://postgres:Pw-s3cret@127.0.0.1:9/test", "Connection refused"),
    ("mssql+pyodbc://sa:Pw-s3cret@127.0.0.1:9/db?driver=ODBC+Driver+18+for+SQL+Server",
     "pip install 'wonkalytics[mssql]'"),
    ("postgres://postgres:Pw-s3cret@127.0.0.1:9/test", "write postgresql+psycopg://"),
])
def test_demo_with_a_broken_database_ends_in_one_clear_paragraph(tmp_path: Path, url: str, expected: str) -> None:
    if "pyodbc" in url and importlib.util.find_spec("pyodbc") is not None:
        pytest.skip("the missing-driver path needs pyodbc to be absent")
    done = _cli("demo", "--delay-ms", "0", cwd=tmp_path, env={"WONKALYTICS_DATABASE_URL": url})
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    paragraph = done.stderr.strip()
    assert paragraph.startswith("error: ") and "\n" not in paragraph, paragraph
    assert expected in paragraph and "Pw-s3cret" not in done.stdout + done.stderr


def test_fake_openai_command_is_listed() -> None:
    result = runner.invoke(app, ["fake-openai", "--help"])
    assert result.exit_code == 0 and "--port" in result.output


def test_recent_rows_reads_only_the_last_few(sqlite_url: str, table_name: str) -> None:
    from wonkalytics.store.recent import recent_rows
    from wonkalytics.store.sql import TableStore

    store = TableStore(sqlite_url, table_name)
    store.insert_many([{"event_id": str(n), "action": f"a{n}"} for n in range(50)])
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert [row["action"] for row in recent_rows(store, 3)] == ["a47", "a48", "a49"]
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert selects and all("LIMIT" in s.upper() for s in selects)


@pytest.mark.parametrize("command", [
    "init",
    "doctor", "demo",
])
def test_the_install_hint_prints_verbatim(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("pyodbc") is not None:
        pytest.skip("the missing-driver path needs pyodbc to be absent")
    url = "mssql+pyodbc://sa:Pw-s3cret@127.0.0.1:9/db"
    args = [command] if command == "demo" else [command, "--database-url", url]
    done = _cli(*args, cwd=tmp_path, env={"WONKALYTICS_DATABASE_URL": url, "COLUMNS": "200"})
    assert "pip install 'wonkalytics[mssql]'" in _one_paragraph(done.stdout + done.stderr)
    assert "Pw-s3cret" not in done.stdout + done.stderr
