"""shutdown() and what comes after it (issue 15 items 6, 9): flush() tells the truth after a lane restart."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.conftest import configure_default, read_rows

import wonkalytics

from .conftest import Faulty, wait_for


@pytest.mark.db
def test_flush_after_shutdown_and_restart_is_false_while_the_database_is_down(faulty: Faulty) -> None:
    configure_default(faulty.url, faulty.table, faulty.spool, connect_timeout=2, statement_timeout=3)
    wonkalytics.log(action="warm-up")
    assert wonkalytics.flush(30)
    assert wonkalytics.score("resp-of-another-worker", 5, wait=False) is None  # its row is not there yet
    wait_for(lambda: wonkalytics.health()["table"].pending_updates == 1, "the score to be parked")
    wonkalytics.shutdown(10)  # the parked score goes to the spool
    wonkalytics.log(action="after-restart")  # the lane starts again and reads the spooled score
    assert wonkalytics.flush(30)
    table = lambda: wonkalytics.health()["table"]  # noqa: E731
    # read from the spool and parked again: the row is still missing
    wait_for(lambda: table().queued == 0 and table().pending_updates == 1, "the spooled score to be parked again")

    faulty.proxy.refuse()
    wonkalytics.log(action="during-outage")
    assert wonkalytics.flush(3) is False  # the row is not in the database
    faulty.proxy.recover()
    assert wonkalytics.flush(60)
    assert sorted(r["action"] for r in faulty.rows("action")) == ["after-restart", "during-outage", "warm-up"]


FIRST_PROCESS = textwrap.dedent("""
    import sys, time
    import wonkalytics
    url, table, spool = sys.argv[1:4]
    wonkalytics.configure(database_url=url, table=table, spool_dir=spool, flush_interval=0.01)
    wonkalytics.log(action="warm-up")
    assert wonkalytics.flush(10)
    wonkalytics.score("resp-late", 1, wait=False)  # the row is written later, by another process
    deadline = time.monotonic() + 10
    while wonkalytics.health()["table"].pending_updates != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    wonkalytics.shutdown(5)  # parked: spooled
    wonkalytics.score("resp-late", 2, wait=False)  # the newer score, after a lane restart
    time.sleep(1.0)
    # exit: the at-exit shutdown spools what is parked
""")


def test_the_last_score_wins_through_a_shutdown_a_restart_and_an_exit(
    sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "PROMPTLAYER_"))}
    done = subprocess.run([sys.executable, "-c", FIRST_PROCESS, sqlite_url, table_name, str(spool)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    configure_default(sqlite_url, table_name, spool)  # the next process, with the same spool
    wonkalytics.log(action="the-row", response_id="resp-late")
    table = lambda: wonkalytics.health()["table"]  # noqa: E731
    # the row, then both spooled scores in the order they were given
    wait_for(lambda: table().written == 3 and table().pending_updates == 0, "the parked scores to be applied")
    rows = {r["action"]: r for r in read_rows(sqlite_url, table_name)}
    assert rows["the-row"]["score"] == 2, (wonkalytics.health(), rows, list(spool.rglob("*")))
