"""Migration ``m009_search_index``: the text search's index per dialect (what and why: store/search.py).

The probe looks at what reflection cannot show (the pg_trgm extension and the privilege to create
it, SQLite's FTS5 trigram tokenizer, the existing index); the plan then returns only the statements
still needed. Where the index cannot be made, the plan says why and what to run, and the search keeps
working: it scans, with the same results.

>>> import sqlalchemy as sa
>>> from sqlalchemy.dialects import postgresql
>>> t = sa.Table("t", sa.MetaData(), sa.Column("response", sa.Text))
>>> plan_search_index(t, postgresql.dialect())[0][-1]
'CREATE INDEX IF NOT EXISTS ix_t_response_trgm ON t USING gin (response gin_trgm_ops)'
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from wonkalytics.store.fit import resolve_column
from wonkalytics.store.search import SearchIndex, detect, search_table_name, text_columns

__all__ = ["plan_search_index", "probe_search_index"]


def probe_search_index(conn: Connection, table: sa.Table) -> dict[str, Any]:
    """What the plan needs to know from the database (stored in ``table.info``)."""
    found: dict[str, Any] = {"search_index": detect(conn, table, table.info.get("column_map"))}
    if conn.dialect.name == "sqlite":
        found["sqlite_version"] = conn.execute(sa.text("SELECT sqlite_version()")).scalar()
        found["fts5_trigram"] = _sqlite_has_trigram(conn)
    elif conn.dialect.name == "postgresql":
        row = conn.execute(sa.text(
            "SELECT current_user, current_database(), "
            "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
            "has_database_privilege(current_database(), 'CREATE'), "
            "EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'), "
            "(SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            " WHERE e.extname = 'pg_trgm')")).one()
        found["pg_trgm"] = {"user": row[0], "database": row[1], "may_create": bool(row[2] or row[3]),
                            "available": bool(row[4]), "schema": row[5]}
    return found


def _sqlite_has_trigram(conn: Connection) -> bool:
    # The one sure test: FTS5 compiled in and the trigram tokenizer known (SQLite 3.34+).
    nested = conn.begin_nested()
    try:
        conn.exec_driver_sql("CREATE VIRTUAL TABLE temp.wl_probe_trigram USING fts5(a, tokenize='trigram')")
        conn.exec_driver_sql("DROP TABLE temp.wl_probe_trigram")
    except sa.exc.OperationalError:
        nested.rollback()
        return False
    nested.commit()
    return True


def plan_search_index(table: sa.Table, dialect: Dialect) -> tuple[list[str], str, bool]:
    """(statements, note, attention) of ``m009_search_index`` for ``table`` (see the module docstring)."""
    columns = text_columns(table, table.info.get("column_map"))
    if not columns:
        return [], "no text column to search (system_msg, messages, response)", False
    index: SearchIndex | None = table.info.get("search_index")
    name = "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name
    if name == "sqlite":
        return _sqlite(table, dialect, columns, index)
    if name == "postgresql":
        return _postgresql(table, dialect, columns, index)
    if name in ("mysql", "mariadb"):
        if index is not None and index.columns:  # a FULLTEXT index on exactly the searched columns
            return [], index.detail or "the FULLTEXT index is there", index.kind is None
        quoted = ", ".join(dialect.identifier_preparer.quote(c.name) for c in columns)
        index_name = dialect.identifier_preparer.quote(f"ft_{table.name}_search"[:64])
        return ([f"ALTER TABLE {dialect.identifier_preparer.format_table(table)} ADD FULLTEXT INDEX {index_name} "
                 f"({quoted})"],
                "a FULLTEXT index as the search's prefilter (whole words; the exact condition stays on top)", False)
    return [], (f"no search index on {name}: its full-text search is filled asynchronously and matches words, "
                "not substrings; the search scans (LIKE), exactly"), False


def _sqlite(table: sa.Table, dialect: Dialect, columns: list[sa.Column[Any]],
            index: SearchIndex | None) -> tuple[list[str], str, bool]:
    if index is not None and index.serves(columns):
        return [], index.detail, False
    if table.info.get("fts5_trigram") is False:
        version = table.info.get("sqlite_version")
        return [], (f"SQLite {version} has no FTS5 trigram tokenizer (needs SQLite 3.34+ built with FTS5): the "
                    "search scans; upgrade SQLite (e.g. a newer Python) and rerun `wonkalytics init --upgrade`"), True
    q = dialect.identifier_preparer.quote
    fts = search_table_name(table)
    names = [q(c.name) for c in columns]
    fields = ", ".join(names)
    new = ", ".join(f"new.{n}" for n in names)
    old = ", ".join(f"old.{n}" for n in names)
    target, base = q(fts), q(table.name)
    content = table.name.replace("'", "''")
    # The rowid names a row in the FTS table; an INTEGER PRIMARY KEY is the rowid, so changing it moves
    # the row: the update trigger then fires too.
    watched = list(names) + [q(k.name) for k in table.primary_key.columns if isinstance(k.type, sa.Integer)]
    delete = f"INSERT INTO {target}({target}, rowid, {fields}) VALUES ('delete', old.rowid, {old});"  # noqa: S608 - quoted names
    insert = f"INSERT INTO {target}(rowid, {fields}) VALUES (new.rowid, {new});"  # noqa: S608 - quoted names
    statements = [
        # A half-made index (an older column set, a trigger lost) is derived data: made again.
        f"DROP TRIGGER IF EXISTS {q(fts + '_ai')}", f"DROP TRIGGER IF EXISTS {q(fts + '_ad')}",
        f"DROP TRIGGER IF EXISTS {q(fts + '_au')}", f"DROP TABLE IF EXISTS {target}",
        f"CREATE VIRTUAL TABLE {target} USING fts5({fields}, content='{content}', content_rowid='rowid', "
        "tokenize='trigram')",
        f"CREATE TRIGGER {q(fts + '_ai')} AFTER INSERT ON {base} BEGIN {insert} END",
        f"CREATE TRIGGER {q(fts + '_ad')} AFTER DELETE ON {base} BEGIN {delete} END",
        f"CREATE TRIGGER {q(fts + '_au')} AFTER UPDATE OF {', '.join(watched)} ON {base} BEGIN {delete} {insert} END",
        f"INSERT INTO {target}({target}) VALUES ('rebuild')",  # noqa: S608 - the rows written before the upgrade
    ]
    return statements, (f"an FTS5 trigram table {fts}, kept by triggers, filled from the existing rows"), False


def _postgresql(table: sa.Table, dialect: Dialect, columns: list[sa.Column[Any]],
                index: SearchIndex | None) -> tuple[list[str], str, bool]:
    covered = index.columns if index is not None else ()
    missing = [c for c in columns if resolve_column(c.name, covered) is None]
    if not missing:
        return [], index.detail if index is not None else "indexed", False
    pg: dict[str, Any] | None = table.info.get("pg_trgm")
    statements = []
    opclass = "gin_trgm_ops"
    if pg is not None and pg["schema"] is not None:
        opclass = f"{dialect.identifier_preparer.quote_schema(pg['schema'])}.gin_trgm_ops"
    elif pg is not None and not pg["available"]:
        return [], ("the pg_trgm extension is not available on this server (install PostgreSQL's contrib "
                    "package), so the text search scans; rerun `wonkalytics init --upgrade` after"), True
    elif pg is not None and not pg["may_create"]:
        return [], (f"role {pg['user']!r} may not create the pg_trgm extension (it needs the CREATE privilege on "
                    f"database {pg['database']!r}): as a superuser run `CREATE EXTENSION IF NOT EXISTS pg_trgm;` in "
                    f"database {pg['database']!r}, then `wonkalytics init --upgrade` again. The text search works "
                    "meanwhile, without the index (a scan)"), True
    else:
        statements.append("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # A GIN build over a big table outlasts the library's statement timeout (bench/search.py: about a
    # minute for 1M rows); it applies to this step's transaction only.
    statements.append("SET LOCAL statement_timeout = 0")
    q = dialect.identifier_preparer.quote
    where = dialect.identifier_preparer.format_table(table)
    for column in missing:
        index_name = q(f"ix_{table.name}_{column.name}_trgm"[:63])
        statements.append(f"CREATE INDEX IF NOT EXISTS {index_name} ON {where} USING gin ({q(column.name)} {opclass})")
    return statements, f"GIN trigram indexes on {', '.join(c.name for c in missing)} (pg_trgm)", False
