"""os.fork() while another thread holds a module-level lock of pricing or of the engine registry
(issue 15 item 2, the leftovers): the child must price a call, hand over a prices file and get an
engine without hanging. Each run is a fresh interpreter that really forks; a hung child is killed
after a timeout and the test fails (it never hangs the suite)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys, threading, time
    from wonkalytics.record import cost
    from wonkalytics.store import engine

    which = sys.argv[1]
    held = threading.Event()

    def hold():
        lock = {"coefficients": lambda: cost._coefficients_lock,
                "prices_file": lambda: cost._prices_file._lock,
                "engines": lambda: engine._lock}[which]()
        with lock:  # a lane thread pricing a call / a configure() assembling an engine, at the fork
            held.set()
            time.sleep(30)

    threading.Thread(target=hold, daemon=True).start()
    assert held.wait(10)
    pid = os.fork()
    if pid == 0:
        price = cost.call_cost("gpt-4o", 1000, 100)  # the coefficient cache, under its lock
        cost.use_prices_file(None)  # the prices file's lock
        assert cost.interaction_cost is not None
        made = engine.get_engine("sqlite://")  # the engine registry's lock
        engine.dispose_engines(close=False)
        os.write(1, f"child ok {price is not None} {made is not None}\\n".encode())
        os._exit(0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            sys.exit(os.waitstatus_to_exitcode(status))
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    print("child hung on an inherited lock", file=sys.stderr)
    sys.exit(3)
""")


@pytest.mark.parametrize("which", ["coefficients", "prices_file", "engines"])
def test_a_forked_child_does_not_inherit_a_held_module_lock(which: str) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, which], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "child ok True True" in done.stdout
