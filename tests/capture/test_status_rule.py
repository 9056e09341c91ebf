"""A call's status (ok / error / aborted) is decided in one place: ``Call.status``.

Issue 18 found the rule written four times (the exit ladder, twice in the SDK call's ``except``, and
the "aborted after the last token is ok" fix-up in ``finish``). Every exit now hands ``Call.finish``
the way out (an exception, or ``stopped=True`` for close and garbage collection) and the status
follows from it; the ast check fails when a status is chosen anywhere else in ``capture/``.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

import wonkalytics.capture
from wonkalytics.capture.call import Call
from wonkalytics.capture.context import CallOptions
from wonkalytics.interaction import Interaction

CAPTURE = Path(wonkalytics.capture.__file__).parent


class Recorded:
    trace_hook = None

    def __init__(self) -> None:
        self.interactions: list[Interaction] = []

    def record(self, interaction: Interaction) -> None:
        self.interactions.append(interaction)


def _call(recorder: Recorded, *, finish_reason: str | None = None, error: str | None = None) -> Call:
    call = Call("chat", {}, CallOptions(), recorder, "openai")  # type: ignore[arg-type]
    call.finish_reason, call.error = finish_reason, error
    return call


CASES: list[tuple[BaseException | None, bool, str | None, str | None, str]] = [
    # exc, stopped, finish reason seen, error reported by the stream -> status
    (None, False, "stop", None, "ok"),
    (None, False, None, "server_error: boom", "error"),  # the Responses API's failure event
    (RuntimeError("sdk"), False, None, None, "error"),
    (RuntimeError("sdk"), False, "stop", None, "error"),
    (GeneratorExit(), False, None, None, "aborted"),
    (asyncio.CancelledError(), False, None, None, "aborted"),
    (KeyboardInterrupt(), False, "stop", None, "ok"),  # stopped after the last token: nothing lost
    (None, True, None, None, "aborted"),  # close() / garbage collection
    (None, True, "length", None, "ok"),
]


@pytest.mark.parametrize(("exc", "stopped", "finish_reason", "error", "status"), CASES)
def test_the_status_rule(exc: BaseException | None, stopped: bool, finish_reason: str | None,
                         error: str | None, status: str) -> None:
    recorder = Recorded()
    call = _call(recorder, finish_reason=finish_reason, error=error)
    assert call.status(exc, stopped=stopped) == status
    call.finish(exc, stopped=stopped)
    call.finish(RuntimeError("a second exit"))  # once only
    [interaction] = recorder.interactions
    assert interaction.status == status


def test_the_error_text_is_there_exactly_when_the_status_is_error() -> None:
    """A call cancelled before the SDK answered is aborted with no error text (it was "CancelledError: ")."""
    recorder = Recorded()
    _call(recorder).finish(asyncio.CancelledError())
    _call(recorder).finish(ValueError("bad request"))
    _call(recorder, error="server_error: boom").finish()
    assert [(i.status, i.error) for i in recorder.interactions] == [
        ("aborted", None), ("error", "ValueError: bad request"), ("error", "server_error: boom")]


def status_decisions(package: Path = CAPTURE) -> list[str]:
    """Where a status is chosen in ``package`` outside ``Call.status``: its literals, or one handed to finish."""
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "status" and path.name == "call.py":
                inside.update(id(n) for n in ast.walk(node))
        for node in ast.walk(tree):
            if id(node) in inside:
                continue
            if isinstance(node, ast.Constant) and node.value in ("ok", "aborted"):
                found.append(f"{path.name}:{node.lineno} {node.value!r}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "finish"
                    and any(isinstance(a, ast.Constant | ast.IfExp) for a in node.args)):
                found.append(f"{path.name}:{node.lineno} finish({ast.unparse(node.args[0])})")
    return sorted(found)


def test_no_status_is_decided_outside_the_rule() -> None:
    assert status_decisions() == []


def test_the_check_finds_a_second_rule(tmp_path: Path) -> None:
    (tmp_path / "client.py").write_text(
        "def f(call, exc):\n    call.finish('error' if isinstance(exc, Exception) else 'aborted', exc)\n")
    assert status_decisions(tmp_path) == ["client.py:2 'aborted'",
                                          "client.py:2 finish('error' if isinstance(exc, Exception) else 'aborted')"]
