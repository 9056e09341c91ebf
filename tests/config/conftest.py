"""Configuration tests start from a clean environment (no WONKALYTICS_* / AZURE_* of the machine)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("WONKALYTICS_", "AZURE_SQL_", "AZURE_TABLE", "PROMPTLAYER_")):
            monkeypatch.delenv(name)
