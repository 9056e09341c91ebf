"""Issue 15, item 8: the JSON-lines sink on a full disk appends a batch whole or not at all.

A real tmpfs of 64 KiB (``mount -t tmpfs -o size=64k``; needs root) is nearly filled, so the batch's
``write()`` is short and the next one fails with ENOSPC. The file must be cut back to its size before
the batch; once space is freed, the retried batch lands whole: every line is JSON, each record once.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from wonkalytics.interaction import Record
from wonkalytics.ops import Insert
from wonkalytics.sinks.jsonl import JsonLinesSink


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted under the test's directory."""
    reason = None
    if os.geteuid() != 0:
        reason = "mounting a tmpfs needs root"
    elif shutil.which("mount") is None:
        reason = "no mount command"
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if reason is None:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                              capture_output=True, text=True)
        reason = None if done.returncode == 0 else f"mount -t tmpfs failed: {done.stderr.strip()}"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI runs as root and must run this test)")
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        # lazily: a descriptor a failing run left open must not keep the mount alive
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _batch(tag: str, count: int) -> list[Insert]:
    return [Insert(built=Record("event", f"{tag}-{i}", {"event_id": f"{tag}-{i}", "pad": "x" * 1500}))
            for i in range(count)]


def _fill(directory: Path, leave: int) -> Path:
    """Fill the file system but ``leave`` bytes (give or take a page)."""
    filler = directory / "filler"
    free = shutil.disk_usage(directory).free
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def test_a_batch_on_a_full_disk_is_appended_whole_or_not_at_all(tiny_disk: Path) -> None:
    sink = JsonLinesSink(tiny_disk / "feed")
    assert sink.write(_batch("first", 2)) == []
    (path,) = (tiny_disk / "feed").glob("*.jsonl")
    before = path.read_bytes()
    filler = _fill(tiny_disk, leave=8192)
    second = _batch("second", 12)  # ~18 KB: the write gets part of the way, then ENOSPC
    with pytest.raises(OSError) as raised:
        sink.write(second)
    assert raised.value.errno == errno.ENOSPC
    assert path.read_bytes() == before  # the part that reached the disk was cut back off
    filler.unlink()
    assert sink.write(second) == []  # the lane's retry: the same batch again
    sink.close(1)
    lines = path.read_text().splitlines()
    ids = [json.loads(line)["event_id"] for line in lines]  # every line is whole JSON
    assert ids == [f"first-{i}" for i in range(2)] + [f"second-{i}" for i in range(12)]
