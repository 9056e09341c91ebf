"""The default recorder: configure in place, a team's own table, exit delivery, durability, async twins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
import pytest
import sqlalchemy as sa
from tests.conftest import configure_default, read_rows

import wonkalytics
from wonkalytics.recorder import Recorder, default_recorder
from wonkalytics.testing import FakeOpenAI

MESSAGES = [{"role": "user", "content": "Hello"}]


def test_configure_again_redirects_clients_wrapped_before(
    fake: FakeOpenAI, tmp_path: Path, table_name: str
) -> None:
    raw = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    client = wonkalytics.wrap(raw)  # wrapped before any configuration, as at import time
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    try:
        configure_default(first, table_name, tmp_path / "spool")
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        configure_default(second, table_name, tmp_path / "spool")  # the first one's row is written first
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert wonkalytics.flush(10)
    finally:
        default_recorder.shutdown(5)
        raw.close()
    assert len(read_rows(first, table_name)) == 1 and len(read_rows(second, table_name)) == 2


def test_a_teams_own_table_through_the_column_map(
    db_url: str, table_name: str, tmp_path: Path, fake: FakeOpenAI
) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            f"CREATE TABLE {table_name} (answer_text TEXT, user_name VARCHAR(100), resp_key VARCHAR(255), "
            f"rating INTEGER, created_at TIMESTAMP NULL, level VARCHAR(20))"))
    engine.dispose()
    column_map = {"response": "answer_text", "username": "user_name", "response_id": "resp_key",
                  "score": "rating", "timestamp": "created_at"}
    configure_default(db_url, table_name, tmp_path / "spool", column_map=column_map)
    raw = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    try:
        client = wonkalytics.wrap(raw)
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True,
            wl_identity={"username": "ada"}, wl_request={"level": "senior", "name": "no such column"},
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
        assert wonkalytics.score(stream.response_id, 4) is True
        assert wonkalytics.update_row_property(stream.response_id, "level", "lead") is True
        with pytest.raises(ValueError, match="summary"):
            wonkalytics.update_row_property(stream.response_id, "summary", "x")
    finally:
        default_recorder.shutdown(5)
        raw.close()
    [row] = read_rows(db_url, table_name, order_by="resp_key")
    assert (row["answer_text"], row["user_name"], row["resp_key"], row["rating"], row["level"]) == (
        text, "ada", stream.response_id, 4, "lead")
    assert row["created_at"] is not None


def test_rows_are_delivered_at_interpreter_exit_without_flush(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import wonkalytics
        for n in range(25):
            wonkalytics.log(action="exit-test", username=f"user-{n}")
        # no flush(): the interpreter's exit must deliver the rows
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "AZURE_"))}
    env["WONKALYTICS_FLUSH_INTERVAL"] = "2"  # the writer would still be lingering at exit
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, timeout=60)
    rows = read_rows(f"sqlite:///{tmp_path / 'wonkalytics.db'}", "wonkalytics_interactions", "row_pk")
    assert [row["username"] for row in rows] == [f"user-{n}" for n in range(25)]


def test_disk_durability_writes_through_the_spool(sqlite_url: str, table_name: str, tmp_path: Path) -> None:
    configure_default(sqlite_url, table_name, tmp_path / "spool", durability="disk")
    try:
        ids = [wonkalytics.log(action="durable", notes=f"n{n}") for n in range(10)]
        assert wonkalytics.flush(10)
    finally:
        default_recorder.shutdown(5)
    rows = read_rows(sqlite_url, table_name, "row_pk")
    assert [row["event_id"] for row in rows] == ids
    assert not list((tmp_path / "spool").glob("*.jsonl"))  # drained and removed


def test_a_crash_leaves_rows_on_disk_that_the_next_process_writes(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import os, wonkalytics
        wonkalytics.configure(durability="disk", flush_interval=30)
        wonkalytics.log(action="before-crash", username="ada")
        os._exit(0)  # killed: no atexit, no flush
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "AZURE_"))}
    env["WONKALYTICS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'crash.db'}"
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, timeout=60)
    assert list((tmp_path / "wonkalytics-spool" / "table").glob("*.jsonl"))
    after = "import wonkalytics; wonkalytics.log(action='next-start'); assert wonkalytics.flush(10)"
    subprocess.run([sys.executable, "-c", after], cwd=tmp_path, env=env, check=True, timeout=60)
    rows = read_rows(env["WONKALYTICS_DATABASE_URL"], "wonkalytics_interactions", "row_pk")
    assert sorted(row["action"] for row in rows) == ["before-crash", "next-start"]


def test_a_row_that_fits_no_column_is_set_aside_and_logged(
    recorder: Recorder, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    wonkalytics.log(colour="blue")
    wonkalytics.log(action="fine")
    assert wonkalytics.flush(10)
    assert "none of the fields" in caplog.text
    rejected = list((tmp_path / "spool" / "table").glob("rejected-*.jsonl"))
    assert rejected and "colour" in rejected[0].read_text()
    settings = recorder.settings
    rows = read_rows(str(settings.url()), settings.table, "row_pk")
    assert [row["action"] for row in rows] == ["fine"]


async def test_async_twins(recorder: Recorder) -> None:
    event_id = await wonkalytics.alog(action="chat", response_id="chatcmpl-async")
    assert await wonkalytics.ascore("chatcmpl-async", 3) is True
    assert await wonkalytics.aupdate_row_property("chatcmpl-async", "notes", "async note") is True
    assert await wonkalytics.ascore("chatcmpl-missing", 3) is False
    with pytest.raises(ValueError):
        await wonkalytics.aupdate_row_property("chatcmpl-async", "no_such_column", 1)
    settings = recorder.settings
    [row] = read_rows(str(settings.url()), settings.table, "row_pk")
    assert (row["event_id"], row["score"], row["notes"]) == (event_id, 3, "async note")


def test_a_column_map_pointing_nowhere_is_reported_once(
    sqlite_url: str, table_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configure_default(sqlite_url, table_name, tmp_path / "spool", column_map={"response": "answer_txt"})
    try:
        wonkalytics.log(action="a", response="x")
        wonkalytics.log(action="b", response="y")
        assert wonkalytics.flush(10)
    finally:
        default_recorder.shutdown(5)
    assert caplog.text.count("response->answer_txt") == 1
    assert [row["action"] for row in read_rows(sqlite_url, table_name, "row_pk")] == ["a", "b"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_workers_write_their_own_rows(tmp_path: Path) -> None:
    # Gunicorn --preload: the app (and its writer thread and pool) exist before the workers fork
    script = textwrap.dedent("""
        import os, wonkalytics
        wonkalytics.configure(flush_interval=0.01)
        wonkalytics.log(action="parent-before-fork")
        assert wonkalytics.flush(10)
        children = []
        for n in range(3):
            pid = os.fork()
            if pid == 0:
                for i in range(5):
                    wonkalytics.log(action="child", username=f"worker-{n}")
                os._exit(0 if wonkalytics.flush(10) else 1)
            children.append(pid)
        for pid in children:
            assert os.waitpid(pid, 0)[1] == 0
        wonkalytics.log(action="parent-after-fork")
        assert wonkalytics.flush(10)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "AZURE_"))}
    subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", script], cwd=tmp_path, env=env,
                   check=True, timeout=60)
    rows = read_rows(f"sqlite:///{tmp_path / 'wonkalytics.db'}", "wonkalytics_interactions", "row_pk")
    actions = [row["action"] for row in rows]
    assert actions.count("child") == 15 and actions.count("parent-before-fork") == 1
    assert actions.count("parent-after-fork") == 1
    assert len({row["event_id"] for row in rows}) == len(rows) == 17
