"""Helpers for the spool tests that need root: pid namespaces (``unshare``) and tiny or read-only mounts.

Without root (or ``unshare``/``mount``) the tests skip with the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.conftest import IN_CI

PYTHON = sys.executable


def need_root(*tools: str) -> None:
    """Skip (fail under CI=true) unless we are root and ``tools`` are installed."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    reason = None
    if os.geteuid() != 0:
        reason = "needs root (pid namespaces, mounts)"
    elif missing:
        reason = f"needs {', '.join(missing)}"
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true and this test cannot run: {reason}")
        pytest.skip(reason)


def in_pid_namespace(script: str, *args: str) -> subprocess.Popen[str]:
    """Start ``python -c script args`` as pid 1 of a new pid namespace (as a container's app is)."""
    need_root("unshare")
    return subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", PYTHON, "-c", script, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@contextmanager
def tmpfs(where: Path, size: str = "64k") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (unmounted afterwards, whatever happens)."""
    need_root("mount", "umount")
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount_read_only(where: Path) -> None:
    """Make the tmpfs at ``where`` read-only (root ignores mode bits, so only a read-only mount refuses it)."""
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
