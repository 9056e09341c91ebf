"""A TCP proxy on 127.0.0.1 for fault tests: put it between a client and a database, then break things.

>>> with FaultProxy(5432) as proxy:                      # doctest: +SKIP
...     url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test"
...     proxy.blackhole()      # accept, never answer (a dead network path)
...     proxy.recover()        # everything flows again

Faults, each until :meth:`FaultProxy.recover`:

* :meth:`refuse` -- new connections are reset at once (the server is down);
* :meth:`blackhole` -- connections are accepted and nothing is relayed, old ones included;
* :meth:`hang_existing` -- the connections open now stop forever, new ones work (a failover);
* :meth:`reset_all` -- every open connection is reset now (a crash mid-batch), once;
* :meth:`latency` -- every reply from the server is held back this long;
* :meth:`drop_reply_after` -- when the client sends ``pattern`` (e.g. ``b"COMMIT"``) it is relayed,
  then the connection is cut before the server's answer comes back (a lost acknowledgement).

It only ever listens on and connects to loopback addresses, and its threads are daemons that end
with :meth:`close`.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from types import TracebackType

__all__ = ["FaultProxy"]

_CHUNK = 65536
_POLL = 0.05  # seconds a pump waits between checks of the fault flags


def _reset(sock: socket.socket) -> None:
    """Close with RST (not FIN), as a crashed peer or a broken path does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.frozen = False  # hang_existing: never relay again
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            _reset(self.client)
            _reset(self.upstream)


class FaultProxy:
    """Relay ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>``, with faults on demand."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        if not target_host.startswith("127.") and target_host not in ("localhost", "::1"):
            raise ValueError("FaultProxy only relays to loopback addresses")
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._mode = "pass"  # pass | refuse | blackhole
        self._delay = 0.0
        self._drop_pattern: bytes | None = None
        self._drops_left = 0
        self.dropped_replies = 0
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()

    # -- faults ------------------------------------------------------------------------------------

    def refuse(self) -> None:
        """Reset every new connection (and the open ones): the server is down."""
        self._mode = "refuse"
        self.reset_all()

    def blackhole(self) -> None:
        """Accept connections and relay nothing, on old and new connections alike."""
        self._mode = "blackhole"

    def hang_existing(self) -> None:
        """Freeze the connections open now for good; new connections work (a failover)."""
        with self._lock:
            for pair in self._pairs:
                pair.frozen = True

    def reset_all(self) -> None:
        """Reset every open connection now."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close()

    def latency(self, seconds: float) -> None:
        """Hold every reply of the server back ``seconds`` (0 to stop)."""
        self._delay = seconds

    def drop_reply_after(self, pattern: bytes, times: int = 1) -> None:
        """The next ``times`` times the client sends ``pattern``: relay it, then cut before the reply."""
        with self._lock:
            self._drop_pattern = pattern
            self._drops_left = times

    def recover(self) -> None:
        """Relay normally again (connections frozen by :meth:`hang_existing` stay dead)."""
        self._mode = "pass"
        self._delay = 0.0
        with self._lock:
            self._drop_pattern, self._drops_left = None, 0

    # -- relaying ----------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self._mode == "refuse":
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            for sock in (client, upstream):
                sock.settimeout(_POLL)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, False), daemon=True).start()

    def _held(self, pair: _Pair) -> bool:
        return pair.frozen or self._mode == "blackhole"

    def _pump(self, pair: _Pair, to_server: bool) -> None:
        source, sink = (pair.client, pair.upstream) if to_server else (pair.upstream, pair.client)
        while not pair.closed and not self._stop.is_set():
            if self._held(pair):
                time.sleep(_POLL)  # keep the socket open and silent
                continue
            try:
                data = source.recv(_CHUNK)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            while self._held(pair) and not pair.closed and not self._stop.is_set():
                time.sleep(_POLL)  # data read just before the fault: hold it, as the network would
            if not to_server and self._delay:
                time.sleep(self._delay)
            cut = to_server and self._should_drop(data)
            if cut:
                pair.frozen = True  # the server's answer must never come back
            try:
                sink.sendall(data)
            except OSError:
                break
            if cut:
                time.sleep(0.2)  # let the server receive (and act on) what was sent
                self.dropped_replies += 1
                break
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
        pair.close()

    def _should_drop(self, data: bytes) -> bool:
        with self._lock:
            if self._drop_pattern is None or self._drops_left <= 0 or self._drop_pattern not in data:
                return False
            self._drops_left -= 1
            return True

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening and reset every connection."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.reset_all()
        self._thread.join(2)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
