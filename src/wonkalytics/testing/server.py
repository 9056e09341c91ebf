"""A threaded HTTP/1.1 server that speaks enough of the OpenAI API for the official SDK.

Routes (``{p}`` = no prefix, ``/v1``, ``/openai``, ``/openai/v1`` or ``/openai/deployments/{name}``,
so both ``openai.OpenAI`` and ``openai.AzureOpenAI`` URLs work; with a deployment, model = its name)::

    POST {p}/chat/completions    chat.completion JSON, or SSE chat.completion.chunk events
    POST {p}/responses           response JSON, or SSE response.* events
    GET  {p}/models[/{id}]       a few fake models
    anything else                404 with an OpenAI error body

Built on the standard library so it ships inside the package with no dependency. Timing matters,
since benchmarks measure through it: sockets get ``TCP_NODELAY`` (else Nagle + delayed ACK add
~40 ms to small writes), every SSE event is written as soon as it is due (chunked transfer encoding,
keep-alive kept), and stream bodies are rendered before the first byte is sent.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from wonkalytics.testing import payloads
from wonkalytics.testing.content import plan_answer
from wonkalytics.testing.scenarios import Scenario, ScenarioError, scenario_for

__all__ = ["FAKE_MODELS", "FakeOpenAIServer", "RecordedRequest"]

FAKE_MODELS: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini", "fake", "fake-chunks-100")
"""Models listed by ``GET /v1/models`` (any model name is accepted by the completion endpoints)."""

_PREFIX = r"(?:/v1|/openai(?:/v1)?|/openai/deployments/(?P<deployment>[^/]+))?"
_ROUTES = {
    "chat": re.compile(rf"{_PREFIX}/chat/completions/?"),
    "responses": re.compile(rf"{_PREFIX}/responses/?"),
    "models": re.compile(rf"{_PREFIX}/models(?:/(?P<model>[^/]+))?/?"),
}
_END = b"0\r\n\r\n"  # last chunk of a chunked body


def _frame(event: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(event), event)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    """URL path without the query string."""
    query: dict[str, str]
    headers: dict[str, str] = field(repr=False)
    """Header names in lower case."""
    body: Any
    """The parsed JSON body (``None`` for no body or invalid JSON)."""


class _AbortError(Exception):
    """The connection was cut on purpose (scenario) or because the server is stopping."""


class FakeOpenAIServer(ThreadingHTTPServer):
    """The server: one thread per connection, keeps every request in :attr:`requests`.

    Usually driven through :class:`wonkalytics.testing.FakeOpenAI`; use it directly with
    ``serve_forever()`` / ``shutdown()`` / ``server_close()`` like any ``socketserver`` server.
    """

    daemon_threads = True
    request_queue_size = 128  # socketserver's default backlog (5) resets bursts of concurrent clients

    def __init__(self, address: tuple[str, int] = ("127.0.0.1", 0), *, verbose: bool = False) -> None:
        super().__init__(address, _Handler)
        self.verbose = verbose
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def record(self, request: RecordedRequest) -> None:
        """Keep one request (called by the handler threads)."""
        with self._lock:
            self._requests.append(request)

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection so :meth:`server_close` can end idle keep-alive connections."""
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection, then close it."""
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Close the listening socket and every open connection, then join the handler threads.

        Without closing them, a client that keeps a connection alive would block the join forever.
        """
        self.closing.set()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client goes away mid-response; print anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError | _AbortError) or self.closing.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "wonkalytics-fake-openai/1"
    sys_version = ""
    disable_nagle_algorithm = True  # TCP_NODELAY on the accepted socket

    @property
    def fake(self) -> FakeOpenAIServer:
        return cast(FakeOpenAIServer, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        if self.fake.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # --- plumbing -------------------------------------------------------------------------------

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = _int_header(self.headers.get("Content-Length"))
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.fake.record(RecordedRequest(self.command, url.path, dict(parse_qsl(url.query)), headers, body))
        if "chunked" in headers.get("transfer-encoding", ""):
            # The unread body would corrupt the next request on this connection: close it.
            self._error(411, "Send the body with a Content-Length.", headers={"Connection": "close"})
            return
        if raw and body is None:
            self._error(400, "We could not parse the JSON body of your request.")
            return
        self._responded = False
        try:
            self._route(url.path, body)
        except _AbortError:
            self._abort()
        except ConnectionError:
            # The client hung up (closed a stream early, timed out): normal for a server, not a bug.
            self.close_connection = True
        except Exception as exc:
            # A bug here must not look like a network failure: print it, then answer an OpenAI-shaped 500
            # (or cut the stream if one was already started).
            traceback.print_exc(file=sys.stderr)
            if self._responded:
                self._abort()
            else:
                self._error(500, f"Fake OpenAI server error: {exc!r}", headers={"Connection": "close"})

    def _route(self, path: str, body: Any) -> None:
        for name, pattern in _ROUTES.items():
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if name == "models" and self.command == "GET":
                self._models(match["model"])
                return
            if name != "models" and self.command == "POST":
                if not isinstance(body, dict):
                    self._error(400, "The request body must be a JSON object.")
                    return
                deployment = match["deployment"]
                self._completion(name, unquote(deployment) if deployment else None, body)
                return
        self._error(404, f"Invalid URL ({self.command} {path})", code="unknown_url")

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self._responded = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self,
        status: int,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = payloads.error_body(status, message, param)
        if code is not None:
            body["error"]["code"] = code
        self._send_json(status, body, headers)

    def _abort(self) -> None:
        """Cut the connection: FIN without the end of the body (an RST could drop data already sent)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _wait_until(self, deadline: float) -> None:
        remaining = deadline - time.perf_counter()
        if remaining > 0 and self.fake.closing.wait(remaining):
            raise _AbortError

    # --- endpoints ------------------------------------------------------------------------------

    def _models(self, model_id: str | None) -> None:
        def model(name: str) -> dict[str, Any]:
            return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "wonkalytics-fake"}

        if model_id is None:
            self._send_json(200, {"object": "list", "data": [model(name) for name in FAKE_MODELS]})
        else:
            self._send_json(200, model(unquote(model_id)))

    def _completion(self, kind: str, deployment: str | None, body: dict[str, Any]) -> None:
        model = deployment or body.get("model")
        if not isinstance(model, str) or not model:
            self._error(400, "You must provide a model parameter.", param="model")
            return
        stream = body.get("stream") is True
        options = body.get("stream_options")
        if options is not None and not (stream and isinstance(options, dict)):
            message = "'stream_options' must be an object, and is only allowed when 'stream' is enabled."
            self._error(400, message, param="stream_options")
            return
        if kind == "chat" and not (isinstance(body.get("messages"), list) and body["messages"]):
            self._error(400, "'messages' must be a non-empty array.", param="messages")
            return
        try:
            scenario = scenario_for(model, body)
        except ScenarioError as exc:
            self._error(400, str(exc), param=exc.param)
            return
        attempt = _int_header(self.headers.get("x-stainless-retry-count"))  # 0 = first try
        failing = scenario.failing(attempt)
        start = time.perf_counter()
        self._wait_until(start + scenario.latency_ms / 1000)
        if failing and scenario.error is not None:
            self._error(scenario.error, scenario.error_message, headers=_retry_headers(scenario))
            return
        if failing and not stream and scenario.disconnect_after is not None:
            raise _AbortError
        if failing and not stream and scenario.error_after is not None:
            self._error(500, scenario.error_message)
            return
        answer = plan_answer(body, scenario)
        if kind == "chat" and not stream:
            self._send_json(200, payloads.chat_completion(model, answer))
        elif kind == "chat":
            include_usage = bool(options and options.get("include_usage"))
            self._stream(payloads.chat_stream(model, answer, include_usage), scenario, failing)
        elif not stream:
            self._send_json(200, payloads.response_object(model, body, answer))
        else:
            self._stream(payloads.responses_stream(model, body, answer), scenario, failing)

    def _stream(self, sse: payloads.SSEStream, scenario: Scenario, failing: bool) -> None:
        self._responded = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        self.end_headers()
        write = self.wfile.write  # unbuffered: each call is one sendall, so each event leaves now
        for event in sse.prologue:
            write(_frame(event))
        n = len(sse.deltas)
        cut = min(scenario.disconnect_after, n) if failing and scenario.disconnect_after is not None else -1
        fail = min(scenario.error_after, n) if failing and scenario.error_after is not None else -1
        delay = scenario.delay_ms / 1000
        start = time.perf_counter()
        for i in range(n + 1):
            if i == cut:
                raise _AbortError
            if i == fail:
                write(_frame(sse.error_event(i, scenario.error_message)) + _END)
                return
            if i == n:
                break
            if delay:
                self._wait_until(start + (i + 1) * delay)  # absolute schedule: no drift over N chunks
            write(_frame(sse.deltas[i]))
        *events, last = sse.epilogue
        for event in events:
            write(_frame(event))
        # The terminator rides with the last event: the SDK sees the end at once and can reuse the socket.
        write(_frame(last) + _END)


def _int_header(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _retry_headers(scenario: Scenario) -> dict[str, str]:
    seconds = scenario.retry_after
    if seconds is None and scenario.error == 429:
        seconds = 1.0
    if seconds is None:
        return {}
    # retry-after-ms (which the SDK prefers) allows sub-second waits in tests.
    return {"retry-after": str(math.ceil(seconds)), "retry-after-ms": str(round(seconds * 1000))}
