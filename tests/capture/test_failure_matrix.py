"""Our own failures never reach the caller's stream (production) and are loud in our tests (strict).

The matrix: our per-chunk bookkeeping raises, the finalizer raises, the SDK's close() raises, the SDK
raises mid-stream; sync and async; in production (quiet) and in our strict test mode.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from tests.capture.test_chat import MESSAGES, comparable, rows

import wonkalytics.capture.streams as streams
import wonkalytics.internal_errors as internal_errors
from wonkalytics.recorder import Recorder


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quiet path a user's app (and a user's own test suite) gets: internal errors are logged only."""
    monkeypatch.setattr(internal_errors, "_strict", False)


def _broken_bookkeeping(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_args: Any) -> bool:
        raise KeyError("a bug of ours")

    monkeypatch.setattr(streams, "_note_chat_chunk", explode)
    monkeypatch.setattr(streams, "_note_response_event", explode)


def test_our_bookkeeping_raising_never_reaches_the_caller_nor_the_row_as_an_sdk_error(
    production: None, monkeypatch: pytest.MonkeyPatch, client: openai.OpenAI, raw: openai.OpenAI,
    recorder: Recorder, caplog: pytest.LogCaptureFixture,
) -> None:
    _broken_bookkeeping(monkeypatch)
    wrapped = [comparable(c) for c in client.chat.completions.create(model="m", messages=MESSAGES, stream=True)]
    plain = [comparable(c) for c in raw.chat.completions.create(model="m", messages=MESSAGES, stream=True)]
    assert wrapped == plain  # every chunk, unchanged, and the usage chunk we asked for still hidden
    [row] = rows(recorder)
    assert row["status"] == "ok" and row["error"] is None  # not recorded as the SDK's error
    assert "noting a streamed chunk failed" in caplog.text


async def test_our_bookkeeping_raising_async_and_responses(
    production: None, monkeypatch: pytest.MonkeyPatch, aclient: openai.AsyncOpenAI, recorder: Recorder
) -> None:
    _broken_bookkeeping(monkeypatch)
    chunks = [c async for c in await aclient.chat.completions.create(model="m", messages=MESSAGES, stream=True)]
    events = [e async for e in await aclient.responses.create(model="m", input="hi", stream=True)]
    assert chunks and events
    assert [row["status"] for row in rows(recorder)] == ["ok", "ok"]


def test_strict_mode_makes_our_bug_loud_in_our_own_tests(
    monkeypatch: pytest.MonkeyPatch, client: openai.OpenAI
) -> None:
    _broken_bookkeeping(monkeypatch)
    with pytest.raises(KeyError, match="a bug of ours"):
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))


def test_the_finalizer_raising_never_breaks_the_stream(
    production: None, monkeypatch: pytest.MonkeyPatch, client: openai.OpenAI, recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(_item: object) -> None:
        raise RuntimeError("the recorder broke")

    monkeypatch.setattr(recorder, "record", explode)
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert chunks and chunks[-1].choices[0].finish_reason == "stop"
    assert "recording an LLM call failed" in caplog.text


def test_the_sdks_close_raising_is_the_callers_and_the_row_is_still_written(
    production: None, monkeypatch: pytest.MonkeyPatch, client: openai.OpenAI, recorder: Recorder
) -> None:
    def close_fails(self: Any) -> None:
        raise OSError("socket already gone")

    stream = client.chat.completions.create(model="fake-chunks-50", messages=MESSAGES, stream=True)
    next(iter(stream))
    monkeypatch.setattr(openai.Stream, "close", close_fails)
    with pytest.raises(OSError, match="socket already gone"):
        stream.close()
    monkeypatch.undo()
    stream.close()
    [row] = rows(recorder)
    assert row["status"] == "aborted"


def test_an_sdk_error_mid_stream_is_recorded_as_the_sdks_and_reaches_the_caller(
    production: None, client: openai.OpenAI, recorder: Recorder
) -> None:
    stream = client.chat.completions.create(model="fake-disconnect_after-3", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        list(stream)
    [row] = rows(recorder)
    assert row["status"] == "error" and row["error"]


def test_enabled_false_records_nothing_and_sends_the_callers_call_unchanged(
    fake: Any, raw: openai.OpenAI, table_name: str, tmp_path: Any
) -> None:
    from tests.conftest import configure_default, read_rows

    import wonkalytics
    from wonkalytics.recorder import default_recorder

    url = f"sqlite:///{tmp_path / 'off.db'}"
    configure_default(url, table_name, tmp_path / "spool", enabled=False)
    try:
        client = wonkalytics.wrap(raw)
        chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True,
                                                     wl_request={"name": "Ada"}))
        assert chunks
        body = fake.requests[-1].body  # what reached the server
        assert "stream_options" not in body and "wl_request" not in body
        wonkalytics.log(action="nothing")
        assert wonkalytics.flush(5)
        assert read_rows(url, table_name) == []
    finally:
        default_recorder.shutdown(5)
