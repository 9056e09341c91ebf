"""``wonkalytics doctor``: is everything in place for rows to land? Each check says what to fix.

Checks, in order (a failed one stops those that need it): the URL and its driver, the connection,
the table, its columns against the default schema (and the column map against the table), the
unique ``event_id``, the text search's index, write permission (an INSERT in a transaction that is
rolled back), the spool backlog and rejected ops, and each configured sink. Exit status 0 only when
every check is ``ok``; 1 when any check failed *or warned* (missing default columns, no ``event_id``
so retries can duplicate rows, a spool backlog, no search index, ...), as the contract says.
``--json`` prints ``ok``, the names of the checks that ``warned`` and ``failed``, and every check.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wonkalytics.errors import WonkalyticsError
from wonkalytics.settings import Settings, load_settings
from wonkalytics.store.fit import ColumnKind, column_index, fit_to_table, resolve_column
from wonkalytics.store.schema import DEFAULT_COLUMNS, ROW_KEY
from wonkalytics.store.sql import TableStore
from wonkalytics.writer.replay import spool_status

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def run_checks(settings: Settings) -> list[Check]:
    """Every check against ``settings``; never raises."""
    checks: list[Check] = []
    url = settings.safe_url()
    store = TableStore.from_settings(settings, create=False)
    try:
        engine = store.engine
    except WonkalyticsError as exc:
        checks.append(Check("url and driver", "fail", _first_line(exc), "install the driver named above"))
        return checks
    checks.append(Check("url and driver", "ok", f"{url} ({engine.dialect.name} via {engine.dialect.driver})"))
    try:
        store.ping()
    except Exception as exc:
        detail = _first_line(exc)
        checks.append(Check("connection", "fail", detail, "check host, port, credentials and firewall"))
        return checks
    checks.append(Check("connection", "ok", "the database answers"))

    if not store.exists():
        checks.append(Check("table", "fail", f"table {settings.table!r} does not exist",
                            "run `wonkalytics init`" + (" (or let the first write create it)"
                                                        if settings.create_table else "")))
        return checks
    checks.append(Check("table", "ok", f"{settings.table} exists"))
    columns = store.columns
    names = store.table.c.keys()
    column_map = settings.column_map
    folded = column_index(names)

    def column_of(name: str) -> str | None:  # the one rule: column map, exact, case-insensitive
        return resolve_column(name, names, column_map, folded=folded)

    mapped = {field: column for field, column in column_map.items() if column_of(field) is None}
    if mapped:
        checks.append(Check("column map", "fail", "maps onto missing columns: "
                            + ", ".join(f"{f}->{c}" for f, c in sorted(mapped.items())),
                            "fix WONKALYTICS_COLUMN_MAP (or add the columns)"))
    targets = [c.name for c in DEFAULT_COLUMNS if c.name != ROW_KEY]
    missing = sorted(name for name in targets if column_of(name) is None)
    if missing:
        checks.append(Check("columns", "warn", f"{len(missing)} of {len(targets)} default columns missing "
                            f"(those fields are not stored): {', '.join(missing)}",
                            "`wonkalytics init --upgrade` adds them (or map them with WONKALYTICS_COLUMN_MAP)"))
    else:
        checks.append(Check("columns", "ok", f"all {len(targets)} default columns present"))
    from wonkalytics.store.dialects import unique_column

    event_column = column_of("event_id")
    if event_column is None:
        checks.append(Check("idempotency", "warn", "no event_id column: a retried batch can be stored twice",
                            "`wonkalytics init --upgrade`"))
    elif unique_column(store.table, event_column, engine) is None:
        checks.append(Check("idempotency", "warn", "event_id has no unique index (retries are de-duplicated by a "
                            "slower look-up)", "`wonkalytics init --upgrade` adds the unique index"))
    else:
        checks.append(Check("idempotency", "ok", "event_id is unique"))
    checks.append(_search_index(store, column_map))
    checks.append(_write_permission(store, settings, columns))
    checks.extend(_spool(settings))
    checks.extend(_sinks(settings))
    return checks


def _search_index(store: TableStore, column_map: Mapping[str, str]) -> Check:
    """Whether the text search has its index (store/search.py); warned where the dialect has one."""
    from wonkalytics.store.search import detect, text_columns

    try:
        with store.engine.connect() as conn:
            found = detect(conn, store.table, column_map)
            conn.rollback()
    except Exception as exc:
        return Check("search index", "warn", f"could not look: {_first_line(exc)}")
    if found.kind is not None:
        return Check("search index", "ok", found.detail)
    if store.engine.dialect.name == "mssql" or not text_columns(store.table, column_map):
        return Check("search index", "ok", f"none ({found.detail or 'no text columns'}); the search scans")
    return Check("search index", "warn", f"absent ({found.detail}): the dashboard's text search scans the period",
                 "`wonkalytics init --upgrade` creates it (it says what to run where it cannot)")


def _write_permission(store: TableStore, settings: Settings, columns: Mapping[str, ColumnKind]) -> Check:
    probe = {"event_id": f"wonkalytics-doctor-{uuid.uuid4().hex}", "action": "wonkalytics doctor", "model": None}
    try:
        row = fit_to_table(probe, columns, table=store.name, column_map=settings.column_map)
    except WonkalyticsError:
        row = {}
    if not row:
        return Check("write permission", "warn", "no column to try an insert with", None)
    try:
        store.try_insert(row)
    except Exception as exc:
        return Check("write permission", "fail", _first_line(exc),
                     "GRANT INSERT, UPDATE, SELECT on the table to this user")
    return Check("write permission", "ok", "INSERT works (tried in a transaction that was rolled back)")


def _spool(settings: Settings) -> list[Check]:
    rows = spool_status(settings.spool_dir)
    pending = sum(r.pending for r in rows)
    rejected = sum(r.rejected for r in rows)
    checks = [Check("spool", "warn" if pending else "ok",
                    f"{pending} ops wait in {settings.spool_dir}" if pending else "no backlog",
                    "they are written when a process starts with this spool directory, or by "
                    "`wonkalytics spool replay`" if pending else None)]
    if rejected:
        checks.append(Check("rejected ops", "warn", f"{rejected} ops were refused (see rejected-*.jsonl)",
                            "fix the cause, then `wonkalytics spool replay`"))
    return checks


def _sinks(settings: Settings) -> list[Check]:
    from wonkalytics.recorder import assemble

    try:
        _, _, sinks = assemble(settings, lambda op: None)
    except Exception as exc:
        return [Check("sinks", "fail", _first_line(exc), "check the sinks' settings")]
    checks = []
    for sink in sinks:
        if sink.name == "table":
            continue
        probe = getattr(sink, "probe", None)
        reachable = None
        if callable(probe):
            try:
                reachable = bool(probe())
            except Exception:
                reachable = False
        status: Status = "ok" if reachable is not False else "warn"
        detail = "enabled" + ("" if reachable is None else ", reachable" if reachable else ", not reachable now")
        checks.append(Check(f"sink {sink.name}", status, detail, None if status == "ok" else
                            "its ops are kept and retried; check its URL and key"))
    return checks


def doctor(
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: the settings')")] = None,
    table: Annotated[str | None, typer.Option(help="Table name (default: the settings')")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Check the URL, driver, connection, table, columns, write permission, spool and sinks.

    Example: `wonkalytics doctor --database-url postgresql+psycopg://app@db/analytics --json`
    """
    console = Console()
    try:
        settings = load_settings(database_url=database_url, table=table)
    except WonkalyticsError as exc:
        checks = [Check("settings", "fail", str(exc), "fix the setting named above")]
    else:
        checks = run_checks(settings)
    warned = [check.name for check in checks if check.status == "warn"]
    failed = [check.name for check in checks if check.status == "fail"]
    ok = not warned and not failed  # the contract: 0 only when everything is fine, 1 otherwise
    if as_json:
        typer.echo(json.dumps({"ok": ok, "warned": warned, "failed": failed,
                               "checks": [asdict(check) for check in checks]}))
    else:
        report = Table("check", "", "detail", "what to do")
        marks = {"ok": "[green]ok[/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}
        for check in checks:
            report.add_row(check.name, marks[check.status], escape(check.detail), escape(check.fix or ""))
        console.print(report)
        if warned and not failed:
            console.print(f"[yellow]{len(warned)} check(s) warned:[/yellow] {escape(', '.join(warned))}")
    raise typer.Exit(0 if ok else 1)
