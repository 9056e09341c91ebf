"""Issue 15 item 11: ``configure()`` to a new table while the old database is down.

Ops belong to the destination they were submitted for: rows logged before ``configure()`` end up in
the OLD table exactly once (by ``wonkalytics spool replay`` once it is back), none in the new one; rows
logged after go to the new table; through a process restart in between. The app runs in child
processes (real restarts); the old database is taken down with a FaultProxy (PostgreSQL, MariaDB) or,
for SQLite, by a database file whose directory does not exist yet.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import _drop, require_server

from wonkalytics.testing.proxy import FaultProxy

APP = textwrap.dedent("""
    import json, sys
    import wonkalytics

    phase, old_url, old_table, new_url, new_table, spool, durability = sys.argv[1:8]
    fast = dict(spool_dir=spool, flush_interval=0.01, exit_timeout=1, connect_timeout=1, durability=durability)
    if phase == "outage":
        wonkalytics.configure(database_url=old_url, table=old_table, **fast)
        for n in range(5):
            wonkalytics.log(action=f"old-{n}")
        wonkalytics.configure(database_url=new_url, table=new_table, **fast)
        for n in range(3):
            wonkalytics.log(action=f"new-{n}")
    else:
        wonkalytics.configure(database_url=new_url, table=new_table, **fast)
        wonkalytics.log(action="restart-0")
    flushed = wonkalytics.flush(30)
    print(json.dumps({"flushed": flushed, "health": wonkalytics.health()["table"].to_dict()}))
""")
CLI = [sys.executable, "-c", "import sys; from wonkalytics.cli import app; sys.exit(app())"]
PASSWORD = "pw-never-on-disk"


@dataclass
class Old:
    """The old destination: the URL the app uses, the one the test reads with, and its outage."""

    url: str
    direct: str
    down: Callable[[], None]
    up: Callable[[], None]


def _actions(url: str, table: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return []
            return sorted(str(a) for (a,) in conn.execute(sa.text(f"SELECT action FROM {table}")))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def old(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Old]:
    if request.param == "sqlite":
        folder = tmp_path / "old-db"  # missing: the database cannot be opened (down) until it is made
        url = f"sqlite:///{folder / 'old.db'}"
        yield Old(url, url, lambda: None, lambda: folder.mkdir())
        return
    direct = require_server(str(request.param))
    parsed = sa.make_url(direct)
    with FaultProxy(parsed.port or (5432 if request.param == "postgresql" else 3306)) as proxy:
        through = parsed.set(host="127.0.0.1", port=proxy.port)
        if request.param == "postgresql":
            through = through.set(password=PASSWORD)  # trust auth: unused, but never to be written to disk
        yield Old(through.render_as_string(hide_password=False), direct, proxy.refuse, proxy.recover)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", APP, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("durability", ["memory", "disk"])
def test_ops_logged_before_configure_go_to_the_old_table_only(old: Old, durability: str, tmp_path: Path) -> None:
    old_table, new_table = f"wl_old_{uuid.uuid4().hex[:10]}", f"wl_new_{uuid.uuid4().hex[:10]}"
    new_url = f"sqlite:///{tmp_path / 'new.db'}" if old.url.startswith("sqlite") else old.direct
    spool = tmp_path / "spool"
    try:
        old.down()
        first = _run("outage", old.url, old_table, new_url, new_table, str(spool), durability)
        assert first.returncode == 0, first.stderr[-3000:]
        report = json.loads(first.stdout.strip().splitlines()[-1])
        assert report["flushed"] is True
        assert _actions(new_url, new_table) == [f"new-{n}" for n in range(3)]  # never the old rows
        assert report["health"]["other_destinations"] == 5  # they wait on disk for the old table

        # A restart configured for the new table: it does not adopt the old destination's ops either.
        second = _run("restart", old.url, old_table, new_url, new_table, str(spool), durability)
        assert second.returncode == 0, second.stderr[-3000:]
        assert json.loads(second.stdout.strip().splitlines()[-1])["health"]["other_destinations"] == 5
        assert _actions(new_url, new_table) == sorted([f"new-{n}" for n in range(3)] + ["restart-0"])
        for path in spool.rglob("*"):
            if path.is_file():
                assert PASSWORD not in path.read_text(errors="replace"), path

        old.up()
        status = subprocess.run([*CLI, "spool", "status", "--json", "--spool-dir", str(spool)],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        table = next(s for s in json.loads(status.stdout)["sinks"] if s["sink"] == "table")
        waiting = {d["destination"]: d["pending"] for d in table["destinations"] if d["pending"]}
        assert len(waiting) == 1 and list(waiting.values()) == [5]
        assert f"table {old_table}" in next(iter(waiting))

        replay = [*CLI, "spool", "replay", "--spool-dir", str(spool), "--table", new_table]
        if PASSWORD in old.url:
            # The password is not on disk and the settings' URL is another server: replay says what to pass.
            refused = subprocess.run([*replay, "--database-url", new_url], capture_output=True, text=True,
                                     timeout=120)
            assert refused.returncode == 1
            assert "--database-url" in refused.stdout and PASSWORD not in refused.stdout
            assert _actions(old.direct, old_table) == []
            replay += ["--database-url", old.url]  # the old server's URL, with its password
        else:
            replay += ["--database-url", new_url]
        done = subprocess.run(replay, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _actions(old.direct, old_table) == [f"old-{n}" for n in range(5)]  # exactly once, in the old table
        assert _actions(new_url, new_table) == sorted([f"new-{n}" for n in range(3)] + ["restart-0"])
        again = subprocess.run(replay, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        assert _actions(old.direct, old_table) == [f"old-{n}" for n in range(5)]
    finally:
        old.up() if not old.url.startswith("sqlite") else None
        for url, table in ((old.direct, old_table), (new_url, new_table)):
            if not url.startswith("sqlite"):
                _drop(url, table)
