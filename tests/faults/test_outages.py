"""Each fault, during real traffic: N interactions, events and scores -> exactly N rows, every score.

The fault starts after a warm-up row (so the table exists and the pool holds connections, which the
faults that hit open connections need), lasts until the writer has demonstrably met it (a retry in
``health()``), and is then lifted. Streams during the fault must complete with the same text as the
same call without Wonkalytics.
"""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from tests.conftest import configure_default

import wonkalytics
from wonkalytics.testing import FakeOpenAI

from .conftest import Faulty, wait_for

pytestmark = pytest.mark.db

N_CALLS = 12
N_EVENTS = 8

FAULTS: dict[str, Callable[[Faulty], None]] = {
    "server_down": lambda f: f.proxy.refuse(),
    "blackhole": lambda f: f.proxy.blackhole(),
    "failover_hangs_old_connections": lambda f: f.proxy.hang_existing(),
    "reset_mid_batch": lambda f: f.proxy.reset_all(),
    "lost_commit_ack": lambda f: f.proxy.drop_reply_after(b"COMMIT", times=3),
    "latency": lambda f: f.proxy.latency(0.3),
}


def _met(fault: str, written_before: int) -> bool:
    """The writer has demonstrably run into the fault (and, for a frozen connection, past it)."""
    health = wonkalytics.health()["table"]
    if fault in ("failover_hangs_old_connections", "reset_mid_batch"):
        # Every pooled connection is frozen or reset, so any write now went through a new one; the
        # pool's pre-ping may replace the dead connection without a retry being counted (pymysql does).
        return health.retried > 0 or health.written > written_before
    return health.retried > 0


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_no_row_lost_or_doubled_through_the_fault(faulty: Faulty, fake: FakeOpenAI, fault: str) -> None:
    configure_default(faulty.url, faulty.table, faulty.spool, connect_timeout=2, statement_timeout=3)
    raw = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    client = wonkalytics.wrap(raw)
    wonkalytics.log(action="warm-up")
    assert wonkalytics.flush(30)
    written_before = wonkalytics.health()["table"].written

    FAULTS[fault](faulty)
    if fault in ("reset_mid_batch", "failover_hangs_old_connections"):
        wonkalytics.log(action="hits-the-broken-connection")  # the pooled connection meets the fault
    scores: dict[str, int] = {}
    for n in range(N_CALLS):
        messages = [{"role": "user", "content": f"question {n}"}]
        if n % 2:
            stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)  # type: ignore[arg-type]
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            expected = raw.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
            assert text == expected.choices[0].message.content  # the stream completed unchanged
            response_id = wonkalytics.response_id_of(stream)
        else:
            response_id = client.chat.completions.create(model="gpt-4o-mini", messages=messages).id  # type: ignore[arg-type]
        assert response_id
        scores[response_id] = n
        assert wonkalytics.score(response_id, n, wait=False) is None
    for n in range(N_EVENTS):
        wonkalytics.log(action="event-during-fault", notes=str(n))
    if fault != "latency":
        wait_for(lambda: _met(fault, written_before), f"the writer to meet the {fault} fault")
    faulty.proxy.recover()

    assert wonkalytics.flush(90), wonkalytics.health()
    rows = faulty.rows("event_id, action, response_id, score")
    extra = 1 if fault in ("reset_mid_batch", "failover_hangs_old_connections") else 0
    assert len(rows) == 1 + N_CALLS + N_EVENTS + extra
    assert len({row["event_id"] for row in rows}) == len(rows)  # none doubled
    calls = {row["response_id"]: row["score"] for row in rows if row["response_id"]}
    assert calls == scores  # every interaction once, every score applied
    assert sorted(row["action"] for row in rows if row["action"] == "event-during-fault") == [
        "event-during-fault"] * N_EVENTS
    health = wonkalytics.health()["table"]
    assert health.rejected == 0 and health.pending_updates == 0
