"""Chat completions through the wrapper: the caller sees the SDK's objects, the table gets the row."""

from __future__ import annotations

import gc
import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from tests.conftest import read_rows

import wonkalytics
from wonkalytics.recorder import Recorder
from wonkalytics.testing import FakeOpenAI, Scenario

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Guess a number between 1 and 10."},
]


def rows(recorder: Recorder) -> list[dict[str, Any]]:
    assert recorder.flush(10)
    settings = recorder.settings
    return read_rows(settings.url().render_as_string(hide_password=False), settings.table)


def comparable(chunk: ChatCompletionChunk) -> dict[str, Any]:
    return chunk.model_dump(exclude={"id", "created"})


def test_stream_yields_the_sdks_own_chunks_unchanged(client: openai.OpenAI, raw: openai.OpenAI) -> None:
    wrapped = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    plain = raw.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(wrapped, openai.Stream)
    wrapped_chunks, plain_chunks = list(wrapped), list(plain)
    assert all(type(chunk) is ChatCompletionChunk for chunk in wrapped_chunks)
    assert [comparable(c) for c in wrapped_chunks] == [comparable(c) for c in plain_chunks]
    assert wrapped.response is not None and wrapped.response.status_code == 200


def test_stream_row_holds_prompt_response_usage_and_timings(
    client: openai.OpenAI, recorder: Recorder, fake: FakeOpenAI
) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, temperature=0.5, max_tokens=50, top_p=1,
        frequency_penalty=0.5, presence_penalty=0.25, wl_request={"name": "Ada", "level": "senior"},
        wl_tags=["competence"], extra_body=Scenario(content="Seven.", chunks=3).extra_body(),
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "Seven."
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    [row] = rows(recorder)
    assert row["response"] == "Seven." and row["status"] == "ok"
    assert row["response_id"] == stream.response_id and row["id"] == stream.response_id
    assert row["system_msg"] == "You are terse."
    assert row["messages"] == "user:\nGuess a number between 1 and 10.\n\n"
    assert (row["model"], row["provider_type"]) == ("gpt-4o-mini", "openai")
    assert (row["temperature"], row["max_tokens"], row["top_p"]) == (0.5, 50, 1.0)
    assert (row["frequency_penalty"], row["presence_penalty"]) == (0.5, 0.25)
    assert (row["name"], row["level"]) == ("Ada", "senior")
    assert row["tags"] == '["competence"]'
    assert row["completion_tokens"] == 3 and row["prompt_tokens"] and row["total_tokens"]
    assert row["response_system_fingerprint"]
    assert row["end_time"] >= row["start_time"] and row["duration_ms"] >= row["ttft_ms"] > 0
    assert row["timestamp"] is not None and row["event_id"]


def test_usage_chunk_is_hidden_unless_the_caller_asked(client: openai.OpenAI, recorder: Recorder) -> None:
    hidden = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert all(chunk.choices for chunk in hidden)  # chunk.choices[0] never meets the usage chunk
    asked = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ))
    assert asked[-1].choices == [] and asked[-1].usage is not None
    assert len(asked) == len(hidden) + 1
    assert [row["total_tokens"] for row in rows(recorder)] == [asked[-1].usage.total_tokens] * 2


def test_wonkalytics_kwargs_never_reach_the_server_but_reach_the_row(
    client: openai.OpenAI, fake: FakeOpenAI, recorder: Recorder
) -> None:
    client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, wl_request={"name": "x"}, wl_identity={"username": "u"},
        wl_tags=["t"], wl_metadata={"k": 1, "experiment": "b"},
    )
    body = fake.requests[-1].body
    assert not [key for key in body if key.startswith("wl_")]
    assert "stream_options" not in body  # non-stream calls are sent exactly as given
    [row] = rows(recorder)
    assert (row["name"], row["username"], row["tags"]) == ("x", "u", '["t"]')
    assert json.loads(row["metadata"]) == {"k": 1, "experiment": "b"}


def test_non_stream_returns_the_sdks_completion(client: openai.OpenAI, recorder: Recorder) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(completion) is ChatCompletion
    [row] = rows(recorder)
    assert row["response"] == completion.choices[0].message.content
    assert row["response_id"] == completion.id and row["status"] == "ok"
    assert row["total_tokens"] == completion.usage.total_tokens  # type: ignore[union-attr]
    assert row["ttft_ms"] is None


def test_breaking_early_logs_an_aborted_row_with_the_partial_text(
    client: openai.OpenAI, recorder: Recorder
) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True,
        extra_body=Scenario(content="one two three four five six", chunks=6).extra_body(),
    )
    seen = ""
    for chunk in stream:
        seen += chunk.choices[0].delta.content or ""
        if len(seen) > 6:
            break
    stream.close()
    [row] = rows(recorder)
    assert row["status"] == "aborted" and row["response"] == seen


def test_a_stream_dropped_without_close_is_logged_when_collected(
    client: openai.OpenAI, recorder: Recorder
) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    [row] = rows(recorder)
    assert row["status"] == "aborted"


def test_with_block_exit_records_once(client: openai.OpenAI, recorder: Recorder) -> None:
    with client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        chunks = list(stream)
    stream.close()
    assert chunks
    assert [row["status"] for row in rows(recorder)] == ["ok"]


def test_mid_stream_disconnect_raises_unchanged_and_logs_an_error_row(
    client: openai.OpenAI, raw: openai.OpenAI, recorder: Recorder
) -> None:
    kwargs: dict[str, Any] = {"model": "fake-chunks-10-disconnect_after-3", "messages": MESSAGES, "stream": True}
    with pytest.raises(Exception) as plain_error:
        list(raw.chat.completions.create(**kwargs))
    seen: list[str] = []
    with pytest.raises(type(plain_error.value)):
        for chunk in client.chat.completions.create(**kwargs):
            seen.append(chunk.choices[0].delta.content or "")
    [row] = rows(recorder)
    assert row["status"] == "error" and row["response"] == "".join(seen) != ""
    assert row["error"].startswith(type(plain_error.value).__name__)


def test_rate_limit_error_propagates_and_is_logged(client: openai.OpenAI, recorder: Recorder) -> None:
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fake-error-429", messages=MESSAGES, stream=True)
    [row] = rows(recorder)
    assert row["status"] == "error" and row["error"].startswith("RateLimitError")
    assert row["response"] == "" and row["model"] == "fake-error-429"


def test_context_applies_identity_and_call_kwargs_win(client: openai.OpenAI, recorder: Recorder) -> None:
    with wonkalytics.context(identity={"username": "ctx", "email": "ctx@x.io"}, tags=["ctx"],
                             request={"language": "nl"}):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, wl_identity={"username": "call"}, wl_tags=["call"]
        )
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    first, second, outside = rows(recorder)
    assert (first["username"], first["email"], first["language"], first["tags"]) == (
        "ctx", "ctx@x.io", "nl", '["ctx"]')
    assert (second["username"], second["email"], second["tags"]) == ("call", "ctx@x.io", '["ctx", "call"]')
    assert outside["username"] is None and outside["language"] is None


def test_wrap_leaves_the_original_client_and_other_endpoints_alone(
    raw: openai.OpenAI, client: openai.OpenAI, recorder: Recorder
) -> None:
    assert isinstance(client, openai.OpenAI) and wonkalytics.is_wrapped(client)
    assert not wonkalytics.is_wrapped(raw)
    raw.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert client.models.list().data  # untouched endpoints still work
    copied = client.with_options(timeout=5)
    assert wonkalytics.is_wrapped(copied) and copied.timeout == 5
    copied.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(rows(recorder)) == 1  # only the wrapped copy recorded


def test_raw_response_calls_pass_through_unrecorded(client: openai.OpenAI, recorder: Recorder) -> None:
    raw_response = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raw_response.parse().choices
    assert rows(recorder) == []


def test_unreachable_database_never_breaks_the_stream(
    raw: openai.OpenAI, tmp_path: Any, table_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import configure_default

    from wonkalytics.recorder import default_recorder

    configure_default("postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/none", table_name, tmp_path / "spool")
    try:
        client = wonkalytics.wrap(raw)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        wrapped = [comparable(chunk) for chunk in stream]
        plain = [comparable(c) for c in raw.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                                    stream=True)]
        assert wrapped == plain
        assert wonkalytics.flush(0.5) is False  # honest: the row is not in the database
    finally:
        default_recorder.shutdown(0.2)
    assert list((tmp_path / "spool" / "table").glob("*.jsonl"))  # kept on disk for the next start
    assert "secret-pw" not in caplog.text


def test_response_id_of_streams_and_completions(client: openai.OpenAI, recorder: Recorder) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert wonkalytics.response_id_of(stream) is None  # nothing read yet
    chunks = list(stream)
    assert wonkalytics.response_id_of(stream) == stream.response_id == chunks[0].id
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert wonkalytics.response_id_of(completion) == completion.id


def test_iteration_resumes_after_break_as_with_the_sdk(client: openai.OpenAI, raw: openai.OpenAI,
                                                       recorder: Recorder) -> None:
    def split_reads(stream: Any) -> tuple[int, int]:
        first = 0
        for _ in stream:
            first += 1
            if first == 3:
                break
        return first, sum(1 for _ in stream)  # a second loop picks up where the first stopped

    kwargs: dict[str, Any] = {"model": "fake-chunks-8", "messages": MESSAGES, "stream": True}
    assert split_reads(client.chat.completions.create(**kwargs)) == split_reads(
        raw.chat.completions.create(**kwargs))
    assert [row["status"] for row in rows(recorder)] == ["ok"]


def test_a_locked_database_never_holds_up_the_stream(
    client: openai.OpenAI, recorder: Recorder, sqlite_url: str
) -> None:
    import sqlite3

    recorder.log(action="create the table first")
    assert recorder.flush(10)
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer now waits on the database's busy timeout
    try:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True))
        assert text  # the whole stream arrived while the database was locked
        assert recorder.writer.pending() == 1  # its row waits for the database, not the caller
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    statuses = [row["status"] for row in rows(recorder)]
    assert statuses == [None, "ok"]


def test_event_ids_stay_unique_when_the_app_seeds_random_or_forks() -> None:
    import os
    import random

    from wonkalytics.interaction import new_event_id

    random.seed(42)
    first = new_event_id()
    random.seed(42)
    assert new_event_id() != first
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write_end, new_event_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 32).decode()
    os.close(read_end)
    os.close(write_end)
    assert len(child) == 32 and child != new_event_id()
