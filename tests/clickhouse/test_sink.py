"""The ClickHouse sink against the real server: rows and updates land exactly once through faults."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import configure_default, require_clickhouse
from tests.faults.conftest import wait_for

import wonkalytics
from wonkalytics.errors import ConfigurationError
from wonkalytics.recorder import default_recorder
from wonkalytics.testing.proxy import FaultProxy

pytestmark = pytest.mark.db


def _client(url: str):  # type: ignore[no-untyped-def]
    from clickhouse_driver import Client

    return Client.from_url(url)


@pytest.fixture
def ch_table() -> Iterator[str]:
    url = require_clickhouse()
    name = f"wl_ch_{uuid.uuid4().hex[:12]}"
    yield name
    client = _client(url)
    try:
        client.execute(f"DROP TABLE IF EXISTS {name}")
        client.execute(f"DROP TABLE IF EXISTS {name}_updates")
    finally:
        client.disconnect()


def _query(sql: str) -> list[tuple[object, ...]]:
    client = _client(require_clickhouse())
    try:
        return list(client.execute(sql))
    finally:
        client.disconnect()


FAULTS: dict[str, Callable[[FaultProxy], None]] = {
    "refuse": lambda p: p.refuse(),
    "reset": lambda p: p.reset_all(),
    "blackhole": lambda p: p.blackhole(),
    "lost_reply": lambda p: p.drop_reply_after(b"INSERT", times=2),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_rows_and_scores_land_once_through_the_fault(fault: str, ch_table: str, sqlite_url: str,
                                                     tmp_path: Path) -> None:
    with FaultProxy(9000) as proxy:
        url = f"clickhouse://default@127.0.0.1:{proxy.port}/default"
        configure_default(sqlite_url, ch_table, tmp_path / "spool", clickhouse_url=url,
                          connect_timeout=2, statement_timeout=3)
        try:
            wonkalytics.log(action="warm-up", response_id="warm")
            assert wonkalytics.flush(30)
            written_before = wonkalytics.health()["clickhouse"].written
            FAULTS[fault](proxy)
            for n in range(20):
                wonkalytics.log(action="during-fault", response_id=f"r{n}")
            for n in range(20):
                assert wonkalytics.score(f"r{n}", n + 0.5, wait=False) is None
            wonkalytics.score("r0", 99.25, wait=False)  # a later score of the same row wins at read time
            if fault == "reset":  # the driver's ping finds the reset connection and reconnects by itself
                wait_for(lambda: wonkalytics.health()["clickhouse"].written > written_before, "a write after it")
            elif fault != "lost_reply":
                wait_for(lambda: wonkalytics.health()["clickhouse"].retried > 0, "the sink to meet the fault")
            else:
                wait_for(lambda: proxy.dropped_replies > 0 or wonkalytics.health()["clickhouse"].retried > 0,
                         "a reply to be lost")
            proxy.recover()
            assert wonkalytics.flush(60), wonkalytics.health()
        finally:
            default_recorder.shutdown(5)
    rows = _query(f"SELECT response_id, count() FROM {ch_table} FINAL GROUP BY response_id")
    assert sorted(rows) == sorted([("warm", 1), *[(f"r{n}", 1) for n in range(20)]])
    latest = dict(_query(
        f"SELECT key, argMax(value, at) FROM {ch_table}_updates FINAL WHERE field = 'score' GROUP BY key"))
    assert latest == {f"r{n}": str(99.25 if n == 0 else n + 0.5) for n in range(20)}
    ids = _query(f"SELECT count(), uniqExact(id) FROM {ch_table}_updates FINAL")
    assert ids == [(21, 21)]


def test_clickhouse_down_never_delays_the_sql_row(ch_table: str, sqlite_url: str, tmp_path: Path) -> None:
    with FaultProxy(9000) as proxy:
        proxy.blackhole()
        configure_default(sqlite_url, ch_table, tmp_path / "spool",
                          clickhouse_url=f"clickhouse://default@127.0.0.1:{proxy.port}/default",
                          connect_timeout=2, statement_timeout=3)
        try:
            wonkalytics.log(action="while-clickhouse-hangs")
            wait_for(lambda: wonkalytics.health()["table"].written == 1, "the SQL row", timeout=5)
            assert wonkalytics.health()["clickhouse"].written == 0
        finally:
            default_recorder.shutdown(1)


def test_clickhouse_url_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_driver(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("clickhouse_driver"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_driver)
    with pytest.raises(ConfigurationError) as caught:
        wonkalytics.configure(clickhouse_url="clickhouse://app:s3cret@127.0.0.1:9000/default")
    message = str(caught.value)
    assert "pip install 'wonkalytics[clickhouse]'" in message
    assert "s3cret" not in message and "\n" not in message
