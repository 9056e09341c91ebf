"""A local stand-in for PromptLayer's REST API, strict about payload shapes, for tests and demos.

It serves ``POST /rest/track-request`` and ``POST /rest/track-score`` on 127.0.0.1 and checks each
body the way PromptLayer's public reference describes it (and its official Python library sends it):

* track-request: ``function_name`` (string, required), ``kwargs`` (object), ``request_response``
  (object), ``request_start_time`` / ``request_end_time`` (required; epoch seconds or an ISO-8601
  string), ``tags`` (list of strings), ``metadata`` (object of string values only), ``api_key``
  (or the ``X-API-KEY`` header). Answer: ``{"success": true, "request_id": <int>}``.
* track-score: ``request_id`` (an integer from track-request), ``score`` (an integer 0-100),
  optional ``name``, ``api_key``. Answer: ``{"success": true, "message": "..."}``.

A wrong key is 401, a malformed body 400 with ``{"success": false, "message": ...}``; every refusal
is kept in :attr:`FakePromptLayer.problems`, so a test can assert there were none. Faults on demand:
:meth:`~FakePromptLayer.fail_next` (answer the next requests with 429 or 500),
:meth:`~FakePromptLayer.set_delay` (answer slowly); for a dead network path put a
:class:`~wonkalytics.testing.proxy.FaultProxy` in front.

>>> with FakePromptLayer(api_key="pl_test") as fake:          # doctest: +SKIP
...     httpx.post(fake.url + "/rest/track-request", json={...}).json()
{'success': True, 'request_id': 1}
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["FakePromptLayer", "PromptLayerCall", "validate_track_request", "validate_track_score"]


@dataclass(frozen=True, slots=True)
class PromptLayerCall:
    """One request the fake answered, with its status."""

    path: str
    body: Any
    headers: dict[str, str] = field(repr=False)
    status: int
    request_id: int | None = None


def _is_time(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value > 0
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


def validate_track_request(body: Any) -> str | None:
    """What is wrong with a track-request body (None when it is well-formed)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not isinstance(body.get("function_name"), str) or not body["function_name"]:
        return "function_name is required (a string such as 'openai.chat.completions.create')"
    for name in ("request_start_time", "request_end_time"):
        if not _is_time(body.get(name)):
            return f"{name} is required: epoch seconds or an ISO-8601 datetime"
    start, end = body["request_start_time"], body["request_end_time"]
    if isinstance(start, int | float) and isinstance(end, int | float) and end < start:
        return "request_end_time is before request_start_time"
    for name in ("kwargs", "request_response"):
        if name in body and body[name] is not None and not isinstance(body[name], dict):
            return f"{name} must be an object"
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        return "tags must be a list of strings"
    metadata = body.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
    ):
        return "metadata must be an object whose values are all strings"
    return None


def validate_track_score(body: Any, known: set[int]) -> str | None:
    """What is wrong with a track-score body (None when it is well-formed and the request is known)."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    request_id = body.get("request_id")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        return "request_id must be the integer returned by track-request"
    score = body.get("score")
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 100:
        return "score must be an integer between 0 and 100"
    if "name" in body and body["name"] is not None and not isinstance(body["name"], str):
        return "name must be a string"
    if request_id not in known:
        return f"request {request_id} not found"
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: FakePromptLayer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a fault test's proxy reset) is not a server error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`FakePromptLayer.calls` instead."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, answer = self.server.owner._answer(self.path, body, headers)
        data = json.dumps(answer).encode()
        with contextlib.suppress(OSError):  # the client gave up (its read timeout): nothing to answer
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)


class FakePromptLayer:
    """PromptLayer's tracking endpoints on a free port of 127.0.0.1 (see the module docstring)."""

    def __init__(self, api_key: str = "pl_test_key") -> None:
        self.api_key = api_key
        self._lock = threading.Condition()
        self.calls: list[PromptLayerCall] = []
        """Every request answered, in order (refused ones included)."""
        self.problems: list[str] = []
        """Why each refused request was refused (401 / 400 / 404)."""
        self._next_id = 1
        self._failures: list[int | None] = []
        self._delay = threading.Event()
        self._delay_seconds = 0.0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free port and serve in a daemon thread."""
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-promptlayer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (the recorded calls stay readable)."""
        server, thread = self._server, self._thread
        self._thread = None
        self._delay.set()
        if server is not None and thread is not None:
            server.shutdown()
            thread.join()
            server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._server is None:
            raise RuntimeError("FakePromptLayer was never started; use `with FakePromptLayer() as fake:`")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to configure as ``promptlayer_base_url``."""
        return f"http://127.0.0.1:{self.port}"

    # -- faults ------------------------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, *, after: int = 0) -> None:
        """Answer ``times`` requests with ``status`` (e.g. 429 or 500) without acting on them.

        ``after``: let that many requests through normally first (to fail the middle of a batch).
        """
        with self._lock:
            self._failures = [None] * after + [status] * times

    def set_delay(self, seconds: float) -> None:
        """Hold every answer back ``seconds`` (0: answer at once again, releasing waiting answers)."""
        self._delay_seconds = seconds
        if seconds <= 0:
            self._delay.set()
        else:
            self._delay.clear()

    # -- reading -----------------------------------------------------------------------------------

    def accepted(self, path: str) -> list[PromptLayerCall]:
        """The 2xx calls to ``/rest/<path>`` (``"track-request"`` or ``"track-score"``)."""
        with self._lock:
            return [c for c in self.calls if c.path == f"/rest/{path}" and 200 <= c.status < 300]

    @property
    def tracked(self) -> list[dict[str, Any]]:
        """Bodies of the accepted track-request calls."""
        return [c.body for c in self.accepted("track-request")]

    @property
    def scores(self) -> list[dict[str, Any]]:
        """Bodies of the accepted track-score calls."""
        return [c.body for c in self.accepted("track-score")]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` calls to ``/rest/<path>`` were accepted; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._accepted_locked(path)) >= count, timeout)

    def _accepted_locked(self, path: str) -> list[PromptLayerCall]:
        return [c for c in self.calls if c.path == f"/rest/{path}" and 200 <= c.status < 300]

    # -- answering ---------------------------------------------------------------------------------

    def _answer(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self._delay_seconds > 0:
            self._delay.wait(self._delay_seconds)
        with self._lock:
            status, answer, request_id = self._decide(path, body, headers)
            self.calls.append(PromptLayerCall(path, body, headers, status, request_id))
            self._lock.notify_all()
        return status, answer

    def _decide(self, path: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any], int | None]:
        if self._failures:
            status = self._failures.pop(0)
            if status is not None:
                return status, {"success": False, "message": f"injected failure {status}"}, None
        if path not in ("/rest/track-request", "/rest/track-score"):
            return self._refuse(404, f"no route {path}")
        key = body.get("api_key") if isinstance(body, dict) else None
        if (key or headers.get("x-api-key")) != self.api_key or (key is not None and key != self.api_key):
            return self._refuse(401, "invalid api_key")
        if path == "/rest/track-request":
            problem = validate_track_request(body)
            if problem:
                return self._refuse(400, problem)
            request_id, self._next_id = self._next_id, self._next_id + 1
            return 200, {"success": True, "request_id": request_id}, request_id
        known = {c.request_id for c in self.calls if c.request_id is not None}
        problem = validate_track_score(body, known)
        if problem:
            return self._refuse(404 if problem.endswith("not found") else 400, problem)
        return 200, {"success": True, "message": "Score tracked"}, None

    def _refuse(self, status: int, message: str) -> tuple[int, dict[str, Any], None]:
        self.problems.append(message)
        return status, {"success": False, "message": message}, None
