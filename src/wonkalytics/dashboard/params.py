"""The query string of every dashboard page: period, filters, paging and sorting, checked in one place.

>>> view = View.from_query({"since": "30d", "model": "gpt-4o", "score_min": "50", "f.language": "nl"})
>>> view.filters.model, view.filters.score_min, dict(view.filters.fields)
('gpt-4o', 50.0, {'language': 'nl'})
>>> view.query(page=2)
'since=30d&model=gpt-4o&score_min=50&f.language=nl&page=2'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from wonkalytics.store.queries import Filters, Period, make_period

__all__ = ["FILTER_KEYS", "View"]

FILTER_KEYS = ("since", "until", "tz", "model", "tenant", "user", "status", "score_min", "score_max", "q")
"""Query-string keys that make up the current filter (plus ``f.<field>`` for app fields)."""


def _number(raw: str | None, name: str) -> float | None:
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


@dataclass(frozen=True)
class View:
    """What a page shows: the raw filter values (to echo in forms and links) and their parsed forms."""

    values: dict[str, str]
    period: Period
    filters: Filters
    sort: str = "timestamp"
    descending: bool = True
    page: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, default_tz: str = "UTC") -> View:
        """Parse a page's query string; bad values raise ``ValueError`` saying which and why."""
        values = {k: str(query[k]).strip() for k in FILTER_KEYS if str(query.get(k) or "").strip()}
        values.update({k: str(v).strip() for k, v in query.items() if k.startswith("f.") and str(v).strip()})
        period = make_period(values.get("since"), values.get("until"), values.get("tz") or default_tz)
        filters = Filters(
            model=values.get("model"), tenant=values.get("tenant"), user=values.get("user"),
            status=values.get("status"), score_min=_number(values.get("score_min"), "score_min"),
            score_max=_number(values.get("score_max"), "score_max"), text=values.get("q"),
            fields={k[2:]: v for k, v in values.items() if k.startswith("f.")},
        )
        sort = str(query.get("sort") or "timestamp")
        try:
            page = max(1, int(str(query.get("page") or 1)))
        except ValueError:
            raise ValueError(f"page must be a whole number, not {query.get('page')!r}") from None
        extra = {k: str(query[k]) for k in ("by",) if query.get(k)}
        return cls(values, period, filters, sort, str(query.get("order") or "desc") != "asc", page, extra)

    def query(self, **changes: Any) -> str:
        """This view's query string with ``changes`` applied (``None`` removes a key)."""
        merged: dict[str, Any] = dict(self.values)
        if self.sort != "timestamp":
            merged["sort"] = self.sort
        if not self.descending:
            merged["order"] = "asc"
        merged.update(self.extra)
        for key, value in changes.items():
            key = key.replace("__", ".")
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return urlencode(merged)

    @property
    def filtered(self) -> bool:
        """True when anything but the period narrows the rows."""
        return any(k not in ("since", "until", "tz") for k in self.values)
