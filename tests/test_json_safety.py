"""JSON safety has one home (``wonkalytics.access``): every encoder of foreign values goes through it.

Issue 18 counted five private fallbacks (the spool's, the JSON-lines sink's, OTel's, ClickHouse's,
text columns') beside ``json_safe``, each turning a datetime, a set or an odd object into something a
little different, and two of them raising on a value whose ``str()`` fails. The ast check fails when
a ``default=`` hook of another name comes back; the behaviour check runs the same odd values through
each encoder and wants the same JSON from all of them.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pydantic
import pytest

import wonkalytics
from wonkalytics.access import json_default, json_safe, json_text
from wonkalytics.ops import Update, decode_op, encode_op
from wonkalytics.record.messages import _unknown
from wonkalytics.sinks.clickhouse import ClickHouseSink
from wonkalytics.sinks.jsonl import _dumps
from wonkalytics.sinks.otel import _json
from wonkalytics.store.clickhouse import ClickHouseTarget
from wonkalytics.store.fit import to_text

PACKAGE = Path(wonkalytics.__file__).parent


class Color(Enum):
    RED = "red"


class Part(pydantic.BaseModel):
    type: str
    text: str


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


def odd_values() -> dict[str, Any]:
    return {"at": datetime(2024, 1, 2, 3, 4, 5), "day": date(2024, 1, 2), "set": {1}, "bytes": b"hi \xff",
            "enum": Color.RED, "model": Part(type="text", text="x"), "odd": Unprintable(), "n": 1.5}


EXPECTED = {"at": "2024-01-02T03:04:05", "day": "2024-01-02", "set": [1], "bytes": "hi \ufffd", "enum": "red",
            "model": {"type": "text", "text": "x"}, "odd": "<unprintable Unprintable>", "n": 1.5}


def _clickhouse(value: Any) -> str:
    sink = ClickHouseSink(ClickHouseTarget.from_url("clickhouse://127.0.0.1:9000/default", "house_json"))
    row = sink._update(Update(key="r1", field="notes", value=value), {"notes": "text", "response_id": "text"}, 0.0)
    text: str = row[3]
    return text


ENCODERS: dict[str, Callable[[Any], str]] = {
    "spool": lambda v: json.dumps(decode_op(encode_op(Update(key="r1", field="notes", value=v))).value),  # type: ignore[union-attr]
    "jsonl": lambda v: _dumps({"v": v}).decode("utf-8"),
    "otel": _json,
    "clickhouse": _clickhouse,
    "text column": lambda v: to_text(v) or "",
    "messages": _unknown,
    "json_text": json_text,
}


def _decoded(name: str, text: str) -> Any:
    data = json.loads(text)
    return data["v"] if name == "jsonl" else data


@pytest.mark.parametrize("name", list(ENCODERS))
def test_each_encoder_gives_the_same_json_for_odd_values(name: str) -> None:
    assert _decoded(name, ENCODERS[name](odd_values())) == EXPECTED


@pytest.mark.parametrize("name", list(ENCODERS))
def test_each_encoder_keeps_a_value_that_contains_itself(name: str) -> None:
    """json.dumps refuses the whole value: the fallback keeps every other field, the cycle as a placeholder."""
    value = odd_values()
    circular: list[Any] = [1]
    circular.append(circular)
    value["circular"] = circular
    assert _decoded(name, ENCODERS[name](value)) == {**EXPECTED, "circular": [1, "<circular list>"]}


def test_a_branching_cycle_is_cut_at_once() -> None:
    """``x = [x, x]`` walked to the depth limit was 2**40 steps; each re-entry is a placeholder now."""
    x: list[Any] = []
    x.extend([x, x])
    assert json_safe(x) == ["<circular list>", "<circular list>"]
    assert json.loads(json_text({"x": x})) == {"x": ["<circular list>", "<circular list>"]}


def test_json_default_never_raises() -> None:
    class BrokenModel:
        def model_dump(self, mode: str) -> Any:
            raise ValueError("cannot dump")

        def __str__(self) -> str:
            return "broken"

    assert json_default(BrokenModel()) == "broken"
    assert json_default(Unprintable()) == "<unprintable Unprintable>"


def _default_hooks(package: Path = PACKAGE) -> list[str]:
    """Every ``default=`` of a json.dump(s) call that is not ``json_default``, and every JSONEncoder subclass."""
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(package)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("json.dumps", "json.dump"):
                for keyword in node.keywords:
                    if keyword.arg in ("default", "cls") and ast.unparse(keyword.value) != "json_default":
                        found.append(f"{where}:{node.lineno} {keyword.arg}={ast.unparse(keyword.value)}")
            if isinstance(node, ast.ClassDef) and any("JSONEncoder" in ast.unparse(b) for b in node.bases):
                found.append(f"{where}:{node.lineno} class {node.name}")
    return found


def test_every_json_fallback_is_the_one_in_access() -> None:
    assert _default_hooks() == []


def test_the_check_finds_a_private_fallback(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import json\njson.dumps({}, default=str)\njson.dumps({}, default=json_default)\n")
    (tmp_path / "b.py").write_text("import json\nclass Enc(json.JSONEncoder):\n    pass\n")
    assert _default_hooks(tmp_path) == ["a.py:2 default=str", "b.py:2 class Enc"]
