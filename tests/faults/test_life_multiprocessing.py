"""multiprocessing children (issue 15 item 4): fork and forkserver children end with os._exit, so no
atexit flush runs; their rows must still be written. Each start method, in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.conftest import read_rows

SCRIPT = textwrap.dedent("""
    import multiprocessing, sys
    import wonkalytics

    def setup(url, table, spool):
        wonkalytics.configure(database_url=url, table=table, spool_dir=spool, flush_interval=0.5)

    def task(url, table, spool, worker, configured):
        if not configured:  # spawn / forkserver: the child has its own interpreter state
            setup(url, table, spool + "-" + str(worker))
        for n in range(10):
            wonkalytics.log(action="child", worker=worker, n=n)  # the task ends at once: nothing flushed

    if __name__ == "__main__":
        method, url, table, spool = sys.argv[1:5]
        setup(url, table, spool)
        wonkalytics.log(action="parent")
        assert wonkalytics.flush(10)
        context = multiprocessing.get_context(method)
        children = [context.Process(target=task, args=(url, table, spool, w, method == "fork")) for w in range(2)]
        for child in children:
            child.start()
        for child in children:
            child.join(60)
            assert child.exitcode == 0, child.exitcode
""")


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_each_start_method_writes_the_childs_rows(
    method: str, sqlite_url: str, table_name: str, tmp_path: Path
) -> None:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "PROMPTLAYER_"))}
    done = subprocess.run(
        [sys.executable, str(script), method, sqlite_url, table_name, str(tmp_path / "spool")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(sqlite_url, table_name, order_by="event_id")
    assert sorted(str(r["action"]) for r in rows).count("child") == 20, [r["action"] for r in rows]
    assert len(rows) == 21
