"""The record, built once before the writer fans it out: row, structured call, secrets out, redaction.

:func:`record_builder` composes, for the settings in force, the one function every sink's lane uses
to turn an insert's source into a :class:`~wonkalytics.interaction.Record`:

    Interaction -> interaction_row (+ call_view when a sink needs it) -> transforms -> Record
    event row   ->                                                    transforms -> Record

``transforms`` are ``row -> row`` steps applied before the record leaves the caller's process (the
spool included): dropping known secret fields, then the configured redaction.

>>> build = record_builder()
>>> build({"action": "login", "event_id": "e1"}).kind
'event'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from wonkalytics.interaction import Interaction, Record
from wonkalytics.ops import Builder
from wonkalytics.record.pipeline import interaction_row

__all__ = ["CallView", "RowStep", "record_builder"]

RowStep = Callable[[dict[str, Any]], dict[str, Any]]
"""A step over a finished row (drop secrets, redact); returns a new row."""
CallView = Callable[[Interaction], Mapping[str, Any]]
"""Builds the structured view of an LLM call (``Record.call``)."""


def record_builder(*, call_view: CallView | None = None, transforms: Sequence[RowStep] = ()) -> Builder:
    """The builder of records for one configuration (pure: the same source gives the same record)."""

    def build(source: object) -> Record:
        if isinstance(source, Interaction):
            row = interaction_row(source)
            call = dict(call_view(source)) if call_view is not None else None
            for step in transforms:
                row = step(row)
            if call is not None and transforms:
                call = _transform_call(call, transforms)
            return Record(kind="interaction", event_id=source.event_id, row=row, call=call)
        if isinstance(source, Mapping):
            row = dict(source)
            for step in transforms:
                row = step(row)
            return Record(kind="event", event_id=str(row.get("event_id") or ""), row=row)
        raise TypeError(f"cannot record a {type(source).__name__}; expected an Interaction or an event row")

    return build


_CONTENT_KEYS = ("messages", "response", "kwargs", "error")
"""Keys of the structured call that carry the conversation (dropped when a step cannot handle them)."""


def _transform_call(call: dict[str, Any], transforms: Sequence[RowStep]) -> dict[str, Any]:
    """The row steps (secrets out, redaction) over the structured call too: what the table does not
    store unredacted, no other sink gets. A step written for rows that cannot handle the call's
    shapes (messages as a list, the response as a dict) drops the conversation instead."""
    try:
        for step in transforms:
            call = step(call)
        return call
    except Exception:
        return {key: value for key, value in call.items() if key not in _CONTENT_KEYS}
