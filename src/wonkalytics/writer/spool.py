"""Rows on disk: append-only JSON-lines segments that the writer drains and then deletes.

Used three ways: ``durability="disk"`` (every row is fsynced here before the call returns), overflow
(the in-memory queue is full), and shutdown (rows still queued when the exit wait ran out). A segment
is named ``<pid>-<time_ns>.jsonl``: a segment left by a process that is no longer alive is replayed
by the next writer that starts (inserts are idempotent by ``event_id``, so a replay never duplicates).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

__all__ = ["Spool", "decode_row", "encode_row"]

_SUFFIX = ".jsonl"
_LOADED_AT = time.time()  # files with our pid written before this are a previous incarnation's


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One row as one JSON line (datetimes as ISO strings; the table fit turns them back)."""
    return json.dumps(row, ensure_ascii=False, default=_default, separators=(",", ":")).encode() + b"\n"


def decode_row(line: bytes) -> dict[str, Any]:
    """The row of one spooled line."""
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError("spooled line is not a JSON object")
    return row


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _older_than_this_process(path: Path) -> bool:
    try:
        return path.stat().st_mtime < _LOADED_AT
    except OSError:
        return False


class Spool:
    """Segments of spooled rows under one directory (created on first use)."""

    def __init__(self, directory: Path, *, fsync: bool) -> None:
        self.directory = directory
        self.fsync = fsync
        self._lock = threading.Lock()
        self._active: IO[bytes] | None = None
        self._active_path: Path | None = None
        self._active_rows = 0
        self._closed: list[tuple[Path, int]] = []  # this process's sealed segments, oldest first

    def append(self, line: bytes) -> None:
        """Append one encoded row; with ``fsync`` it is on disk when this returns."""
        with self._lock:
            if self._active is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._active_path = self.directory / f"{os.getpid()}-{time.time_ns()}{_SUFFIX}"
                self._active = open(self._active_path, "ab")  # noqa: SIM115 - kept open across appends
                self._active_rows = 0
            self._active.write(line)
            self._active.flush()
            if self.fsync:
                os.fsync(self._active.fileno())
            self._active_rows += 1

    def pending(self) -> bool:
        """True when this process has spooled rows not yet taken by the writer."""
        with self._lock:
            return bool(self._closed) or self._active_rows > 0

    def take(self) -> tuple[Path, int] | None:
        """Seal and hand out the oldest segment of this process, with the number of rows it holds."""
        with self._lock:
            if not self._closed and self._active is not None and self._active_rows:
                self._seal_locked()
            return self._closed.pop(0) if self._closed else None

    def give_back(self, segment: tuple[Path, int]) -> None:
        """Return a segment the writer could not finish; it is taken again first."""
        with self._lock:
            self._closed.insert(0, segment)

    def _seal_locked(self) -> None:
        assert self._active is not None and self._active_path is not None
        self._active.close()
        self._closed.append((self._active_path, self._active_rows))
        self._active, self._active_path, self._active_rows = None, None, 0

    def adopt_orphans(self) -> int:
        """Queue segments left by processes that are gone (a crash or a kill); returns their rows.

        A segment named with our own pid, written before this process started, is a previous
        incarnation's: in a container the restarted app often gets the same pid (1) as the one that
        crashed. Segments of other recorders of this process are left to them.
        """
        if not self.directory.is_dir():
            return 0
        adopted = 0
        mine = os.getpid()
        with self._lock:
            known = {path for path, _ in self._closed} | {self._active_path}
        for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
            pid_text = path.name.split("-", 1)[0]
            if not pid_text.isdigit() or path in known:
                continue
            pid = int(pid_text)
            if pid == mine and not _older_than_this_process(path):
                continue
            if pid != mine and _pid_alive(pid):
                continue
            claimed = path.with_name(f"{mine}-{time.time_ns()}-adopted{_SUFFIX}")
            try:
                path.rename(claimed)  # atomic: two starting processes cannot both adopt it
            except OSError:
                continue
            rows = sum(1 for _ in self.read(claimed))
            with self._lock:
                self._closed.append((claimed, rows))
            adopted += rows
        return adopted

    @staticmethod
    def read(path: Path) -> Iterator[bytes]:
        """The lines of a sealed segment (a torn last line from a crash is skipped)."""
        with open(path, "rb") as handle:
            for line in handle:
                if line.endswith(b"\n") and line.strip():
                    yield line

    @staticmethod
    def remove(path: Path) -> None:
        """Delete a segment whose rows are all in the database."""
        path.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the active segment file (its rows stay on disk for the next start)."""
        with self._lock:
            if self._active is not None:
                self._seal_locked()

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's open file and segments (the parent drains them)."""
        self._lock = threading.Lock()
        self._active, self._active_path, self._active_rows = None, None, 0
        self._closed = []
