"""What the commands print: plain text (never Rich markup), errors as one paragraph.

Everything we print may contain square brackets (``pip install 'wonkalytics[postgres]'``,
``[unixODBC][Driver Manager]`` in an ODBC error), which Rich would read as markup and drop, so text
goes out as :class:`rich.text.Text`, never parsed. Lines are soft-wrapped: the terminal wraps a long
line, so a URL or a command stays one line when copied.

>>> import io
>>> from rich.console import Console
>>> out = Console(file=io.StringIO(), width=30)
>>> say("pip install 'wonkalytics[postgres]' [unixODBC]", console=out)
>>> out.file.getvalue()
"pip install 'wonkalytics[postgres]' [unixODBC]\\n"
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from wonkalytics.errors import WonkalyticsError

__all__ = ["describe", "fail", "say", "stderr", "stdout"]


def stdout() -> Console:
    """A console on standard output (what a command reports)."""
    return Console(soft_wrap=True)


def stderr() -> Console:
    """A console on standard error (errors and warnings)."""
    return Console(stderr=True, soft_wrap=True)


def say(message: str | Text, style: str | None = None, *, console: Console | None = None) -> None:
    """Print ``message`` as it is: brackets stay brackets."""
    text = message if isinstance(message, Text) else Text(message, style=style or "")
    (console or stdout()).print(text, soft_wrap=True)


def describe(exc: BaseException) -> str:
    """One paragraph for an exception: our messages as they are, others with their type, first line only.

    >>> describe(ValueError("bad\\n  detail"))
    'ValueError: bad'
    """
    text = " ".join(str(exc).split()) if isinstance(exc, WonkalyticsError) else (
        str(exc).strip().splitlines() or [""])[0].strip()
    if isinstance(exc, WonkalyticsError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fail(message: str, *, hint: str | None = None) -> NoReturn:
    """Print ``error: message`` (and what to do) as one paragraph on stderr; exit with status 1."""
    text = Text("error: ", style="bold red")
    text.append(message)
    if hint:
        text.append(" " + hint)
    stderr().print(text, soft_wrap=True)
    raise typer.Exit(1)
