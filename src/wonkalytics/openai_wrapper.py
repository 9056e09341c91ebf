"""The seed version's ``OpenAIWrapper``, on the current ``openai`` SDK.

Example (the seed's endpoint, unchanged)::

    import openai as openai_module
    import wonkalytics.openai_wrapper as openai_wrapper

    openai_wrapper.api_key = os.getenv("PROMPTLAYER_API_KEY")   # the PromptLayer key, as before
    openai = openai_wrapper.OpenAIWrapper(openai_module, function_name="openai")
    openai.api_key = os.getenv("OPENAI_API_KEY")

    for chunk, response_id in openai.ChatCompletion.create(model=..., messages=..., stream=True,
                                                           request=req.model_dump(), return_pl_id=True):
        ...   # response_id is None until the final chunk

``create`` takes the old PromptLayer-style extras: ``pl_tags`` (stored as tags), ``request`` (your
request fields, with ``auth_info``) and ``return_pl_id`` (yield / return ``(chunk, response_id)``;
the id is the provider's ``chatcmpl-...`` id, the key that ``score`` and ``update_row_property`` use).
``acreate`` is the async twin. The client honours ``OPENAI_BASE_URL`` and ``OPENAI_ORG_ID``, and uses
Azure OpenAI when ``AZURE_OPENAI_ENDPOINT`` is set (with ``OPENAI_API_VERSION``, ``AZURE_OPENAI_API_KEY``).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from wonkalytics.capture.client import wrap
from wonkalytics.internal_errors import swallow
from wonkalytics.recorder import default_recorder
from wonkalytics.settings import foreign_environ

__all__ = ["OpenAIWrapper", "api_key"]

api_key: str | None = None
"""The PromptLayer API key, as in the seed: when set, every call is also sent to PromptLayer.

Read at each call rather than at import, because the seed's example sets it after importing this
module (``PROMPTLAYER_API_KEY`` / ``configure(promptlayer_api_key=...)`` work as well).
"""


def _sync_promptlayer_key() -> None:
    """Hand a PromptLayer key set on this module to the recorder (idempotent there, so cheap per call)."""
    key = api_key
    if not key:
        return
    try:
        default_recorder.enable_promptlayer(key)
    except Exception:
        swallow("enabling PromptLayer from openai_wrapper.api_key", "calls are not sent to PromptLayer")

_EXTRAS = ("pl_tags", "request", "return_pl_id")


def _with_ids(stream: Iterator[Any]) -> Iterator[tuple[Any, str | None]]:
    """``(chunk, None)`` for every chunk but the last, which comes as ``(chunk, response_id)``."""
    previous: Any = None
    have_previous = False
    for chunk in stream:
        if have_previous:
            yield previous, None
        previous, have_previous = chunk, True
    if have_previous:
        yield previous, getattr(stream, "response_id", None) or getattr(previous, "id", None)


async def _awith_ids(stream: Any) -> AsyncIterator[tuple[Any, str | None]]:
    previous: Any = None
    have_previous = False
    async for chunk in stream:
        if have_previous:
            yield previous, None
        previous, have_previous = chunk, True
    if have_previous:
        yield previous, getattr(stream, "response_id", None) or getattr(previous, "id", None)


class _ChatCompletion:
    """``openai.ChatCompletion`` as the seed used it: ``create`` and ``acreate``."""

    def __init__(self, owner: OpenAIWrapper) -> None:
        self._owner = owner

    @staticmethod
    def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        tags = kwargs.pop("pl_tags", None)
        request = kwargs.pop("request", None)
        return_id = bool(kwargs.pop("return_pl_id", False))
        if tags:
            kwargs["wl_tags"] = list(tags)
        if request is not None:
            kwargs["wl_request"] = request
        return kwargs, return_id

    def create(self, **kwargs: Any) -> Any:
        """Call chat completions; with ``return_pl_id`` pair results with the response id."""
        kwargs, return_id = self._split(kwargs)
        _sync_promptlayer_key()
        result = self._owner._client(is_async=False).chat.completions.create(**kwargs)
        if not return_id:
            return result
        if kwargs.get("stream"):
            return _with_ids(result)
        return result, result.id

    async def acreate(self, **kwargs: Any) -> Any:
        """Async twin of :meth:`create` (``async for chunk, response_id in await ...acreate(...)``)."""
        kwargs, return_id = self._split(kwargs)
        _sync_promptlayer_key()
        result = await self._owner._client(is_async=True).chat.completions.create(**kwargs)
        if not return_id:
            return result
        if kwargs.get("stream"):
            return _awith_ids(result)
        return result, result.id


class OpenAIWrapper:
    """Stands in for the ``openai`` module the seed wrapped; ``ChatCompletion`` records every call.

    Any other attribute is the wrapped module's (``OpenAIWrapper(openai).OpenAI`` is ``openai.OpenAI``).
    """

    def __init__(self, openai_module: Any, function_name: str = "openai") -> None:
        self._module = openai_module
        self.function_name = function_name
        self.api_key: str | None = None
        """The OpenAI API key (else ``OPENAI_API_KEY`` / ``AZURE_OPENAI_API_KEY``)."""
        self.ChatCompletion = _ChatCompletion(self)
        self._clients: dict[tuple[bool, str | None], Any] = {}
        self._lock = threading.Lock()

    def _client(self, *, is_async: bool) -> Any:
        key = (is_async, self.api_key)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = wrap(self._new_client(is_async))
        return client

    def _new_client(self, is_async: bool) -> Any:
        module = self._module
        environ = foreign_environ()
        if environ.get("AZURE_OPENAI_ENDPOINT"):
            cls = module.AsyncAzureOpenAI if is_async else module.AzureOpenAI
            return cls(api_key=self.api_key or environ.get("AZURE_OPENAI_API_KEY"))
        cls = module.AsyncOpenAI if is_async else module.OpenAI
        return cls(api_key=self.api_key, organization=environ.get("OPENAI_ORG_ID"))

    def close(self) -> None:
        """Close the sync clients this wrapper made (async ones: :meth:`aclose`)."""
        for (is_async, _), client in list(self._clients.items()):
            if not is_async:
                client.close()

    async def aclose(self) -> None:
        """Close every client this wrapper made, the async ones included."""
        self.close()
        for (is_async, _), client in list(self._clients.items()):
            if is_async:
                await client.close()
        self._clients.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)
