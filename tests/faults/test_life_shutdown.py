"""shutdown() and what comes after it (issue 15 items 6, 9): flush() tells the truth after a lane restart."""

from __future__ import annotations

import pytest
from tests.conftest import configure_default

import wonkalytics

from .conftest import Faulty, wait_for

pytestmark = pytest.mark.db


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
