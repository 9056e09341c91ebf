"""Ops on disk: append-only JSON-lines segments under ``spool_dir/<sink>/`` that a lane drains and deletes.

Used three ways: ``durability="disk"`` (every op is fsynced here before the call returns), overflow (the
lane's queue is full: from then on ops queue behind on disk, in order, until the spool is drained) and
exit (ops still queued when the exit wait ran out). A segment is named ``<pid>-<time_ns>.jsonl``; one
left by a process that is no longer alive is replayed by the next lane that starts (inserts are
idempotent by ``event_id``, updates set the same value again). Ops a sink refused for good go to
``rejected-<pid>.jsonl`` beside them, with the reason; ``wonkalytics spool replay`` retries both kinds.

Files are created owner-only (0600) in owner-only directories (0700): they hold prompts and answers.
The line format is :mod:`wonkalytics.ops` (versioned); release 0.1 kept bare rows directly in
``spool_dir``, and the table lane adopts those too.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["REJECTED_PREFIX", "Spool", "ensure_private_dir", "open_private", "segment_pid"]

_SUFFIX = ".jsonl"
REJECTED_PREFIX = "rejected-"
_LOADED_AT = time.time()  # files with our pid written before this are a previous incarnation's
# Segments a lane of this process left behind when it was shut down (configure() replaces the writer,
# shutdown() during an outage): the next lane of this process on that directory takes them over, so
# they are written by this process once the database is back, not only by the next one to start.
_released: set[Path] = set()
_released_lock = threading.Lock()


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` owner-only, and its parent (the spool root) too when we create it; tighten
    ``directory`` when it exists with wider rights. (``mkdir(parents=True)`` gives parents the umask's
    mode, so the spool root is created on its own.)"""
    for level in (directory.parent, directory):
        if level.is_dir():
            continue
        level.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            level.chmod(0o700)  # whatever the umask
    try:
        if directory.stat().st_mode & 0o077:
            directory.chmod(0o700)
    except OSError:
        pass  # not ours to change (a shared mount): the files inside are still 0600


def open_private(path: Path) -> IO[bytes]:
    """Open ``path`` for appending, created 0600 (never readable by other users, whatever the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab")


def segment_pid(path: Path) -> int | None:
    """The pid a segment is named after, or None for files that are not segments."""
    if path.name.startswith(REJECTED_PREFIX) or not path.name.endswith(_SUFFIX):
        return None
    text = path.name.split("-", 1)[0]
    return int(text) if text.isdigit() else None


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
    """Segments of spooled ops under one directory (created on first use)."""

    def __init__(self, directory: Path, *, fsync: bool) -> None:
        self.directory = directory
        self.fsync = fsync
        self._lock = threading.Lock()
        self._active: IO[bytes] | None = None
        self._active_path: Path | None = None
        self._active_rows = 0
        self._closed: list[tuple[Path, int]] = []  # this process's sealed segments, oldest first
        self._progress: dict[Path, int] = {}  # lines of a segment already written, when it was given back

    def append(self, line: bytes) -> None:
        """Append one encoded op; with ``fsync`` it is on disk when this returns."""
        self.append_many((line,))

    def append_many(self, lines: Iterable[bytes]) -> int:
        """Append encoded ops in order (one fsync for all); returns how many."""
        count = 0
        with self._lock:
            if self._active is None:
                ensure_private_dir(self.directory)
                self._active_path = self.directory / f"{os.getpid()}-{time.time_ns()}{_SUFFIX}"
                self._active = open_private(self._active_path)
                self._active_rows = 0
            for line in lines:
                self._active.write(line)
                count += 1
            self._active.flush()
            if self.fsync:
                os.fsync(self._active.fileno())
            self._active_rows += count
        return count

    def prepend(self, lines: list[bytes]) -> int:
        """Put ops on disk *before* every segment this spool holds (they are older: at exit, the ops
        still in memory were queued before the ones that had spilled); returns how many."""
        if not lines:
            return 0
        with self._lock:
            if self._active is not None:
                self._seal_locked()
            stamps = [int(part) for path, _ in self._closed
                      if (part := path.stem.split("-")[1] if "-" in path.stem else "").isdigit()]
            stamp = min(stamps) - 1 if stamps else time.time_ns()
            ensure_private_dir(self.directory)
            path = self.directory / f"{os.getpid()}-{stamp}{_SUFFIX}"
            with open_private(path) as handle:
                handle.writelines(lines)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            self._closed.insert(0, (path, len(lines)))
        return len(lines)

    def pending(self) -> int:
        """Ops this process has spooled and not yet handed out (sealed and active segments)."""
        with self._lock:
            return sum(count - self._progress.get(path, 0) for path, count in self._closed) + self._active_rows

    def take(self) -> tuple[Path, int, int] | None:
        """Seal and hand out the oldest segment: (path, lines, lines already written)."""
        with self._lock:
            if not self._closed and self._active is not None and self._active_rows:
                self._seal_locked()
            if not self._closed:
                return None
            path, count = self._closed.pop(0)
            return path, count, self._progress.pop(path, 0)

    def give_back(self, path: Path, count: int, done: int) -> None:
        """Return a segment the lane could not finish (``done`` lines of it are written); taken again first."""
        with self._lock:
            self._closed.insert(0, (path, count))
            self._progress[path] = done

    def _seal_locked(self) -> None:
        assert self._active is not None and self._active_path is not None
        self._active.close()
        self._closed.append((self._active_path, self._active_rows))
        self._active, self._active_path, self._active_rows = None, None, 0

    def adopt_orphans(self, legacy: Path | None = None) -> int:
        """Queue segments left by processes that are gone (a crash or a kill); returns their ops.

        A segment named with our own pid, written before this process started, is a previous
        incarnation's: in a container the restarted app often gets the same pid (1) as the one that
        crashed. Segments of other lanes of this process are left to them. ``legacy`` is a directory of
        release-0.1 segments (bare rows) to adopt as well.
        """
        adopted = 0
        mine = os.getpid()
        with self._lock:
            known = {path for path, _ in self._closed} | {self._active_path}
        candidates: list[Path] = []
        for directory in (self.directory, legacy):
            if directory is not None and directory.is_dir():
                candidates.extend(sorted(directory.glob(f"*{_SUFFIX}")))
        for path in candidates:
            pid = segment_pid(path)
            if pid is None or path in known:
                continue
            if pid == mine and not _older_than_this_process(path):
                with _released_lock:
                    if path not in _released:
                        continue  # another live lane's
                    _released.discard(path)
            if pid != mine and _pid_alive(pid):
                continue
            ensure_private_dir(self.directory)
            claimed = self.directory / f"{mine}-{time.time_ns()}-adopted{_SUFFIX}"
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
        """Delete a segment whose ops are all written."""
        path.unlink(missing_ok=True)

    def reject(self, op_line: bytes, error: str) -> Path:
        """Keep one op the sink will never take, with why, in this process's rejected-ops file."""
        ensure_private_dir(self.directory)
        path = self.directory / f"{REJECTED_PREFIX}{os.getpid()}{_SUFFIX}"
        try:
            op: Any = json.loads(op_line)
        except ValueError:
            op = op_line.decode("utf-8", "replace")
        entry = {"v": 1, "rejected_at": time.time(), "error": error, "op": op}
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        with self._lock, open_private(path) as handle:
            handle.write(line + b"\n")
        return path

    def close(self) -> None:
        """Close the active segment file (its ops stay on disk for the next start)."""
        with self._lock:
            if self._active is not None:
                self._seal_locked()

    def release(self) -> None:
        """Hand this spool's sealed segments to the next lane of this process on the same directory."""
        with self._lock:
            if self._active is not None:
                self._seal_locked()
            paths = [path for path, _ in self._closed]
            self._closed, self._progress = [], {}
        with _released_lock:
            _released.update(paths)

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's open file and segments (the parent drains them)."""
        self._lock = threading.Lock()
        self._active, self._active_path, self._active_rows = None, None, 0
        self._closed = []
        self._progress = {}
        _forget_released()


def _forget_released() -> None:
    """In a forked child: the parent's released segments are the parent's to write."""
    global _released_lock
    _released_lock = threading.Lock()  # the parent may have held it at fork time
    _released.clear()
