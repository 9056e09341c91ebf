"""What is on disk, and writing it now: ``wonkalytics spool status`` and ``wonkalytics spool replay``.

Per sink directory (``spool_dir/<sink>/``): *pending* ops are segments waiting to be written (by
their own process while it runs, else by the next one to start), *rejected* ops are the ones a sink
refused with the reason (a missing table or column, a value it cannot hold). ``replay`` writes the
segments of processes that are gone and every rejected op, synchronously; an op refused again stays
in its file with the new reason, so replaying twice never writes anything twice (inserts are
idempotent by ``event_id``) and never loses anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wonkalytics.ops import Builder, Op, decode_op, encode_op
from wonkalytics.sinks.base import Sink
from wonkalytics.writer.spool import REJECTED_PREFIX, _pid_alive, ensure_private_dir, open_private, segment_pid

__all__ = ["ReplayResult", "SpoolStatus", "replay", "spool_status"]

_BATCH = 200


@dataclass(frozen=True)
class SpoolStatus:
    """One sink's backlog on disk."""

    sink: str
    directory: Path
    pending: int
    """Ops in segments (``live`` of them belong to processes still running and draining them)."""
    live: int
    rejected: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"sink": self.sink, "directory": str(self.directory), "pending": self.pending, "live": self.live,
                "rejected": self.rejected}


@dataclass(frozen=True)
class ReplayResult:
    """What ``replay`` did for one sink."""

    sink: str
    written: int
    still_rejected: int
    left: int
    """Ops not tried because the sink was down (they stay on disk)."""
    error: str | None = None


def _lines(path: Path) -> list[bytes]:
    with open(path, "rb") as handle:
        return [line for line in handle if line.endswith(b"\n") and line.strip()]


def _sink_dirs(spool_dir: Path) -> list[Path]:
    if not spool_dir.is_dir():
        return []
    return sorted(p for p in spool_dir.iterdir() if p.is_dir())


def spool_status(spool_dir: Path) -> list[SpoolStatus]:
    """The backlog of every sink directory under ``spool_dir`` (release-0.1 segments count as the table's)."""
    result = []
    legacy = [p for p in spool_dir.glob("*.jsonl") if segment_pid(p) is not None] if spool_dir.is_dir() else []
    dirs = _sink_dirs(spool_dir)
    names = {d.name for d in dirs}
    if legacy and "table" not in names:
        dirs.append(spool_dir / "table")
    for directory in dirs:
        pending = live = rejected = 0
        segments = [p for p in directory.glob("*.jsonl") if segment_pid(p) is not None] if directory.is_dir() else []
        if directory.name == "table":
            segments += legacy
        for path in segments:
            count = len(_lines(path))
            pending += count
            pid = segment_pid(path)
            if pid is not None and pid != os.getpid() and _pid_alive(pid):
                live += count
        for path in directory.glob(f"{REJECTED_PREFIX}*.jsonl") if directory.is_dir() else []:
            rejected += len(_lines(path))
        result.append(SpoolStatus(directory.name, directory, pending, live, rejected))
    return result


def _write(sink: Sink, ops: Sequence[Op], build: Builder) -> tuple[list[tuple[Op, str]], BaseException | None]:
    """Write ``ops``: returns the refused ones with why, and the error that stopped it (sink down)."""
    try:
        return [(r.op, f"{type(r.error).__name__}: {r.error}") for r in sink.write(list(ops), build)], None
    except Exception as exc:
        if sink.is_transient(exc):
            return [], exc
    refused: list[tuple[Op, str]] = []
    for op in ops:  # one of them is refused for good: find which
        try:
            refused.extend((r.op, f"{type(r.error).__name__}: {r.error}") for r in sink.write([op], build))
        except Exception as exc:
            if sink.is_transient(exc):
                return refused, exc
            refused.append((op, f"{type(exc).__name__}: {exc}"))
    return refused, None


def replay(
    spool_dir: Path, sinks: Mapping[str, Sink], build: Builder, *, on_progress: Callable[[str], None] | None = None
) -> list[ReplayResult]:
    """Write now the spooled ops of gone processes and every rejected op, for each configured sink."""
    results = []
    for name, sink in sinks.items():
        directory = spool_dir / name
        files: list[tuple[Path, bool]] = []  # (path, is a rejected-ops file)
        candidates = list(directory.glob("*.jsonl")) if directory.is_dir() else []
        if name == "table" and spool_dir.is_dir():
            candidates += list(spool_dir.glob("*.jsonl"))  # release 0.1's bare rows
        for path in sorted(candidates):
            pid = segment_pid(path)
            if path.name.startswith(REJECTED_PREFIX):
                files.append((path, True))
            elif pid is not None and (pid == os.getpid() or not _pid_alive(pid)):
                files.append((path, False))
        written = still = left = 0
        error: str | None = None
        for path, rejected_file in files:
            outcome = _replay_file(sink, path, build, rejected_file=rejected_file, directory=directory)
            written += outcome.written
            still += outcome.still_rejected
            left += outcome.left
            if on_progress is not None:
                on_progress(f"{name}: {path.name}: {outcome.written} written, {outcome.still_rejected} refused")
            if outcome.error is not None:
                error = outcome.error
                break
        results.append(ReplayResult(name, written, still, left, error))
    return results


def _replay_file(sink: Sink, path: Path, build: Builder, *, rejected_file: bool, directory: Path) -> ReplayResult:
    if rejected_file:
        # Take the file away first: a running app appends its next rejections to a new file, never
        # to the one being replayed (its lines would be lost when this one is replaced).
        taken = path.with_name(f"{path.name}.replaying-{os.getpid()}")
        try:
            path.rename(taken)
        except OSError:
            return ReplayResult(sink.name, 0, 0, 0, None)
        path = taken
    lines = _lines(path)
    entries: list[tuple[bytes, Op | None]] = []
    for line in lines:
        try:
            op_line = json.dumps(json.loads(line)["op"]).encode() if rejected_file else line
            entries.append((line, decode_op(op_line)))
        except Exception:
            entries.append((line, None))  # unreadable: left exactly as it was
    ops = [op for _, op in entries if op is not None]
    refused: list[tuple[Op, str]] = []
    stopped: BaseException | None = None
    done = 0
    for start in range(0, len(ops), _BATCH):
        more, stopped = _write(sink, ops[start : start + _BATCH], build)
        refused.extend(more)
        if stopped is not None:
            break
        done = start + min(_BATCH, len(ops) - start)
    untried = {id(op) for op in ops[done:]} if stopped is not None else set()
    # What stays: unreadable lines and untried ops as they were; refused ops with the new reason.
    stay = [line for line, op in entries if op is None or id(op) in untried]
    again = [_rejected_line(op, why, build) for op, why in refused]
    if rejected_file:
        _append(directory / f"{REJECTED_PREFIX}{os.getpid()}.jsonl", stay + again, directory)
        path.unlink(missing_ok=True)
    else:
        _replace(path, stay)
        if again:
            _append(directory / f"{REJECTED_PREFIX}{os.getpid()}.jsonl", again, directory)
    return ReplayResult(
        sink.name, done - len(refused), len(refused), len(untried),
        None if stopped is None else f"{type(stopped).__name__}: {stopped}",
    )


def _rejected_line(op: Op, why: str, build: Builder) -> bytes:
    entry = {"v": 1, "error": why, "op": json.loads(encode_op(op, build))}
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass") + b"\n"


def _replace(path: Path, lines: list[bytes]) -> None:
    """Atomically replace ``path`` by ``lines`` (owner-only), or delete it when nothing stays."""
    if not lines:
        path.unlink(missing_ok=True)
        return
    temporary = path.with_name(path.name + ".tmp")
    with open_private(temporary) as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _append(path: Path, lines: list[bytes], directory: Path) -> None:
    if not lines:
        return
    ensure_private_dir(directory)
    with open_private(path) as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())
