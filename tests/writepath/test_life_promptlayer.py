"""PromptLayer in real deployments (issue 15): credentials in its URL, team tables, restarts, exit."""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.sinks.conftest import Call, build, call, capture, client, insert  # noqa: F401 - fixtures

from wonkalytics.ops import Op
from wonkalytics.sinks.promptlayer import PromptLayerSink
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
    assert sink.write([insert(call("chat"))], build) == []
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
