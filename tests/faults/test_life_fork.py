"""os.fork() while a lane thread holds a lock (issue 15 item 2): the child writes its rows, exits, and
counts only its own ops. Run in a fresh interpreter, so the fork copies a process with live lanes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import read_rows

SCRIPT = textwrap.dedent("""
    import json, os, sys, threading, time
    import wonkalytics
    from wonkalytics.recorder import default_recorder

    url, table, spool, out = sys.argv[1:5]
    inside = threading.Event()

    def slow_redact(row):
        if row.get("action") == "slow":  # the parent's row: the lane thread sits here, holding that insert's build lock
            inside.set()
            time.sleep(3)
        return row

    wonkalytics.configure(database_url=url, table=table, spool_dir=spool, flush_interval=0.01,
                          redact=slow_redact)
    wonkalytics.log(action="warm-up")
    assert wonkalytics.flush(10)
    wonkalytics.log(action="slow")
    assert inside.wait(10), "the lane never started building the slow row"
    lane = default_recorder.writer.lane("table")
    with lane.counters.lock:  # as if the lane thread were counting right now
        pid = os.fork()
    if pid == 0:
        for n in range(3):
            wonkalytics.log(action="child", n=n)
        flushed = wonkalytics.flush(15)
        health = wonkalytics.health()["table"]
        with open(out, "w") as f:
            json.dump({"flushed": flushed, "written": health.written, "spooled": health.spooled}, f)
        sys.exit(0)  # a normal exit: the at-exit flush must not hang either
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("child hung", file=sys.stderr)
        sys.exit(3)
    assert wonkalytics.flush(15)
    sys.exit(os.waitstatus_to_exitcode(status))
""")


def test_fork_during_a_slow_redact_with_the_counters_lock_held(
    sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    out = tmp_path / "child.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "PROMPTLAYER_"))}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, sqlite_url, table_name, str(tmp_path / "spool"), str(out)],
        capture_output=True, text=True, timeout=90, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    child = json.loads(out.read_text())
    assert child == {"flushed": True, "written": 3, "spooled": 0}  # its own counts, not the parent's
    actions = sorted(str(r["action"]) for r in read_rows(sqlite_url, table_name, order_by="event_id"))
    assert actions == ["child", "child", "child", "slow", "warm-up"]
