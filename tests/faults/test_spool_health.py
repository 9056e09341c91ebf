"""Issue 15 item 15: during an outage with ``durability="disk"``, ``health()`` counts what waits on disk.

The lane holds the segment it is retrying; that backlog must show in ``queued`` (and so make ``ok``
False while the sink fails), not read 0 because the segment was handed out of the spool.
"""

from __future__ import annotations

from tests.conftest import configure_default
from tests.faults.conftest import Faulty, wait_for

import wonkalytics

ROWS = 30


def test_health_counts_the_disk_backlog_during_an_outage(faulty: Faulty) -> None:
    configure_default(faulty.url, faulty.table, faulty.spool, durability="disk", connect_timeout=1,
                      statement_timeout=1)
    wonkalytics.log(action="before", model="m")
    assert wonkalytics.flush(30)
    faulty.proxy.refuse()
    for n in range(ROWS):
        wonkalytics.log(action=f"a{n}", model="m")
    wait_for(lambda: wonkalytics.health()["table"].last_error is not None, "the lane to see the outage")
    health = wonkalytics.health()
    assert health["table"].queued == ROWS  # all of them are on disk, waiting
    assert health.ok is False
    faulty.proxy.recover()
    assert wonkalytics.flush(60)
    assert wonkalytics.health()["table"].queued == 0
    assert len(faulty.rows("action")) == ROWS + 1
