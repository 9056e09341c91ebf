"""The examples in the package's docstrings are run, so they stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import wonkalytics

# Modules run by ``python -m`` or that start servers on import are not doctested.
SKIP = {"wonkalytics.cli.__main__", "wonkalytics.testing.__main__"}
MODULES = sorted(
    info.name for info in pkgutil.walk_packages(wonkalytics.__path__, "wonkalytics.") if info.name not in SKIP
)
# These modules promise worked examples on their public names.
MUST_HAVE_EXAMPLES = {f"wonkalytics.record.{n}" for n in ("flatten", "identity", "messages",
                                                           "params", "pipeline")} | {
    f"wonkalytics.store.{n}" for n in ("dialects", "engine", "failures", "fit", "schema", "sql")}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
    if name in MUST_HAVE_EXAMPLES:
        assert result.attempted > 0, f"{name} lost its docstring examples"
