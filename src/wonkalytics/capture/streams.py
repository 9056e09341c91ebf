"""Streams that stay the SDK's streams.

The SDK's ``Stream`` / ``AsyncStream`` object is kept (``isinstance`` holds, ``.response`` is the
SDK's own); its class is swapped for a subclass that records on ``close()`` / ``__exit__`` / garbage
collection, and its iterator is wrapped by a generator below. Per chunk that generator does O(1)
work — copy the delta text into a bytearray, note the first token and the finish reason — and
hands the SDK's chunk object on unchanged.

The sync and async generators are twins; keep them in step.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from functools import cache
from typing import Any

from openai import AsyncStream, Stream

from wonkalytics.capture.call import Call
from wonkalytics.internal_errors import swallow

__all__ = ["record_stream", "response_id_of"]

_perf = time.perf_counter


class _Exits:
    """The exit ladder of every recording generator, written once: it hands the way out to
    ``Call.finish``, whose ``Call.status`` decides (finished normally -> ``ok``, or ``error`` when the
    Responses API reported a failure event; the SDK raised -> ``error``, its exception propagating
    unchanged; the caller stopped: ``GeneratorExit`` from ``break``/``close()``, ``CancelledError`` when
    an SSE client hangs up, ``KeyboardInterrupt`` -> ``aborted``). ``Call.finish`` runs once, never raises.
    """

    __slots__ = ("call",)

    def __init__(self, call: Call) -> None:
        self.call = call

    def __enter__(self) -> _Exits:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        self.call.finish(exc)


def _note_chat_chunk(call: Call, chunk: Any, text: bytearray, hide_usage: bool) -> bool:
    """Our per-chunk bookkeeping (O(1)); True when the chunk is the usage chunk we asked for."""
    if call.last is None:
        call.last = chunk  # ids and model, even when the stream is closed before any text
    choices = chunk.choices
    if choices:
        choice = choices[0]
        delta = choice.delta
        if delta is not None:
            content = delta.content
            if content:
                if not text:
                    call.first_token = _perf()
                    call.last = chunk  # Azure's first chunk (prompt filter results) has no id
                text += content.encode("utf-8", "surrogatepass")
        if choice.finish_reason is not None:
            call.finish_reason = choice.finish_reason
            call.last = chunk
        return False
    call.last = chunk  # the usage chunk (or Azure's prompt filter chunk)
    return hide_usage and chunk.usage is not None  # callers who did not ask never see it


def _note_response_event(call: Call, event: Any, text: bytearray) -> None:
    """Our per-event bookkeeping for the Responses API (text deltas are the hot path)."""
    kind = event.type
    if kind == "response.output_text.delta":
        if not text:
            call.first_token = _perf()
        text += event.delta.encode("utf-8", "surrogatepass")
        return
    response = getattr(event, "response", None)
    if response is not None:
        call.response = response
        if kind == "response.failed":
            error = getattr(response, "error", None)
            call.error = f"{getattr(error, 'code', 'error')}: {getattr(error, 'message', '')}"
    elif kind == "error":
        call.error = f"{getattr(event, 'code', None) or 'error'}: {getattr(event, 'message', '')}"


def _is_usage_chunk(chunk: Any) -> bool:
    """The usage-only chunk (``choices == []``), checked without trusting anything (the slow path)."""
    try:
        return not chunk.choices and chunk.usage is not None
    except Exception:
        return False


def _bookkeeping_failed(call: Call) -> None:
    """A bug of ours while noting a chunk: never the caller's problem, never recorded as the SDK's error."""
    call.broken = True
    swallow("noting a streamed chunk", "the row keeps what was noted before it")


# The four generators below share the exit ladder and the bookkeeping; only the iteration differs
# (sync / async), which Python cannot write once. Our code runs inside its own try, apart from the
# SDK's iteration: an exception from the SDK is the SDK's, one from us is swallowed.


def _chat_chunks(call: Call, inner: Iterator[Any], hide_usage: bool) -> Iterator[Any]:
    text = call.text
    with _Exits(call):
        for chunk in inner:
            if not call.broken:
                try:
                    if _note_chat_chunk(call, chunk, text, hide_usage):
                        continue
                except Exception:
                    _bookkeeping_failed(call)
                    if hide_usage and _is_usage_chunk(chunk):
                        continue
            elif hide_usage and _is_usage_chunk(chunk):
                continue  # the chunk we asked for stays hidden, whatever broke: chunk.choices[0] never fails
            yield chunk


async def _achat_chunks(call: Call, inner: AsyncIterator[Any], hide_usage: bool) -> AsyncIterator[Any]:
    text = call.text
    with _Exits(call):
        async for chunk in inner:
            if not call.broken:
                try:
                    if _note_chat_chunk(call, chunk, text, hide_usage):
                        continue
                except Exception:
                    _bookkeeping_failed(call)
                    if hide_usage and _is_usage_chunk(chunk):
                        continue
            elif hide_usage and _is_usage_chunk(chunk):
                continue  # the chunk we asked for stays hidden, whatever broke: chunk.choices[0] never fails
            yield chunk


def _response_events(call: Call, inner: Iterator[Any]) -> Iterator[Any]:
    text = call.text
    with _Exits(call):
        for event in inner:
            if not call.broken:
                try:
                    _note_response_event(call, event, text)
                except Exception:
                    _bookkeeping_failed(call)
            yield event


async def _aresponse_events(call: Call, inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
    text = call.text
    with _Exits(call):
        async for event in inner:
            if not call.broken:
                try:
                    _note_response_event(call, event, text)
                except Exception:
                    _bookkeeping_failed(call)
            yield event


def _response_id(self: Any) -> str | None:
    """The provider's response id (``chatcmpl-...`` / ``resp_...``) once a chunk carried it."""
    return self._wl_call.response_id  # type: ignore[no-any-return]


def _own_iterator(self: Any) -> Any:
    """``iter(stream)`` / ``aiter(stream)``: the recording generator itself."""
    return self._iterator


def _finish_on_collect(self: Any) -> None:
    call = self.__dict__.get("_wl_call")
    if call is None or call.done:
        return
    iterator = self.__dict__.get("_iterator")
    if getattr(iterator, "gi_running", False) or getattr(iterator, "ag_running", False):
        # Collected while our generator runs (the SDK's iterator is exhausted, so nothing else held
        # the stream): the generator is about to finish and records the real outcome itself.
        return
    call.finish(stopped=True)


@cache
def _recording_class(stream_cls: Any) -> type[Any]:
    """A subclass of the SDK's stream class that records when the caller closes it early.

    A single base with no new storage, so the SDK's stream object can take this class in place
    (``isinstance(stream, openai.Stream)`` keeps holding; a mixin base would change the layout).
    """
    if issubclass(stream_cls, AsyncStream):

        async def aclose(self: Any) -> None:
            self._wl_call.finish(stopped=True)
            await stream_cls.close(self)

        close: Any = aclose
    else:

        def close(self: Any) -> None:
            self._wl_call.finish(stopped=True)
            stream_cls.close(self)

    close.__doc__ = stream_cls.close.__doc__
    namespace = {
        "__module__": stream_cls.__module__,
        "__doc__": stream_cls.__doc__,
        # The SDK's __iter__ is a generator that re-yields self._iterator; ours *is* self._iterator,
        # so handing it out directly saves one generator hop per chunk.
        "__aiter__" if issubclass(stream_cls, AsyncStream) else "__iter__": _own_iterator,
        "close": close,
        "response_id": property(_response_id),
        "__del__": _finish_on_collect,
    }
    return type(stream_cls.__name__, (stream_cls,), namespace)


def record_stream(stream: Any, call: Call, *, hide_usage: bool) -> Any:
    """Make the SDK's stream object record into ``call``; returns the same object."""
    if isinstance(stream, AsyncStream):
        inner_async = stream._iterator
        stream._iterator = (
            _achat_chunks(call, inner_async, hide_usage) if call.api == "chat" else _aresponse_events(call, inner_async)
        )
    elif isinstance(stream, Stream):
        inner = stream._iterator
        stream._iterator = (
            _chat_chunks(call, inner, hide_usage) if call.api == "chat" else _response_events(call, inner)
        )
    else:
        raise TypeError(f"not an SDK stream: {type(stream).__name__}")
    stream._wl_call = call
    stream.__class__ = _recording_class(stream.__class__)
    return stream


def response_id_of(result: object) -> str | None:
    """The response id of a wrapped stream, a ``ChatCompletion`` or a ``Response``; None before it is known.

    The typed spelling of ``stream.response_id`` (the SDK's stubs don't know that attribute)::

        await wonkalytics.ascore(wonkalytics.response_id_of(stream), 100)
    """
    call = getattr(result, "_wl_call", None)
    if isinstance(call, Call):
        return call.response_id
    rid = getattr(result, "id", None)
    return rid if isinstance(rid, str) and rid else None
