"""What a read can be narrowed to (:class:`Filters`), on its own so the rollup reads and the engines'
readers take it without importing the table reader (``store/queries.py`` re-exports it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Filters"]


@dataclass(frozen=True)
class Filters:
    """What the interactions page (and every aggregate) can be narrowed to; ``None`` means any.

    ``fields`` filters app fields by equality (``{"language": "nl"}``); ``text`` searches the prompt
    (``system_msg`` and ``messages``) and the response, case-insensitively.
    """

    model: str | None = None
    tenant: str | None = None
    user: str | None = None
    status: str | None = None
    score_min: float | None = None
    score_max: float | None = None
    text: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
