"""``wonkalytics stats``: the overview of a period as Rich tables, per field with ``--by``, or as JSON.

Also home of the options every read command shares (``stats``, ``export``, ``dashboard``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from wonkalytics.access import json_default
from wonkalytics.errors import WonkalyticsError
from wonkalytics.settings import load_settings
from wonkalytics.store import reader as readers
from wonkalytics.store.queries import Period, make_period
from wonkalytics.store.reader import Reader

DatabaseUrl = Annotated[str | None, typer.Option(
    help="URL to read: SQLAlchemy or clickhouse:// (default: WONKALYTICS_READ_URL, else WONKALYTICS_DATABASE_URL "
         "or sqlite)")]
TableName = Annotated[str | None, typer.Option(help="Table name (default: WONKALYTICS_TABLE)")]
Since = Annotated[str | None, typer.Option(help="Start: ISO date/datetime or a duration ago (24h, 7d) [default: 7d]")]
Until = Annotated[str | None, typer.Option(help="End: ISO date (the whole day counts) or datetime [default: now]")]
Tz = Annotated[str, typer.Option(help="IANA time zone for day boundaries, e.g. Europe/Amsterdam")]


def open_reader(database_url: str | None, table: str | None) -> Reader:
    """The :class:`~wonkalytics.store.reader.Reader` of the table the options (or the settings) name.

    ``--database-url`` (any engine, ClickHouse included) wins over ``WONKALYTICS_READ_URL``, which
    wins over ``WONKALYTICS_DATABASE_URL``: the read side may read a replica while the writer keeps
    its own database.
    """
    settings = load_settings(read_url=database_url, table=table)
    return readers.open_reader(settings.read_target(), settings.table, settings.column_map,
                               connect_timeout=settings.connect_timeout,
                               statement_timeout=settings.statement_timeout)


def fail(message: object) -> typer.Exit:
    """Print ``message`` as an error (markup escaped) and return the exit to raise."""
    Console(stderr=True).print(Text.assemble(("error: ", "bold red"), str(message)))
    return typer.Exit(1)


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "unknown" if unit == "$" else "-"
    if unit == "$":
        return f"${value:,.2f}" if value >= 1 else f"${value:.6f}"
    if isinstance(value, float):
        return f"{value:,.0f}{unit}" if unit == " ms" else f"{value:,.1f}{unit}"
    return f"{value:,}{unit}"


def _pair(item: dict[str, Any], key: str) -> str:
    return f"{_fmt(item[key]['p50'], ' ms')} / {_fmt(item[key]['p95'], ' ms')}"


def _overview_table(overview: dict[str, Any], title: str) -> Table:
    status = overview["status"]
    table = Table(title=Text(title), title_justify="left", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    table.add_column("", style="dim")
    rows = [
        ("interactions", _fmt(overview["interactions"]), f"{status['ok']} ok, {status['error']} error, "
                                                         f"{status['aborted']} aborted"),
        ("users", _fmt(overview["users"]), f"in {overview['tenants']} tenants"),
        ("avg score", _fmt(overview["avg_score"]), f"{overview['scored']} scored"),
        ("duration", _pair(overview, "duration_ms"), "p50 / p95"),
        ("first token", _pair(overview, "ttft_ms"), "p50 / p95 (streams)"),
        ("tokens", _fmt(overview["prompt_tokens"] + overview["completion_tokens"]),
         f"{overview['prompt_tokens']:,} prompt + {overview['completion_tokens']:,} completion"),
        ("cost", _fmt(overview["cost_usd"], "$"), "US dollars, from dated list prices"),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _groups_table(overview: dict[str, Any], by: str) -> Table:
    table = Table(title=Text(f"by {by}, largest first"), title_justify="left")
    table.add_column(Text(by), overflow="ellipsis", no_wrap=True, min_width=12, max_width=28)
    for header in ("calls", "users", "errors", "avg score", "p95 ms", "tokens", "cost"):
        table.add_column(header, justify="right", no_wrap=True)
    for group in overview.get("groups", []):
        value = "(none)" if group["value"] is None else str(group["value"])
        table.add_row(
            Text(value),  # Text: a value like "[bold]x" is shown as typed, never parsed as markup
            _fmt(group["interactions"]), _fmt(group["users"]), _fmt(group["status"]["error"]),
            _fmt(group["avg_score"]), _fmt(group["duration_ms"]["p95"], " ms"),
            _fmt(group["prompt_tokens"] + group["completion_tokens"]), _fmt(group["cost_usd"], "$"),
        )
    return table


def _print(console: Console, overview: dict[str, Any], period: Period, by: str | None) -> None:
    fmt = "%Y-%m-%d %H:%M"
    title = f"{period.since.strftime(fmt)} .. {period.until.strftime(fmt)} {period.tz.key}"
    console.print(_overview_table(overview, title))
    if by:
        console.print(_groups_table(overview, by))
    if not overview["interactions"]:
        console.print("No interactions in this period. Try a longer --since, or run `wonkalytics demo` first.",
                      markup=False)
    elif overview["cost_usd"] is None:
        console.print("cost unknown: no model of this period has a known price (see WONKALYTICS_PRICES)",
                      markup=False)


def stats(
    by: Annotated[str | None, typer.Option(help="Break down by a field: model, tenant, user, status, language, ...")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (the contract's keys)")] = False,
    limit: Annotated[int, typer.Option(help="With --by: at most this many groups, largest first")] = 50,
    database_url: DatabaseUrl = None,
    table: TableName = None,
    since: Since = None,
    until: Until = None,
    tz: Tz = "UTC",
) -> None:
    """Show how many people used it, how fast, how good and how costly, for a period.
    """
    try:
        period = make_period(since, until, tz)
        reader = open_reader(database_url, table)
        overview = reader.overview(period)
        if by:
            overview["groups"] = reader.groups(period, by, limit=limit)
    except (WonkalyticsError, ValueError) as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps(overview, default=json_default))
        return
    _print(Console(), overview, period, by)


EXAMPLES = ("wonkalytics stats", "wonkalytics stats --since 30d --by model --tz Europe/Amsterdam",
            "wonkalytics stats --json")
"""Shown at the end of ``--help``."""

__all__ = ["EXAMPLES", "DatabaseUrl", "Since", "TableName", "Tz", "Until", "fail", "open_reader", "stats"]
