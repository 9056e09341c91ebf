"""Interaction or event -> one row dict: the record steps, composed in one visible place.

Two compositions of pure functions (no I/O, no clock, no globals), each returning a new dict:

**Events** (``wonkalytics.log(**fields)``, the seed's ``_write_to_azure_sql(item)``) run the
steps of :data:`APP_FIELD_STEPS` and then :func:`with_default_timestamp`, each ``dict -> dict``::

    flatten -> strip_prefixes -> apply_auth_info -> prompt_fields -> with_default_timestamp(now)

**Interactions** (one LLM call) merge the parts of :data:`INTERACTION_PARTS`, each
``Interaction -> dict``, in order of increasing precedence::

    app fields -> SDK params -> prompt messages -> explicit identity -> measured fields

A later part wins over an earlier one, except that ``None`` never erases a value (it only says
"not known"). Hence the precedence rules:

* the wrapper's measurements (event_id, id, timestamp, start/end time, status, error, ttft_ms,
  duration_ms, response, response_id, response_system_fingerprint, tokens, provider_type, tags,
  metadata) beat everything, then the identity given explicitly (``wl_identity`` /
  ``context(identity=)``), then the prompt (system_msg, messages), then the SDK's arguments (model,
  temperature, ...), and last the app's own request fields (name, level, language, ...);
* identity: explicit ``interaction.identity`` > ``username`` / ``email`` / ``tenant_id`` the app
  gave plainly (in the event, or in the request) > what ``auth_info`` says.

Key renaming and collisions are described in :mod:`.flatten`; columns and coercion in :mod:`.columns`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from wonkalytics.interaction import Interaction
from wonkalytics.record.cost import interaction_cost
from wonkalytics.record.flatten import flatten, strip_prefixes
from wonkalytics.record.identity import apply_auth_info
from wonkalytics.record.messages import chat_message_fields, prompt_fields, responses_message_fields
from wonkalytics.record.params import param_fields
from wonkalytics.store.fit import AUTOMATIC_FIELDS, to_datetime

__all__ = [
    "APP_FIELD_STEPS",
    "AUTOMATIC_FIELDS",
    "INTERACTION_PARTS",
    "Step",
    "app_fields",
    "event_row",
    "explicit_identity",
    "interaction_row",
    "measured",
    "prompt",
    "run_steps",
    "sdk_params",
    "with_default_timestamp",
]

Step = Callable[[dict[str, Any]], dict[str, Any]]
"""A record step: takes a row, returns a new row (or the same one, unchanged); never mutates."""


def run_steps(row: dict[str, Any], steps: Iterable[Step]) -> dict[str, Any]:
    """Run ``row`` through ``steps`` in order."""
    for step in steps:
        row = step(row)
    return row


def with_default_timestamp(row: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """Step: set ``timestamp`` to ``now`` unless the row has one (a caller's timestamp is kept)."""
    if row.get("timestamp") is not None:
        return row
    return {**row, "timestamp": now}


def _as_dict(mapping: Mapping[str, Any]) -> dict[str, Any]:
    # No step mutates its input, so a dict needs no defensive copy.
    return mapping if isinstance(mapping, dict) else dict(mapping)


APP_FIELD_STEPS: tuple[Step, ...] = (flatten, strip_prefixes, apply_auth_info, prompt_fields)
"""What happens to the fields an app hands us, in an event or in an interaction's request
(``prompt_fields``: the seed wrapper's ``kwargs.messages`` list becomes ``system_msg`` / ``messages``)."""


def event_row(item: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
    """Turn a plain analytics event into a row (``event_id`` / ``id`` are taken as given).

    ``now`` becomes ``timestamp`` when the item has none; an aware ``now`` is converted to naive
    UTC, like the interaction timestamps.

    >>> event_row({"action": "login", "request": {"auth_info": {"userDetails": "ann@example.com"}}},
    ...           now=datetime(2024, 1, 1))
    {'action': 'login', 'email': 'ann@example.com', 'timestamp': datetime.datetime(2024, 1, 1, 0, 0)}
    """
    now = to_datetime(now) or now  # the one naive-UTC rule (store.fit.to_datetime)
    return run_steps(_as_dict(item), (*APP_FIELD_STEPS, partial(with_default_timestamp, now=now)))


def app_fields(interaction: Interaction) -> dict[str, Any]:
    """Part: the app's request fields (flattened, prefixes stripped, auth_info turned into identity)."""
    return run_steps(_as_dict(interaction.request), APP_FIELD_STEPS)


def sdk_params(interaction: Interaction) -> dict[str, Any]:
    """Part: model and sampling parameters of the SDK call (see :mod:`.params`)."""
    return param_fields(interaction.params, fallback_model=interaction.response_model)


def prompt(interaction: Interaction) -> dict[str, Any]:
    """Part: ``system_msg`` and ``messages`` (see :mod:`.messages`)."""
    if interaction.api == "chat":
        return chat_message_fields(interaction.params)
    if interaction.api == "responses":
        return responses_message_fields(interaction.params)
    return {}


def explicit_identity(interaction: Interaction) -> dict[str, Any]:
    """Part: the identity given explicitly (``wl_identity`` / ``context(identity=)``)."""
    return {str(key): value for key, value in interaction.identity.items()}


def measured(interaction: Interaction) -> dict[str, Any]:
    """Part: what the wrapper observed. ``id`` is the response id (the seed scores rows by it),
    else the event id; empty ``tags`` / ``metadata`` are recorded as ``None``."""
    i = interaction
    return {
        "event_id": i.event_id,
        "id": i.response_id or i.event_id,
        "timestamp": to_datetime(i.start_time),
        "start_time": i.start_time,
        "end_time": i.end_time,
        "status": i.status,
        "error": i.error,
        "ttft_ms": i.ttft_ms,
        "duration_ms": i.duration_ms,
        "response": i.response_text,
        "response_id": i.response_id,
        "response_system_fingerprint": i.system_fingerprint,
        "prompt_tokens": i.prompt_tokens,
        "completion_tokens": i.completion_tokens,
        "total_tokens": i.total_tokens,
        "cached_tokens": i.cached_tokens,
        "reasoning_tokens": i.reasoning_tokens,
        "finish_reason": i.finish_reason,
        "provider_type": i.provider_type,
        "tags": list(i.tags) or None,
        "metadata": i.metadata or None,
    }


INTERACTION_PARTS: tuple[Callable[[Interaction], Mapping[str, Any]], ...] = (
    app_fields,
    sdk_params,
    prompt,
    explicit_identity,
    measured,
    interaction_cost,  # cost_usd from the measured tokens and the model (record/cost.py)
)
"""The parts of an interaction row, lowest precedence first."""


def interaction_row(interaction: Interaction) -> dict[str, Any]:
    """Turn one finished LLM call into a row with the canonical field names.

    >>> from wonkalytics.interaction import Interaction
    >>> row = interaction_row(Interaction(
    ...     api="chat", event_id="ev-1", start_time=0.0, end_time=1.0, response_text="4",
    ...     params={"model": "gpt-4o", "messages": [{"role": "system", "content": "Be short."},
    ...                                             {"role": "user", "content": "2+2?"}]},
    ...     request={"language": "en", "auth_info": {"userDetails": "ann@example.com"}}))
    >>> row["system_msg"], row["messages"], row["language"], row["email"], row["id"]
    ('Be short.', 'user:\\n2+2?\\n\\n', 'en', 'ann@example.com', 'ev-1')
    """
    first, *later = INTERACTION_PARTS
    row = dict(first(interaction))  # nothing to merge with yet: a copy at C speed (parts may share their input)
    for part in later:
        for key, value in part(interaction).items():
            if value is not None or key not in row:
                row[key] = value
    return row
