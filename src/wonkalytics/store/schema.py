"""The default analytics table: its columns, their types and what each one holds.

:data:`DEFAULT_COLUMNS` is the single source of truth: :func:`default_table` builds the SQLAlchemy
``Table`` from it and :func:`schema_markdown` renders the README's schema table from it.

Keys and indexes:

- ``row_pk`` — an auto-increment surrogate primary key (the seed table had none). Inserts never
  mention it; it gives Power BI a stable row key and ``fetch_all`` a natural order.
- ``event_id`` — the idempotency key: a UNIQUE index, so a retried insert of the same row is skipped.
- ``response_id`` — indexed, because scores and late properties are written ``WHERE response_id = ?``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from wonkalytics.store import dialects as d
from wonkalytics.store.fit import ColumnKind

__all__ = [
    "DEFAULT_COLUMNS",
    "ROW_KEY",
    "DefaultColumn",
    "column_kind",
    "default_table",
    "schema_markdown",
]

ROW_KEY = "row_pk"
"""Name of the surrogate primary key of the default table."""


@dataclass(frozen=True)
class DefaultColumn:
    """One column of the default table.

    >>> col = next(c for c in DEFAULT_COLUMNS if c.name == "score")
    >>> col.kind
    'float'
    """

    name: str
    type: sa.types.TypeEngine[Any]
    description: str
    index: bool = False
    unique: bool = False

    @property
    def kind(self) -> ColumnKind:
        """The kind of value the column takes (``"text"``, ``"int"``, ``"float"``, ...)."""
        return column_kind(self.type)


def _columns(
    type_factory: Callable[[], sa.types.TypeEngine[Any]], description: str, *names: str
) -> list[DefaultColumn]:
    return [DefaultColumn(n, type_factory(), description) for n in names]


_APP_FIELD = "Application field from the request (the seed's competence-summary app)."

DEFAULT_COLUMNS: Sequence[DefaultColumn] = (
    DefaultColumn(ROW_KEY, d.row_key(), "Auto-increment surrogate key; never written by Wonkalytics."),
    # The seed's columns, in the seed's order.
    DefaultColumn("id", d.identifier(), "Interaction id (the seed's key for scoring later)."),
    DefaultColumn("action", d.long_text(), "What the user did (from auth info or `log(action=...)`)."),
    DefaultColumn("username", d.long_text(), "User name, from auth info."),
    DefaultColumn("tenant_id", d.long_text(), "Azure AD tenant id, from auth info."),
    DefaultColumn("email", d.long_text(), "User e-mail, from auth info."),
    DefaultColumn("timestamp", d.timestamp(), "When the interaction started (naive UTC).", index=True),
    DefaultColumn("system_msg", d.long_text(), "The last system message of the prompt."),
    DefaultColumn("messages", d.long_text(), 'The other messages, as "role:\\ncontent\\n\\n".'),
    DefaultColumn("model", d.long_text(), "Model name as requested."),
    DefaultColumn("provider_type", d.long_text(), "Provider (e.g. openai, azure)."),
    DefaultColumn("temperature", d.double(), "Sampling temperature."),
    DefaultColumn("max_tokens", d.integer(), "Maximum tokens requested."),
    DefaultColumn("top_p", d.double(), "Nucleus sampling parameter."),
    DefaultColumn("frequency_penalty", d.double(), "Frequency penalty."),
    DefaultColumn("presence_penalty", d.double(), "Presence penalty."),
    DefaultColumn("response_id", d.identifier(), "Provider's response id (`chatcmpl-...`).", index=True),
    DefaultColumn("response_system_fingerprint", d.long_text(), "Provider's system fingerprint."),
    DefaultColumn("start_time", d.double(), "Start, seconds since the epoch."),
    DefaultColumn("end_time", d.double(), "End, seconds since the epoch."),
    DefaultColumn("score", d.double(), "Score given later with `score(response_id, ...)`; stored exactly."),
    *_columns(
        d.long_text,
        _APP_FIELD,
        "name",
        "gender",
        "competence",
        "level",
        "fixed_test_results",
        "free_test_results",
        "motivation_summary",
        "other_notes",
        "tone",
        "response_type",
        "language",
        "position",
        "carreer_notes",
        "test_results",
        "notes",
        "summary",
    ),
    # Added since the seed.
    DefaultColumn("response", d.long_text(), "The full response text."),
    DefaultColumn("prompt_tokens", d.integer(), "Prompt (input) tokens used."),
    DefaultColumn("completion_tokens", d.integer(), "Completion (output) tokens used."),
    DefaultColumn("total_tokens", d.integer(), "Total tokens used."),
    DefaultColumn("status", d.short_text(32), "`ok`, `error` or `aborted`."),
    DefaultColumn("error", d.long_text(), "The error, when the call failed."),
    DefaultColumn("ttft_ms", d.double(), "Time to first token, milliseconds."),
    DefaultColumn("duration_ms", d.double(), "Duration of the call, milliseconds."),
    DefaultColumn("metadata", d.long_text(), "Caller's metadata, as JSON."),
    DefaultColumn("tags", d.long_text(), "Caller's tags, as a JSON list."),
    DefaultColumn("event_id", d.identifier(128), "Idempotency key: a retried row is skipped.", unique=True),
    # Added in 0.2 (`wonkalytics init --upgrade` adds them to a 0.1 table).
    DefaultColumn("finish_reason", d.short_text(64), "Why the model stopped (`stop`, `length`, `tool_calls`, ...)."),
    DefaultColumn("cached_tokens", d.integer(), "Prompt tokens served from the provider's prompt cache."),
    DefaultColumn("reasoning_tokens", d.integer(), "Completion tokens spent on reasoning."),
    DefaultColumn("cost_usd", d.double(), "Cost of the call in US dollars, from dated prices; NULL when unknown."),
    DefaultColumn("pl_request_id", d.identifier(), "PromptLayer's request id, when the PromptLayer sink is on."),
)
"""The columns of the default table, in table order."""


def default_table(name: str, metadata: sa.MetaData | None = None, *, schema: str | None = None) -> sa.Table:
    """Build (not create) the default analytics table.

    >>> table = default_table("wonkalytics_interactions")
    >>> table.c.response_id.type.length
    255
    """
    metadata = sa.MetaData() if metadata is None else metadata
    table = sa.Table(
        name,
        metadata,
        *[
            sa.Column(c.name, c.type, primary_key=True, autoincrement=True)
            if c.name == ROW_KEY
            else sa.Column(c.name, c.type, nullable=True)
            for c in DEFAULT_COLUMNS
        ],
        schema=schema,
        **d.table_options(),
    )
    for c in DEFAULT_COLUMNS:
        if c.unique:
            d.unique_key(table, table.c[c.name])
        elif c.index:
            d.lookup_index(table, table.c[c.name])
    return table


def column_kind(type_: sa.types.TypeEngine[Any]) -> ColumnKind:
    """Map a (reflected) SQLAlchemy type to the kind of value it takes.

    >>> column_kind(sa.Float(53)), column_kind(sa.Unicode(10)), column_kind(sa.BigInteger())
    ('float', 'text', 'int')
    """
    # Boolean first: some dialects implement it on top of integers.
    if isinstance(type_, sa.Boolean):
        return "bool"
    if isinstance(type_, sa.Integer):
        return "int"
    # Since SQLAlchemy 2.1, Float (and Double) no longer subclass Numeric.
    if isinstance(type_, sa.Numeric | sa.Float):
        return "float"
    if isinstance(type_, sa.DateTime | sa.Date):
        return "datetime"
    return "text"


def _sql_server_type(type_: sa.types.TypeEngine[Any]) -> str:
    return type_.compile(dialect=mssql.dialect())  # type: ignore[no-untyped-call]


def schema_markdown() -> str:
    """The README's schema table, generated from :data:`DEFAULT_COLUMNS` so docs never drift.

    >>> print(schema_markdown().splitlines()[0])
    | Column | Kind | SQL Server type | Description |
    """
    lines = ["| Column | Kind | SQL Server type | Description |", "|---|---|---|---|"]
    for c in DEFAULT_COLUMNS:
        sql_type = _sql_server_type(c.type).split(" COLLATE ")[0]
        notes = " Primary key." if c.name == ROW_KEY else " Unique." if c.unique else ""
        notes = notes or (" Indexed." if c.index else "")
        lines.append(f"| `{c.name}` | {c.kind} | {sql_type} | {c.description}{notes} |")
    return "\n".join(lines) + "\n"
