"""The ``wonkalytics`` command line (Typer): one module per command, one line each to register it.

Every command gets, from :class:`_Group`, errors as one paragraph (``wonkalytics --debug CMD`` for
the traceback). Help is click's plain text: no Rich markup (brackets in examples survive) and no
``<bool>`` placeholder after a flag. Each command's ``--help`` ends with an example:
``app.command("name", epilog=example("wonkalytics name --flag"))(module.function)``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from wonkalytics.cli import dashboard, demo, doctor, export, fake_openai, init, rollup, spool, stats
from wonkalytics.cli.output import describe, fail, say
from wonkalytics.errors import WonkalyticsError

__all__ = ["app", "example", "main"]


def example(*lines: str) -> str:
    """An ``epilog=`` showing example command lines, kept one per line in ``--help``.

    >>> example("wonkalytics demo", "wonkalytics demo --delay-ms 0").splitlines()[-2:]
    ['  wonkalytics demo', '  wonkalytics demo --delay-ms 0']
    """
    return ("Examples:" if len(lines) > 1 else "Example:") + "\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def _is_cli_exception(exc: Exception) -> bool:
    """Exit / usage errors of Typer and click (Typer vendors its own click): they print themselves."""
    return isinstance(exc, typer.Exit | typer.Abort) or type(exc).__module__.split(".")[0] in ("click", "typer")


class _Group(TyperGroup):
    """The root command group: an exception from a command becomes one paragraph on stderr, exit 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _is_cli_exception(exc) or ctx.params.get("debug"):
                raise
            if isinstance(exc, WonkalyticsError):  # our own message says what to do; a traceback adds nothing
                fail(describe(exc))
            again = " ".join(["wonkalytics", "--debug", *([ctx.invoked_subcommand] if ctx.invoked_subcommand else [])])
            fail(describe(exc), hint=f"(Run `{again} ...` to see the traceback.)")


app = typer.Typer(
    name="wonkalytics",
    help="LLM analytics in your own SQL database: wrap your OpenAI client, get one row per interaction.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # our texts are plain: brackets in them are text, not markup
    pretty_exceptions_show_locals=False,  # locals may hold a database password
    epilog=example("wonkalytics demo", "wonkalytics init --database-url postgresql+psycopg://app@db/analytics",
                   "wonkalytics --debug demo"),
)


def _version(value: bool) -> None:
    if value:
        from wonkalytics import __version__

        say(f"wonkalytics {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when a command fails")] = False,
) -> None:
    """Options that apply to every command."""


app.command("demo", epilog=example(*demo.EXAMPLES))(demo.demo)
app.command("init", epilog=example("wonkalytics init", "wonkalytics init --database-url "
                                   "postgresql+psycopg://app@db/analytics --table llm_calls",
                                   "wonkalytics init --print-sql --dialect mssql",
                                   "wonkalytics init --upgrade --print-sql", "wonkalytics init --upgrade",
                                   "wonkalytics init --views"))(init.init)
app.command("fake-openai", epilog=example(*fake_openai.EXAMPLES))(fake_openai.fake_openai)
app.command("doctor", epilog=example("wonkalytics doctor", "wonkalytics doctor --json --database-url "
                                     "postgresql+psycopg://app@db/analytics"))(doctor.doctor)
app.add_typer(spool.app, name="spool", epilog=example("wonkalytics spool status", "wonkalytics spool replay"))
app.command("stats", epilog=example(*stats.EXAMPLES))(stats.stats)
app.command("export", epilog=example(*export.EXAMPLES))(export.export)
app.command("dashboard", epilog=example(*dashboard.EXAMPLES))(dashboard.dashboard)
app.command("rollup", epilog=example(*rollup.EXAMPLES))(rollup.rollup)


def main() -> None:
    """Entry point of the ``wonkalytics`` console script (and of ``python -m wonkalytics``)."""
    app(prog_name="wonkalytics")
