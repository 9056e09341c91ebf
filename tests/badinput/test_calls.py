"""Odd input through the wrapped SDK and the update calls: the stream is never broken, nothing lost."""

from __future__ import annotations

import base64
import json
import math
import warnings
from collections import deque
from typing import Any

import pytest

import wonkalytics
from wonkalytics.record.identity import IdentityHeaderWarning

from .conftest import Setup

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 4000}}
WEATHER = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
CONTENT_CASES: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
    "parts": ([{"role": "user", "content": [{"type": "text", "text": "look"}, IMAGE]}],
              ["look", "[image: data:image/png;base64,… (3000 bytes)]"]),
    "tool_calls": ([{"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": None, "tool_calls": [WEATHER]},
                    {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 3}'}],
                   ['get_weather({"city":"Oslo"})', "tool (c1):", '{"temp": 3}']),
    "none_content": ([{"role": "user", "content": None}, {"role": "user", "content": "second"}], ["second"]),
    "number_content": ([{"role": "user", "content": 42}], ["user:\n42"]),
    "empty_list": ([{"role": "user", "content": []}, {"role": "user", "content": "x"}], ["x"]),
    "unknown_part": ([{"role": "user", "content": [{"type": "hologram", "data": "?"}]}], ["hologram"]),
}


@pytest.mark.parametrize("case", sorted(CONTENT_CASES))
def test_message_content_shapes(wl_sqlite: Setup, case: str) -> None:
    messages, expected = CONTENT_CASES[case]
    client = wl_sqlite.client()
    answer = client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    row = wl_sqlite.one()
    assert row["status"] == "ok"
    for text in expected:
        assert text in row["messages"], row["messages"]
    assert "A" * 300 not in row["messages"]  # no base64 blob in the row


def test_messages_as_a_generator(wl_sqlite: Setup, request: pytest.FixtureRequest) -> None:
    client = wl_sqlite.client()
    gen = (m for m in [{"role": "system", "content": "Be short."}, {"role": "user", "content": "hi"}])
    stream = client.chat.completions.create(model="m", messages=gen, stream=True)  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    row = wl_sqlite.one()
    assert (row["system_msg"], row["messages"]) == ("Be short.", "user:\nhi\n\n")


def test_messages_as_a_deque_and_a_tuple(wl_sqlite: Setup) -> None:
    client = wl_sqlite.client()
    client.chat.completions.create(model="m", messages=deque([{"role": "user", "content": "from a deque"}]))  # type: ignore[arg-type]
    client.chat.completions.create(model="m", messages=({"role": "user", "content": "from a tuple"},))  # type: ignore[arg-type]
    assert [row["messages"] for row in wl_sqlite.rows()] == ["user:\nfrom a deque\n\n", "user:\nfrom a tuple\n\n"]


def test_a_generator_never_shows_as_a_generator_object(wl_sqlite: Setup) -> None:
    client = wl_sqlite.client()
    client.chat.completions.create(model="m", messages=(m for m in [{"role": "user", "content": "hi"}]))  # type: ignore[arg-type]
    assert "generator object" not in wl_sqlite.one()["messages"]


@pytest.mark.parametrize("auth_info", [
    "not json", 42, ["a", "list"], {"clientPrincipal": "a string"}, {"clientPrincipal": {"claims": "nope"}},
    {"clientPrincipal": {"claims": [{"typ": 1}, "junk", {"val": None}]}}, {"claims": [{"typ": "name"}]},
    '{"clientPrincipal": {"userDetails": 5}}', None,
])
def test_malformed_auth_info_shapes(wl_sqlite: Setup, auth_info: Any) -> None:
    client = wl_sqlite.client()
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                   wl_request={"name": "Ann", "auth_info": auth_info})  # type: ignore[call-arg]
    row = wl_sqlite.one()
    assert row["status"] == "ok" and row["name"] == "Ann"


@pytest.mark.parametrize("header", [
    "!!!not base64!!!", base64.b64encode(b"not json").decode(), base64.b64encode(b"[1, 2]").decode(),
    base64.b64encode(json.dumps({"claims": "x"}).encode()).decode(), "", "A" * 100_000,
    base64.b64encode(json.dumps({"claims": [{"typ": "name", "val": {"nested": 1}}]}).encode()).decode(),
])
def test_forged_or_garbled_easy_auth_headers_give_an_empty_identity(wl_sqlite: Setup, header: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        identity = wonkalytics.identity_from_headers({"x-ms-client-principal": header})
    assert isinstance(identity, dict)
    assert all(isinstance(v, str) for v in identity.values())
    assert all(issubclass(w.category, IdentityHeaderWarning) for w in caught)
    assert header[:50] not in " ".join(str(w.message) for w in caught) or not header
    client = wl_sqlite.client()
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                   wl_identity=identity)  # type: ignore[call-arg]
    assert wl_sqlite.one()["status"] == "ok"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"wl_request": ["not", "a", "dict"]}, "wl_request must be a dict"),
    ({"wl_identity": "ann"}, "wl_identity must be a dict"),
    ({"wl_metadata": 5}, "wl_metadata must be a dict"),
    ({"wl_tags": "one-string"}, "wl_tags must be a list"),
])
def test_our_own_keywords_of_the_wrong_type_are_clear_errors(
    wl_sqlite: Setup, kwargs: dict[str, Any], message: str
) -> None:
    client = wl_sqlite.client()
    with pytest.raises(TypeError, match=message):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], **kwargs)
    assert wl_sqlite.fake.requests == []  # refused before anything was sent


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "abc", [1], {"a": 1}, object()])
def test_a_bad_score_is_refused_and_the_stored_score_is_kept(wl: Setup, value: Any) -> None:
    wonkalytics.log(action="chat", response_id="r-score")
    assert wonkalytics.score("r-score", 80) is True
    with pytest.raises(ValueError, match="score"):
        wonkalytics.score("r-score", value)
    with pytest.raises(ValueError, match="score"):
        wonkalytics.update_row_property("r-score", "score", value)
    [row] = wl.rows()
    assert row["score"] == 80


def test_scores_as_numeric_strings_and_wait_false(wl: Setup) -> None:
    wonkalytics.log(action="chat", response_id="r-str")
    assert wonkalytics.score("r-str", "87.5") is True
    assert wonkalytics.score("r-str", 90, wait=False) is None
    assert wonkalytics.flush(30)
    assert wl.rows()[0]["score"] == 90


def test_an_update_of_an_unknown_column_names_it(wl: Setup) -> None:
    with pytest.raises(ValueError, match="no column 'favourite_colour'"):
        wonkalytics.update_row_property("r", "favourite_colour", "blue")


def test_an_update_without_a_response_id(wl_sqlite: Setup) -> None:
    assert wonkalytics.score(None, 5) is False  # type: ignore[arg-type]
    assert wonkalytics.score("", 5) is False


def test_a_stream_with_odd_input_is_never_broken(wl_sqlite: Setup) -> None:
    """Everything odd at once, streamed: the chunks arrive unchanged and one row lands."""
    client = wl_sqlite.client()
    loop: dict[str, Any] = {}
    loop["loop"] = loop
    stream = client.chat.completions.create(
        model="m", stream=True,
        messages=[{"role": "user", "content": [{"type": "text", "text": "a\x00b"}]}],
        wl_request={"name": "N\x00\ud800", "notes": loop, 3: {4: 5}},  # type: ignore[call-arg]
        wl_metadata={"s": {1, 2}, "b": b"x", "loop": loop},  # type: ignore[call-arg]
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text
    row = wl_sqlite.one()
    assert row["status"] == "ok" and row["response"] == text


def test_input_the_sdk_itself_refuses_raises_unchanged_and_is_logged(wl_sqlite: Setup) -> None:
    """A lone surrogate in the prompt: the SDK cannot encode it; its own exception reaches the caller."""
    client = wl_sqlite.client()
    with pytest.raises(UnicodeEncodeError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "a\ud800"}])
    row = wl_sqlite.one()
    assert row["status"] == "error" and "UnicodeEncodeError" in row["error"]
