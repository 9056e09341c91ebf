"""``wonkalytics export``: the rows of a period as CSV or JSON lines, streamed (constant memory)."""

from __future__ import annotations

import csv
import json
import sys
from contextlib import nullcontext
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import typer
from rich.console import Console

from wonkalytics.cli.stats import DatabaseUrl, Since, TableName, Tz, Until, fail, open_reader
from wonkalytics.errors import WonkalyticsError
from wonkalytics.store.queries import make_period


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def export(
    output_format: Annotated[Literal["csv", "jsonl"], typer.Option("--format", help="csv or jsonl")] = "csv",
    output: Annotated[Path | None, typer.Option(help="File to write (default: standard output)")] = None,
    events: Annotated[bool, typer.Option(help="Include events (rows without a model)")] = True,
    database_url: DatabaseUrl = None,
    table: TableName = None,
    since: Since = None,
    until: Until = None,
    tz: Tz = "UTC",
) -> None:
    """Write every row of the period (all columns, oldest first), streamed from the database.
    """
    try:
        period = make_period(since, until, tz)
        reader = open_reader(database_url, table)
        columns = reader.columns()
        rows = reader.iter_rows(period, events=events)
        target = output.open("w", encoding="utf-8", newline="") if output else nullcontext(sys.stdout)
        count = 0
        with target as stream:
            count = _write(stream, output_format, columns, rows)
    except (WonkalyticsError, ValueError, OSError) as exc:
        raise fail(exc) from None
    if output:
        Console(stderr=True).print(f"{count} rows written to {output}", markup=False)


def _write(stream: IO[str], output_format: str, columns: list[str], rows: Any) -> int:
    count = 0
    if output_format == "csv":
        writer = csv.writer(stream)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else _plain(row.get(c)) for c in columns])
            count += 1
    else:
        for row in rows:
            stream.write(json.dumps({c: _plain(row.get(c)) for c in columns}, ensure_ascii=False) + "\n")
            count += 1
    return count


EXAMPLES = ("wonkalytics export --format csv --since 7d > week.csv",
            "wonkalytics export --format jsonl --since 2026-03-01 --until 2026-03-31 --output march.jsonl")
"""Shown at the end of ``--help``."""

__all__ = ["EXAMPLES", "export"]
