"""Ops on disk: append-only JSON-lines segments under ``spool_dir/<sink>/`` that a lane drains and deletes.

Used three ways: ``durability="disk"`` (every op is fsynced here before the call returns), overflow (the
lane's queue is full: from then on ops queue behind on disk, in order, until the spool is drained) and
exit (ops still queued when the exit wait ran out). Ops a sink refused for good go to
``rejected-<owner>.jsonl`` beside them, with the reason; ``wonkalytics spool replay`` retries both kinds.

Ownership (the model is written out in ``docs/spool.md``): a segment is named
``seg-<time_ns>-<owner>.jsonl`` where ``<owner>`` is host, boot and pid plus a random per-process nonce,
so two containers that are each pid 1 never share a name. The name is only for people and for order;
what makes a segment *owned* is an exclusive ``flock`` its process holds on it from creation (the file
is created under a hidden name, locked, then renamed into place) until the segment is drained and
deleted, or the process ends. A lane adopts only segments it can lock without waiting, and checks after
locking that the name still points at the locked file; so a live process's segment is never taken,
whatever its pid, and a dead one's is taken by exactly one process. Segments keep their name when
adopted, so sorting by the time stamp in the name gives the order of submission across restarts.

Files are created owner-only (0600) in owner-only directories (0700): they hold prompts and answers.
The line format is :mod:`wonkalytics.ops` (versioned); release 0.1 kept bare rows directly in
``spool_dir``, and the table lane adopts those too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from wonkalytics.destinations import Destination, key_of, write_description
from wonkalytics.internal_errors import log_limited

__all__ = ["REJECTED_PREFIX", "Spool", "ensure_private_dir", "is_segment", "lock_segment", "open_private",
           "owner_id", "segment_order"]

_SUFFIX = ".jsonl"
REJECTED_PREFIX = "rejected-"
_PREFIX = "seg-"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:8]
    except OSError:
        return "noboot"


_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"
_owner: str | None = None


def owner_id() -> str:
    """This process's identity in file names: host, boot, pid and a nonce (new in a forked child)."""
    global _owner
    if _owner is None or f".{os.getpid()}." not in _owner:
        _owner = f"{_HOST}.{_boot_id()}.{os.getpid()}.{secrets.token_hex(4)}"
    return _owner


def is_segment(path: Path) -> bool:
    """True for spool segments (this release's ``seg-*`` and the older ``<pid>-<time>`` names)."""
    name = path.name
    if name.startswith(REJECTED_PREFIX) or not name.endswith(_SUFFIX):
        return False
    return name.startswith(_PREFIX) or name.split("-", 1)[0].isdigit()


def segment_order(path: Path) -> tuple[int, str]:
    """Sort key: the time stamp in the name (the second ``-`` field in both naming schemes), then the name."""
    parts = path.name.split("-")
    stamp = parts[1].removesuffix(_SUFFIX) if len(parts) > 1 else ""
    return (int(stamp) if stamp.isdigit() else 0, path.name)


def lock_segment(path: Path) -> int | None:
    """Lock ``path`` exclusively without waiting; the open fd (keep it to keep the lock), or None when
    another process owns it or it is gone (renamed or deleted between listing and locking)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise OSError("replaced while locking")
    except OSError:
        os.close(fd)
        return None
    return fd


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


def _tag(key: str | None) -> str:
    return "" if key is None else f"@{key}"


def _create_locked(directory: Path, stamp: int, key: str | None) -> tuple[Path, int]:
    """A new segment, locked before it is visible under a segment name (no one can adopt it first)."""
    ensure_private_dir(directory)
    name = f"{_PREFIX}{stamp}-{owner_id()}{_tag(key)}{_SUFFIX}"
    hidden = directory / f".{name}.new"
    fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(hidden, directory / name)
    except OSError:
        os.close(fd)
        hidden.unlink(missing_ok=True)
        raise
    return directory / name, fd


class Spool:
    """Segments of spooled ops under one directory (created on first use), for one destination.

    With a ``destination`` (the table sink's table and database) every file name carries ``@<key>``
    and ``destination-<key>.json`` describes it: the spool adopts only its own destination's files
    (and the key-less ones of older releases); another destination's stay on disk for it.
    """

    def __init__(self, directory: Path, *, fsync: bool, destination: Destination | None = None) -> None:
        self.directory = directory
        self.fsync = fsync
        self.destination = destination
        self.key = None if destination is None else destination.key
        self._described = False
        self._elsewhere: dict[Path, tuple[int, int, int]] = {}  # other destinations' files: (size, mtime, ops)
        self._lock = threading.Lock()
        self._active: int | None = None  # the active segment's fd (also the one holding its lock)
        self._active_path: Path | None = None
        self._active_rows = 0
        self._closed: list[tuple[Path, int]] = []  # this process's sealed segments, oldest first
        self._progress: dict[Path, int] = {}  # lines of a segment already written, when it was given back
        self._taken: dict[Path, int] = {}  # handed out and not yet removed or given back: lines not written
        self._locks: dict[Path, int] = {}  # the flock fd of every segment this spool owns

    def append(self, line: bytes) -> None:
        """Append one encoded op; with ``fsync`` it is on disk when this returns."""
        self.append_many((line,))

    def append_many(self, lines: Iterable[bytes]) -> int:
        """Append encoded ops in order (one fsync for all); returns how many.

        All or nothing: on a short or failed write (a full or read-only disk) the segment is cut back
        to what it held and the OSError is raised, so no torn line is ever followed by another op.
        """
        data = b"".join(lines)
        count = data.count(b"\n")
        with self._lock:
            if self._active is None:
                self._describe()
                path, fd = _create_locked(self.directory, time.time_ns(), self.key)
                self._locks[path] = fd
                self._active_path, self._active, self._active_rows = path, fd, 0
            fd = self._active
            before = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, before)
                raise
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
            stamps = [segment_order(path)[0] for path, _ in self._closed]
            stamp = min(stamps) - 1 if stamps else time.time_ns()
            self._describe()
            path, fd = _create_locked(self.directory, stamp, self.key)
            try:
                view = memoryview(b"".join(lines))
                while view:
                    view = view[os.write(fd, view):]
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                path.unlink(missing_ok=True)  # all or nothing
                os.close(fd)
                raise
            self._locks[path] = fd
            self._closed.insert(0, (path, len(lines)))
        return len(lines)

    def _describe(self) -> None:
        """Write this destination's description beside its first file (what replay needs to reach it)."""
        if self.destination is not None and not self._described:
            ensure_private_dir(self.directory)
            write_description(self.directory, self.destination)
            self._described = True

    def mine(self, path: Path) -> bool:
        """True for files of this spool's destination, and for key-less files (older releases: adopted
        by whichever destination is configured, as before)."""
        key = key_of(path.name)
        return key is None or key == self.key

    def elsewhere(self) -> int:
        """Ops on disk in this directory for *another* destination (an earlier configuration's table or
        database): they wait for it (``wonkalytics spool replay``). Line counts are cached per file."""
        if not self.directory.is_dir():
            return 0
        total = 0
        seen: dict[Path, tuple[int, int, int]] = {}
        for path in self.directory.glob(f"*{_SUFFIX}"):
            if self.mine(path):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            cached = self._elsewhere.get(path)
            if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
                seen[path] = cached
            else:
                try:
                    seen[path] = (stat.st_size, stat.st_mtime_ns, sum(1 for _ in self.read(path)))
                except OSError:
                    continue
            total += seen[path][2]
        self._elsewhere = seen
        return total

    def pending(self) -> int:
        """Ops this process holds on disk and has not written yet (sealed, active, and the segment a
        lane is writing right now: during an outage that one holds the backlog)."""
        with self._lock:
            return (sum(count - self._progress.get(path, 0) for path, count in self._closed) + self._active_rows
                    + sum(self._taken.values()))

    def take(self) -> tuple[Path, int, int] | None:
        """Seal and hand out the oldest segment: (path, lines, lines already written)."""
        with self._lock:
            if not self._closed and self._active is not None and self._active_rows:
                self._seal_locked()
            if not self._closed:
                return None
            path, count = self._closed.pop(0)
            done = self._progress.pop(path, 0)
            self._taken[path] = count - done
            return path, count, done

    def give_back(self, path: Path, count: int, done: int) -> None:
        """Return a segment the lane could not finish (``done`` lines of it are written); taken again first."""
        with self._lock:
            self._taken.pop(path, None)
            self._closed.insert(0, (path, count))
            self._progress[path] = done

    def _seal_locked(self) -> None:
        assert self._active is not None and self._active_path is not None
        self._closed.append((self._active_path, self._active_rows))
        self._active, self._active_path, self._active_rows = None, None, 0

    def adopt_orphans(self, legacy: Path | None = None) -> int:
        """Queue segments no live process owns (left by a crash, a kill or an earlier lane); returns their ops.

        Ownership is the segment's ``flock``, not a pid: in containers every app is pid 1, and a
        restarted app often gets the pid of the one that crashed. ``legacy`` is a directory of
        release-0.1 segments (bare rows) to adopt as well.
        """
        adopted = 0
        with self._lock:
            known = set(self._locks)
        candidates: list[Path] = []
        foreign: list[Path] = []
        for directory in (self.directory, legacy):
            if directory is not None and directory.is_dir():
                candidates.extend(p for p in directory.glob(f"*{_SUFFIX}") if is_segment(p))
        found: list[tuple[Path, int, int]] = []
        for path in candidates:
            if path in known:
                continue
            if not self.mine(path):
                foreign.append(path)  # another destination's: it stays on disk for that one
                continue
            fd = lock_segment(path)
            if fd is None:
                continue  # a live process's (or another lane's of this one)
            try:
                rows = sum(1 for _ in self.read(path))
            except OSError:
                os.close(fd)
                continue
            found.append((path, rows, fd))
        with self._lock:
            for path, rows, fd in found:
                self._locks[path] = fd
                self._closed.append((path, rows))
                adopted += rows
            self._closed.sort(key=lambda item: segment_order(item[0]))
        if foreign:
            log_limited(
                f"other-destinations-{self.directory}", logging.WARNING,
                "wonkalytics: %d spool segments in %s belong to another destination (an earlier configuration's "
                "table or database) and are not written here; `wonkalytics spool status` says where they "
                "belong, `wonkalytics spool replay` writes them there", len(foreign), self.directory,
            )
        return adopted

    @staticmethod
    def read(path: Path) -> Iterator[bytes]:
        """The lines of a sealed segment (a torn last line from a crash is skipped)."""
        with open(path, "rb") as handle:
            for line in handle:
                if line.endswith(b"\n") and line.strip():
                    yield line

    def remove(self, path: Path) -> None:
        """Delete a segment whose ops are all written (then let go of its lock)."""
        path.unlink(missing_ok=True)
        with self._lock:
            self._taken.pop(path, None)
            fd = self._locks.pop(path, None)
        if fd is not None:
            os.close(fd)

    def reject(self, op_line: bytes, error: str) -> Path:
        """Keep one op the sink will never take, with why, in this process's rejected-ops file."""
        ensure_private_dir(self.directory)
        path = self.directory / f"{REJECTED_PREFIX}{owner_id()}{_tag(self.key)}{_SUFFIX}"
        self._describe()
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
        """Close the active segment file (its ops stay on disk, still owned by this process)."""
        with self._lock:
            if self._active is not None:
                self._seal_locked()

    def release(self) -> None:
        """Let go of this spool's segments (their locks): the next lane to start, of this process or
        another, adopts them."""
        with self._lock:
            if self._active is not None:
                self._seal_locked()
            fds = list(self._locks.values())
            self._closed, self._progress, self._taken, self._locks = [], {}, {}, {}
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's open file and segments (the parent drains them).

        The child's copies of the lock fds are closed: the locks stay with the parent's, and when the
        parent dies its segments become adoptable even while the child lives on.
        """
        self._lock = threading.Lock()
        for fd in self._locks.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._active, self._active_path, self._active_rows = None, None, 0
        self._closed, self._progress, self._taken, self._locks = [], {}, {}, {}
