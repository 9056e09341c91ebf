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

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from wonkalytics.errors import ConfigurationError
from wonkalytics.store.engine import safe_url

__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_TABLE", "Durability", "Settings", "load_settings"]

DEFAULT_DATABASE_URL = "sqlite:///wonkalytics.db"
DEFAULT_TABLE = "wonkalytics_interactions"
Durability = Literal["memory", "disk"]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class Settings(BaseSettings):
    """Wonkalytics settings (environment prefix ``WONKALYTICS_``; see the README's reference)."""

    model_config = SettingsConfigDict(env_prefix="WONKALYTICS_", extra="ignore", populate_by_name=True)

    database_url: SecretStr | None = None
    """SQLAlchemy URL of the analytics database (default: SQLite file ``wonkalytics.db``)."""
    table: str = Field(
        DEFAULT_TABLE, validation_alias=AliasChoices("table", "WONKALYTICS_TABLE", "AZURE_TABLE_NAME")
    )
    """Name of the analytics table (``schema.table`` allowed)."""
    column_map: dict[str, str] = Field(default_factory=dict)
    """Our field name -> your column name, e.g. ``{"response": "answer_text"}``."""
    durability: Durability = "memory"
    """``memory``: rows wait in a bounded queue; ``disk``: each row is fsynced to a spool first."""
    spool_dir: Path = Path("wonkalytics-spool")
    queue_size: int = Field(10_000, ge=1)
    """Rows held in memory before the writer spills to the spool directory."""
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
        return value

    @field_validator("column_map", mode="before")
    @classmethod
    def _parse_column_map(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"WONKALYTICS_COLUMN_MAP must be a JSON object like {{\"response\": \"answer\"}}: {exc}"
                ) from exc
        if not isinstance(value, dict):
            raise ValueError("column_map must be a mapping of our field name -> your column name")
        for column in value.values():
            if not isinstance(column, str) or not _IDENTIFIER.match(column):
                raise ValueError(f"column_map target {column!r} is not a plain SQL column name")
        return value

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


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``configure()`` keywords (not None) taking precedence."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except Exception as exc:  # pydantic.ValidationError: reword without echoing secret inputs
        raise ConfigurationError(_describe(exc)) from None


def _describe(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"invalid Wonkalytics configuration: {type(exc).__name__}"
    parts = []
    for error in errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error.get("loc", ())) or "settings"
        parts.append(f"{where}: {error.get('msg')}")
    return "invalid Wonkalytics configuration: " + "; ".join(parts)
