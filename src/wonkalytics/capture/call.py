"""One wrapped SDK call in flight: what it noted so far, and the once-only finalizer.

The stream generators write into a :class:`Call` per chunk (extend a bytearray with the delta text);
everything else happens once, in :meth:`Call.finish`, which builds the frozen ``Interaction`` and
hands it to the recorder. ``finish`` is reached from every exit and runs at most once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wonkalytics.capture.context import CallOptions
from wonkalytics.interaction import Api, Interaction, Status, new_event_id
from wonkalytics.internal_errors import swallow

if TYPE_CHECKING:
    from wonkalytics.recorder import Recorder

__all__ = ["Call"]

_perf = time.perf_counter


class Call:
    """State of one call; the stream generators of ``capture.streams`` fill it in."""

    __slots__ = (
        "api", "broken", "done", "error", "finish_reason", "first_token", "last", "options", "params", "provider",
        "recorder", "response", "server", "start_perf", "start_time", "text", "trace", "usage",
    )

    def __init__(
        self,
        api: Api,
        params: Mapping[str, Any],
        options: CallOptions,
        recorder: Recorder,
        provider: str,
        server: str | None = None,
    ) -> None:
        self.api = api
        self.params = params
        self.options = options
        self.recorder = recorder
        self.provider = provider
        self.server = server
        # The caller's current span, for the OpenTelemetry sink: None (and no cost) when it is off.
        hook = recorder.trace_hook
        self.trace = hook() if hook is not None else None
        # The delta text so far, as UTF-8. A bytearray rather than a list of the SDK's strings: keeping
        # every chunk's own string alive until the end costs ~1 µs per chunk in the SDK's allocations
        # (measured by bench/stream_overhead.py); copying the bytes out costs a tenth of that.
        self.text = bytearray()
        self.first_token: float | None = None
        self.last: Any = None  # a chunk of this stream (chat): ids, model, fingerprint and usage are read off it
        self.response: Any = None  # the final response object (non-stream, or the Responses API's)
        self.usage: Any = None
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.done = False
        self.broken = False  # our bookkeeping raised once: stop noting chunks, keep streaming
        self.start_time = time.time()
        self.start_perf = _perf()

    @property
    def response_id(self) -> str | None:
        """The provider's id for this response, once a chunk or the response carried it."""
        source = self.response if self.response is not None else self.last
        rid = getattr(source, "id", None)
        return rid or None

    def completed(self) -> bool:
        """True when the model finished (a finish reason or a completed response was seen)."""
        return self.finish_reason is not None or (
            self.api == "responses" and getattr(self.response, "status", None) == "completed"
        )

    def status(self, exc: BaseException | None = None, *, stopped: bool = False) -> Status:
        """The one status rule, for every exit of a call (the exit ladder, the SDK call, close, GC).

        The SDK raised an ``Exception`` -> ``error``. The caller stopped (``stopped``: ``close()`` or
        garbage collection; or a ``BaseException``: ``GeneratorExit``, ``CancelledError``,
        ``KeyboardInterrupt``) -> ``aborted``, unless the model had finished (then nothing was lost:
        ``ok``). Otherwise it ended normally -> ``ok``, or ``error`` when the stream reported a failure.
        """
        if isinstance(exc, Exception):
            return "error"
        if exc is not None or stopped:
            return "ok" if self.completed() else "aborted"
        return "error" if self.error else "ok"

    def finish(self, exc: BaseException | None = None, *, stopped: bool = False) -> None:
        """Build the interaction (its status from :meth:`status`) and queue it; at most once, never raising."""
        if self.done:
            return
        self.done = True
        try:
            end_perf = _perf()
            status = self.status(exc, stopped=stopped)
            error = f"{type(exc).__name__}: {exc}" if status == "error" and exc is not None else self.error
            self.recorder.record(self._interaction(status, error, end_perf))
        except Exception:
            swallow("recording an LLM call", "its row was not written")

    def _interaction(self, status: Status, error: str | None, end_perf: float) -> Interaction:
        source = self.response if self.response is not None else self.last
        usage = self.usage if self.usage is not None else getattr(source, "usage", None)
        prompt = _tokens(usage, "prompt_tokens", "input_tokens")
        completion = _tokens(usage, "completion_tokens", "output_tokens")
        total = _tokens(usage, "total_tokens", "total_tokens")
        if total is None and prompt is not None and completion is not None:
            total = prompt + completion
        options = self.options
        return Interaction(
            api=self.api,
            params=self.params,
            event_id=new_event_id(),
            start_time=self.start_time,
            end_time=self.start_time + (end_perf - self.start_perf),
            status=status,
            request=options.request,
            identity=options.identity,
            tags=options.tags,
            metadata=options.metadata,
            provider_type=self.provider,
            response_text=self._text(),
            response_id=self.response_id,
            response_model=getattr(source, "model", None),
            system_fingerprint=getattr(source, "system_fingerprint", None),
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            error=error,
            ttft_ms=None if self.first_token is None else (self.first_token - self.start_perf) * 1000,
            duration_ms=(end_perf - self.start_perf) * 1000,
            finish_reason=self.finish_reason or _responses_finish(self.response),
            cached_tokens=_detail(usage, ("prompt_tokens_details", "input_tokens_details"), "cached_tokens"),
            reasoning_tokens=_detail(
                usage, ("completion_tokens_details", "output_tokens_details"), "reasoning_tokens"
            ),
            response=self.response,
            server_address=self.server,
            trace_context=self.trace,
        )

    def _text(self) -> str:
        if self.text:
            return self.text.decode("utf-8", "surrogatepass")
        response = self.response
        if response is None:
            return ""
        if self.api == "responses":
            return str(getattr(response, "output_text", "") or "")
        choices = getattr(response, "choices", None) or ()
        texts = [getattr(getattr(choice, "message", None), "content", None) for choice in choices[:1]]
        return "".join(text for text in texts if isinstance(text, str))


def _tokens(usage: Any, name: str, alias: str) -> int | None:
    if usage is None:
        return None
    value = getattr(usage, name, None)
    if value is None:
        value = getattr(usage, alias, None)
    return value if isinstance(value, int) else None


def _detail(usage: Any, containers: tuple[str, str], name: str) -> int | None:
    """A token count from the usage details (chat and Responses API spell the container differently)."""
    if usage is None:
        return None
    for container in containers:
        value = getattr(getattr(usage, container, None), name, None)
        if isinstance(value, int):
            return value
    return None


def _responses_finish(response: Any) -> str | None:
    """The Responses API's status (``completed``, ``incomplete``, ``failed``) as the finish reason."""
    status = getattr(response, "status", None)
    if isinstance(status, str):
        return status
    choices = getattr(response, "choices", None) or ()
    reason = getattr(choices[0], "finish_reason", None) if choices else None
    return reason if isinstance(reason, str) else None
