"""Issue 15 item 1: two app containers on one spool volume, each its own pid 1.

Each process runs in its own pid namespace (``unshare --pid``), so both are pid 1, as replicas in
Docker or Kubernetes are. The second must not take the first one's live segment for an orphan.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.faults.spool_root import in_pid_namespace

from wonkalytics.writer.spool import Spool

OWNER = """
import os, sys, time
from pathlib import Path
from wonkalytics.writer.spool import Spool
spool_dir, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
spool = Spool(spool_dir, fsync=True)
spool.append(b'{"v":1,"op":"update","id":"a1","key_field":"response_id","key":"r","field":"score","value":1}\\n')
ready.write_text(str(os.getpid()))
while not go.exists():
    time.sleep(0.01)
spool.append(b'{"v":1,"op":"update","id":"a2","key_field":"response_id","key":"r","field":"score","value":2}\\n')
print(os.getpid(), spool.pending())
"""

ADOPTER = """
import os, sys
from pathlib import Path
from wonkalytics.writer.spool import Spool
spool = Spool(Path(sys.argv[1]), fsync=True)
print(os.getpid(), spool.adopt_orphans())
"""


def _wait(path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def test_a_live_segment_of_another_pid_1_is_never_adopted(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool" / "table"
    ready, go = tmp_path / "ready", tmp_path / "go"
    owner = in_pid_namespace(OWNER, str(spool_dir), str(ready), str(go))
    try:
        _wait(ready)
        assert ready.read_text() == "1"
        time.sleep(0.05)  # the adopter starts strictly after the owner's segment was written
        adopter = in_pid_namespace(ADOPTER, str(spool_dir))
        out, err = adopter.communicate(timeout=60)
        assert adopter.returncode == 0, err
        assert out.split() == ["1", "0"]  # also pid 1, and it adopted nothing
    finally:
        go.write_text("go")
        out, err = owner.communicate(timeout=60)
    assert owner.returncode == 0, err
    assert out.split() == ["1", "2"]
    segments = list(spool_dir.glob("*.jsonl"))
    assert len(segments) == 1
    ids = [json.loads(line)["id"] for line in segments[0].read_text().splitlines()]
    assert ids == ["a1", "a2"]  # both still on disk, in the owner's segment


def test_a_dead_pid_1_s_segment_is_adopted_by_exactly_one_process(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool" / "table"
    ready, go = tmp_path / "ready", tmp_path / "go"
    go.write_text("go")
    owner = in_pid_namespace(OWNER, str(spool_dir), str(ready), str(go))
    _, err = owner.communicate(timeout=60)
    assert owner.returncode == 0, err  # it ended with 2 ops on disk: its lock went with it
    adopters = [in_pid_namespace(ADOPTER, str(spool_dir)) for _ in range(3)]
    counts = []
    for adopter in adopters:
        out, err = adopter.communicate(timeout=60)
        assert adopter.returncode == 0, err
        counts.append(int(out.split()[1]))
    # Each adopter exits right away (dropping its lock), so a later one may adopt again; what must
    # hold is that none sees a half-claimed file and the ops are all there once.
    assert 2 in counts and all(count in (0, 2) for count in counts)
    spool = Spool(spool_dir, fsync=False)
    assert spool.adopt_orphans() == 2
    spool.release()
