"""``wonkalytics spool status|replay``: what waits on disk, and writing it now."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wonkalytics.cli.output import describe, fail
from wonkalytics.errors import WonkalyticsError
from wonkalytics.settings import load_settings
from wonkalytics.writer.replay import replay as run_replay
from wonkalytics.writer.replay import spool_status

app = typer.Typer(help="Ops waiting on disk (spool) and ops a sink refused (rejected).", no_args_is_help=True)

SpoolDir = Annotated[str | None, typer.Option("--spool-dir", help="Spool directory (default: WONKALYTICS_SPOOL_DIR)")]


@app.command()
def status(
    spool_dir: SpoolDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Pending and rejected ops per sink.

    Example: `wonkalytics spool status --json`
    """
    settings = load_settings(spool_dir=spool_dir)
    rows = spool_status(settings.spool_dir)
    if as_json:
        typer.echo(json.dumps({"spool_dir": str(settings.spool_dir), "sinks": [r.to_dict() for r in rows]}))
        return
    console = Console()
    if not rows:
        console.print(f"nothing waits in {escape(str(settings.spool_dir))}")
        return
    table = Table("sink", "pending ops", "of running processes", "rejected ops", "directory")
    for row in rows:
        table.add_row(row.sink, str(row.pending), str(row.live), str(row.rejected), escape(str(row.directory)))
    console.print(table)
    if any(row.rejected for row in rows):
        console.print("fix the cause (see the errors in the rejected-*.jsonl files), then run "
                      "[bold]wonkalytics spool replay[/bold]")


@app.command()
def replay(
    spool_dir: SpoolDir = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: the settings')")] = None,
    table: Annotated[str | None, typer.Option(help="Table name (default: the settings')")] = None,
) -> None:
    """Write now the ops of processes that are gone and every rejected op (idempotent).

    Example: `wonkalytics spool replay --database-url postgresql+psycopg://app@db/analytics`
    """
    from wonkalytics.recorder import assemble

    console = Console()
    try:
        settings = load_settings(spool_dir=spool_dir, database_url=database_url, table=table)
        follow_ups: list[object] = []
        writer, _, sinks = assemble(settings, follow_ups.append)
        build = writer.lanes[0].build
        results = run_replay(settings.spool_dir, {sink.name: sink for sink in sinks}, build)
    except WonkalyticsError as exc:
        fail(describe(exc))
    failed = False
    for result in results:
        line = f"{result.sink}: {result.written} written, {result.still_rejected} still refused"
        if result.left:
            line += f", {result.left} left on disk ({escape(result.error or '')})"
        failed = failed or bool(result.left or result.still_rejected)
        console.print(escape(line) if not result.left else line)
    if follow_ups:
        from wonkalytics.recorder import default_recorder

        default_recorder.configure(spool_dir=spool_dir, database_url=database_url, table=table)
        for op in follow_ups:
            default_recorder.submit(op)  # type: ignore[arg-type]
        default_recorder.flush(30)
    raise typer.Exit(1 if failed else 0)
