"""``wonkalytics dashboard``: the local web dashboard (needs the ``dashboard`` extra)."""

from __future__ import annotations

import ipaddress
import threading
import webbrowser
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from wonkalytics.cli.stats import DatabaseUrl, TableName, Tz, fail, open_reader
from wonkalytics.errors import StoreError, WonkalyticsError
from wonkalytics.store.reader import warm_up


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: addresses only this machine can reach.

    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dashboard(
    host: Annotated[str, typer.Option(help="Address to listen on; beyond loopback only with --token")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8050,
    token: Annotated[str | None, typer.Option(help="Require this token (Bearer header or ?token=)",
                                              envvar="WONKALYTICS_DASHBOARD_TOKEN")] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the dashboard in a browser")] = False,
    database_url: DatabaseUrl = None,
    table: TableName = None,
    tz: Tz = "UTC",
) -> None:
    """Serve the dashboard (overview, interactions, CSV export) on your own database; read-only.
    """
    if not is_loopback(host) and not token:
        raise fail(f"--host {host} is reachable from other machines: start with --token SECRET (or set "
                   "WONKALYTICS_DASHBOARD_TOKEN) so that only people with the token can read your data")
    try:
        import uvicorn

        from wonkalytics.dashboard.app import create_app
    except ImportError as exc:
        raise fail(f"the dashboard needs its extra ({exc.name} is missing): pip install 'wonkalytics[dashboard]'") \
            from None
    try:
        reader = open_reader(database_url, table)
        app = create_app(reader, token=token, default_tz=tz)
    except (WonkalyticsError, ValueError) as exc:
        raise fail(exc) from None
    try:
        warm_up(reader)   # connect and reflect now, so the first page is answered like every later one
    except StoreError as exc:   # the pages show it (and recover once the database answers)
        Console(stderr=True).print(Text.assemble(("warning: ", "bold yellow"), str(exc)))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    Console().print(Text.assemble("Wonkalytics dashboard on ", (url, "bold cyan"), f" (table {reader.name}); "
                                  "Ctrl+C stops it"))
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")


EXAMPLES = ("wonkalytics dashboard --open", "wonkalytics dashboard --tz Europe/Amsterdam --port 8060",
            "wonkalytics dashboard --host 0.0.0.0 --token \"$(openssl rand -hex 16)\"")
"""Shown at the end of ``--help``."""

__all__ = ["EXAMPLES", "dashboard", "is_loopback"]
