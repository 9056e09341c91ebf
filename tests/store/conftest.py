"""Fixtures of the store tests: every engine is disposed after each test (no leaked connections)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wonkalytics.store.engine import dispose_engines


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    dispose_engines()
