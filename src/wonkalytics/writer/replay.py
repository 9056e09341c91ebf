"""What is on disk, and writing it now: ``wonkalytics spool status`` and ``wonkalytics spool replay``.

Per sink directory (``spool_dir/<sink>/``): *pending* ops are segments waiting to be written (by
their own process while it runs, else by the next one to start), *rejected* ops are the ones a sink
refused with the reason (a missing table or column, a value it cannot hold). ``replay`` writes the
segments no live process owns (it must be able to ``flock`` them) and every rejected op.

Exclusive and resumable: a replay holds ``<sink>/.replay.lock`` (flock) for the whole sink, so two
replays run one after the other and the second finds nothing left to write. Each file is first renamed
to ``<name>.replaying-<owner>`` (no lane looks at that name) and, after every batch the sink took, that
work file is atomically replaced by what is still to do: the refused ops with their new reason, then the
untried ones. An interrupted replay (Ctrl-C, a kill) therefore never writes a batch twice except the one
in flight when it was killed, never keeps an op in two files, and the next ``status`` or ``replay``
(under the lock, so no replay is running) renames the stranded work file back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wonkalytics.destinations import Destination, key_of, read_destinations
from wonkalytics.ops import Builder, Op, decode_op, encode_op
from wonkalytics.sinks.base import Sink
from wonkalytics.writer.spool import (
    REJECTED_PREFIX,
    ensure_private_dir,
    is_segment,
    lock_segment,
    open_private,
    owner_id,
    segment_order,
)

__all__ = ["DestinationBacklog", "ReplayResult", "SinkFor", "SpoolStatus", "replay", "replay_lock", "spool_status"]

SinkFor = Callable[[str, Destination], Sink]
"""The sink that writes to another destination of sink ``name`` (raises ``LookupError`` when it cannot)."""

_BATCH = 200
_WORK = ".replaying-"


@dataclass(frozen=True)
class DestinationBacklog:
    """The part of a sink's backlog that belongs to one destination (``key`` None: files of older
    releases, which carry no destination and go to the configured one)."""

    key: str | None
    destination: str | None
    """Where the ops belong, for people (no password); None when not described."""
    pending: int
    live: int
    rejected: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"key": self.key, "destination": self.destination, "pending": self.pending, "live": self.live,
                "rejected": self.rejected}


@dataclass(frozen=True)
class SpoolStatus:
    """One sink's backlog on disk."""

    sink: str
    directory: Path
    pending: int
    """Ops in segments (``live`` of them belong to processes still running and draining them)."""
    live: int
    rejected: int
    destinations: tuple[DestinationBacklog, ...] = ()
    """The same counts per destination the ops were submitted for."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"sink": self.sink, "directory": str(self.directory), "pending": self.pending, "live": self.live,
                "rejected": self.rejected, "destinations": [d.to_dict() for d in self.destinations]}


@dataclass(frozen=True)
class ReplayResult:
    """What ``replay`` did for one sink."""

    sink: str
    written: int
    still_rejected: int
    left: int
    """Ops not tried because the sink was down (they stay on disk)."""
    error: str | None = None
    destination: str | None = None
    """Where these ops went (another destination than the configured one), for people."""


def _lines(path: Path) -> list[bytes]:
    with open(path, "rb") as handle:
        return [line for line in handle if line.endswith(b"\n") and line.strip()]


def _sink_dirs(spool_dir: Path) -> list[Path]:
    if not spool_dir.is_dir():
        return []
    return sorted(p for p in spool_dir.iterdir() if p.is_dir())


@contextlib.contextmanager
def replay_lock(directory: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold the sink directory's replay lock; yields False (without waiting) when ``wait`` is off and
    another replay holds it."""
    ensure_private_dir(directory)
    fd = os.open(directory / ".replay.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _recover(directory: Path) -> None:
    """Rename the work files of an interrupted replay back (call with the replay lock held)."""
    for work in sorted(directory.glob(f"*{_WORK}*")):
        if work.name.endswith(".tmp"):
            work.unlink(missing_ok=True)  # a progress step that never got renamed into place
            continue
        original = work.with_name(work.name.split(_WORK, 1)[0])
        raw = all(not _is_entry(line) for line in _lines(work))
        if raw and is_segment(original) and not original.exists():
            target = original
        else:
            target = directory / f"{REJECTED_PREFIX}recovered-{time.time_ns()}-{owner_id()}{_tag(original)}.jsonl"
        os.rename(work, target)


def _tag(original: Path) -> str:
    """The ``@<key>`` of a file's destination, for the files made from it (ops keep their destination)."""
    key = key_of(original.name)
    return "" if key is None else f"@{key}"


def _is_entry(line: bytes) -> bool:
    """A rejected-ops entry (``{"error": ..., "op": {...}}``) rather than a bare op line."""
    try:
        return isinstance(json.loads(line).get("op"), dict)
    except (ValueError, AttributeError):
        return False


def _owned_elsewhere(path: Path) -> bool:
    fd = lock_segment(path)
    if fd is None:
        return path.exists()
    os.close(fd)
    return False


def spool_status(spool_dir: Path) -> list[SpoolStatus]:
    """The backlog of every sink directory under ``spool_dir`` (release-0.1 segments count as the table's).

    Work files an interrupted replay left are renamed back first (unless a replay is running now).
    """
    result = []
    legacy = [p for p in spool_dir.glob("*.jsonl") if is_segment(p)] if spool_dir.is_dir() else []
    dirs = _sink_dirs(spool_dir)
    names = {d.name for d in dirs}
    if legacy and "table" not in names:
        dirs.append(spool_dir / "table")
    for directory in dirs:
        if directory.is_dir():
            with replay_lock(directory, wait=False) as free:
                if free:
                    _recover(directory)
        counts: dict[str | None, list[int]] = {}  # destination key -> [pending, live, rejected]
        segments = [p for p in directory.glob("*.jsonl") if is_segment(p)] if directory.is_dir() else []
        if directory.name == "table":
            segments += legacy
        for path in segments:
            count = len(_lines(path))
            entry = counts.setdefault(key_of(path.name), [0, 0, 0])
            entry[0] += count
            if _owned_elsewhere(path):
                entry[1] += count
        if directory.is_dir():
            for path in [*directory.glob(f"{REJECTED_PREFIX}*.jsonl"), *directory.glob(f"*{_WORK}*")]:
                if path.name.endswith(".tmp"):
                    continue
                counts.setdefault(key_of(path.name), [0, 0, 0])[2] += len(_lines(path))
        described = read_destinations(directory)
        backlog = tuple(
            DestinationBacklog(key, described[key].describe() if key in described else None, *numbers)
            for key, numbers in sorted(counts.items(), key=lambda item: item[0] or ""))
        result.append(SpoolStatus(directory.name, directory, sum(b.pending for b in backlog),
                                  sum(b.live for b in backlog), sum(b.rejected for b in backlog), backlog))
    return result


def _write(sink: Sink, ops: Sequence[Op], build: Builder) -> tuple[list[tuple[Op, str]], BaseException | None]:
    """Write ``ops``: returns the refused ones with why, and the error that stopped it (sink down)."""
    try:
        return [(r.op, f"{type(r.error).__name__}: {r.error}") for r in sink.write(list(ops))], None
    except Exception as exc:
        if sink.is_transient(exc):
            return [], exc
    refused: list[tuple[Op, str]] = []
    for op in ops:  # one of them is refused for good: find which
        try:
            refused.extend((r.op, f"{type(r.error).__name__}: {r.error}") for r in sink.write([op]))
        except Exception as exc:
            if sink.is_transient(exc):
                return refused, exc
            refused.append((op, f"{type(exc).__name__}: {exc}"))
    return refused, None


def replay(
    spool_dir: Path, sinks: Mapping[str, Sink], build: Builder, *, on_progress: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None, current: Mapping[str, str | None] | None = None,
    sink_for: SinkFor | None = None,
) -> list[ReplayResult]:
    """Write now the spooled ops no live process owns and every rejected op, for each configured sink.

    Each op goes to the destination it was submitted for: files of the sink's ``current`` destination
    key (and key-less files of older releases) to ``sinks[name]``, files of another destination to
    ``sink_for(name, destination)`` (one result each; without ``sink_for``, or when it raises
    ``LookupError``, they stay on disk and the result says why). ``stop`` is asked between batches
    (the CLI's Ctrl-C): when it says True the replay ends cleanly, what is left stays on disk.
    """
    results = []
    for name, sink in sinks.items():
        directory = spool_dir / name
        with replay_lock(directory):
            _recover(directory)
            candidates = [p for p in directory.glob("*.jsonl") if is_segment(p)]
            if name == "table" and spool_dir.is_dir():
                candidates += [p for p in spool_dir.glob("*.jsonl") if is_segment(p)]  # release 0.1's bare rows
            files = sorted(candidates, key=segment_order) + sorted(directory.glob(f"{REJECTED_PREFIX}*.jsonl"))
            now = (current or {}).get(name)
            groups: dict[str | None, list[Path]] = {None: []}  # the configured destination: always reported
            for path in files:
                key = key_of(path.name)
                groups.setdefault(None if key == now else key, []).append(path)
            described = read_destinations(directory)
            for key, paths in groups.items():
                if key is None:
                    results.append(_replay_sink(directory, name, sink, paths, build, on_progress, stop))
                    continue
                destination = described.get(key)
                try:
                    if destination is None:
                        raise LookupError(f"no description of destination {key} (destination-{key}.json)")
                    if sink_for is None:
                        raise LookupError(f"not the configured destination: {destination.describe()}")
                    other = sink_for(name, destination)
                except LookupError as exc:
                    waiting = sum(len(_lines(p)) for p in paths if p.exists())
                    results.append(ReplayResult(name, 0, 0, waiting, str(exc), key if destination is None
                                                else destination.describe()))
                    continue
                outcome = _replay_sink(directory, name, other, paths, build, on_progress, stop)
                results.append(ReplayResult(name, outcome.written, outcome.still_rejected, outcome.left,
                                            outcome.error, destination.describe()))
                with contextlib.suppress(Exception):
                    other.close(1.0)
    return results


def _replay_sink(
    directory: Path, name: str, sink: Sink, files: list[Path], build: Builder,
    on_progress: Callable[[str], None] | None, stop: Callable[[], bool] | None,
) -> ReplayResult:
    written = still = left = 0
    error: str | None = None
    for path in files:
        work = directory / f"{path.name}{_WORK}{owner_id()}"
        fd = None if path.name.startswith(REJECTED_PREFIX) else lock_segment(path)
        if fd is None and not path.name.startswith(REJECTED_PREFIX):
            continue  # a live process owns it
        try:
            # Renamed away first: a running app appends its next rejections to its file anew, never to
            # the one being replayed; a lane starting now no longer sees the segment.
            os.rename(path, work)
        except OSError:
            continue
        finally:
            if fd is not None:
                os.close(fd)  # the lock only had to last until the rename
        outcome = _replay_file(sink, work, path, build, directory=directory, stop=stop)
        written += outcome.written
        still += outcome.still_rejected
        left += outcome.left
        if on_progress is not None:
            on_progress(f"{name}: {path.name}: {outcome.written} written, {outcome.still_rejected} refused")
        if outcome.error is not None:
            error = outcome.error
            break
    return ReplayResult(name, written, still, left, error)


def _replay_file(
    sink: Sink, work: Path, original: Path, build: Builder, *, directory: Path, stop: Callable[[], bool] | None,
) -> ReplayResult:
    entries: list[tuple[bytes, Op | None]] = []
    for line in _lines(work):
        try:
            op_line = json.dumps(json.loads(line)["op"]).encode() if _is_entry(line) else line
            entries.append((line, decode_op(op_line)))
        except Exception:
            entries.append((line, None))  # unreadable: left exactly as it was
    kept = [line for line, op in entries if op is None]
    todo = [(line, op) for line, op in entries if op is not None]
    refused_lines: list[bytes] = []
    stopped: str | None = None
    written = position = 0
    while position < len(todo):
        if stop is not None and stop():
            stopped = "interrupted"
            break
        batch = todo[position : position + _BATCH]
        refused, down = _write(sink, [op for _, op in batch], build)
        if down is not None:
            stopped = f"{type(down).__name__}: {down}"
            # Refusals found before the outage are kept with their reason; the rest is untried.
            refused_ids = {id(op) for op, _ in refused}
            refused_lines += [_rejected_line(op, why, build) for op, why in refused]
            todo = todo[:position] + [item for item in batch if id(item[1]) not in refused_ids] + todo[
                position + len(batch):]
            break
        refused_lines += [_rejected_line(op, why, build) for op, why in refused]
        written += len(batch) - len(refused)
        position += len(batch)
        _replace(work, kept + refused_lines + [line for line, _ in todo[position:]])  # the progress, atomically
    untried = [line for line, _ in todo[position:]]
    rest = kept + refused_lines + untried
    if not rest:
        work.unlink(missing_ok=True)
    else:
        _replace(work, rest)
        if not kept and not refused_lines and is_segment(original) and not original.exists():
            target = original  # only untried ops: pending again, in their place in the order
        else:
            target = directory / f"{REJECTED_PREFIX}{time.time_ns()}-{owner_id()}{_tag(original)}.jsonl"
        os.rename(work, target)
    return ReplayResult(sink.name, written, len(refused_lines), len(untried), stopped)


def _rejected_line(op: Op, why: str, build: Builder) -> bytes:
    entry = {"v": 1, "error": why, "op": json.loads(encode_op(op, build))}
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass") + b"\n"


def _replace(path: Path, lines: list[bytes]) -> None:
    """Atomically replace ``path`` by ``lines`` (owner-only)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    with open_private(temporary) as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
