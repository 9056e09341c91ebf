"""The switches end to end: enabled, sample_rate and redact, as a user sets them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.conftest import configure_default, read_rows

import wonkalytics
from wonkalytics.internal_errors import set_strict
from wonkalytics.recorder import default_recorder
from wonkalytics.testing import FakeOpenAI


def _client(fake: FakeOpenAI) -> openai.OpenAI:
    return wonkalytics.wrap(openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0))


def _chat(client: openai.OpenAI, text: str = "hi", **kwargs: Any) -> str:
    answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}], **kwargs)
    return answer.choices[0].message.content or ""


@pytest.fixture
def setup(sqlite_url: str, table_name: str, tmp_path: Path) -> Any:
    def configure(**options: Any) -> None:
        configure_default(sqlite_url, table_name, tmp_path / "spool", **options)

    yield configure, lambda: (wonkalytics.flush(30), read_rows(sqlite_url, table_name, order_by="row_pk"))[1]
    default_recorder.shutdown(10)


def test_disabled_records_nothing_and_sends_the_call_unchanged(setup: Any, fake: FakeOpenAI) -> None:
    configure, rows = setup
    configure(enabled=False)
    client = _client(fake)
    raw = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream)
    wrapped_body = fake.requests[-1].body
    raw.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True).close()
    assert wrapped_body == fake.requests[-1].body  # no stream_options added, nothing else either
    wonkalytics.log(action="event")
    assert rows() == []


def test_sample_rate_zero_keeps_events_and_drops_interactions(setup: Any, fake: FakeOpenAI) -> None:
    configure, rows = setup
    configure(sample_rate=0.0)
    client = _client(fake)
    for _ in range(5):
        _chat(client)
    wonkalytics.log(action="event")
    assert [row["action"] for row in rows()] == ["event"]


def test_redact_applies_to_rows_before_they_leave_the_process(setup: Any, fake: FakeOpenAI) -> None:
    configure, rows = setup
    configure(redact=["email", "phone"], durability="disk")
    client = _client(fake)
    _chat(client, "mail ada@example.com or call +31 6 1234 5678")
    wonkalytics.log(action="event", notes="reach me at bob@example.org", email="bob@example.org")
    chat, event = rows()
    assert chat["messages"] == "user:\nmail [email] or call [phone]\n\n"
    assert "ada@example.com" in str(fake.requests[-1].body)  # the SDK call itself is not redacted
    assert (event["notes"], event["email"]) == ("reach me at [email]", "bob@example.org")


def test_a_redact_callable_that_raises_never_stores_the_row_unredacted(
    setup: Any, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    configure, rows = setup

    def broken(row: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("redactor bug")

    configure(redact=broken)
    set_strict(False)  # the production path: the app's bug is logged, the call goes on
    try:
        with caplog.at_level(logging.ERROR, logger="wonkalytics"):
            assert _chat(_client(fake), "secret ada@example.com")
            wonkalytics.log(action="event", notes="secret bob@example.org")
            stored = rows()
    finally:
        set_strict(True)
    assert "ada@example.com" not in repr(stored) and "bob@example.org" not in repr(stored)
    [placeholder] = stored  # the call's row, without its content; the event is left out (logged)
    assert placeholder["status"] == "ok" and "could not build this row" in placeholder["error"]
    assert "redactor bug" in caplog.text


def test_redact_applies_to_every_sink(setup: Any, fake: FakeOpenAI, tmp_path: Path) -> None:
    configure, rows = setup
    jsonl = tmp_path / "jsonl"
    configure(redact="email", jsonl_dir=str(jsonl))
    _chat(_client(fake), "mail ada@example.com")
    assert rows()[0]["messages"] == "user:\nmail [email]\n\n"
    lines = "".join(p.read_text() for p in jsonl.rglob("*") if p.is_file())
    assert "[email]" in lines and "ada@example.com" not in lines
