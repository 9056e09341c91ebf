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

__all__ = ["record_stream", "response_id_of"]

_perf = time.perf_counter


def _chat_chunks(call: Call, inner: Iterator[Any], hide_usage: bool) -> Iterator[Any]:
    text = call.text
    try:
        for chunk in inner:
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
            else:
                call.last = chunk  # the usage chunk (or Azure's prompt filter chunk)
                if hide_usage and chunk.usage is not None:
                    continue  # the usage chunk we asked for: callers who did not ask never see it
            yield chunk
    except GeneratorExit:
        call.finish("aborted")
        raise
    except Exception as exc:
        call.finish("error", exc)
        raise
    except BaseException:
        call.finish("aborted")
        raise
    call.finish("ok")


async def _achat_chunks(call: Call, inner: AsyncIterator[Any], hide_usage: bool) -> AsyncIterator[Any]:
    text = call.text
    try:
        async for chunk in inner:
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
            else:
                call.last = chunk  # the usage chunk (or Azure's prompt filter chunk)
                if hide_usage and chunk.usage is not None:
                    continue  # the usage chunk we asked for: callers who did not ask never see it
            yield chunk
    except GeneratorExit:
        call.finish("aborted")
        raise
    except Exception as exc:
        call.finish("error", exc)
        raise
    except BaseException:
        call.finish("aborted")
        raise
    call.finish("ok")


def _note_response_event(call: Call, event: Any, kind: str) -> None:
    """Everything but text deltas: rare events, so the cost does not matter."""
    response = getattr(event, "response", None)
    if response is not None:
        call.response = response
        if kind == "response.failed":
            error = getattr(response, "error", None)
            call.error = f"{getattr(error, 'code', 'error')}: {getattr(error, 'message', '')}"
    elif kind == "error":
        call.error = f"{getattr(event, 'code', None) or 'error'}: {getattr(event, 'message', '')}"


def _response_events(call: Call, inner: Iterator[Any]) -> Iterator[Any]:
    text = call.text
    try:
        for event in inner:
            kind = event.type
            if kind == "response.output_text.delta":
                if not text:
                    call.first_token = _perf()
                text += event.delta.encode("utf-8", "surrogatepass")
            else:
                _note_response_event(call, event, kind)
            yield event
    except GeneratorExit:
        call.finish("aborted")
        raise
    except Exception as exc:
        call.finish("error", exc)
        raise
    except BaseException:
        call.finish("aborted")
        raise
    call.finish("error" if call.error else "ok")


async def _aresponse_events(call: Call, inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
    text = call.text
    try:
        async for event in inner:
            kind = event.type
            if kind == "response.output_text.delta":
                if not text:
                    call.first_token = _perf()
                text += event.delta.encode("utf-8", "surrogatepass")
            else:
                _note_response_event(call, event, kind)
            yield event
    except GeneratorExit:
        call.finish("aborted")
        raise
    except Exception as exc:
        call.finish("error", exc)
        raise
    except BaseException:
        call.finish("aborted")
        raise
    call.finish("error" if call.error else "ok")


def _response_id(self: Any) -> str | None:
    """The provider's response id (``chatcmpl-...`` / ``resp_...``) once a chunk carried it."""
    return self._wl_call.response_id  # type: ignore[no-any-return]


def _own_iterator(self: Any) -> Any:
    """``iter(stream)`` / ``aiter(stream)``: the recording generator itself."""
    return self._iterator


def _finish_on_collect(self: Any) -> None:
    call = self.__dict__.get("_wl_call")
    if call is not None and not call.done:
        call.finish("aborted")


@cache
def _recording_class(stream_cls: Any) -> type[Any]:
    """A subclass of the SDK's stream class that records when the caller closes it early.

    A single base with no new storage, so the SDK's stream object can take this class in place
    (``isinstance(stream, openai.Stream)`` keeps holding; a mixin base would change the layout).
    """
    if issubclass(stream_cls, AsyncStream):

        async def aclose(self: Any) -> None:
            self._wl_call.finish("aborted")
            await stream_cls.close(self)

        close: Any = aclose
    else:

        def close(self: Any) -> None:
            self._wl_call.finish("aborted")
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
