"""``wonkalytics init``: create the analytics table, or print its DDL for a DBA."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from wonkalytics.errors import WonkalyticsError
from wonkalytics.settings import load_settings
from wonkalytics.store.sql import TableStore


def init(
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default: WONKALYTICS_DATABASE_URL or sqlite)")
    ] = None,
    table: Annotated[str | None, typer.Option(help="Table name (default: WONKALYTICS_TABLE)")] = None,
    print_sql: Annotated[
        bool, typer.Option("--print-sql", help="Print the CREATE TABLE / INDEX statements, change nothing")
    ] = False,
    dialect: Annotated[
        str | None,
        typer.Option(help="With --print-sql: sqlite, postgresql, mysql, mariadb or mssql (default: the URL's)"),
    ] = None,
) -> None:
    """Create the analytics table (with its indexes) when it does not exist yet."""
    console = Console()
    try:
        settings = load_settings(database_url=database_url, table=table)
        store = TableStore(settings.url(), settings.table, create=False)
        if print_sql:
            typer.echo(store.ddl(dialect or settings.url().get_backend_name()))
            return
        created = store.create_table()
    except WonkalyticsError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    state = "created" if created else "already exists"
    console.print(f"table [bold]{settings.table}[/bold] {state} in {settings.safe_url()}")
