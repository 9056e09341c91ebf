"""The ``wonkalytics`` command line (Typer): one module per command."""

from __future__ import annotations

import typer

from wonkalytics.cli import demo, doctor, fake_openai, init, spool

app = typer.Typer(
    name="wonkalytics",
    help="LLM analytics in your own SQL database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a database password
)
app.command("demo")(demo.demo)
app.command("init")(init.init)
app.command("fake-openai")(fake_openai.fake_openai)
app.command("doctor")(doctor.doctor)
app.add_typer(spool.app, name="spool")


def main() -> None:
    """Entry point of the ``wonkalytics`` console script."""
    app()
