"""The README's schema table is generated from the schema code; this keeps the two in step."""

from __future__ import annotations

import re
from pathlib import Path

from wonkalytics.store.schema import schema_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_schema_matches_the_schema_code() -> None:
    text = README.read_text()
    match = re.search(r"<!-- schema:start -->\n(.*?)\n<!-- schema:end -->", text, re.S)
    assert match, "README.md lost its schema markers"
    assert match.group(1).strip() == schema_markdown().strip(), (
        "README schema is stale: paste wonkalytics.store.schema.schema_markdown() between the markers"
    )


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text()[:1500]
    assert "wonkalytics demo" in head and "python -m pytest" in head
    ci = (README.parent / ".ci" / "run").read_text()
    assert '.venv/bin/pip install --quiet -e ".[dev]" && .venv/bin/python -m pytest' in ci
