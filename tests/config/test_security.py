"""No secret is stored: not in a row, a log record, an exception message or a spool file.

The secrets: the OpenAI key (client and ``Authorization`` header), an ``Authorization`` header the app
adds, keys and passwords put in app fields or the seed wrapper's ``kwargs``, and the database
password. Spool files are owner-only (0600 in 0700 directories).
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import sqlalchemy as sa
from tests.conftest import POSTGRES_URL, _drop, require_server

import wonkalytics
from wonkalytics.analytics import _write_to_azure_sql
from wonkalytics.errors import WonkalyticsError
from wonkalytics.recorder import default_recorder
from wonkalytics.testing import FakeOpenAI
from wonkalytics.testing.proxy import FaultProxy

OPENAI_KEY = "sk-live-OPENAI-0123456789abcdef"
HEADER_TOKEN = "Bearer app-token-0123456789"
FIELD_KEY = "field-key-0123456789"
FIELD_PASSWORD = "field-pw-0123456789"
DB_PASSWORD = "Db-Pa55word-0123456789"
PL_KEY = "pl_live_0123456789abcdef"
SECRETS = (OPENAI_KEY, HEADER_TOKEN.split()[1], FIELD_KEY, FIELD_PASSWORD, DB_PASSWORD, PL_KEY)



def _read_all(root: Path) -> str:
    """Every file's text under ``root``; a segment a lane drains (and removes) while we walk is skipped."""
    texts = []
    for p in root.rglob("*"):
        try:
            if p.is_file():
                texts.append(p.read_text(errors="replace"))
        except FileNotFoundError:  # the jsonl lane delivered and removed it between rglob and read
            continue
    return "".join(texts)

def _leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def _dump(url: str, table: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return repr([dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))])
    finally:
        engine.dispose()


@pytest.fixture
def pg_with_password(table_name: str) -> Iterator[tuple[str, str, FaultProxy]]:
    """PostgreSQL (trust auth ignores the password, so the URL may carry one) behind a fault proxy."""
    direct = sa.make_url(require_server("postgresql"))
    with FaultProxy(direct.port or 5432) as proxy:
        url = direct.set(host="127.0.0.1", port=proxy.port, password=DB_PASSWORD)
        yield url.render_as_string(hide_password=False), direct.render_as_string(hide_password=False), proxy
    default_recorder.shutdown(10)
    _drop(POSTGRES_URL, table_name)


@pytest.mark.db
@pytest.mark.parametrize("sinks", [
    "table",
    "all",
])
def test_no_secret_in_rows_logs_errors_or_spool_files(
    pg_with_password: tuple[str, str, FaultProxy], table_name: str, tmp_path: Path, fake: FakeOpenAI,
    caplog: pytest.LogCaptureFixture, sinks: str,
) -> None:
    url, direct, proxy = pg_with_password
    spool = tmp_path / "spool"
    caplog.set_level(logging.DEBUG, logger="wonkalytics")
    jsonl = tmp_path / "jsonl"
    others: dict[str, str] = {"jsonl_dir": str(jsonl), "promptlayer_api_key": PL_KEY,
                              "promptlayer_base_url": fake.base_url} if sinks == "all" else {}  # PL: 404 here
    wonkalytics.configure(database_url=url, table=table_name, spool_dir=str(spool), durability="disk",
                          flush_interval=0.01, connect_timeout=1, statement_timeout=2, **others)
    wonkalytics.log(action="warm-up")
    assert wonkalytics.flush(30)
    proxy.refuse()  # rows now wait in the spool, and the writer logs connection errors
    client = wonkalytics.wrap(openai.OpenAI(base_url=fake.base_url, api_key=OPENAI_KEY, max_retries=0))
    stream = client.chat.completions.create(
        model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "hi"}],
        extra_headers={"Authorization": HEADER_TOKEN, "X-Api-Key": FIELD_KEY},
        wl_request={"name": "Ann", "api_key": FIELD_KEY, "headers": {"Authorization": HEADER_TOKEN},  # type: ignore[call-arg]
                    "password": FIELD_PASSWORD},
        wl_metadata={"db_password": FIELD_PASSWORD, "nested": [{"api-key": FIELD_KEY}]},  # type: ignore[call-arg]
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert fake.requests[-1].headers["authorization"] == HEADER_TOKEN  # the SDK call itself is untouched
    wonkalytics.log(action="event", api_key=FIELD_KEY, authorization=HEADER_TOKEN, notes="ok")
    wonkalytics.log(action="seed", kwargs={"api_key": FIELD_KEY, "model": "m"}, request={"password": FIELD_PASSWORD})
    assert _write_to_azure_sql({"action": "seed-now", "kwargs": {"api_key": FIELD_KEY}}) is False  # down

    spooled = _read_all(spool)
    assert "hi" in spooled and "Ann" in spooled  # the rows are there...
    assert _leaks(spooled) == []  # ...without their secrets
    for path in spool.rglob("*"):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:  # drained by its lane while we walk
            continue
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"

    proxy.recover()
    assert wonkalytics.flush(60), wonkalytics.health()
    rows = _dump(direct, table_name)
    assert "Ann" in rows and _leaks(rows) == []
    assert _leaks(caplog.text) == [], caplog.text[-2000:]
    assert _leaks(repr(wonkalytics.health())) == []
    if sinks == "all":
        lines = _read_all(jsonl)
        assert "Ann" in lines and _leaks(lines) == []  # the JSON-lines sink's files
    on_disk = _read_all(spool)
    assert _leaks(on_disk) == []  # PromptLayer's refused ops (404) included


def test_no_password_in_configuration_errors(tmp_path: Path) -> None:
    for url in (f"postgres://app:{DB_PASSWORD}@db/x", f"postgressql://app:{DB_PASSWORD}@db/x",
                f"postgresql+psycopg://app:{DB_PASSWORD}@db:notaport/x", f"mysql://app:{DB_PASSWORD}@db/x"):
        with pytest.raises(WonkalyticsError) as info:
            wonkalytics.configure(database_url=url)
        assert DB_PASSWORD not in str(info.value) and DB_PASSWORD not in repr(info.value.args)


def _spool_with_permissive_umask(faulty: tuple[str, str, FaultProxy], table_name: str, spool: Path) -> None:
    """Rows spooled (the database refuses) while the umask would make files world-writable."""
    import os

    url, _, proxy = faulty
    old = os.umask(0)
    try:
        wonkalytics.configure(database_url=url, table=table_name, spool_dir=str(spool), durability="disk",
                              flush_interval=0.01, connect_timeout=1)
        proxy.refuse()
        for n in range(5):
            wonkalytics.log(action="x", notes=str(n))
    finally:
        os.umask(old)


@pytest.mark.db
def test_spool_files_are_owner_only_even_with_a_permissive_umask(
    pg_with_password: tuple[str, str, FaultProxy], table_name: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    _spool_with_permissive_umask(pg_with_password, table_name, spool)
    inside = list(spool.rglob("*"))
    assert any(p.is_file() for p in inside) and any(p.is_dir() for p in inside)
    for path in inside:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"


@pytest.mark.db
def test_the_spool_directory_we_create_is_owner_only(
    pg_with_password: tuple[str, str, FaultProxy], table_name: str, tmp_path: Path
) -> None:
    spool = tmp_path / "new" / "spool"
    _spool_with_permissive_umask(pg_with_password, table_name, spool)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
