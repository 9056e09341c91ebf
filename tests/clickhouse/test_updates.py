"""Updates of datetime columns on ClickHouse, and updates the sink refuses, against the real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from tests.conftest import require_clickhouse

from wonkalytics.interaction import Record
from wonkalytics.ops import Insert, Update
from wonkalytics.sinks.clickhouse import ClickHouseSink
from wonkalytics.store.clickhouse import ClickHouseTarget
from wonkalytics.store.periods import make_period
from wonkalytics.store.reader import open_reader

pytestmark = pytest.mark.db


@pytest.fixture
def sink() -> Iterator[ClickHouseSink]:
    """A sink on a fresh table that has two datetime columns of its own (``reviewed_at``, ``review_day``)."""
    target = ClickHouseTarget.from_url(require_clickhouse(), f"wl_chu_{uuid.uuid4().hex[:12]}")
    client = target.client()
    target.create(client)
    client.execute(f"ALTER TABLE {target.table} ADD COLUMN reviewed_at Nullable(DateTime('UTC'))")
    client.execute(f"ALTER TABLE {target.table} ADD COLUMN review_day Nullable(Date)")
    row = {"event_id": "ev-1", "response_id": "chatcmpl-1", "timestamp": datetime(2026, 3, 28, 12), "model": "gpt-4o",
           "reviewed_at": datetime(2026, 3, 28, 13), "review_day": date(2026, 3, 28)}
    made = ClickHouseSink(target)
    assert made.write([Insert(built=Record("interaction", "ev-1", row))]) == []
    yield made
    made.close(1)
    try:
        client.execute(f"DROP TABLE IF EXISTS {target.table}")
        client.execute(f"DROP TABLE IF EXISTS {target.updates}")
    finally:
        client.disconnect()


def test_datetime_updates_apply_latest_wins(sink: ClickHouseSink) -> None:
    url = require_clickhouse()
    assert sink.write([
        Update(key="chatcmpl-1", field="reviewed_at", value=datetime(2026, 3, 29, 9), key_field="response_id"),
        Update(key="chatcmpl-1", field="reviewed_at", value="2026-03-29T10:15:30+02:00", key_field="response_id"),
        Update(key="ev-1", field="review_day", value=date(2026, 3, 30), key_field="event_id"),
    ]) == []
    reader = open_reader(url, sink.target.table)
    row = reader.interaction("ev-1")
    assert row is not None
    assert row["reviewed_at"] == datetime(2026, 3, 29, 8, 15, 30)  # the later one, in UTC
    assert row["review_day"] == date(2026, 3, 30)
    [streamed] = list(reader.iter_rows(make_period("2026-03-01", "2026-04-30")))
    assert streamed["reviewed_at"] == datetime(2026, 3, 29, 8, 15, 30)
    assert sink.write([Update(key="chatcmpl-1", field="reviewed_at", value=None, key_field="response_id")]) == []
    row = open_reader(url, sink.target.table).interaction("ev-1")
    assert row is not None and row["reviewed_at"] is None and row["review_day"] == date(2026, 3, 30)


def test_updates_of_the_sorting_key_or_of_no_time_are_rejected(sink: ClickHouseSink) -> None:
    ops = [Update(key="chatcmpl-1", field="timestamp", value=datetime(2026, 4, 1), key_field="response_id"),
           Update(key="chatcmpl-1", field="reviewed_at", value="not a time", key_field="response_id"),
           Update(key="chatcmpl-1", field="score", value=5.0, key_field="response_id")]
    rejected = sink.write(ops)
    assert [r.op for r in rejected] == ops[:2]
    assert "sorting key" in str(rejected[0].error) and "is not a date or time" in str(rejected[1].error)
    row = open_reader(require_clickhouse(), sink.target.table).interaction("ev-1")
    assert row is not None
    assert row["timestamp"] == datetime(2026, 3, 28, 12) and row["reviewed_at"] == datetime(2026, 3, 28, 13)
    assert row["score"] == 5.0  # the batch's good update still lands
