"""``wonkalytics.context(...)``: analytics values for every wrapped call inside a ``with`` block.

Set the caller's identity once per request instead of passing it to every call. Built on a
``ContextVar``, so it follows ``await``s within one task and never leaks between concurrent
requests. Nested blocks merge (inner values win); a call's own ``wl_*`` kwargs win over both.

With FastAPI, hold the block open in an ``async def`` dependency that ``yield``s (default scope):
its exit runs after the response, so a streaming body (sse-starlette runs it in tasks of its own)
still sees the values. A ``with`` block inside the endpoint itself has ended before the body streams;
pass ``wl_identity=`` to the call there instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallOptions", "context", "current_options"]


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What Wonkalytics adds to one call's row besides what the SDK call itself says."""

    request: Mapping[str, Any] = field(default_factory=dict)
    identity: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def merged(
        self,
        request: Mapping[str, Any] | None = None,
        identity: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CallOptions:
        """These options overlaid with more specific ones (theirs win; tags add up, in order)."""
        return CallOptions(
            request={**self.request, **request} if request else self.request,
            identity={**self.identity, **identity} if identity else self.identity,
            tags=tuple(dict.fromkeys((*self.tags, *tags))) if tags else self.tags,
            metadata={**self.metadata, **metadata} if metadata else self.metadata,
        )


_EMPTY = CallOptions()
_current: ContextVar[CallOptions] = ContextVar("wonkalytics_call_options", default=_EMPTY)


def current_options() -> CallOptions:
    """The options of the innermost ``context()`` block (empty outside any)."""
    return _current.get()


def _check_mapping(name: str, value: object) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"wonkalytics.context({name}=...) takes a dict, not {type(value).__name__}")


@contextmanager
def context(
    identity: Mapping[str, Any] | None = None,
    request: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[CallOptions]:
    """Apply identity / request fields / tags / metadata to every wrapped call inside the block.

    Example::

        with wonkalytics.context(identity=wonkalytics.identity_from_headers(request.headers)):
            stream = await client.chat.completions.create(model=..., messages=..., stream=True)
    """
    for name, value in (("identity", identity), ("request", request), ("metadata", metadata)):
        _check_mapping(name, value)
    if isinstance(tags, str):
        raise TypeError("wonkalytics.context(tags=...) takes a list of strings, not a single string")
    options = _current.get().merged(request, identity, tags, metadata)
    previous = _current.get()
    token = _current.set(options)
    try:
        yield options
    finally:
        try:
            _current.reset(token)
        except ValueError:  # exited in another context (a sync dependency run in a worker thread)
            _current.set(previous)
