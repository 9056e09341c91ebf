"""The rows the write-path benches write, and the baselines they are compared with.

* :func:`interaction` builds a realistic chat ``Interaction`` (system prompt, a short history, the
  app's request fields, a streamed answer, usage): about 3.2 KB once it is a row.
* :func:`fresh_table` creates the default table under a new name (outside any clock) and drops it.
* :func:`raw_executemany` is the database's own best plain path through SQLAlchemy Core: one
  ``executemany`` per batch of 500 already-built rows, one transaction per batch.
* :func:`seed_per_row` is the design Wonkalytics replaced: per row a new connection, an
  ``INFORMATION_SCHEMA`` query for the columns, the INSERT and a commit.

Everything goes through the public API or plain SQLAlchemy, so the benches outlive rewrites of the
writer; the one internal name used is the default table's definition (``store.schema.default_table``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

SYSTEM = (
    "You are Wonka's tasting assistant. Answer in the customer's language, cite the product sheet, never "
    "promise delivery dates, and keep a friendly, precise tone. "
) * 3
HISTORY = (
    "I bought the Everlasting Gobstopper assortment for a party of twelve children, two of whom are allergic "
    "to nuts. Which of the flavours are safe, and can they be stored in a warm room for a week? "
) * 3
ANSWER = (
    "Good news: every Gobstopper in the assortment is made on a nut-free line, so all eight flavours are safe "
    "for your guests. Keep them below 25 °C and out of direct sunlight; in a warm room they last a week. "
) * 9


def interaction(index: int, *, prefix: str = "bench", unique: bool = False, response_id: str | None = None) -> Any:
    """One finished streamed chat call, as the wrapper hands it to the recorder (~3.2 KB as a row).

    ``unique``: the texts are fresh strings of their own (as an app's are), not shared constants, so
    memory measurements see what a queued call really holds.
    """
    from wonkalytics.interaction import Interaction, new_event_id

    system, history, answer = (
        (f"{t} #{index}" for t in (SYSTEM, HISTORY, ANSWER)) if unique else (SYSTEM, HISTORY, ANSWER)
    )

    now = time.time()
    return Interaction(
        api="chat",
        params={
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": history},
                {"role": "assistant", "content": "Which flavours did you see on the box?"},
                {"role": "user", "content": f"Question {index}: all eight, the box says 'assorted'."},
            ],
            "temperature": 0.2,
            "max_tokens": 512,
            "top_p": 1.0,
            "stream": True,
        },
        event_id=new_event_id(),
        start_time=now - 1.2,
        end_time=now,
        request={"name": "Ada", "level": "B2", "language": "en", "tone": "friendly", "position": str(index)},
        identity={"username": "ada", "email": "ada@example.com", "tenant_id": "t-42"},
        response_text=answer,
        response_id=response_id or f"chatcmpl-{prefix}-{index}-{uuid.uuid4().hex[:8]}",
        response_model="gpt-4o-mini-2024-07-18",
        system_fingerprint="fp_bench",
        prompt_tokens=412,
        completion_tokens=318,
        total_tokens=730,
        ttft_ms=212.5,
        duration_ms=1200.0,
        finish_reason="stop",
    )


def new_table_name(tag: str = "b") -> str:
    return f"wl_bench_{tag}_{uuid.uuid4().hex[:10]}"


def create_default(url: str, name: str) -> None:
    from wonkalytics.store.schema import default_table

    engine = sa.create_engine(url)
    try:
        default_table(name).create(engine)
    finally:
        engine.dispose()


def drop(url: str, name: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    finally:
        engine.dispose()


@contextlib.contextmanager
def fresh_table(url: str, tag: str = "b") -> Iterator[str]:
    """A new default table (created outside the clock), dropped afterwards."""
    name = new_table_name(tag)
    create_default(url, name)
    try:
        yield name
    finally:
        drop(url, name)


def count(url: str, name: str) -> tuple[int, int]:
    """(rows, distinct event ids) of table ``name``."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT COUNT(*), COUNT(DISTINCT event_id) FROM {name}").one()
            return int(rows[0]), int(rows[1])
    finally:
        engine.dispose()


def rows_of(url: str, name: str) -> list[dict[str, Any]]:
    """The rows of a table as the writer put them there (without the surrogate key)."""
    engine = sa.create_engine(url)
    try:
        table = sa.Table(name, sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(table))]
    finally:
        engine.dispose()
    for row in rows:
        row.pop("row_pk", None)
    return rows


def row_bytes(row: dict[str, Any]) -> int:
    """What a row weighs as the database receives it (text lengths, 8 bytes per number or date)."""
    return sum(len(v.encode()) if isinstance(v, str) else 8 for v in row.values() if v is not None)


def with_new_ids(rows: Sequence[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    return [{**row, "event_id": f"{tag}-{i}-{uuid.uuid4().hex[:12]}"} for i, row in enumerate(rows)]


class RawInserter:
    """Plain SQLAlchemy executemany into a reflected table; the engine is made outside the clock."""

    def __init__(self, url: str, name: str) -> None:
        self.engine = sa.create_engine(url, pool_size=20)
        self.statement = sa.insert(sa.Table(name, sa.MetaData(), autoload_with=self.engine))

    def insert(self, rows: Sequence[dict[str, Any]], batch: int = 500) -> None:
        """``batch`` rows per executemany, one transaction each."""
        for offset in range(0, len(rows), batch):
            with self.engine.begin() as conn:
                conn.execute(self.statement, list(rows[offset : offset + batch]))

    def close(self) -> None:
        self.engine.dispose()


def raw_executemany(url: str, name: str, rows: Sequence[dict[str, Any]], batch: int = 500) -> float:
    """Seconds to insert ``rows`` with plain SQLAlchemy executemany, ``batch`` rows per transaction."""
    raw = RawInserter(url, name)
    try:
        with raw.engine.connect():
            pass  # the pool's first connection is made outside the clock
        start = time.perf_counter()
        raw.insert(rows, batch)
        return time.perf_counter() - start
    finally:
        raw.close()


def seed_per_row(url: str, name: str, rows: Sequence[dict[str, Any]]) -> float:
    """Seconds for the seed's design: per row a new connection, a column query, INSERT, COMMIT."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        sqlite = engine.dialect.name == "sqlite"
        start = time.perf_counter()
        for row in rows:
            with engine.connect() as conn:
                if sqlite:  # SQLite has no INFORMATION_SCHEMA; its PRAGMA is the same question
                    columns = {r[1] for r in conn.exec_driver_sql(f"PRAGMA table_info({name})")}
                else:
                    columns = set(
                        conn.execute(
                            sa.text("SELECT column_name FROM information_schema.columns WHERE table_name = :t"),
                            {"t": name},
                        ).scalars()
                    )
                keys = [k for k in row if k in columns or k.lower() in columns]
                names = ", ".join(keys)
                marks = ", ".join(f":{k}" for k in keys)
                conn.execute(sa.text(f"INSERT INTO {name} ({names}) VALUES ({marks})"), {k: row[k] for k in keys})
                conn.commit()
        return time.perf_counter() - start
    finally:
        engine.dispose()
