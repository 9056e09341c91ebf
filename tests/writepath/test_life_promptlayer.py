"""PromptLayer in real deployments (issue 15): credentials in its URL, team tables, restarts, exit."""

from __future__ import annotations

import base64
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from tests.conftest import configure_default, read_rows
from tests.sinks.conftest import MESSAGES, Call, build, call, capture, client, insert  # noqa: F401 - fixtures
from tests.store.helpers import run_sql

import wonkalytics
from wonkalytics.ops import Op
from wonkalytics.recorder import default_recorder
from wonkalytics.sinks.promptlayer import PromptLayerSink
from wonkalytics.testing import FakeOpenAI
from wonkalytics.testing.promptlayer import FakePromptLayer
from wonkalytics.writer.lane import Lane
from wonkalytics.writer.spool import Spool

KEY = "pl_life_secret_key_0042"
PASSWORD = "hunter2-basic-auth"  # a test credential


@pytest.fixture
def pl() -> Iterator[FakePromptLayer]:
    with FakePromptLayer(api_key=KEY) as fake:
        yield fake


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://ada:{PASSWORD}@", 1)


def test_credentials_in_the_base_url_are_used_but_never_shown(
    pl: FakePromptLayer, call: Call, tmp_path: Path, caplog: pytest.LogCaptureFixture  # noqa: F811 - the fixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs each request URL at INFO
    follow_ups: list[Op] = []
    sink = PromptLayerSink(KEY, follow_ups.append, base_url=_with_credentials(pl.url), timeout=httpx.Timeout(2.0))
    assert sink.write([insert(call("chat"))]) == []
    sent = pl.calls[-1].headers
    assert {k.lower(): v for k, v in sent.items()}["authorization"] == "Basic " + base64.b64encode(
        f"ada:{PASSWORD}".encode()).decode()  # still sent, as basic auth
    assert PASSWORD not in repr(sink) and PASSWORD not in sink.base_url
    sink.close(1)

    dead = PromptLayerSink(KEY, follow_ups.append, base_url=f"http://ada:{PASSWORD}@127.0.0.1:{_dead_port()}",
                           timeout=httpx.Timeout(1.0))
    lane = Lane(dead, spool=Spool(tmp_path / "spool", fsync=False), build=build, flush_interval=0.01)
    lane.put(insert(call("chat")))
    assert not lane.flush(time.monotonic() + 1.5)  # PromptLayer is unreachable
    error = lane.health().last_error
    assert error is not None and "unreachable" in error
    assert PASSWORD not in error
    lane.shutdown(time.monotonic() + 1)
    assert not [r for r in caplog.records if PASSWORD in r.getMessage()]
    assert caplog.records, "the outage was logged"


def test_a_team_table_without_pl_request_id_skips_the_follow_up_quietly(
    pl: FakePromptLayer, fake: FakeOpenAI, sqlite_url: str, table_name: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_sql(sqlite_url, f"CREATE TABLE {table_name} (event_id VARCHAR(64), response_id VARCHAR(64), "
                        "model VARCHAR(64), score FLOAT)")
    configure_default(sqlite_url, table_name, tmp_path / "spool", create_table=False,
                      promptlayer_api_key=KEY, promptlayer_base_url=pl.url)
    caplog.set_level(logging.INFO, logger="wonkalytics")
    try:
        with openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as raw:
            chat = wonkalytics.wrap(raw)
            ask = chat.chat.completions.create
            ids = [ask(model="gpt-4o-mini", messages=MESSAGES).id for _ in range(3)]  # type: ignore[arg-type]
        assert wonkalytics.flush(10)
        assert wonkalytics.score(ids[0], 87.6) is True
        assert wonkalytics.flush(10)
        health = wonkalytics.health()
    finally:
        default_recorder.shutdown(5)
    assert len(pl.tracked) == 3 and [s["score"] for s in pl.scores] == [88]
    assert sorted(str(r["response_id"]) for r in read_rows(sqlite_url, table_name, order_by="event_id")) == sorted(ids)
    assert health["table"].rejected == 0 and health.ok, health
    assert not list((tmp_path / "spool").rglob("*rejected*"))
    notes = [r for r in caplog.records if "pl_request_id" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.WARNING, [r.getMessage() for r in notes]


EXIT_SCRIPT = textwrap.dedent("""
    import sys
    import openai, wonkalytics
    url, table, spool, pl_url, openai_url, key = sys.argv[1:7]
    wonkalytics.configure(database_url=url, table=table, spool_dir=spool, flush_interval=0.01,
                          promptlayer_api_key=key, promptlayer_base_url=pl_url)
    if openai_url:
        client = wonkalytics.wrap(openai.OpenAI(base_url=openai_url, api_key="sk-test", max_retries=0))
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        # the last call of the process: no flush, the exit hook writes it and PromptLayer's follow-up
    else:
        assert wonkalytics.flush(10)  # a later process writes what an earlier one spooled
""")


def _run_app(*args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "PROMPTLAYER_"))}
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, *args], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_request_id_of_the_last_call_before_exit_is_kept(
    pl: FakePromptLayer, fake: FakeOpenAI, sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    spool = str(tmp_path / "spool")
    _run_app(sqlite_url, table_name, spool, pl.url, fake.base_url, KEY)
    _run_app(sqlite_url, table_name, spool, pl.url, "", KEY)
    assert len(pl.tracked) == 1
    rows = read_rows(sqlite_url, table_name)
    assert [r["pl_request_id"] for r in rows] == ["1"]


TWO_CALLS = textwrap.dedent("""
    import sys
    import openai, wonkalytics
    url, table, spool, pl_url, openai_url, key = sys.argv[1:7]
    wonkalytics.configure(database_url=url, table=table, spool_dir=spool, flush_interval=0.5, exit_timeout=1.5,
                          promptlayer_api_key=key, promptlayer_base_url=pl_url)
    client = wonkalytics.wrap(openai.OpenAI(base_url=openai_url, api_key="sk-test", max_retries=0))
    for n in range(2):  # one PromptLayer batch: the first request is taken, the second gets 500s
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": str(n)}])
""")


def test_a_request_promptlayer_took_is_not_sent_again_after_a_restart(
    pl: FakePromptLayer, fake: FakeOpenAI, sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    spool = str(tmp_path / "spool")
    pl.fail_next(500, times=10_000, after=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "PROMPTLAYER_"))}
    done = subprocess.run([sys.executable, "-c", TWO_CALLS, sqlite_url, table_name, spool, pl.url, fake.base_url,
                           KEY], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pl.tracked) == 1  # the second is spooled at exit
    pl.fail_next(500, times=0)
    _run_app(sqlite_url, table_name, spool, pl.url, "", KEY)  # the next process writes what was spooled
    sent = [body["metadata"]["wonkalytics_event_id"] for body in pl.tracked]
    assert len(sent) == 2 and len(set(sent)) == 2, sent
