"""The SDK call's own arguments: model and sampling parameters, sentinels treated as absent.

* ``model``, ``temperature``, ``top_p``, ``frequency_penalty``, ``presence_penalty`` under their names;
* ``max_tokens``: chat's ``max_tokens``, else ``max_completion_tokens``; the Responses API's
  ``max_output_tokens`` (the original names pass through as well);
* ``reasoning_effort``: chat's own, or the Responses API's ``reasoning={"effort": ...}``;
* every other argument whose value is a scalar (``str``, ``int``, ``float``, ``bool``), such as
  ``user``, ``seed``, ``n``, ``service_tier``, ``store``, ``tool_choice="auto"``, passes through
  under its own name; it lands only if the table has such a column;
* never: ``messages`` / ``input`` / ``instructions`` (rendered by :mod:`.messages`), ``stream``,
  ``stream_options``, ``extra_headers`` / ``extra_query`` / ``extra_body``, ``timeout``, and
  non-scalar values (``tools``, ``response_format``, the SDK's ``metadata`` dict, ...), which are
  configuration rather than analytics and could be large.

``None`` and the SDK's ``NOT_GIVEN`` / ``omit`` sentinels count as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wonkalytics.access import field, is_absent

__all__ = ["SKIPPED_PARAMS", "is_absent", "param_fields"]

SKIPPED_PARAMS: frozenset[str] = frozenset(
    {
        "messages",
        "input",
        "instructions",
        "stream",
        "stream_options",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
    }
)




def _first_present(params: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = params.get(name)
        if not is_absent(value):
            return value
    return None


def param_fields(params: Mapping[str, Any], *, fallback_model: str | None = None) -> dict[str, Any]:
    """Row fields taken from the SDK call's keyword arguments (values kept as given).

    >>> param_fields({"model": "gpt-4o", "messages": [], "max_completion_tokens": 50, "seed": 7})
    {'model': 'gpt-4o', 'max_completion_tokens': 50, 'seed': 7, 'max_tokens': 50}
    """
    fields: dict[str, Any] = {
        name: value
        for name, value in params.items()
        if name not in SKIPPED_PARAMS
        and not name.startswith("extra_")
        and isinstance(value, str | int | float | bool)
        and not is_absent(value)
    }
    model = _first_present(params, "model")
    fields["model"] = model if model is not None else fallback_model
    max_tokens = _first_present(params, "max_tokens", "max_completion_tokens", "max_output_tokens")
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    reasoning = params.get("reasoning")
    effort = None if reasoning is None else field(reasoning, "effort")  # None: no ABC check in field()
    if "reasoning_effort" not in fields and isinstance(effort, str):
        fields["reasoning_effort"] = effort
    return fields
