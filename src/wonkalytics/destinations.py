"""Where a spooled op belongs: a table in a database, named by a short key that holds no secret.

Ops are spooled for the destination they were submitted for. After ``configure()`` to another table
or database, the old destination's ops stay on disk under its key until that destination takes them
(a process configured for it, or ``wonkalytics spool replay``); the new destination never gets them.

The key is a hash of the URL *without its password* (and without its query, which may carry one)
plus the table name, so it is the same whatever the password and says nothing about it. Beside the
spool files, ``destination-<key>.json`` describes the destination (dialect, host, port, database,
user, table, and whether the URL had a password) so ``spool status`` can say where ops belong and
``spool replay`` can reach it: the password is never written, replay takes it from a URL it is given
for the same host, port, database and user (see :func:`url_for`).

>>> d = table_destination(make_url("postgresql+psycopg://app:s3cret@db:5432/analytics"), "llm_calls")
>>> d.describe(), len(d.key), "s3cret" in json.dumps(d.to_json())
('postgresql+psycopg://app@db:5432/analytics table llm_calls', 12, False)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url  # noqa: F401 - the module doctest uses make_url

__all__ = ["Destination", "describe_file", "key_of", "read_destinations", "table_destination", "url_for",
           "write_description"]

_PREFIX = "destination-"
_SUFFIX = ".json"


@dataclass(frozen=True)
class Destination:
    """A table in a database, as it may be written to disk (no password)."""

    dialect: str
    """The SQLAlchemy driver name (``postgresql+psycopg``)."""
    host: str | None
    port: int | None
    database: str | None
    username: str | None
    table: str
    needs_password: bool = False
    """The configured URL had a password: replay must be given a URL with it."""

    @property
    def url(self) -> URL:
        """The URL without password or query."""
        return URL.create(self.dialect, username=self.username, host=self.host, port=self.port,
                          database=self.database)

    @property
    def key(self) -> str:
        """12 hex digits of SHA-256 over the password-free URL and the table."""
        text = f"{self.url.render_as_string(hide_password=True)}\0{self.table}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def describe(self) -> str:
        """For people: ``dialect://user@host:port/database table name`` (no password)."""
        return f"{self.url.render_as_string(hide_password=True)} table {self.table}"

    def matches(self, url: URL) -> bool:
        """True when ``url`` reaches the same server, database and user (its password may be used)."""
        other = table_destination(url, self.table)
        return (other.dialect, other.host, other.port, other.database, other.username) == (
            self.dialect, self.host, self.port, self.database, self.username)

    def to_json(self) -> dict[str, Any]:
        """The description file's content."""
        return {"v": 1, "key": self.key, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Destination:
        """Read back :meth:`to_json`."""
        return cls(dialect=str(data["dialect"]), host=data.get("host"), port=data.get("port"),
                   database=data.get("database"), username=data.get("username"), table=str(data["table"]),
                   needs_password=bool(data.get("needs_password")))


def table_destination(url: URL, table: str) -> Destination:
    """The destination of ``table`` at ``url``; a relative SQLite file is made absolute (it names the
    file of the process that wrote the op, whatever the working directory of the replay)."""
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:" and not database.startswith(
            "file:"):
        database = os.path.abspath(database)
    return Destination(dialect=url.drivername, host=url.host, port=url.port, database=database,
                       username=url.username, table=table, needs_password=bool(url.password))


def key_of(name: str) -> str | None:
    """The destination key in a spool file name (``…@<key>.jsonl``), or None (older releases' names)."""
    stem = name.split(".replaying-", 1)[0].removesuffix(".jsonl")
    if "@" not in stem:
        return None
    key = stem.rsplit("@", 1)[1]
    return key if len(key) == 12 and all(c in "0123456789abcdef" for c in key) else None


def describe_file(directory: Path, key: str) -> Path:
    """Where the description of destination ``key`` lives in a sink's spool directory."""
    return directory / f"{_PREFIX}{key}{_SUFFIX}"


def write_description(directory: Path, destination: Destination) -> None:
    """Write ``destination-<key>.json`` once (owner-only, atomically); the directory must exist."""
    path = describe_file(directory, destination.key)
    if path.exists():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(destination.to_json(), handle)
    os.replace(temporary, path)


def read_destinations(directory: Path) -> dict[str, Destination]:
    """Every destination described in a sink's spool directory, by key (unreadable files are skipped)."""
    found: dict[str, Destination] = {}
    for path in sorted(directory.glob(f"{_PREFIX}*{_SUFFIX}")) if directory.is_dir() else []:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            destination = Destination.from_json(json.loads(path.read_text()))
            found[destination.key] = destination
    return found


def url_for(destination: Destination, known: Iterable[URL]) -> URL:
    """The URL to replay ``destination``'s ops with.

    The first of ``known`` (the ``--database-url`` given, then the settings' URL) that reaches the same
    dialect, host, port, database and user is used whole (its password and query too). Otherwise the
    URL is rebuilt from the description without a password, which works where none is needed (SQLite,
    trust or peer authentication, ``~/.pgpass``); when the destination was configured with a password
    this raises ``LookupError`` saying which URL to pass.
    """
    for url in known:
        if destination.matches(url):
            return url
    if destination.needs_password:
        raise LookupError(
            f"the ops for {destination.describe()} need its password, which is never written to the spool: "
            f"pass --database-url with the password for {destination.url.render_as_string(hide_password=True)}")
    return destination.url
