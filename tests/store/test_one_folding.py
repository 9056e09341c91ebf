"""Column (and table) names are compared case-insensitively in one place: ``store.fit.fold_name``,
which ``column_index`` and ``resolve_column`` use.

Issue 18 counted five local case-foldings beside the resolver (search, search_index, migrations), each
free to drift from it (``lower()`` and ``casefold()`` disagree on "ß"). Every ``.casefold()`` /
``.lower()`` left in the package is listed below with what it folds; a new one fails this test until
it goes through the resolver or is added here with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sqlalchemy as sa

import wonkalytics
from wonkalytics.store.fit import column_index, fold_name, resolve_column
from wonkalytics.store.search import SearchIndex

PACKAGE = Path(wonkalytics.__file__).parent

NOT_NAMES: dict[tuple[str, str], str] = {
    ("store/fit.py", "name"): "fold_name itself: the one rule",
    ("store/coerce.py", "value.strip()"): "a boolean column's text ('true', 'Yes')",
    ("store/dialects.py", "name"): "a dialect name from a URL ('PostgreSQL+psycopg')",
    ("store/clickhouse.py", "text.split('://', 1)[0]"): "a URL scheme",
    ("store/failures.py", "str(orig)"): "a driver's error message",
    ("store/periods.py", "match.group(2)"): "a duration unit ('7D')",
    ("store/search.py", "word"): "a search word against the server's stopwords",
    ("store/search.py", "w"): "a search word against the words already kept",
    ("store/search.py", "str(w)"): "the server's stopwords",
    ("store/search.py", "str(engine)"): "a storage engine name ('InnoDB')",
    ("record/cost.py", "name"): "a model name in the prices file",
    ("record/cost.py", "str(name)"): "a model name in the prices file",
    ("record/identity.py", "key_text.strip()"): "an HTTP header or claim name",
    ("record/secrets.py", "key"): "a dict key that may hold a secret ('Api-Key')",
    ("sinks/otel.py", "environ.get(CAPTURE_CONTENT_ENV, '').strip()"): "OpenTelemetry's on/off value",
    ("sinks/promptlayer.py", "f"): "the fields PromptLayer takes as scores (op fields, not columns)",
    ("sinks/promptlayer.py", "op.field"): "an update's field against those score fields",
    ("settings.py", "value.strip()"): "a WONKALYTICS_STRICT value ('YES')",
    ("dashboard/app.py", "header"): "the Authorization header's scheme ('Bearer')",
}


def foldings(package: Path = PACKAGE) -> set[tuple[str, str]]:
    """(module path, what is folded) for every ``.casefold()`` / ``.lower()`` call outside ``testing/``."""
    found = set()
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        if where.startswith("testing/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("casefold", "lower")):
                found.add((where, ast.unparse(node.func.value)))
    return found


def test_every_case_folding_of_a_name_is_the_resolvers() -> None:
    assert sorted(foldings() - NOT_NAMES.keys()) == []


def test_the_list_has_no_stale_entries() -> None:
    assert sorted(NOT_NAMES.keys() - foldings()) == []


def test_the_check_finds_a_local_folding(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("have = {c.casefold() for c in cols}\nok = column.name.lower() == 'a'\n")
    assert foldings(tmp_path) == {("x.py", "c"), ("x.py", "column.name")}


def test_the_one_rule_is_casefold_and_everyone_follows_it() -> None:
    """casefold, not lower: 'STRASSE' and 'straße' fold alike; the index check agrees with the resolver."""
    assert fold_name("STRASSE") == fold_name("straße")
    assert resolve_column("straße", ["STRASSE"]) == "STRASSE" and column_index(["STRASSE"]) == {"strasse": "STRASSE"}
    index = SearchIndex("trigram", ("Messages", "STRASSE"))
    assert index.serves([sa.Column("messages", sa.Text), sa.Column("straße", sa.Text)])
    assert not index.serves([sa.Column("response", sa.Text)])
