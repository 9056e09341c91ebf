"""A writer thread inserts while caller threads update; many processes/threads create one table."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import sqlalchemy as sa

from wonkalytics.store.engine import get_engine
from wonkalytics.store.sql import TableStore

from .helpers import read_rows

BATCHES, BATCH_SIZE, CALLERS = 15, 10, 4


def _run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors


def test_writer_inserts_while_callers_update(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    written: queue.Queue[str | None] = queue.Queue()
    matched: list[bool] = []

    def writer() -> None:
        try:
            for b in range(BATCHES):
                ids = [f"chatcmpl-{b}-{i}" for i in range(BATCH_SIZE)]
                rows = [{"event_id": f"ev-{r}", "response_id": r, "messages": "x" * 1000} for r in ids]
                assert store.insert_many(rows) == BATCH_SIZE
                for response_id in ids:
                    written.put(response_id)
        finally:
            for _ in range(CALLERS):
                written.put(None)

    def caller() -> None:
        while (response_id := written.get()) is not None:
            matched.append(store.update_where("response_id", response_id, "score", 1))
            matched.append(store.update_where("response_id", response_id, "score", 2))

    errors = _run_threads([writer, *[caller] * CALLERS])
    assert errors == []
    assert len(matched) == 2 * BATCHES * BATCH_SIZE and all(matched)
    rows = read_rows(db_url, table_name)
    assert len(rows) == BATCHES * BATCH_SIZE
    assert {r["score"] for r in rows} == {2}


def test_many_stores_create_the_same_table_at_once(db_url: str, table_name: str) -> None:
    barrier = threading.Barrier(6)

    def first_use(i: int) -> Callable[[], None]:
        def run() -> None:
            store = TableStore(db_url, table_name)  # separate instances, as separate processes would
            barrier.wait()
            assert store.insert_many([{"event_id": f"ev-{i}"}]) == 1

        return run

    errors = _run_threads([first_use(i) for i in range(6)])
    assert errors == []
    assert sa.inspect(get_engine(db_url)).has_table(table_name)
    assert sorted(r["event_id"] for r in read_rows(db_url, table_name)) == [f"ev-{i}" for i in range(6)]


def test_one_store_reflects_once_for_all_threads(db_url: str, table_name: str) -> None:
    store = TableStore(db_url, table_name)
    barrier = threading.Barrier(8)
    seen: list[sa.Table] = []

    def first_access() -> None:
        barrier.wait()
        seen.append(store.table)

    assert _run_threads([first_access] * 8) == []
    assert len(seen) == 8 and all(table is seen[0] for table in seen)
