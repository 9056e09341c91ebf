"""The JSON-lines sink: every record as one line of JSON, one file per UTC day and process.

For feeds that ingest files (Azure Event Hubs capture, Data Explorer / Fabric ingestion from blob
storage, ``jq``): a directory ``jsonl_dir`` holds ``wonkalytics-YYYY-MM-DD-<host>-<pid>.jsonl``
files. Each line is ``{"kind", "event_id", "row", "call"}`` (``call`` for LLM calls, see
:mod:`wonkalytics.record.structured`), then, for score / update_row_property, update lines
``{"kind": "update", "id", "key_field", "key", "field", "value", "at"}``.

Guarantees: a batch is appended whole or not at all -- written on an ``O_APPEND`` descriptor and
fsynced before the lane counts it written; when a write or the fsync fails part-way (a full or
failing disk), the file is truncated back to its size before the batch and the error goes to the lane,
which retries the batch whole (two records are never merged into one broken line); each process
writes only its own file, so many workers on one host never interleave; files are created 0600
(the directory 0700). A retried batch may repeat lines that reached the disk before a crash;
``event_id`` (or the update's ``id``) tells them apart.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wonkalytics.access import json_text
from wonkalytics.ops import Insert, Op
from wonkalytics.settings import Settings
from wonkalytics.sinks.base import Rejection

__all__ = ["JsonLinesSink", "from_settings"]

_SAFE_HOST = str.maketrans({c: "_" for c in "/\\:*?\"<>| "})


class JsonLinesSink:
    """Append records to ``directory/wonkalytics-<UTC day>-<host>-<pid>.jsonl`` (see the module doc)."""

    name = "jsonl"
    primary = False
    needs_call = True

    def __init__(self, directory: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self._clock = clock
        self._host = (socket.gethostname() or "host").translate(_SAFE_HOST)
        self._fd: int | None = None
        self._path: Path | None = None
        self._pid = os.getpid()

    def path_for(self, now: float) -> Path:
        """The file this process writes at epoch time ``now``."""
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        return self.directory / f"wonkalytics-{day}-{self._host}-{os.getpid()}.jsonl"

    def _open(self, path: Path) -> int:
        if self._fd is not None and self._path == path and self._pid == os.getpid():
            return self._fd
        self._drop()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        self._fd, self._path, self._pid = fd, path, os.getpid()
        return fd

    def write(self, ops: Sequence[Op]) -> list[Rejection]:
        """Append one line per op (inserts as records, updates as update lines), then fsync."""
        lines = [self._line(op) for op in ops]
        if not lines:
            return []
        data = b"".join(lines)
        fd = self._open(self.path_for(self._clock()))
        start = os.lseek(fd, 0, os.SEEK_END)  # only this process's lane writes this file
        try:
            view = memoryview(data)
            while view:  # O_APPEND keeps each write() at the end; a short write continues where it stopped
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            self._truncate(fd, start)
            raise
        return []

    def _truncate(self, fd: int, size: int) -> None:
        """Cut a batch that reached the disk in part back off, so the retry appends it whole."""
        try:
            os.ftruncate(fd, size)
        except OSError:  # cannot cut it: start the next batch on a fresh line rather than glue onto it
            with contextlib.suppress(OSError):
                os.write(fd, b"\n")
            self._drop()

    def _line(self, op: Op) -> bytes:
        if isinstance(op, Insert):
            return _dumps(op.record.to_json())
        return _dumps({
            "kind": "update", "id": op.id, "key_field": op.key_field, "key": op.key, "field": op.field,
            "value": op.value, "at": self._clock(),
        })

    def probe(self) -> bool:
        """True when the directory exists (or can be made) and this process may write there (``doctor``)."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.directory, os.W_OK | os.X_OK)

    def is_transient(self, exc: BaseException) -> bool:
        """A full or read-only disk may be fixed: every OS error is retried."""
        return isinstance(exc, OSError)

    def close(self, timeout: float) -> None:
        """Close this process's file."""
        self._drop()

    def after_fork(self) -> None:
        """The child writes a file of its own (its pid is in the name); the parent's descriptor is left alone."""
        self._fd, self._path = None, None

    def _drop(self) -> None:
        fd, self._fd, self._path = self._fd, None, None
        if fd is not None and self._pid == os.getpid():
            os.close(fd)


def _dumps(data: dict[str, Any]) -> bytes:
    """One line of JSON; values JSON cannot hold (timestamps, odd objects) become text, never an error."""
    return json_text(data, compact=True).encode("utf-8", "surrogatepass") + b"\n"


def from_settings(settings: Settings, submit: Callable[[Op], None]) -> JsonLinesSink | None:
    """The sink for ``settings.jsonl_dir`` (``WONKALYTICS_JSONL_DIR``), or None when it is unset."""
    if settings.jsonl_dir is None:
        return None
    return JsonLinesSink(settings.jsonl_dir)
