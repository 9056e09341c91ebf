"""``wonkalytics spool status|replay``: what waits on disk, and writing it now."""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wonkalytics.cli.output import describe, fail
from wonkalytics.destinations import Destination, table_destination, url_for
from wonkalytics.errors import WonkalyticsError
from wonkalytics.ops import Builder
from wonkalytics.settings import Settings, load_settings
from wonkalytics.sinks.base import Sink
from wonkalytics.writer.replay import SinkFor, spool_status
from wonkalytics.writer.replay import replay as run_replay

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
    table = Table("sink", "destination", "pending ops", "of running processes", "rejected ops", "directory")
    for row in rows:
        for part in row.destinations or ():
            where = part.destination or ("(older release: the configured one)" if part.key is None else part.key)
            table.add_row(row.sink, escape(where), str(part.pending), str(part.live), str(part.rejected),
                          escape(str(row.directory)))
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

    Each op goes to the table and database it was submitted for. Another destination's ops (an
    earlier configuration's) use the password of ``--database-url`` or of the settings' URL when that
    URL has the same host, port, database and user; otherwise they are replayed without a password,
    or, when their URL had one, left on disk with a message saying which ``--database-url`` to pass.

    Example: `wonkalytics spool replay --database-url postgresql+psycopg://app@db/analytics`
    """
    from wonkalytics.recorder import assemble

    console = Console()
    try:
        settings = load_settings(spool_dir=spool_dir, database_url=database_url, table=table)
        follow_ups: list[object] = []
        writer, _, sinks = assemble(settings, follow_ups.append)
        build = writer.lanes[0].build
        current: dict[str, str | None] = {"table": table_destination(settings.url(), settings.table).key}
        results = _replay_until_interrupted(settings, sinks, build, console, current, _other_table(settings))
    except WonkalyticsError as exc:
        fail(describe(exc))
    failed = False
    for result in results:
        where = f" -> {result.destination}" if result.destination else ""
        line = f"{result.sink}{where}: {result.written} written, {result.still_rejected} still refused"
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


def _other_table(settings: Settings) -> SinkFor:
    """The table sink of another destination found on disk, with the credentials :func:`url_for` finds."""
    from wonkalytics.sinks.table import TableSink
    from wonkalytics.store.sql import TableStore

    def sink_for(name: str, destination: Destination) -> Sink:
        if name != "table":
            raise LookupError(f"the {name} sink replays to its configured destination only")
        url = url_for(destination, [settings.url()])
        store = TableStore(url, destination.table, create=settings.create_table,
                           connect_timeout=settings.connect_timeout, statement_timeout=settings.statement_timeout)
        return TableSink(store, settings.column_map)

    return sink_for


def _replay_until_interrupted(
    settings: Settings, sinks: Sequence[Sink], build: Builder, console: Console, current: dict[str, str | None],
    sink_for: SinkFor,
) -> Any:
    """Run the replay with Ctrl-C (and SIGTERM) asking it to stop after the batch it is writing, so
    what it wrote is off disk and what it did not is still there, under its usual name."""
    asked: list[int] = []

    def ask_stop(signum: int, _frame: object) -> None:
        if asked:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now (the work file is recovered next time)
        asked.append(signum)
        console.print("stopping after the current batch (Ctrl-C again to stop at once)")

    previous = {sig: signal.signal(sig, ask_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_replay(settings.spool_dir, {sink.name: sink for sink in sinks}, build, stop=lambda: bool(asked),
                          current=current, sink_for=sink_for)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
