"""``wonkalytics.wrap(client)``: the SDK client, recording every chat and Responses call.

The client object given is copied (shallowly: same HTTP pool, same options) and the copy's class is
swapped for a subclass whose ``chat`` and ``responses`` resources record. Nothing global is patched:
other clients in the process, and the original object, are untouched. ``with_options()`` / ``copy()``
of a wrapped client are wrapped too.
"""

from __future__ import annotations

import copy as copy_module
from collections.abc import Iterator
from functools import cache, cached_property
from typing import Any, TypeVar

from openai import AsyncAzureOpenAI, AsyncOpenAI, AsyncStream, AzureOpenAI, OpenAI, Stream
from openai.resources.chat import AsyncChat, Chat
from openai.resources.chat.completions import AsyncCompletions, Completions
from openai.resources.responses import AsyncResponses, Responses

from wonkalytics.capture.call import Call
from wonkalytics.capture.kwargs import WL_KWARGS, split_kwargs, want_usage
from wonkalytics.capture.streams import record_stream
from wonkalytics.interaction import Api
from wonkalytics.recorder import Recorder, default_recorder

__all__ = ["is_wrapped", "wrap"]

ClientT = TypeVar("ClientT", OpenAI, AsyncOpenAI)


def _begin(resource: Any, api: Api, kwargs: dict[str, Any]) -> tuple[Call, bool]:
    """Take our kwargs out and note the start; returns the call and whether a usage chunk is hidden."""
    options = split_kwargs(kwargs)
    client = resource._client
    hide_usage = (
        api == "chat" and kwargs.get("stream") is True and _usage_supported(client) and want_usage(kwargs)
    )
    recorder = client._wl_recorder or default_recorder
    # The row is built later, on the writer thread: snapshot the prompt now, because apps commonly
    # append the answer to their messages list right after the call.
    for name in ("messages", "input"):
        value = kwargs.get(name)
        if isinstance(value, Iterator):
            # A generator of messages can be read once: the SDK would consume it and the row could
            # not render it. A list sends the same messages.
            kwargs[name] = list(value)
    params = dict(kwargs)
    for name in ("messages", "input"):
        value = params.get(name)
        if isinstance(value, list):
            params[name] = list(value)
    return Call(api, params, options, recorder, client._wl_provider, _server_of(client)), hide_usage


def _server_of(client: Any) -> str | None:
    """The API host the client talks to (``server.address`` of the OpenTelemetry conventions).

    Kept on the client beside the URL object it was read from: ``base_url.host`` decodes the host
    afresh on every read (~5 µs per call on the caller's path, measured for bench/writer_cpu.py), and the
    URL object only changes when ``base_url`` is set again, which the identity check notices.
    """
    url = getattr(client, "base_url", None)
    cached = client.__dict__.get("_wl_server")
    if cached is not None and cached[0] is url:
        return cached[1]  # type: ignore[no-any-return]
    host = getattr(url, "host", None)
    server = host if isinstance(host, str) and host else None
    client.__dict__["_wl_server"] = (url, server)
    return server


_AZURE_USAGE_SINCE = "2024-09-01"  # Azure OpenAI api-versions before this reject stream_options


def _usage_supported(client: Any) -> bool:
    """Whether asking for the usage chunk is safe: never turn a working call into a 400."""
    if client._wl_provider != "azure":
        return True
    version = getattr(client, "_api_version", None)
    return not isinstance(version, str) or version >= _AZURE_USAGE_SINCE


def _attach(call: Call, result: Any, hide_usage: bool) -> Any:
    """Hand the SDK's result back: streams record as they are read, responses are recorded now."""
    if isinstance(result, Stream | AsyncStream):
        return record_stream(result, call, hide_usage=hide_usage)
    if hasattr(result, "choices") or hasattr(result, "output"):
        call.response = result
        call.finish()
    else:
        call.done = True  # with_raw_response / with_streaming_response: not parsed, not recorded
    return result


def _disabled(resource: Any, kwargs: dict[str, Any]) -> bool:
    """True when recording is switched off (``enabled=False``): the SDK gets exactly the caller's call."""
    recorder = resource._client._wl_recorder or default_recorder
    try:
        if recorder.enabled:
            return False
    except Exception:  # invalid settings: reported (once, saying what to fix) when the call is recorded
        return False
    for name in WL_KWARGS:
        kwargs.pop(name, None)  # ours never reach the SDK, recorded or not
    return True


def _record_sync(resource: Any, api: Api, create: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """One recorded SDK call (sync): the SDK's exception reaches the caller unchanged."""
    if _disabled(resource, kwargs):
        return create(*args, **kwargs)
    call, hide_usage = _begin(resource, api, kwargs)
    try:
        result = create(*args, **kwargs)
    except BaseException as exc:
        call.finish(exc)
        raise
    return _attach(call, result, hide_usage)


async def _record_async(resource: Any, api: Api, create: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """The async twin of :func:`_record_sync`."""
    if _disabled(resource, kwargs):
        return await create(*args, **kwargs)
    call, hide_usage = _begin(resource, api, kwargs)
    try:
        result = await create(*args, **kwargs)
    except BaseException as exc:
        call.finish(exc)
        raise
    return _attach(call, result, hide_usage)


class RecordingCompletions(Completions):
    """``chat.completions`` that records each ``create`` call (sync)."""

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return _record_sync(self, "chat", super().create, args, kwargs)


class AsyncRecordingCompletions(AsyncCompletions):
    """``chat.completions`` that records each ``create`` call (async)."""

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        return await _record_async(self, "chat", super().create, args, kwargs)


class RecordingResponses(Responses):
    """``responses`` that records each ``create`` call (sync); the caller's arguments are sent as is."""

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return _record_sync(self, "responses", super().create, args, kwargs)


class AsyncRecordingResponses(AsyncResponses):
    """``responses`` that records each ``create`` call (async); the caller's arguments are sent as is."""

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        return await _record_async(self, "responses", super().create, args, kwargs)


class RecordingChat(Chat):
    """``client.chat`` whose ``completions`` record."""

    @cached_property
    def completions(self) -> RecordingCompletions:
        return RecordingCompletions(self._client)


class AsyncRecordingChat(AsyncChat):
    """``client.chat`` whose ``completions`` record (async)."""

    @cached_property
    def completions(self) -> AsyncRecordingCompletions:
        return AsyncRecordingCompletions(self._client)


def _copy(self: Any, *args: Any, **kwargs: Any) -> Any:
    copied = super(type(self), self).copy(*args, **kwargs)
    copied._wl_recorder = self._wl_recorder
    return copied


@cache
def _wrapped_class(cls: type[Any]) -> type[Any]:
    """A subclass of the client's own class with recording ``chat`` and ``responses``."""
    is_async = issubclass(cls, AsyncOpenAI)
    chat_cls = AsyncRecordingChat if is_async else RecordingChat
    responses_cls = AsyncRecordingResponses if is_async else RecordingResponses

    def chat(self: Any) -> Any:
        return chat_cls(self)

    def responses(self: Any) -> Any:
        return responses_cls(self)

    namespace = {
        "__module__": cls.__module__,
        "__doc__": cls.__doc__,
        "_wl_wrapped": True,
        "_wl_recorder": None,
        "_wl_provider": "azure" if issubclass(cls, AzureOpenAI | AsyncAzureOpenAI) else "openai",
        "chat": cached_property(chat),
        "responses": cached_property(responses),
        "copy": _copy,
        "with_options": _copy,
    }
    return type(cls.__name__, (cls,), namespace)


def is_wrapped(client: object) -> bool:
    """True for a client returned by :func:`wrap`."""
    return bool(getattr(type(client), "_wl_wrapped", False))


def wrap(client: ClientT, *, recorder: Recorder | None = None) -> ClientT:
    """Return ``client`` recording every ``chat.completions.create`` and ``responses.create``.

    Works for ``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI`` and ``AsyncAzureOpenAI``. The result is the
    SDK's client in every way; the calls take extra keyword arguments that never reach OpenAI:
    ``wl_request`` (your request fields, with ``auth_info``), ``wl_identity``, ``wl_tags``,
    ``wl_metadata``.

    Example::

        client = wonkalytics.wrap(openai.AsyncOpenAI())
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True,
            wl_request={"name": "Ada", "auth_info": auth_info},
        )
    """
    if not isinstance(client, OpenAI | AsyncOpenAI):
        raise TypeError(
            f"wonkalytics.wrap() takes an openai.OpenAI / AsyncOpenAI / AzureOpenAI / AsyncAzureOpenAI "
            f"client, not {type(client).__name__}"
        )
    if is_wrapped(client) and recorder is None:
        return client
    wrapped = copy_module.copy(client)
    for name in ("chat", "responses"):  # resources cached on the original point at the original
        wrapped.__dict__.pop(name, None)
    wrapped.__class__ = _wrapped_class(type(client).__mro__[1] if is_wrapped(client) else type(client))
    wrapped._wl_recorder = recorder  # type: ignore[attr-defined]
    return wrapped
