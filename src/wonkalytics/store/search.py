"""The text search of the read side and the index per dialect that serves it, with unchanged results.

The search answers "rows whose prompt (``system_msg``, ``messages``) or response contains the needle",
case-insensitively, the needle's ``%`` ``_`` ``\\`` taken literally -- the plain condition
``lower(col) LIKE '%' || lower(:needle) || '%'`` (``ILIKE`` on PostgreSQL) of :func:`plain_condition`.
An index only ever narrows the rows that condition is evaluated on; it never replaces it, so every
dialect returns exactly the rows the plain scan returns (tests/read/test_search.py checks this):

- **PostgreSQL**: GIN trigram indexes (``pg_trgm``, ``gin_trgm_ops``) on each searched column; the
  planner uses them for the very same ``ILIKE`` (and rechecks every candidate row).
- **SQLite**: an FTS5 external-content table ``<table>_search`` with the ``trigram`` tokenizer (SQLite
  3.34+), kept by triggers on insert/update/delete (the writer writes ordinary rows). A quoted phrase
  of the needle finds a superset of the matching rows (the tokenizer folds case for all of Unicode,
  SQLite's ``lower`` only for ASCII); the plain condition then keeps the exact ones.
- **MariaDB / MySQL**: a FULLTEXT index as a prefilter: ``MATCH ... AGAINST`` in boolean mode on the
  needle's whole words (see :func:`fulltext_words`), the plain condition on top. FULLTEXT alone would
  change the results (word boundaries, minimum token size, stopwords).
- **SQL Server**: no index. Its full-text search needs a catalog, a unique key index and a service
  that populates it asynchronously (rows are found only after a delay), and it matches words, not
  substrings; a ``LIKE '%x%'`` scan is what stays exact.

Needles shorter than three characters cannot be served by trigrams (nor, mostly, by FULLTEXT words):
they use the plain scan everywhere.

>>> fulltext_words("for the growth clear summary", min_token=3, max_token=84, stopwords=frozenset({"the"}))
['growth', 'clear']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

from wonkalytics.store.fit import column_index, resolve_column

__all__ = ["CANDIDATES_MAX", "SEARCH_FIELDS", "TRIGRAM", "SearchIndex", "detect", "fulltext_words", "plain_condition",
           "search_condition", "search_table_name"]

SEARCH_FIELDS = ("system_msg", "messages", "response")
"""The fields the text filter searches (through the column map)."""
TRIGRAM = 3
"""Needles shorter than this are never served by an index (a trigram needs three characters)."""


def search_table_name(table: sa.Table) -> str:
    """The SQLite FTS5 table that indexes ``table`` (``<table>_search``)."""
    return f"{table.name}_search"


@dataclass(frozen=True)
class SearchIndex:
    """What serves the text search of one table, as found in the database (see :func:`detect`).

    ``kind``: ``"trigram"`` (PostgreSQL), ``"fts5"`` (SQLite), ``"fulltext"`` (MariaDB/MySQL) or None;
    ``columns``: the columns the index covers (for FULLTEXT: in the index's order, as MATCH needs them).
    """

    kind: str | None
    columns: tuple[str, ...] = ()
    detail: str = ""
    min_token: int = 3
    max_token: int = 84
    stopwords: frozenset[str] = field(default_factory=frozenset)

    def serves(self, columns: Sequence[sa.Column[Any]]) -> bool:
        """Whether the index covers every one of ``columns`` (else the search scans)."""
        return self.kind is not None and all(resolve_column(c.name, self.columns) is not None for c in columns)


def plain_condition(columns: Sequence[sa.Column[Any]], needle: str) -> sa.ColumnElement[bool]:
    """The search's meaning: any of ``columns`` contains ``needle`` case-insensitively, literally."""
    return sa.or_(*[c.icontains(needle, autoescape=True) for c in columns])


_WORD = re.compile(r"[A-Za-z0-9]+")


def fulltext_words(needle: str, *, min_token: int, max_token: int, stopwords: frozenset[str]) -> list[str]:
    """The words of ``needle`` a FULLTEXT index must hold for every row containing ``needle``.

    Only a word with whitespace on both sides inside the needle is certainly a whole token of a
    matching row (the needle's first and last word may be parts of longer words: "rowth" in "growth");
    it must be plain ASCII letters and digits (what every FULLTEXT parser and collation splits alike),
    within the server's token sizes and not a stopword. No such word: the plain scan serves the needle.
    """
    parts = re.split(r"([ \t\r\n]+)", needle)  # ASCII whitespace: a separator to every FULLTEXT parser
    words: list[str] = []
    # parts alternate text, whitespace, text, ...: the inner texts (odd neighbours on both sides)
    for index in range(2, len(parts) - 2, 2):
        word = parts[index]
        if (_WORD.fullmatch(word) and min_token <= len(word) <= max_token
                and word.casefold() not in stopwords and word.casefold() not in (w.casefold() for w in words)):
            words.append(word)
    return words


CANDIDATES_MAX = 5000
"""A prefilter finding more rows than this (in the whole table) is not used: the period's scan is cheaper.

bench/search.py, SQLite, 1M rows: a needle in 14 % of the rows took 2.5 s through the FTS5 table
against 0.56 s scanning the period; a needle in 0.05 % took 84 ms against 1.3 s. Counting up to this
many candidates costs tens of milliseconds (the FTS5 and FULLTEXT iterators stop at the LIMIT).
"""


def search_condition(table: sa.Table, columns: Sequence[sa.Column[Any]], needle: str, dialect: str,
                     index: SearchIndex | None, conn: Connection | None = None) -> sa.ColumnElement[bool]:
    """The WHERE condition of the text search: the plain condition, narrowed by the index if one serves.

    With ``conn``, the SQLite and MariaDB prefilters are used only when they find at most
    :data:`CANDIDATES_MAX` rows (one bounded count); PostgreSQL's planner makes that choice itself.
    """
    exact = plain_condition(columns, needle)
    if index is None or len(needle) < TRIGRAM or not index.serves(columns):
        return exact
    if index.kind == "fts5":
        # A quoted FTS5 string is taken literally ("" for a quote); the trigram tokenizer matches it
        # as a substring, folding case for all of Unicode: a superset of the rows ``exact`` keeps.
        phrase = '"' + needle.replace('"', '""') + '"'
        fts = sa.table(search_table_name(table))
        fts_rowid: sa.ColumnElement[Any] = sa.literal_column("rowid")
        matching = (sa.select(fts_rowid).select_from(fts)
                    .where(sa.literal_column(_quoted(fts.name)).op("MATCH")(phrase)))
        if conn is not None and _too_many(conn, matching):
            return exact
        return sa.and_(_rowid(table).in_(matching.scalar_subquery()), exact)
    if index.kind == "fulltext":
        words = fulltext_words(needle, min_token=index.min_token, max_token=index.max_token,
                               stopwords=index.stopwords)
        if not words:
            return exact
        against = " ".join(f"+{w}" for w in words)
        match = mysql.match(*[table.c[name] for name in index.columns], against=against).in_boolean_mode()
        if conn is not None and _too_many(conn, sa.select(sa.literal(1)).select_from(table).where(match)):
            return exact
        return sa.and_(match, exact)
    return exact  # trigram: PostgreSQL's planner uses the GIN indexes for the ILIKE itself


def _too_many(conn: Connection, candidates: sa.Select[Any]) -> bool:
    bounded = candidates.limit(CANDIDATES_MAX + 1).subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(bounded)).scalar_one()) > CANDIDATES_MAX


def _quoted(name: str) -> str:
    from sqlalchemy.dialects import sqlite

    return str(sqlite.dialect().identifier_preparer.quote(name))


def _rowid(table: sa.Table) -> sa.ColumnElement[Any]:
    keys = list(table.primary_key.columns)
    if len(keys) == 1 and isinstance(keys[0].type, sa.Integer):
        return keys[0]  # an INTEGER PRIMARY KEY is the rowid
    return sa.literal_column(f"{_quoted(table.name)}.rowid")


# --- what the database has ------------------------------------------------------------------------


def text_columns(table: sa.Table, column_map: Mapping[str, str] | None = None) -> list[sa.Column[Any]]:
    """The searched columns of ``table`` (through ``column_map``, as reads resolve them), string-typed only."""
    found = [table.c[real] for n in SEARCH_FIELDS
             if (real := resolve_column(n, table.c.keys(), column_map or {})) is not None]
    return [c for c in found if isinstance(c.type, sa.String)]


def detect(conn: Connection, table: sa.Table, column_map: Mapping[str, str] | None = None) -> SearchIndex:
    """The index serving the text search of ``table`` in this database (``kind=None`` if none)."""
    name = "mariadb" if getattr(conn.dialect, "is_mariadb", False) else conn.dialect.name
    if name == "sqlite":
        return _detect_sqlite(conn, table)
    if name == "postgresql":
        return _detect_postgresql(conn, table)
    if name in ("mysql", "mariadb"):
        return _detect_fulltext(conn, table, column_map)
    return SearchIndex(None, detail=f"{name} has no search index (a LIKE scan; see store/search.py)")


def _detect_sqlite(conn: Connection, table: sa.Table) -> SearchIndex:
    fts = search_table_name(table)
    sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :n"),
                       {"n": fts}).scalar()
    if sql is None:
        return SearchIndex(None, detail=f"no FTS5 table {fts}")
    triggers = set(conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                                {"t": table.name}).scalars())
    if not {f"{fts}_ai", f"{fts}_ad", f"{fts}_au"} <= triggers:
        return SearchIndex(None, detail=f"{fts} exists but its triggers are missing (rerun `wonkalytics init "
                                        "--upgrade`)")
    columns = tuple(str(row[1]) for row in conn.exec_driver_sql(f"PRAGMA table_info({_quoted(fts)})"))
    return SearchIndex("fts5", columns, f"FTS5 trigram table {fts}")


_TRGM_COLUMNS = """
SELECT a.attname FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_opclass o ON o.oid = i.indclass[0]
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
WHERE c.relname = :t AND n.nspname = COALESCE(:s, current_schema()) AND o.opcname = 'gin_trgm_ops'
"""


def _detect_postgresql(conn: Connection, table: sa.Table) -> SearchIndex:
    installed = conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    if installed is None:
        return SearchIndex(None, detail="the pg_trgm extension is not installed")
    columns = tuple(conn.execute(sa.text(_TRGM_COLUMNS), {"t": table.name, "s": table.schema}).scalars())
    if not columns:
        return SearchIndex(None, detail="no GIN trigram index")
    return SearchIndex("trigram", columns, f"GIN trigram indexes on {', '.join(columns)}")


def _detect_fulltext(conn: Connection, table: sa.Table, column_map: Mapping[str, str] | None) -> SearchIndex:
    rows = conn.execute(sa.text(
        "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_NAME = :t "
        "AND TABLE_SCHEMA = COALESCE(:s, DATABASE()) AND INDEX_TYPE = 'FULLTEXT' ORDER BY INDEX_NAME, SEQ_IN_INDEX"),
        {"t": table.name, "s": table.schema}).all()
    indexes: dict[str, list[str]] = {}
    for index_name, column in rows:
        indexes.setdefault(str(index_name), []).append(str(column))
    wanted = column_index(c.name for c in text_columns(table, column_map)).keys()
    best = next((cols for cols in indexes.values() if column_index(cols).keys() == wanted), None)
    if best is None:
        return SearchIndex(None, detail="no FULLTEXT index on the searched columns")
    engine = conn.execute(sa.text("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_NAME = :t "
                                  "AND TABLE_SCHEMA = COALESCE(:s, DATABASE())"),
                          {"t": table.name, "s": table.schema}).scalar()
    if str(engine).casefold() != "innodb":
        # MyISAM/Aria tokenize with other settings (ft_min_word_len, a stopword file not readable by SQL).
        return SearchIndex(None, tuple(best), f"FULLTEXT index on a {engine} table: searches scan")
    settings = conn.execute(sa.text(
        "SELECT @@innodb_ft_min_token_size, @@innodb_ft_max_token_size, @@innodb_ft_enable_stopword, "
        "@@innodb_ft_server_stopword_table, @@innodb_ft_user_stopword_table")).one()
    if settings[3] or settings[4]:
        # A custom stopword table: its words are not read here, so no word is known safe to require.
        return SearchIndex(None, tuple(best), "FULLTEXT index present, but a custom stopword table is set: "
                                              "searches scan")
    stopwords: frozenset[str] = frozenset()
    if settings[2]:
        stopwords = frozenset(str(w).casefold() for w in conn.execute(
            sa.text("SELECT value FROM information_schema.INNODB_FT_DEFAULT_STOPWORD")).scalars())
    return SearchIndex("fulltext", tuple(best), f"FULLTEXT index on {', '.join(best)}", int(settings[0]),
                       int(settings[1]), stopwords)
