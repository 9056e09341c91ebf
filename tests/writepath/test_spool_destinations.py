"""Spool files and their destination (issue 15 item 11), on a real SQLite table through the public API.

Files written by an older release carry no destination key: the configured destination adopts them,
as before. Files of another destination stay on disk, untouched, and are counted as waiting for it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import wonkalytics
from wonkalytics.destinations import key_of, read_destinations, table_destination, url_for
from wonkalytics.ops import Insert, encode_op
from wonkalytics.record.build import record_builder
from wonkalytics.recorder import default_recorder
from wonkalytics.writer.spool import Spool

BUILD = record_builder()


def _op(action: str) -> bytes:
    return encode_op(Insert(source={"event_id": str(uuid.uuid4()), "action": action}), BUILD)


def _actions(url: str, table: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(str(a) for (a,) in conn.execute(sa.text(f"SELECT action FROM {table}")))
    finally:
        engine.dispose()


def test_older_files_are_adopted_and_another_destinations_stay(
    tmp_path: Path, table_name: str, caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    spool = tmp_path / "spool"
    directory = spool / "table"
    directory.mkdir(parents=True, mode=0o700)
    # This release before destinations, and release 0.2: no key in the name.
    (directory / "seg-100-host.boot.1.abcd1234.jsonl").write_bytes(_op("keyless-seg"))
    (directory / f"{2**22 + 7}-200.jsonl").write_bytes(_op("keyless-pid"))
    # Another destination's segment, as a lane configured for it leaves it.
    other = table_destination(sa.make_url(url), "someone_elses")
    elsewhere = Spool(directory, fsync=True, destination=other)
    elsewhere.append_many([_op("other-0"), _op("other-1")])
    elsewhere.release()
    try:
        wonkalytics.configure(database_url=url, table=table_name, spool_dir=str(spool), flush_interval=0.01)
        assert wonkalytics.flush(20)
        assert _actions(url, table_name) == ["keyless-pid", "keyless-seg"]
        health = wonkalytics.health()["table"]
        assert health.other_destinations == 2 and health.queued == 0
        assert "belong to another destination" in caplog.text and "spool replay" in caplog.text
        left = sorted(p.name for p in directory.glob("*.jsonl"))
        assert len(left) == 1 and key_of(left[0]) == other.key  # untouched, still for its destination
        wonkalytics.log(action="mine")
        assert wonkalytics.flush(20)
        assert read_destinations(directory)[other.key] == other
        assert url_for(other, []) == sa.make_url(url).set(database=str(tmp_path / "app.db"))
    finally:
        default_recorder.shutdown(5)


def test_a_key_names_the_table_and_database_never_the_password() -> None:
    with_password = table_destination(sa.make_url("postgresql+psycopg://app:one@db:5432/a"), "t")
    other_password = table_destination(sa.make_url("postgresql+psycopg://app:two@db:5432/a?sslmode=require"), "t")
    assert with_password.key == other_password.key  # the same destination, whatever the password
    assert with_password.key != table_destination(sa.make_url("postgresql+psycopg://app@db:5432/a"), "u").key
    assert with_password.key != table_destination(sa.make_url("postgresql+psycopg://app@db:5432/b"), "t").key
    assert "one" not in str(with_password.to_json())
    with pytest.raises(LookupError, match="--database-url"):  # never replayed without its password
        url_for(with_password, [sa.make_url("postgresql+psycopg://app:x@elsewhere:5432/a")])
    given = sa.make_url("postgresql+psycopg://app:one@db:5432/a")
    assert url_for(with_password, [given]) is given
