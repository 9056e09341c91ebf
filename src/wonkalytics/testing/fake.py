"""Run the fake OpenAI server: in a background thread for tests, or in the foreground for humans."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

from wonkalytics.testing.server import FakeOpenAIServer, RecordedRequest

__all__ = ["FakeOpenAI", "serve"]


class FakeOpenAI:
    """A fake OpenAI server on a local port, served by a daemon thread.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`) and point the SDK at
    :attr:`base_url` (``openai.OpenAI``) or :attr:`azure_endpoint` (``openai.AzureOpenAI``).
    Port 0 (the default) picks a free port.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> None:
        self._address = (host, port)
        self._verbose = verbose
        self._server: FakeOpenAIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Bind the port and start serving. Returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI is already running")
        server = FakeOpenAIServer(self._address, verbose=self._verbose)
        # A short poll interval keeps stop() fast; serving itself does not poll.
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join the threads. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._thread = None  # the server object stays, so its requests can be read after stop()
        server.shutdown()
        thread.join()
        server.server_close()

    def clear(self) -> None:
        """Forget the recorded requests."""
        self._running.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def _running(self) -> FakeOpenAIServer:
        if self._server is None:
            raise RuntimeError("FakeOpenAI was never started; use `with FakeOpenAI() as fake:` or start()")
        return self._server

    @property
    def host(self) -> str:
        """The host the server listens on."""
        return str(self._running.server_address[0])

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when started with port 0)."""
        return int(self._running.server_address[1])

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI`` / ``AsyncOpenAI``, e.g. ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    @property
    def azure_endpoint(self) -> str:
        """``azure_endpoint`` for ``openai.AzureOpenAI`` / ``AsyncAzureOpenAI`` (the server root)."""
        return self.url

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since start (or the last :meth:`clear`), oldest first."""
        return self._running.requests

    @property
    def bodies(self) -> list[Any]:
        """The parsed JSON bodies of :attr:`requests` (``None`` for requests without one)."""
        return [request.body for request in self.requests]


def serve(host: str = "127.0.0.1", port: int = 8000, *, verbose: bool = True) -> None:
    """Serve in the foreground until Ctrl-C, after printing how to point the SDK at the server."""
    server = FakeOpenAIServer((host, port), verbose=verbose)
    bound_host, bound_port = server.server_address[:2]
    root = f"http://{bound_host!s}:{bound_port}"
    print(
        f"Fake OpenAI server listening on {root}  (Ctrl-C to stop)\n"
        f"  OpenAI SDK:  OPENAI_BASE_URL={root}/v1 OPENAI_API_KEY=anything\n"
        f"  Azure SDK:   AZURE_OPENAI_ENDPOINT={root} AZURE_OPENAI_API_KEY=anything"
        " OPENAI_API_VERSION=2024-10-21\n"
        "  Scenarios:   model 'fake-chunks-100-delay_ms-20', 'fake-error-429'... "
        "see wonkalytics.testing.scenarios",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
