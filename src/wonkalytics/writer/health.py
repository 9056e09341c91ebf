"""Counters of each writer lane, and the plain-data snapshot ``wonkalytics.health()`` returns.

>>> health = Health(enabled=True, sinks={"table": SinkHealth(name="table", written=3)})
>>> health["table"].written, health.ok
(3, True)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Counters", "Health", "SinkHealth"]


@dataclass(frozen=True)
class SinkHealth:
    """One sink's lane, as of the moment ``health()`` was called."""

    name: str
    queued: int = 0
    """Ops waiting (in memory and in this process's spool)."""
    written: int = 0
    """Ops the sink took (rows inserted, updates applied)."""
    retried: int = 0
    """Failed attempts that were retried."""
    spooled: int = 0
    """Ops put on disk (queue full, disk durability, exit)."""
    rejected: int = 0
    """Ops set aside in the rejected-ops file (``wonkalytics spool replay`` writes them after a fix)."""
    pending_updates: int = 0
    """Updates waiting for their row to appear (within ``update_grace``)."""
    spool_error: str | None = None
    """Why the spool cannot be written right now (a full or read-only disk): ops are kept in memory
    instead, without the disk durability guarantee. ``ok`` is False while it is set."""
    unspooled: int = 0
    """Ops that could not be put on disk and were kept in memory instead."""
    other_destinations: int = 0
    """Ops on disk in this sink's spool for another destination (the table or database of an earlier
    ``configure()``): they are kept for it, never written here; ``wonkalytics spool status`` says
    where they belong and ``wonkalytics spool replay`` writes them there."""
    last_error: str | None = None
    """The last failure, as text without secrets."""
    last_success_at: datetime | None = None
    """When the sink last took a batch (UTC)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the time as ISO 8601)."""
        data = asdict(self)
        data["last_success_at"] = self.last_success_at.isoformat() if self.last_success_at else None
        return data


@dataclass(frozen=True)
class Health:
    """Every lane's :class:`SinkHealth`, by sink name (``health()["table"]``)."""

    enabled: bool
    sinks: Mapping[str, SinkHealth] = field(default_factory=dict)

    def __getitem__(self, name: str) -> SinkHealth:
        return self.sinks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.sinks)

    @property
    def ok(self) -> bool:
        """True when no sink has ops set aside, a spool it cannot write, or is failing with ops waiting."""
        return all(s.rejected == 0 and s.spool_error is None and (s.last_error is None or s.queued == 0)
                   for s in self.sinks.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"enabled": self.enabled, "sinks": {n: s.to_dict() for n, s in self.sinks.items()}}


class Counters:
    """The mutable counters a lane updates (from its thread and the callers'); cheap to read."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.written = 0
        self.retried = 0
        self.spooled = 0
        self.rejected = 0
        self.last_error: str | None = None
        self.spool_error: str | None = None
        self.unspooled = 0
        self.last_success_at: datetime | None = None

    def success(self, count: int) -> None:
        """``count`` ops were taken by the sink."""
        with self.lock:
            self.written += count
            self.last_error = None
            self.last_success_at = datetime.now(UTC)

    def failure(self, error: str) -> None:
        """An attempt failed and will be retried."""
        with self.lock:
            self.retried += 1
            self.last_error = error

    def spool_failure(self, error: str) -> None:
        """An op could not be spooled (it was kept in memory)."""
        with self.lock:
            self.unspooled += 1
            self.spool_error = error

    def spool_ok(self) -> None:
        """The spool took an op again."""
        if self.spool_error is not None:
            with self.lock:
                self.spool_error = None

    def add(self, *, spooled: int = 0, rejected: int = 0) -> None:
        """Ops went to disk, or were set aside."""
        with self.lock:
            self.spooled += spooled
            self.rejected += rejected

    def snapshot(self, *, queued: int, pending_updates: int, other_destinations: int = 0) -> SinkHealth:
        """The counters as a :class:`SinkHealth`."""
        with self.lock:
            return SinkHealth(
                name=self.name, queued=queued, written=self.written, retried=self.retried,
                spooled=self.spooled, rejected=self.rejected, pending_updates=pending_updates,
                spool_error=self.spool_error, unspooled=self.unspooled, other_destinations=other_destinations,
                last_error=self.last_error, last_success_at=self.last_success_at,
            )
