"""settings.py is the only module that reads the process environment (shared/DESIGN.md).

Issue 18 counted the environment read in five places besides settings.py; they read through
``settings.foreign_environ()`` now, and ``internal_errors`` is handed settings' reader of
``WONKALYTICS_STRICT``. This ast walk keeps it so: ``os.environ`` / ``os.getenv`` / ``os.putenv`` /
``os.unsetenv`` / ``os.environb`` (and ``from os import environ``) anywhere else fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import wonkalytics
from wonkalytics import internal_errors, settings

PACKAGE = Path(wonkalytics.__file__).parent
HOME = "settings.py"
_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


def environment_reads(package: Path = PACKAGE) -> list[str]:
    """``module:line what`` for every use of the environment outside settings.py."""
    found = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        if where == HOME:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in _NAMES and ast.unparse(node.value) == "os":
                found.append(f"{where}:{node.lineno} os.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module == "os":
                found += [f"{where}:{node.lineno} from os import {a.name}" for a in node.names if a.name in _NAMES]
    return sorted(found)


def test_only_settings_reads_the_environment() -> None:
    assert environment_reads() == []


def test_the_check_finds_each_spelling(tmp_path: Path) -> None:
    (tmp_path / "settings.py").write_text("import os\nos.environ\n")  # the home may
    (tmp_path / "a.py").write_text("import os\nx = os.environ.get('A')\ny = os.getenv('B')\n")
    (tmp_path / "b.py").write_text("from os import environ as env\n")
    assert environment_reads(tmp_path) == ["a.py:2 os.environ", "a.py:3 os.getenv", "b.py:1 from os import environ"]


def test_foreign_variables_are_read_live_through_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-house")
    assert settings.foreign_environ().get("OPENAI_ORG_ID") == "org-house"
    monkeypatch.delenv("OPENAI_ORG_ID")
    assert "OPENAI_ORG_ID" not in settings.foreign_environ()


def test_strict_mode_reads_the_environment_through_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """internal_errors asks the reader settings handed it (the ground floor cannot import settings)."""
    asked: list[bool] = []

    def reader() -> bool:
        asked.append(True)
        return True

    monkeypatch.setattr(internal_errors, "_strict", None)
    monkeypatch.setattr(internal_errors, "_from_environment", reader)
    assert internal_errors.strict() and asked
    monkeypatch.setattr(internal_errors, "_from_environment", settings.strict_from_environment)
    monkeypatch.setenv("WONKALYTICS_STRICT", " On ")
    assert internal_errors.strict()
    monkeypatch.setenv("WONKALYTICS_STRICT", "off")
    assert not internal_errors.strict()
