"""The fault proxy itself: relays, refuses, black-holes, freezes old connections, cuts replies."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from tests.conftest import require_server

from wonkalytics.testing.proxy import FaultProxy

pytestmark = pytest.mark.db


def _through(proxy: FaultProxy, url: str) -> sa.Engine:
    parsed = sa.make_url(url).set(host="127.0.0.1", port=proxy.port)
    return sa.create_engine(parsed, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 2})


def _select_one(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text("SELECT 1")) or 0)


def test_relays_refuses_and_recovers() -> None:
    url = require_server("postgresql")
    with FaultProxy(sa.make_url(url).port or 5432) as proxy:
        engine = _through(proxy, url)
        assert _select_one(engine) == 1
        proxy.refuse()
        with pytest.raises(sa.exc.OperationalError):
            _select_one(engine)
        proxy.recover()
        assert _select_one(engine) == 1


def test_blackhole_hangs_until_recovered() -> None:
    url = require_server("postgresql")
    with FaultProxy(sa.make_url(url).port or 5432) as proxy:
        engine = _through(proxy, url)
        proxy.blackhole()
        result: list[int] = []
        worker = threading.Thread(target=lambda: result.append(_select_one(engine)), daemon=True)
        worker.start()
        worker.join(1.0)
        assert worker.is_alive() and not result  # accepted, never answered
        proxy.recover()
        worker.join(5)
        assert result == [1]


def test_hang_existing_freezes_old_connections_only() -> None:
    url = require_server("mariadb")
    with FaultProxy(sa.make_url(url).port or 3306) as proxy:
        engine = _through(proxy, url)
        old = engine.connect()
        assert old.scalar(sa.text("SELECT 1")) == 1
        proxy.hang_existing()
        assert _select_one(engine) == 1  # a new connection works
        done = threading.Event()

        def query_old() -> None:
            try:
                old.scalar(sa.text("SELECT 1"))
                done.set()
            except sa.exc.OperationalError:
                pass  # reset when the proxy closes

        threading.Thread(target=query_old, daemon=True).start()
        assert not done.wait(1.0)


def test_drop_reply_after_commit_cuts_the_connection() -> None:
    url = require_server("postgresql")
    with FaultProxy(sa.make_url(url).port or 5432) as proxy:
        engine = _through(proxy, url)
        proxy.drop_reply_after(b"COMMIT", times=1)
        with pytest.raises(sa.exc.OperationalError), engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert proxy.dropped_replies == 1
        assert _select_one(engine) == 1
