"""Configuration: the only place the environment is read.

Every setting has a ``WONKALYTICS_`` environment variable and a ``configure()`` keyword of the same
name. The seed version's variables keep working: ``AZURE_TABLE_NAME`` when ``WONKALYTICS_TABLE`` is
unset, and ``AZURE_SQL_SERVER`` / ``AZURE_SQL_DB`` / ``AZURE_SQL_USER`` / ``AZURE_SQL_PASSWORD`` when
no database URL is given (an ``mssql+pyodbc`` URL with ODBC Driver 18 is built from them).

Example::

    settings = Settings(database_url="postgresql+psycopg://app@db/analytics", table="llm_calls")
    settings.url()  # -> sqlalchemy URL, password kept inside, hidden from repr()
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from wonkalytics.errors import ConfigurationError
from wonkalytics.internal_errors import follow_environment
from wonkalytics.store.clickhouse import check_clickhouse_url, is_clickhouse_url
from wonkalytics.store.engine import safe_url

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_TABLE",
    "MAX_NAME_LENGTH",
    "REDACTOR_NAMES",
    "Durability",
    "Settings",
    "check_database_url",
    "check_keywords",
    "check_redact",
    "foreign_environ",
    "load_settings",
    "strict_from_environment",
]

def foreign_environ() -> Mapping[str, str]:
    """The process environment, live, for the variables of other libraries we honour where they are used.

    OpenAI's ``AZURE_OPENAI_ENDPOINT`` / ``AZURE_OPENAI_API_KEY`` / ``OPENAI_ORG_ID`` (read when the seed's
    wrapper makes a client) and OpenTelemetry's ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
    (read when the OTel sink is made) are not settings: no ``WONKALYTICS_`` name, no ``configure()``
    keyword, read at that moment as before. They are read through here so the environment has one home.
    """
    return os.environ


_ON = frozenset({"1", "true", "yes", "on"})


def strict_from_environment() -> bool:
    """Whether ``WONKALYTICS_STRICT`` turns strict mode on (:mod:`wonkalytics.internal_errors`), read live.

    Not a ``Settings`` field: strict mode decides what happens when reading the settings fails.
    """
    value = os.environ.get("WONKALYTICS_STRICT", "")
    return value.strip().lower() in _ON


# The ground floor reads no environment: internal_errors is handed this reader. At import, because
# every `import wonkalytics` imports this module, and strict mode must hold before any call is made.
follow_environment(strict_from_environment)


REDACTOR_NAMES: tuple[str, ...] = ("email", "phone")
"""The built-in redactors a ``redact`` setting may name (``record.redact.BUILTIN_REDACTORS`` holds them)."""


def check_redact(value: Any) -> tuple[Callable[..., Any] | str, ...] | None:
    """Validate a ``redact`` setting; returns it as a tuple of callables and built-in names (or None).

    A string may name several built-ins, comma-separated (``"email,phone"``, as in the environment).

    >>> check_redact("email, phone")
    ('email', 'phone')
    >>> check_redact("emails")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: redact: unknown redactor 'emails' (did you mean 'email'?); ...
    """
    if value is None:
        return None
    if isinstance(value, str):
        items: list[Any] = [part.strip() for part in value.split(",") if part.strip()]
    elif callable(value):
        items = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(
            f"redact must be a callable row -> row, a built-in name ('email', 'phone') or a list of them; "
            f"got {type(value).__name__}"
        )
    for item in items:
        if callable(item):
            continue
        if not isinstance(item, str) or item not in REDACTOR_NAMES:
            close = difflib.get_close_matches(str(item), list(REDACTOR_NAMES), n=1) if isinstance(item, str) else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"redact: unknown redactor {item!r}{hint}; use a callable row -> row or the built-ins "
                + ", ".join(repr(name) for name in REDACTOR_NAMES)
            )
    return tuple(items) or None

DEFAULT_DATABASE_URL = "sqlite:///wonkalytics.db"
DEFAULT_TABLE = "wonkalytics_interactions"
Durability = Literal["memory", "disk"]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
MAX_NAME_LENGTH = 63
"""Longest table (and schema) name accepted: PostgreSQL cuts names at 63 bytes, silently, so a longer
name would create one table and then look for another; MySQL/MariaDB stop at 64, SQL Server at 128."""
# A team's column may be called `order`, `user name` or `Größe` (identifiers reaching SQL come from the
# reflected table, quoted by SQLAlchemy), but never contain what only an injection attempt would.
_BAD_COLUMN_CHARS = re.compile(r"[\x00-\x1f\x7f;'\"`\[\]\\]")


class Settings(BaseSettings):
    """Wonkalytics settings (environment prefix ``WONKALYTICS_``; see the README's reference)."""

    model_config = SettingsConfigDict(env_prefix="WONKALYTICS_", extra="ignore", populate_by_name=True)

    database_url: SecretStr | None = None
    """SQLAlchemy URL of the analytics database (default: SQLite file ``wonkalytics.db``)."""
    table: str = Field(
        DEFAULT_TABLE, validation_alias=AliasChoices("table", "WONKALYTICS_TABLE", "AZURE_TABLE_NAME")
    )
    """Name of the analytics table (``schema.table`` allowed)."""
    # NoDecode: the raw WONKALYTICS_COLUMN_MAP text reaches our validator, which names the variable
    # and the problem (pydantic-settings' own decoding reports only "SettingsError").
    column_map: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Our field name -> your column name, e.g. ``{"response": "answer_text"}``."""
    rollup_fields: Annotated[tuple[str, ...], NoDecode] = ()
    """App fields the rollups are also keyed by, e.g. ``WONKALYTICS_ROLLUP_FIELDS=language,level``."""
    durability: Durability = "memory"
    """``memory``: rows wait in a bounded queue; ``disk``: each row is fsynced to a spool first."""
    spool_dir: Path = Path("wonkalytics-spool")
    queue_size: int = Field(5_000, ge=1)
    """Ops held in memory per sink before the writer spills to the spool directory. An interaction with
    its texts weighs ~5.5 KB in memory (bench/outage_memory.py): 5,000 keep an outage under ~30 MB."""
    batch_size: int = Field(200, ge=1)
    flush_interval: float = Field(0.2, gt=0)
    """Seconds the writer waits to gather a batch."""
    exit_timeout: float = Field(5.0, ge=0)
    """Seconds the interpreter waits at exit for queued rows to reach the database."""
    create_table: bool = True
    """Create the default table on first write when it is missing."""

    # Updates (score / update_row_property).
    update_timeout: float = Field(10.0, ge=0)
    """Seconds ``score(..., wait=True)`` waits for its update's result before returning False."""
    update_grace: float = Field(900.0, ge=0)
    """Seconds a queued update that finds no row keeps being retried (the row may come from another
    worker process) before it is given up with a log line."""

    # Database timeouts: a database that stops answering must never hang the writer.
    connect_timeout: float = Field(10.0, gt=0)
    """Seconds to wait for a new database connection."""
    statement_timeout: float = Field(30.0, gt=0)
    """Seconds one statement (a batch insert) may take before it is abandoned and retried."""

    # Switches.
    enabled: bool = True
    """False: nothing is recorded and the SDK calls are exactly the caller's."""
    sample_rate: float = Field(1.0, ge=0, le=1)
    """Share of interactions recorded (events and updates always are)."""
    redact: Any = None
    """A callable ``row -> row``, or names of built-in redactors (``"email"``, ``"phone"``)."""

    # Other sinks.
    promptlayer_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("promptlayer_api_key", "PROMPTLAYER_API_KEY",
                                            "WONKALYTICS_PROMPTLAYER_API_KEY")
    )
    """PromptLayer key: when set, every interaction is also sent to PromptLayer."""
    promptlayer_base_url: str = "https://api.promptlayer.com"
    otel: bool = False
    """Emit an OpenTelemetry GenAI span (and metrics) per interaction through the app's providers."""
    clickhouse_url: SecretStr | None = None
    """ClickHouse URL of the ClickHouse sink (``clickhouse://user:password@host:9000/db``); off when unset."""
    read_url: SecretStr | None = None
    """URL the read side (``stats``, ``export``, ``dashboard``) reads instead of ``database_url``: a
    replica's SQL URL or a ClickHouse URL. The writer keeps ``database_url``."""
    jsonl_dir: Path | None = None
    """Directory of the JSON-lines sink (one file per UTC day and process); off when unset."""
    prices_file: Path | None = Field(None, validation_alias=AliasChoices("prices_file", "WONKALYTICS_PRICES"))
    """JSON file of model or deployment -> US dollars per million tokens, overriding the listed prices."""

    # The seed's Azure SQL variables (read only when no URL is given).
    azure_sql_server: str | None = Field(None, validation_alias=AliasChoices("azure_sql_server", "AZURE_SQL_SERVER"))
    azure_sql_db: str | None = Field(None, validation_alias=AliasChoices("azure_sql_db", "AZURE_SQL_DB"))
    azure_sql_user: str | None = Field(None, validation_alias=AliasChoices("azure_sql_user", "AZURE_SQL_USER"))
    azure_sql_password: SecretStr | None = Field(
        None, validation_alias=AliasChoices("azure_sql_password", "AZURE_SQL_PASSWORD")
    )
    encrypt: str = "yes"
    trust_server_certificate: str = "no"
    connection_timeout: int = 30

    @field_validator("table")
    @classmethod
    def _check_table(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(
                f"table name {value!r} is not a plain SQL identifier; use letters, digits and underscores "
                "(optionally 'schema.table'), e.g. WONKALYTICS_TABLE=llm_interactions"
            )
        for part in value.split("."):
            if len(part) > MAX_NAME_LENGTH:
                raise ValueError(
                    f"table name {part[:20]!r}... is {len(part)} characters long; at most {MAX_NAME_LENGTH} "
                    "work on every database (PostgreSQL cuts longer names silently), e.g. "
                    "WONKALYTICS_TABLE=llm_interactions"
                )
        return value

    @field_validator("rollup_fields", mode="before")
    @classmethod
    def _parse_rollup_fields(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        names = tuple(value)
        for name in names:
            if not isinstance(name, str) or not name or len(name) > 128 or _BAD_COLUMN_CHARS.search(name):
                raise ValueError(f"rollup_fields names app fields, comma-separated; {name!r} is not a field name")
        return names

    @field_validator("column_map", mode="before")
    @classmethod
    def _parse_column_map(cls, value: Any) -> Any:
        where = "column_map"
        if isinstance(value, str | bytes):
            where = "WONKALYTICS_COLUMN_MAP"
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"WONKALYTICS_COLUMN_MAP must be a JSON object like {{\"response\": \"answer\"}}, but it is "
                    f"not valid JSON ({exc.msg} at character {exc.pos})"
                ) from None
        if not isinstance(value, dict):
            raise ValueError(
                f"{where} must be a JSON object of our field name -> your column name, like "
                f"{{\"response\": \"answer\"}}; got {type(value).__name__}"
            )
        for name, column in value.items():
            if not isinstance(name, str) or not isinstance(column, str):
                raise ValueError(
                    f"{where} maps field names to column names, both strings; {name!r}: {column!r} is not"
                )
            if not column or len(column) > 128 or _BAD_COLUMN_CHARS.search(column):
                raise ValueError(f"{where} target {column!r} (for {name!r}) is not a plain SQL column name")
        return value

    @field_validator("redact", mode="before")
    @classmethod
    def _check_redact(cls, value: Any) -> Any:
        return check_redact(value)

    @model_validator(mode="after")
    def _check_url(self) -> Settings:
        if self.database_url is not None:
            try:
                make_url(self.database_url.get_secret_value())
            except Exception:
                raise ValueError(
                    "database_url is not a valid SQLAlchemy URL; expected e.g. "
                    "postgresql+psycopg://user:password@host/db or sqlite:///wonkalytics.db"
                ) from None
        return self

    def url(self) -> URL:
        """The database URL: the explicit one, else the seed's Azure SQL variables, else SQLite."""
        if self.database_url is not None:
            return make_url(self.database_url.get_secret_value())
        azure = (self.azure_sql_server, self.azure_sql_db, self.azure_sql_user, self.azure_sql_password)
        if all(azure):
            return self._azure_sql_url()
        return make_url(DEFAULT_DATABASE_URL)

    def _azure_sql_url(self) -> URL:
        server = (self.azure_sql_server or "").removeprefix("tcp:")
        host, _, port = server.partition(",")
        password = self.azure_sql_password.get_secret_value() if self.azure_sql_password else None
        return URL.create(
            "mssql+pyodbc",
            username=self.azure_sql_user,
            password=password,
            host=host,
            port=int(port) if port else 1433,
            database=self.azure_sql_db,
            query={
                "driver": "ODBC Driver 18 for SQL Server",
                "Encrypt": self.encrypt,
                "TrustServerCertificate": self.trust_server_certificate,
                "Connection Timeout": str(self.connection_timeout),
            },
        )

    def safe_url(self) -> str:
        """The database URL with its password (and secret query values) hidden."""
        return safe_url(self.url())

    def clickhouse_password(self) -> str | None:
        """The password inside ``clickhouse_url`` (masked in rows like the database's), if any."""
        if self.clickhouse_url is None:
            return None
        try:
            return make_url(self.clickhouse_url.get_secret_value()).password
        except Exception:
            return None

    def read_target(self) -> str:
        """The URL the read side uses: ``read_url``, else the database URL (with its password)."""
        if self.read_url is not None:
            return self.read_url.get_secret_value()
        return self.url().render_as_string(hide_password=False)


def check_keywords(given: Iterable[str], where: str = "configure()") -> None:
    """Raise ``TypeError`` for a keyword that is not a setting, naming the valid ones and a close match.

    >>> check_keywords(["databse_url"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: configure() got an unexpected keyword argument 'databse_url' (did you mean 'database_url'?); ...
    """
    valid = sorted(Settings.model_fields)
    for name in given:
        if name in Settings.model_fields:
            continue
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TypeError(
            f"{where} got an unexpected keyword argument {name!r}{hint}; valid keywords: {', '.join(valid)}"
        )


SUPPORTED_SCHEMES: dict[str, str | None] = {
    "sqlite": None,
    "postgresql+psycopg": "postgres",
    "mysql+pymysql": "mysql",
    "mariadb+pymysql": "mysql",
    "mssql+pyodbc": "mssql",
    "mssql+pymssql": "pymssql",
}
"""URL scheme -> the extra that installs its driver (``pip install 'wonkalytics[EXTRA]'``)."""
_BACKEND_EXTRA = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "mssql": "mssql"}
_RECOMMENDED = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql",
                "mssql": "mssql+pyodbc"}
_HINTS = {
    "postgres": "postgresql+psycopg",  # Heroku's and libpq's spelling; SQLAlchemy knows only postgresql
}


def _install(extra: str) -> str:
    return f"pip install 'wonkalytics[{extra}]'"


def check_database_url(url: URL | str) -> None:
    """Raise :class:`ConfigurationError` when ``url``'s dialect is unknown or its driver cannot load.

    The message names the one extra to install and, for a misspelled scheme, the closest supported
    one; it never contains the password.

    >>> check_database_url("sqlite:///wonkalytics.db")
    >>> check_database_url("postgres://app:pw@db/analytics")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    wonkalytics.errors.ConfigurationError: database URL scheme 'postgres' is not known to SQLAlchemy; ...
    """
    parsed = make_url(url) if isinstance(url, str) else url
    scheme = parsed.drivername
    backend = scheme.partition("+")[0]
    if backend in ("clickhouse", "clickhouses"):
        raise ConfigurationError(
            "ClickHouse is not the writer's database: set it as WONKALYTICS_CLICKHOUSE_URL (a sink beside the "
            "SQL table) and WONKALYTICS_READ_URL (what stats, export and the dashboard read)"
        )
    if backend in _HINTS:
        target = _HINTS[backend]
        raise ConfigurationError(
            f"database URL scheme {scheme!r} is not known to SQLAlchemy; write {target}://... instead "
            f"(e.g. {target}://user:password@host:5432/db), with the driver from "
            f"{_install(SUPPORTED_SCHEMES[target] or '')}"
        )
    try:
        dialect = parsed.get_dialect()
    except Exception:  # NoSuchModuleError: no such dialect or driver name
        close = difflib.get_close_matches(scheme, list(SUPPORTED_SCHEMES), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}://? " if close else ""
        raise ConfigurationError(
            f"unknown database URL scheme {scheme!r}; {hint}Wonkalytics works with "
            f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)}"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in _RECOMMENDED and backend != "sqlite":
        raise ConfigurationError(
            f"database URL scheme {scheme!r}: Wonkalytics works with SQLite, PostgreSQL, MySQL/MariaDB and "
            f"SQL Server ({', '.join(s + '://' for s in SUPPORTED_SCHEMES)})"
        )
    full = f"{backend}+{parsed.get_driver_name()}"
    recommended = _RECOMMENDED.get(backend, "sqlite")
    if getattr(dialect, "is_async", False):
        raise ConfigurationError(
            f"database URL scheme {scheme!r} names an asyncio driver; Wonkalytics writes from its own "
            f"thread with a regular driver (async apps included): use {recommended}://... with "
            f"{_install(_BACKEND_EXTRA[backend])}"
        )
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        extra = SUPPORTED_SCHEMES.get(full)
        module = getattr(exc, "name", None) or parsed.get_driver_name()
        if extra is not None and isinstance(exc, ModuleNotFoundError) and exc.name == _driver_module(full):
            raise ConfigurationError(
                f"the database driver for {scheme}:// ({module}) is not installed: {_install(extra)}"
            ) from None
        if extra is not None:  # installed but cannot load: a system library is missing
            system = " (and unixODBC with Microsoft ODBC Driver 18 for SQL Server)" if full == "mssql+pyodbc" else ""
            raise ConfigurationError(
                f"the database driver for {scheme}:// is installed but cannot load ({exc}); reinstall it with "
                f"{_install(extra)}{system}"
            ) from None
        raise ConfigurationError(
            f"the database driver for {scheme}:// ({module}) is not installed; use {recommended}://... "
            f"instead, with {_install(_BACKEND_EXTRA[backend])}"
        ) from None


def _driver_module(scheme: str) -> str:
    return {"postgresql+psycopg": "psycopg", "mysql+pymysql": "pymysql", "mariadb+pymysql": "pymysql",
            "mssql+pyodbc": "pyodbc", "mssql+pymssql": "pymssql"}.get(scheme, "")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``configure()`` keywords (not None) taking precedence.

    Raises ``TypeError`` for a keyword that is no setting, :class:`ConfigurationError` for a bad
    value; an explicit database URL (keyword or ``WONKALYTICS_DATABASE_URL``) is checked here, its
    driver included. A URL built from the seed's ``AZURE_SQL_*`` variables is checked when first
    used instead: the seed's ``_write_to_azure_sql`` reports a missing driver by returning False.
    """
    check_keywords(overrides)
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)
    except Exception as exc:  # pydantic.ValidationError / SettingsError: reworded, secret inputs not echoed
        raise ConfigurationError(_describe(exc)) from None
    if settings.database_url is not None:
        check_database_url(settings.url())
    if settings.clickhouse_url is not None:
        check_clickhouse_url(settings.clickhouse_url.get_secret_value())
    if settings.read_url is not None:
        read = settings.read_url.get_secret_value()
        if is_clickhouse_url(read):
            check_clickhouse_url(read)
        else:
            check_database_url(read)
    return settings


_ENV_NAMES = {"column_map": "WONKALYTICS_COLUMN_MAP"}


def _describe(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        # pydantic-settings' SettingsError ('error parsing value for field "x" from source "...")
        field_name = re.search(r'field "([^"]+)"', str(exc))
        if field_name:
            name = field_name.group(1)
            return (f"invalid Wonkalytics configuration: WONKALYTICS_{name.upper()} could not be read "
                    f"({type(exc.__cause__).__name__ if exc.__cause__ else 'bad value'}); check its format")
        return f"invalid Wonkalytics configuration: {type(exc).__name__}"
    parts = []
    for error in errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error.get("loc", ())) or "settings"
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        if message.startswith(where) or message.startswith(_ENV_NAMES.get(where, "\0")):
            parts.append(message)
        else:
            parts.append(f"{where}: {message}")
    return "invalid Wonkalytics configuration: " + "; ".join(parts)
