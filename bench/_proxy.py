"""A ``FaultProxy`` in a child process (so its pump threads take no GIL from the measured app).

``Proxy(5432)`` starts ``python bench/_proxy.py 5432``; the child prints its port and then obeys one
command per line on stdin: ``latency SECONDS``, ``refuse``, ``blackhole``, ``recover``, ``quit``.
"""

from __future__ import annotations

import subprocess
import sys

import _harness as h


def child_proxy(target_port: str) -> None:
    """A FaultProxy in its own process, driven by lines on stdin: latency S / blackhole / recover."""
    from wonkalytics.testing.proxy import FaultProxy

    with FaultProxy(int(target_port)) as proxy:
        print(proxy.port, flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            if command == "latency":
                proxy.recover()
                proxy.latency(float(args[0]))
            elif command == "refuse":
                proxy.refuse()
            elif command == "blackhole":
                proxy.blackhole()
            elif command == "recover":
                proxy.recover()
            elif command == "quit":
                break
            print("ok", flush=True)


class Proxy:
    """The child process's proxy, seen from the parent: ``send("latency 0.2")``, ``"refuse"``, ...

    ``url(database_url)`` is that URL pointed at the proxy.
    """

    def __init__(self, target_port: int) -> None:
        self.child = subprocess.Popen(
            [sys.executable, __file__, str(target_port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=h.ROOT,
        )
        assert self.child.stdout is not None
        self.port = int(self.child.stdout.readline())

    def send(self, command: str) -> None:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write(command + "\n")
        self.child.stdin.flush()
        if self.child.stdout.readline().strip() != "ok":
            raise RuntimeError(f"the proxy did not acknowledge {command!r}")

    def url(self, database_url: str) -> str:
        import sqlalchemy as sa

        return sa.make_url(database_url).set(port=self.port).render_as_string(hide_password=False)

    def close(self) -> None:
        with_stdin = self.child.stdin
        if with_stdin is not None:
            with_stdin.write("quit\n")
            with_stdin.close()
        self.child.wait(10)


if __name__ == "__main__":
    child_proxy(sys.argv[1])
