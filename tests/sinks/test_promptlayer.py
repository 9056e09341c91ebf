"""The PromptLayer sink against the strict local fake: payload shapes, scores, faults, exactly once, no key leaks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.sinks.conftest import Call, build, insert

from wonkalytics.ops import Insert, Op, RowNotFoundError, Update, encode_op
from wonkalytics.settings import Settings
from wonkalytics.sinks import promptlayer
from wonkalytics.sinks.base import Sink
from wonkalytics.sinks.promptlayer import (
    PromptLayerRefusedError,
    PromptLayerSink,
    PromptLayerUnavailableError,
    TableRequestIds,
)
from wonkalytics.store.sql import TableStore
from wonkalytics.testing.promptlayer import FakePromptLayer
from wonkalytics.testing.proxy import FaultProxy

KEY = "pl_secret_0123456789abcdef"


@pytest.fixture
def pl() -> Iterator[FakePromptLayer]:
    with FakePromptLayer(api_key=KEY) as fake:
        yield fake


class Submitted(list[Op]):
    """The follow-up ops a sink queued (the writer's submit)."""

    def __call__(self, op: Op) -> None:
        self.append(op)


@pytest.fixture
def submitted() -> Submitted:
    return Submitted()


@pytest.fixture
def sink(pl: FakePromptLayer, submitted: Submitted) -> Iterator[PromptLayerSink]:
    sink = PromptLayerSink(KEY, submitted, base_url=pl.url, timeout=httpx.Timeout(2.0))
    yield sink
    sink.close(1)


def test_each_call_becomes_a_well_formed_track_request(
    sink: PromptLayerSink, pl: FakePromptLayer, call: Call, submitted: Submitted
) -> None:
    assert isinstance(sink, Sink)
    chat = call("chat", temperature=1, max_tokens=4096, wl_tags=["competence", "tests"],
                wl_metadata={"run": 7, "team": "wonka"})
    stream = call("chat", stream=True, model="fake-chunks-4")
    responses = call("responses")
    assert sink.write([insert(chat), insert(stream), insert(responses)]) == []
    assert pl.problems == []
    first, second, third = pl.tracked
    assert first["function_name"] == "openai.chat.completions.create" and first["provider_type"] == "openai"
    assert first["kwargs"]["messages"][0] == {"role": "system", "content": "Answer in one short sentence."}
    assert first["kwargs"]["temperature"] == 1 and first["kwargs"]["max_tokens"] == 4096
    assert not any(k.startswith("wl_") for k in first["kwargs"])
    assert first["request_response"]["id"] == chat.response_id
    assert first["request_response"]["choices"][0]["message"]["content"] == chat.response_text
    assert first["request_start_time"] == chat.start_time and first["request_end_time"] == chat.end_time
    assert first["tags"] == ["competence", "tests"]
    assert first["metadata"] == {"run": "7", "team": "wonka", "wonkalytics_event_id": chat.event_id}
    assert first["api_key"] == KEY
    # a stream: the assembled completion
    assert second["request_response"]["object"] == "chat.completion"
    assert second["request_response"]["choices"][0]["message"]["content"] == stream.response_text
    assert second["request_response"]["usage"]["completion_tokens"] == 4
    assert third["function_name"] == "openai.responses.create"
    assert third["request_response"]["id"] == responses.response_id
    # each request id goes back to the row, keyed by event id
    assert [(u.key, u.key_field, u.field, u.value) for u in submitted if isinstance(u, Update)] == [
        (chat.event_id, "event_id", "pl_request_id", "1"),
        (stream.event_id, "event_id", "pl_request_id", "2"),
        (responses.event_id, "event_id", "pl_request_id", "3"),
    ]


def test_errors_events_and_other_updates_are_not_sent(sink: PromptLayerSink, pl: FakePromptLayer, call: Call) -> None:
    failed = call("chat", model="fake-error-500")
    ops: list[Op] = [
        insert(failed),
        Insert(built=build({"event_id": "ev", "action": "login"})),
        Update(key="chatcmpl-x", field="notes", value="hello"),
        Update(key="e", key_field="event_id", field="pl_request_id", value="1"),
    ]
    assert sink.write(ops) == []
    assert pl.calls == []


def test_a_score_reaches_track_score_clamped(sink: PromptLayerSink, pl: FakePromptLayer, call: Call) -> None:
    first, second = call("chat"), call("chat", stream=True)
    scores = [Update(key=first.response_id, field="score", value=87.6),
              Update(key=second.response_id, field="score", value=250)]
    assert sink.write([insert(first), insert(second), *scores]) == []
    assert [(s["request_id"], s["score"]) for s in pl.scores] == [(1, 88), (2, 100)]
    assert all(s["api_key"] == KEY for s in pl.scores) and pl.problems == []


def test_a_score_for_a_call_of_another_process_reads_the_column(
    pl: FakePromptLayer, submitted: Submitted, tmp_path: Path, table_name: str
) -> None:
    store = TableStore(f"sqlite:///{tmp_path / 'a.db'}", table_name)
    store.insert_many([{"event_id": "e1", "response_id": "chatcmpl-other", "pl_request_id": None}])
    # the other process's track-request gave it PromptLayer id 1
    with httpx.Client() as http:
        http.post(pl.url + "/rest/track-request", json={"function_name": "f", "request_start_time": 1,
                                                       "request_end_time": 2, "api_key": KEY}).raise_for_status()
    sink = PromptLayerSink(KEY, submitted, base_url=pl.url, request_ids=TableRequestIds(store))
    score = Update(key="chatcmpl-other", field="score", value=40)
    [(op, error)] = sink.write([score])  # the column is still empty: not found (yet), retried later
    assert op is score and isinstance(error, RowNotFoundError)
    store.update_where("response_id", "chatcmpl-other", "pl_request_id", "1")
    assert sink.write([score]) == []
    assert pl.scores == [{"request_id": 1, "score": 40, "api_key": KEY}]
    sink.close(1)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_busy_or_failing_promptlayer_is_retried_and_nothing_is_sent_twice(
    sink: PromptLayerSink, pl: FakePromptLayer, call: Call, status: int, submitted: Submitted
) -> None:
    calls = [call("chat") for _ in range(3)]
    batch: list[Op] = [insert(c) for c in calls] + [Update(key=calls[0].response_id, field="score", value=10)]
    pl.fail_next(status, times=2, after=1)  # the first request is taken, the next two fail
    for _ in range(2):  # the lane retries the whole batch after a transient failure
        with pytest.raises(PromptLayerUnavailableError) as caught:
            sink.write(batch)
        assert sink.is_transient(caught.value)
    assert sink.write(batch) == []
    assert [body["metadata"]["wonkalytics_event_id"] for body in pl.tracked] == [c.event_id for c in calls]
    assert len(pl.scores) == 1
    assert len([op for op in submitted if isinstance(op, Update)]) == 3  # one pl_request_id per call


def test_a_refused_request_is_rejected_and_the_others_still_go(
    sink: PromptLayerSink, pl: FakePromptLayer, call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = call("chat"), call("chat")
    pl.fail_next(400, after=0)
    with caplog.at_level(logging.WARNING, logger="wonkalytics"):
        rejected = sink.write([insert(first), insert(second)])
    [(op, error)] = rejected
    assert op.built is not None and op.built.event_id == first.event_id
    assert isinstance(error, PromptLayerRefusedError) and not sink.is_transient(error)
    assert "400" in str(error)
    assert [body["metadata"]["wonkalytics_event_id"] for body in pl.tracked] == [second.event_id]


def test_unreachable_and_black_holed_promptlayer_are_transient(
    pl: FakePromptLayer, submitted: Submitted, call: Call
) -> None:
    interaction = call("chat")
    with FaultProxy(pl.port) as proxy:
        sink = PromptLayerSink(KEY, submitted, base_url=f"http://127.0.0.1:{proxy.port}",
                               timeout=httpx.Timeout(0.5))
        proxy.blackhole()
        with pytest.raises(PromptLayerUnavailableError) as caught:
            sink.write([insert(interaction)])
        assert sink.is_transient(caught.value)
        proxy.refuse()
        with pytest.raises(PromptLayerUnavailableError):
            sink.write([insert(interaction)])
        proxy.recover()
        assert sink.write([insert(interaction)]) == []
        sink.close(1)
    assert len(pl.tracked) == 1


def test_the_key_never_leaks(
    pl: FakePromptLayer, submitted: Submitted, call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    interaction = call("chat")
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        sink = PromptLayerSink(KEY, submitted, base_url=pl.url)
        pl.fail_next(401)  # e.g. a server that echoes what it was sent
        errors += [error for _, error in sink.write([insert(interaction)])]
        pl.fail_next(500)
        with pytest.raises(PromptLayerUnavailableError) as caught:
            sink.write([insert(interaction)])
        errors.append(caught.value)
        dead = PromptLayerSink(KEY, submitted, base_url="http://127.0.0.1:9")  # nothing listens there
        with pytest.raises(PromptLayerUnavailableError) as caught:
            dead.write([insert(interaction)])
        errors.append(caught.value)
        assert sink.write([insert(interaction), Update(key=interaction.response_id, field="score", value=5)]) == []
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(sink), caplog.text]
    texts += [str(e.__cause__) for e in errors] + [str(e.__context__) for e in errors if not e.__suppress_context__]
    texts += [encode_op(op, build).decode() for op in [insert(interaction), *submitted]]
    assert len(errors) == 3 and not [t for t in texts if KEY in t]
    sink.close(1)
    dead.close(1)


def test_from_settings(monkeypatch: pytest.MonkeyPatch, pl: FakePromptLayer) -> None:
    monkeypatch.delenv("PROMPTLAYER_API_KEY", raising=False)
    assert promptlayer.from_settings(Settings(), lambda op: None) is None
    monkeypatch.setenv("PROMPTLAYER_API_KEY", KEY)
    sink = promptlayer.from_settings(Settings(promptlayer_base_url=pl.url + "/"), lambda op: None)
    assert isinstance(sink, PromptLayerSink) and sink.base_url == pl.url and KEY not in repr(sink)


def test_probe_says_whether_promptlayer_answers(pl: FakePromptLayer, submitted: Submitted) -> None:
    assert PromptLayerSink(KEY, submitted, base_url=pl.url).probe() is True
    assert PromptLayerSink(KEY, submitted, base_url="http://127.0.0.1:9").probe() is False
    assert pl.calls == []  # a GET that carries neither the key nor data
