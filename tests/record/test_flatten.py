from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wonkalytics.record.flatten import PREFIXES, flatten, strip_prefixes

from .strategies import json_like


def test_nested_dicts_become_parent_child_keys_to_any_depth() -> None:
    assert flatten({"a": {"b": {"c": {"d": 1}}}, "e": 2}) == {"e": 2, "a_b_c_d": 1}


def test_lists_stay_values() -> None:
    value = [{"x": 1}, 2]
    flat = flatten({"tags": value})
    assert flat == {"tags": value}
    assert flat["tags"] is value


def test_empty_nested_mapping_has_no_leaves() -> None:
    assert flatten({"a": {}, "b": 1}) == {"b": 1}


def test_any_mapping_is_flattened_and_keys_become_strings() -> None:
    assert flatten({"m": MappingProxyType({1: "one"})}) == {"m_1": "one"}


def test_auth_info_is_kept_whole() -> None:
    auth = {"clientPrincipal": {"userDetails": "ann@example.com"}}
    assert flatten({"request": {"auth_info": auth}}) == {"request_auth_info": auth}


def test_a_mapping_that_contains_itself_stays_a_value() -> None:
    loop: dict[str, Any] = {"x": 1}
    loop["self"] = loop
    assert flatten(loop) == {"x": 1, "self": loop}


def test_shared_but_not_cyclic_mappings_are_flattened_each_time() -> None:
    shared = {"v": 1}
    assert flatten({"a": shared, "b": shared}) == {"a_v": 1, "b_v": 1}


def test_collision_plainly_written_key_beats_a_flattened_one() -> None:
    assert flatten({"a": {"b": "nested"}, "a_b": "plain"}) == {"a_b": "plain"}
    assert flatten({"a_b": "plain", "a": {"b": "nested"}}) == {"a_b": "plain"}


def test_collision_at_equal_depth_first_wins() -> None:
    assert flatten({"a": {"b_c": 1}, "a_b": {"c": 2}}) == {"a_b_c": 1}


def test_does_not_mutate_its_input() -> None:
    item = {"a": {"b": 1}}
    flatten(item)
    assert item == {"a": {"b": 1}}


def test_strip_prefixes_as_the_seed() -> None:
    assert strip_prefixes({"request_response_id": "r", "request_start_time": 1.0, "kwargs_model": "m"}) == {
        "response_id": "r",
        "start_time": 1.0,
        "model": "m",
    }


def test_strip_prefixes_repeatedly() -> None:
    assert strip_prefixes({"request_kwargs_request_x": 1}) == {"x": 1}


def test_prefix_only_in_the_middle_is_kept() -> None:
    assert strip_prefixes({"my_request_x": 1}) == {"my_request_x": 1}


def test_a_bare_prefix_is_not_stripped_to_nothing() -> None:
    assert strip_prefixes({"request_": 1, "kwargs_request_": 2}) == {"request_": 1}


def test_collision_plainly_given_key_wins_whatever_the_order() -> None:
    assert strip_prefixes({"request_response_id": "stripped", "response_id": "plain"}) == {
        "response_id": "plain"
    }
    assert strip_prefixes({"response_id": "plain", "request_response_id": "stripped"}) == {
        "response_id": "plain"
    }


def test_collision_fewer_prefixes_wins_then_first() -> None:
    assert strip_prefixes({"request_kwargs_x": 2, "request_x": 1}) == {"x": 1}
    assert strip_prefixes({"kwargs_x": "k", "request_x": "r"}) == {"x": "k"}


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        return [leaf for key, child in value.items() for leaf in _leaves(child, f"{path}{key}_")]
    if isinstance(value, Mapping):
        return []
    return [(path[:-1], value)]


# Keys without "_" cannot collide, so every leaf must come out under its joined path.
safe_keys = st.text(alphabet="abcXYZ09é", min_size=1, max_size=5)
nested = st.recursive(
    st.integers() | st.text(max_size=3) | st.lists(st.integers(), max_size=2) | st.none(),
    lambda children: st.dictionaries(safe_keys, children, max_size=4),
    max_leaves=30,
)


@given(st.dictionaries(safe_keys, nested, max_size=5))
def test_flatten_never_loses_a_leaf(item: dict[str, Any]) -> None:
    flat = flatten(item)
    leaves = _leaves(item)
    assert len(flat) == len(leaves)
    for path, value in leaves:
        assert flat[path] is value


@given(json_like)
def test_flatten_and_strip_never_crash_and_leave_no_nesting(value: Any) -> None:
    item = value if isinstance(value, dict) else {"value": value}
    flat = strip_prefixes(flatten(item))
    assert all(isinstance(key, str) for key in flat)
    assert not any(isinstance(v, Mapping) and v for v in flat.values())
    for key in flat:
        assert not any(key.startswith(prefix) and len(key) > len(prefix) for prefix in PREFIXES)


def test_a_key_whose_str_raises_is_dropped_alone() -> None:
    class NoStr:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    assert flatten({"name": "Ann", NoStr(): 1, "request": {NoStr(): 2, "level": "x"}}) == {
        "name": "Ann", "request_level": "x"}
