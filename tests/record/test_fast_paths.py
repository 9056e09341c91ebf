"""The record steps' fast paths for plain dicts give what their general paths give (same values, same order)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wonkalytics.record.flatten import flatten, strip_prefixes
from wonkalytics.record.messages import render_conversation

roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "other"])
texts = st.text(max_size=20)
plain_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts)


@given(st.lists(st.fixed_dictionaries({"role": roles, "content": texts}), max_size=6))
def test_plain_messages_render_as_the_general_path_does(messages: list[dict[str, Any]]) -> None:
    # A MappingProxyType is not a dict: it takes the general path (field look-ups per message).
    general = render_conversation([MappingProxyType(message) for message in messages])
    assert render_conversation(messages) == general


def test_messages_with_more_than_role_and_content_take_the_general_path() -> None:
    messages = [{"role": "tool", "content": "42", "tool_call_id": "call_1"}, {"role": "user", "content": ["a", "b"]}]
    assert render_conversation(messages) == (None, "tool (call_1):\n42\n\nuser:\na\nb\n\n")


@given(st.dictionaries(st.text(max_size=12), plain_values, max_size=8))
def test_flat_dicts_flatten_and_strip_as_the_general_path_does(item: dict[str, Any]) -> None:
    general = flatten(MappingProxyType(item))
    fast = flatten(item)
    assert list(fast.items()) == list(general.items())
    assert fast is not item


def test_strip_prefixes_returns_a_new_dict_when_nothing_is_stripped() -> None:
    row = {"name": "Ann", "level": "B2"}
    stripped = strip_prefixes(row)
    assert stripped == row and stripped is not row
