"""The one place where Wonkalytics' own keyword arguments are taken out of an SDK call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wonkalytics.capture.context import CallOptions, current_options
from wonkalytics.record.params import is_absent

__all__ = ["WL_KWARGS", "split_kwargs", "want_usage"]

WL_KWARGS = frozenset({"wl_request", "wl_identity", "wl_tags", "wl_metadata"})
"""Keyword arguments of ours that never reach the SDK."""


def split_kwargs(kwargs: dict[str, Any]) -> CallOptions:
    """Remove the ``wl_*`` kwargs from ``kwargs`` (in place) and merge them over the context's."""
    options = current_options()
    if WL_KWARGS.isdisjoint(kwargs):
        return options
    request = kwargs.pop("wl_request", None)
    identity = kwargs.pop("wl_identity", None)
    tags = kwargs.pop("wl_tags", None)
    metadata = kwargs.pop("wl_metadata", None)
    for name, value in (("wl_request", request), ("wl_identity", identity), ("wl_metadata", metadata)):
        if value is not None and not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a dict, not {type(value).__name__}")
    if isinstance(tags, str):
        raise TypeError("wl_tags must be a list of strings, not a single string")
    return options.merged(request, identity, tags, metadata)


def want_usage(kwargs: dict[str, Any]) -> bool:
    """Ask a chat stream for its usage chunk; True when we asked (so the caller must not see it)."""
    options = kwargs.get("stream_options")
    if isinstance(options, Mapping):
        if "include_usage" in options:
            return False
        kwargs["stream_options"] = {**options, "include_usage": True}
        return True
    if is_absent(options):
        kwargs["stream_options"] = {"include_usage": True}
        return True
    return False
