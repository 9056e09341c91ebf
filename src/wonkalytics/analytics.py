"""The seed version's analytics API, on the modern core (same names, same return values).

Example::

    from wonkalytics.analytics import _write_to_azure_sql, score, update_row_property

    _write_to_azure_sql({"username": "ada", "action": "test_log", "timestamp": datetime.now()})
    score("chatcmpl-8jnIJAkEKBQJn5cs7QCJ1wIcBaII2", 100)
"""

from __future__ import annotations

from typing import Any

from wonkalytics import ascore, aupdate_row_property
from wonkalytics.recorder import default_recorder

__all__ = ["_write_to_azure_sql", "ascore", "aupdate_row_property", "score", "update_row_property"]


def _write_to_azure_sql(
    item: dict[str, Any],
    encrypt: str = "yes",
    connection_timeout: int = 30,
    trust_server_certificate: str = "no",
) -> bool:
    """Write one analytics row now; True when it landed, False (with the reason logged) otherwise.

    Nested dicts are flattened to ``PARENT_CHILD`` keys, ``kwargs_`` / ``request_`` prefixes are
    stripped, ``auth_info`` becomes username / email / tenant_id, and keys with no column are
    ignored (a record with no matching column at all raises ``NoMatchingColumnsError``). The
    connection options apply to the Azure SQL connection built from ``AZURE_SQL_*`` variables.
    """
    return default_recorder.write_now(
        item,
        encrypt=encrypt,
        connection_timeout=connection_timeout,
        trust_server_certificate=trust_server_certificate,
    )


def score(
    response_id: str,
    score: float,
    encrypt: str = "yes",
    connection_timeout: int = 30,
    trust_server_certificate: str = "no",
) -> bool:
    """Set the ``score`` of the row with ``response_id``: True when a row was updated, else False.

    Rows still queued are written first, so an interaction logged a moment ago is found. Returns
    False (and logs why) when the database fails.
    """
    return default_recorder.score(
        response_id, score, encrypt=encrypt, connection_timeout=connection_timeout,
        trust_server_certificate=trust_server_certificate,
    )


def update_row_property(
    response_id: str,
    property_name: str,
    property_value: Any,
    encrypt: str = "yes",
    connection_timeout: int = 30,
    trust_server_certificate: str = "no",
) -> bool:
    """Set column ``property_name`` of the row with ``response_id``; True when a row was updated.

    Raises ``ValueError`` naming the column and the table when ``property_name`` is not one of the
    table's columns (no SQL is ever built from it).
    """
    return default_recorder.update_row_property(
        response_id, property_name, property_value, encrypt=encrypt, connection_timeout=connection_timeout,
        trust_server_certificate=trust_server_certificate,
    )
