"""``wonkalytics rollup --rebuild``: recompute the read side's rollups from the table, exactly."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

import typer
from rich.console import Console

from wonkalytics.cli.stats import DatabaseUrl, TableName, Tz, fail
from wonkalytics.errors import WonkalyticsError
from wonkalytics.settings import load_settings
from wonkalytics.store.periods import make_period
from wonkalytics.store.rollups import rebuild
from wonkalytics.store.sql import TableStore


def rollup(
    rebuild_: Annotated[bool, typer.Option("--rebuild", help="Recompute the rollups from the table's rows")] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Only from this moment on (7d, 2026-03-01, an ISO datetime); default: everything"),
    ] = None,
    database_url: DatabaseUrl = None,
    table: TableName = None,
    tz: Tz = "UTC",
) -> None:
    """Recompute every rollup table -- quarter hours (``<table>_rollup``), UTC hours (``<table>_rollup_hour``),
    UTC days (``<table>_rollup_day``),
    their per-model tables and users -- from the table (rows written by other tools, spool replays of
    old hours, a table written before the upgrade). Whole UTC days from --since, a day at a time.
    """
    if not rebuild_:
        raise fail("say what to do: `wonkalytics rollup --rebuild [--since 7d]`")
    try:
        settings = load_settings(database_url=database_url, table=table)
        start = None
        if since is not None:
            start = make_period(since, None, tz).since.astimezone(UTC).replace(tzinfo=None)
        store = TableStore.from_settings(settings, create=False)
        count = rebuild(store.engine, store.table, settings.column_map, fields=settings.rollup_fields, since=start)
    except (WonkalyticsError, ValueError) as exc:
        raise fail(exc) from None
    where = f" since {start.isoformat()} UTC" if start is not None else ""
    Console().print(f"rollups of {settings.table} rebuilt from {count} interactions{where}", markup=False)


EXAMPLES = ("wonkalytics rollup --rebuild", "wonkalytics rollup --rebuild --since 2026-03-01")
"""Shown at the end of ``--help``."""

__all__ = ["EXAMPLES", "rollup"]
