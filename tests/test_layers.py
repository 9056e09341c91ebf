"""No import runs back up the layers (shared/DESIGN.md): an ast walk over every module of the package.

The data path is capture -> record -> writer -> sinks -> store; beside it the facade (recorder),
settings, and the ground floor every stage stands on (interaction, ops, errors, access, _version).
A module may import its own room and any room on a lower floor, never one above it, and the rooms
form no circle. Imports that run count wherever they are written (a lazy import in a function runs
on the writer thread); ``if TYPE_CHECKING:`` blocks never run and are left out.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import wonkalytics

PACKAGE = Path(wonkalytics.__file__).parent

FLOORS: dict[str, int] = {
    # ground floor: data types and helpers below every stage
    "_version": 0, "utc": 0, "interaction": 0, "ops": 0, "errors": 0, "internal_errors": 0, "access": 0,
    "destinations": 0,  # spool destinations' keys and descriptions: stdlib and sqlalchemy only
    "store": 1,
    "settings": 2,  # checks URLs through store/; every sink's from_settings reads it
    "sinks": 3,
    "writer": 4,
    "record": 5,  # pure functions: above the writer in the path, and nothing of the writer's below it
    "recorder": 6,  # the facade: assembles sinks and lanes from settings, turns calls into ops
    "capture": 7,
    "__init__": 8,  # the public API
    "analytics": 9, "openai_wrapper": 9,  # the seed's import paths, onto the public API
    "testing": 9,  # the shipped offline server (imports nothing of the write path)
    "dashboard": 10,
    "cli": 11, "__main__": 11,
}
PURE = ("record",)
"""Rooms that read no environment and no settings object (they are handed what they need)."""


def _room(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for body in node.body for n in ast.walk(body))
    return skipped


def imports(package: Path = PACKAGE) -> list[tuple[str, int, str]]:
    """(importing module, line, imported module) for every import of a wonkalytics module that runs."""
    found = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
                if node.module == "wonkalytics":  # `from wonkalytics import x`: x may be a room itself
                    names = [f"wonkalytics.{a.name}" if a.name in FLOORS else "wonkalytics" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [(module, node.lineno, name) for name in names if name.split(".")[0] == "wonkalytics"]
    return found


def upward(found: list[tuple[str, int, str]]) -> list[str]:
    """The imports of ``found`` that go to a higher floor than their module's."""
    return [
        f"{module}:{line} imports {name} ({_room(module)} is floor {FLOORS[_room(module)]}, "
        f"{_room(name)} is floor {FLOORS[_room(name)]})"
        for module, line, name in found
        if FLOORS[_room(name)] > FLOORS[_room(module)]
    ]


def circles(found: list[tuple[str, int, str]]) -> list[str]:
    """The rooms that reach themselves through the imports of ``found``."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, _, name in found:
        if _room(module) != _room(name):
            graph[_room(module)].add(_room(name))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in sorted(graph[start]):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False

    return sorted(room for room in list(graph) if reaches(room, room, set()))


def test_every_room_has_a_floor() -> None:
    found = imports()
    rooms = {_room(module) for module, _, _ in found} | {_room(name) for _, _, name in found}
    assert rooms <= set(FLOORS), f"rooms without a floor in this test: {sorted(rooms - set(FLOORS))}"


def test_no_import_runs_back_up() -> None:
    assert upward(imports()) == []


def test_the_rooms_form_no_circle() -> None:
    assert circles(imports()) == []


def test_pure_rooms_read_no_settings_and_no_environment() -> None:
    offending = [
        f"{file.relative_to(PACKAGE)} uses {needle}"
        for room in PURE for file in sorted((PACKAGE / room).rglob("*.py"))
        for needle in ("load_settings", "os.environ", "getenv(")
        if needle in file.read_text(encoding="utf-8")
    ]
    assert offending == []


def test_the_walk_reports_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    """The rules bite: a lazy upward import is reported, one under TYPE_CHECKING is not."""
    store = tmp_path / "wonkalytics" / "store"
    store.mkdir(parents=True)
    (tmp_path / "wonkalytics" / "__init__.py").write_text("")
    (store / "__init__.py").write_text("")
    (store / "x.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from wonkalytics.sinks.base import Sink\n"
        "def later():\n    from wonkalytics.writer.lane import Lane\n    return Lane\n"
    )
    (tmp_path / "wonkalytics" / "writer").mkdir()
    (tmp_path / "wonkalytics" / "writer" / "lane.py").write_text("import wonkalytics.store.x\n")
    found = imports(tmp_path / "wonkalytics")
    assert [line.split(" (")[0] for line in upward(found)] == ["wonkalytics.store.x:5 imports wonkalytics.writer.lane"]
    assert circles(found) == ["store", "writer"]
