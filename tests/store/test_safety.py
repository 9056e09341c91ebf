"""No SQL from callers' strings, and no password in any error we raise."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
import sqlalchemy as sa

from wonkalytics.errors import StoreError, UnknownColumnError
from wonkalytics.store.engine import get_engine
from wonkalytics.store.sql import TableStore, is_transient

from .helpers import read_rows, recorded_sql

SECRET = "Sup3r-S3cret-pw"
INJECTIONS = [
    "score = 1; DROP TABLE {table}; --",
    "score=1 WHERE 1=1; --",
    "score`; DROP TABLE {table}; --",
    'score"; DROP TABLE {table}; --',
    "score]; DROP TABLE {table}; --",
    "SCORE",  # not the column: names are matched exactly
    " score",
]


@pytest.mark.parametrize("column", INJECTIONS)
def test_column_names_cannot_inject_sql(db_url: str, table_name: str, column: str) -> None:
    column = column.format(table=table_name)
    store = TableStore(db_url, table_name)
    store.insert_many([{"event_id": "e1", "response_id": "r1", "score": 3}])
    with recorded_sql(db_url) as statements:
        with pytest.raises(UnknownColumnError) as info:
            store.update_where("response_id", "r1", column, 1)
        assert info.value.column == column
        with pytest.raises(UnknownColumnError):
            store.update_where(column, "r1", "score", 1)
        with pytest.raises(UnknownColumnError):
            store.insert_many([{"event_id": "e2", column: 1}])
    assert statements == []
    assert sa.inspect(get_engine(db_url)).has_table(table_name)
    rows = read_rows(db_url, table_name)
    assert [(r["event_id"], r["score"]) for r in rows] == [("e1", 3)]


def test_values_that_look_like_sql_are_stored_literally(db_url: str, table_name: str) -> None:
    nasty = [
        f"'); DROP TABLE {table_name}; --",
        "' OR '1'='1",
        'Robert"); DELETE FROM x; --',
        "%s %(name)s ? :param $1 {0}",
        "back\\slash and `backtick`",
    ]
    store = TableStore(db_url, table_name)
    rows = [{"event_id": f"e{i}", "response_id": f"r{i}", "messages": text} for i, text in enumerate(nasty)]
    assert store.insert_many(rows) == len(nasty)
    # A key value that looks like a tautology matches nothing.
    assert store.update_where("response_id", "x' OR '1'='1", "score", 666) is False
    assert store.update_where("response_id", "r1", "notes", nasty[0]) is True
    stored = read_rows(db_url, table_name)
    assert [r["messages"] for r in stored] == nasty
    assert [r["score"] for r in stored] == [None] * len(nasty)
    assert stored[1]["notes"] == nasty[0]


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://wl_user:{SECRET}@127.0.0.1:1/analytics",
        f"mysql+pymysql://wl_user:{SECRET}@127.0.0.1:1/analytics",
        f"mariadb+pymysql://wl_user:{SECRET}@127.0.0.1:1/analytics",
    ],
)
def test_password_never_appears_in_errors(url: str) -> None:
    store = TableStore(url, "interactions")
    for action in (
        lambda: store.table,
        lambda: store.insert_many([{"event_id": "e1"}]),
        lambda: store.count(),
    ):
        with pytest.raises(StoreError) as info:
            action()
        error = info.value
        assert SECRET not in str(error)
        assert "wl_user:***@127.0.0.1:1/analytics" in str(error)
        assert " table 'interactions' at " in str(error)
        rendered = "".join(traceback.format_exception(error))
        assert SECRET not in rendered
        cause = error.__cause__
        while cause is not None:
            assert SECRET not in str(cause) and SECRET not in repr(cause)
            cause = cause.__cause__ or cause.__context__
        assert is_transient(error), "a refused connection is worth retrying"
    assert SECRET not in repr(store)


def test_refused_login_is_not_echoed(db_url: str, table_name: str, tmp_path: Path) -> None:
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":  # no passwords here: an unopenable file instead
        url = url.set(database=str(tmp_path / "missing-dir" / "x.db"))
    else:  # an unknown user with a password
        url = url.set(username="wl_nobody", password=SECRET)
    store = TableStore(url, table_name)
    with pytest.raises(StoreError, match=rf"^reflect table '{table_name}' at ") as info:
        store.count()
    rendered = "".join(traceback.format_exception(info.value))
    assert SECRET not in rendered
    assert info.value.__cause__ is None or SECRET not in str(info.value.__cause__)
