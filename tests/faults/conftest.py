"""Fault injection against real PostgreSQL and MariaDB: a FaultProxy sits between us and the server.

Only the public API is used (configure, wrap, log, score(wait=False), flush, health), so these tests
prove the guarantees whatever the writer's internals. Rows are checked with plain SQL straight to the
server (not through the proxy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import _drop, require_server

from wonkalytics.recorder import default_recorder
from wonkalytics.testing.proxy import FaultProxy

SERVERS = ["postgresql", "mariadb"]


@dataclass
class Faulty:
    """A database server behind a fault proxy."""

    direct_url: str
    url: str
    """The URL through the proxy (what Wonkalytics is configured with)."""
    table: str
    proxy: FaultProxy
    spool: Path

    def rows(self, columns: str = "*") -> list[dict[str, Any]]:
        engine = sa.create_engine(self.direct_url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(self.table):
                    return []
                return [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT {columns} FROM {self.table}"))]
        finally:
            engine.dispose()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait (polling) until ``condition()``; fail naming ``what`` when it never happens."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(params=SERVERS)
def faulty(request: pytest.FixtureRequest, table_name: str, tmp_path: Path) -> Iterator[Faulty]:
    direct = require_server(str(request.param))
    parsed = sa.make_url(direct)
    with FaultProxy(parsed.port or (5432 if parsed.get_backend_name() == "postgresql" else 3306)) as proxy:
        through = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        try:
            yield Faulty(direct, through, table_name, proxy, tmp_path / "spool")
        finally:
            proxy.recover()
            default_recorder.shutdown(10)
            _drop(direct, table_name)
