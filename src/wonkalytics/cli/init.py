"""``wonkalytics init``: create the analytics table, or print its DDL for a DBA."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from wonkalytics.cli.output import describe, fail
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
    upgrade: Annotated[
        bool,
        typer.Option("--upgrade", help="Add the default columns and indexes an existing table lacks (re-runnable)"),
    ] = False,
    views: Annotated[
        bool,
        typer.Option("--views", help="Create (or replace) the reporting views <table>_daily and <table>_calls"),
    ] = False,
    partition: Annotated[
        str | None,
        typer.Option(
            "--partition",
            help="PostgreSQL only: 'monthly' creates the table partitioned by month of timestamp, with the "
            "coming 12 months' partitions (re-run monthly to add more)",
        ),
    ] = None,
) -> None:
    """Create the analytics table (with its indexes) when it does not exist yet.

    Examples: `wonkalytics init`, `wonkalytics init --print-sql --dialect mssql`,
    `wonkalytics init --upgrade --print-sql` (show what an upgrade would run), `wonkalytics init --upgrade`,
    `wonkalytics init --views` (reporting views for Power BI / Excel).
    `wonkalytics init --partition monthly` (PostgreSQL).
    """
    console = Console()
    try:
        settings = load_settings(database_url=database_url, table=table)
        store = TableStore.from_settings(settings, create=False)
        if upgrade:
            _upgrade(console, _for_ddl(store), settings.column_map, print_sql=print_sql)
            return
        if views:
            _views(console, store, settings.column_map, print_sql=print_sql, dialect=dialect)
        if partition is not None:
            _partition(console, store, partition, print_sql=print_sql)
            return
        if print_sql:
            typer.echo(store.ddl(dialect or settings.url().get_backend_name()))
            return
        created = store.create_table()
        if created:
            _search_index(console, _for_ddl(store), settings.column_map)
    except WonkalyticsError as exc:
        fail(describe(exc))
    state = "created" if created else "already exists"
    console.print(Text.assemble("table ", (settings.table, "bold"), f" {state} in {settings.safe_url()}"))


def _for_ddl(store: TableStore) -> TableStore:
    """The same table on an engine whose statements may take as long as a migration step needs
    (:data:`~wonkalytics.store.migrations.MIGRATION_STATEMENT_TIMEOUT`, not the reads' and writes' limit)."""
    from wonkalytics.store.migrations import MIGRATION_STATEMENT_TIMEOUT

    return TableStore(store.url, store.name, create=False, connect_timeout=store.connect_timeout,
                      statement_timeout=max(store.statement_timeout, MIGRATION_STATEMENT_TIMEOUT))


def _search_index(console: Console, store: TableStore, column_map: dict[str, str]) -> None:
    """A new table gets the text search's index too (migration m008; says what to do where it cannot)."""
    from rich.markup import escape

    from wonkalytics.store.migrations import upgrade as run_upgrade

    schema, _, name = store.name.rpartition(".")
    for plan in run_upgrade(store.engine, name, schema or None, column_map, only={"m009_search_index"}):
        if plan.attention:
            console.print(f"[yellow]search index: {escape(plan.note or '')}[/yellow]")


def _upgrade(console: Console, store: TableStore, column_map: dict[str, str], *, print_sql: bool) -> None:
    """``--upgrade``: run (or with ``--print-sql`` show) the migration steps still needed."""
    from rich.markup import escape

    from wonkalytics.store.migrations import plan_upgrade
    from wonkalytics.store.migrations import upgrade as run_upgrade

    if not store.create_table() and print_sql:
        with store.engine.connect() as conn:  # the probes only look (and roll back)
            plans = plan_upgrade(store.table, store.engine.dialect, column_map, conn)
        for plan in plans:
            typer.echo(f"-- {plan.step}: {plan.note}")
            for statement in plan.statements:
                typer.echo(f"{statement};")
        return
    schema, _, name = store.name.rpartition(".")
    for plan in run_upgrade(store.engine, name, schema or None, column_map):
        mark = "[green]applied[/green]" if plan.statements else "[dim]nothing to do[/dim]"
        mark = "[yellow]needs attention[/yellow]" if plan.attention else mark
        console.print(f"{plan.step}: {mark} ({escape(plan.note or '')})")
    console.print(f"table [bold]{escape(store.name)}[/bold] is up to date")


def _views(console: Console, store: TableStore, column_map: dict[str, str], *, print_sql: bool,
           dialect: str | None) -> None:
    """``--views``: create (or with ``--print-sql`` show) the reporting views of the table."""
    from rich.markup import escape
    from sqlalchemy.schema import CreateIndex

    from wonkalytics.store.schema import default_table
    from wonkalytics.store.views import create_read_index, create_views, dialect_for, read_index, view_statements

    if print_sql and dialect:  # for a DBA: the default table's views, without connecting
        schema, _, name = store.name.rpartition(".")
        table, ddl_dialect = default_table(name, schema=schema or None), dialect_for(dialect)
        for statement in view_statements(table, ddl_dialect):
            typer.echo(f"{statement};")
        index = read_index(table, ddl_dialect)
        if index is not None:
            typer.echo(f"{CreateIndex(index).compile(dialect=ddl_dialect)};")
        return
    if print_sql:
        for statement in view_statements(store.table, store.engine.dialect, column_map):
            typer.echo(f"{statement};")
        index = read_index(store.table, store.engine.dialect, column_map)
        if index is not None:
            typer.echo(f"{CreateIndex(index).compile(dialect=store.engine.dialect)};")
        return
    daily, calls = create_views(store.engine, store.table, column_map)
    console.print(f"views [bold]{escape(daily)}[/bold] and [bold]{escape(calls)}[/bold] created (or replaced)")
    created = create_read_index(store.engine, store.table, column_map)
    if created:
        console.print(f"index [bold]{escape(created)}[/bold] in place (keeps stats and the dashboard fast)")


def _partition(console: Console, store: TableStore, every: str, *, print_sql: bool) -> None:
    """``--partition monthly``: the partitioned default table (PostgreSQL), or its DDL."""
    from rich.markup import escape

    from wonkalytics.errors import ConfigurationError
    from wonkalytics.store.dialects import ddl_statements
    from wonkalytics.store.partition import create_partitioned_table, partition_statements, partitioned_table

    if every != "monthly":
        raise ConfigurationError(f"--partition {every!r}: the only choice is 'monthly'")
    schema, _, name = store.name.rpartition(".")
    if print_sql:
        statements = ddl_statements(partitioned_table(name, schema=schema or None), "postgresql")
        for statement in [*statements, *partition_statements(name, schema=schema or None)]:
            typer.echo(f"{statement};")
        return
    created = create_partitioned_table(store.engine, name, schema=schema or None)
    state = "created, partitioned by month" if created else "already exists; missing monthly partitions added"
    console.print(f"table [bold]{escape(store.name)}[/bold] {state}")
