"""Who made the call: username / email / tenant_id from Azure auth data.

Two sources, one extraction:

* ``auth_info`` in a request or event: the seed's Static Web Apps ``/.auth/me`` JSON
  (``{"clientPrincipal": {"claims": [{"typ", "val"}], "userDetails", ...}}``), the bare principal,
  App Service's ``/.auth/me`` list (``[{"user_claims": [...]}]``) or any of these as a JSON string;
* the base64 ``X-MS-CLIENT-PRINCIPAL`` header that Azure Easy Auth puts on every request, in its
  App Service / Container Apps form (``auth_typ``, ``claims``, ``name_typ``, ``role_typ``) or its
  Static Web Apps form (``identityProvider``, ``userId``, ``userDetails``, ``userRoles``).

What is read, first match wins:

* ``tenant_id``: the ``http://schemas.microsoft.com/identity/claims/tenantid`` claim, then ``tid``,
  then the tenant GUID inside the ``iss`` claim (``https://login.microsoftonline.com/<GUID>/v2.0``);
* ``username``: the ``name`` claim, then (App Service) the claim that ``name_typ`` names;
* ``email``: ``userDetails`` (as the seed did, even when a provider puts a login name there), then
  the ``preferred_username``, ``email``, ``emails``, ``.../claims/emailaddress`` and upn claims.

Only keys that were found are returned. Nothing here ever raises: garbage gives ``{}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from wonkalytics.access import field

__all__ = [
    "IDENTITY_FIELDS",
    "PRINCIPAL_HEADER",
    "PRINCIPAL_NAME_HEADER",
    "IdentityHeaderWarning",
    "apply_auth_info",
    "identity_from_auth_info",
    "identity_from_headers",
]

IDENTITY_FIELDS: tuple[str, ...] = ("username", "email", "tenant_id")
PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"

_TENANT_CLAIMS = ("http://schemas.microsoft.com/identity/claims/tenantid", "tid")
_EMAIL_CLAIMS = (
    "preferred_username",
    "email",
    "emails",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
)
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_PRINCIPAL_KEYS = frozenset(
    {
        "claims",
        "user_claims",
        "auth_typ",
        "name_typ",
        "role_typ",
        "identityProvider",
        "userId",
        "userDetails",
        "userRoles",
    }
)


class IdentityHeaderWarning(UserWarning):
    """An ``X-MS-CLIENT-PRINCIPAL`` header was present but unreadable, so no identity was taken."""


class _MalformedHeaderError(ValueError):
    """Why a principal header was rejected; the message never contains the header's value."""


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _principal(auth_info: Any) -> Mapping[str, Any] | None:
    """The principal mapping inside any of the accepted shapes, or None."""
    if isinstance(auth_info, str | bytes | bytearray):
        try:
            auth_info = json.loads(auth_info)
        except (ValueError, RecursionError):
            return None
    elif not isinstance(auth_info, Mapping | list | tuple) and callable(field(auth_info, "model_dump")):
        try:
            auth_info = auth_info.model_dump()
        except Exception:  # a foreign model that cannot dump itself carries no identity we can read
            return None
    if isinstance(auth_info, list | tuple):  # App Service's /.auth/me answers with a list
        auth_info = next((entry for entry in auth_info if isinstance(entry, Mapping)), None)
    if not isinstance(auth_info, Mapping):
        return None
    if "clientPrincipal" in auth_info:
        inner = auth_info["clientPrincipal"]
        return inner if isinstance(inner, Mapping) else None
    return auth_info


def _claims(principal: Mapping[str, Any]) -> dict[str, str]:
    """Claim type -> first non-empty value; claims as ``{typ, val}`` or ``{type, value}``."""
    raw = principal.get("claims")
    if raw is None:
        raw = principal.get("user_claims")
    claims: dict[str, str] = {}
    if not isinstance(raw, list | tuple):
        return claims
    for claim in raw:
        if not isinstance(claim, Mapping):
            continue
        kind = _text(claim.get("typ", claim.get("type")))
        value = _text(claim.get("val", claim.get("value")))
        if kind is not None and value is not None:
            claims.setdefault(kind, value)
    return claims


def _identity(principal: Mapping[str, Any]) -> dict[str, str]:
    claims = _claims(principal)
    identity: dict[str, str] = {}

    username = claims.get("name")
    name_typ = _text(principal.get("name_typ"))
    if username is None and name_typ is not None:
        username = claims.get(name_typ)
    if username is not None:
        identity["username"] = username

    email = _text(principal.get("userDetails"))
    for claim in _EMAIL_CLAIMS:
        email = email or claims.get(claim)
    if email is not None:
        identity["email"] = email

    tenant = next((claims[c] for c in _TENANT_CLAIMS if c in claims), None)
    if tenant is None and "iss" in claims:
        match = _GUID.search(claims["iss"])
        tenant = match.group(0) if match else None
    if tenant is not None:
        identity["tenant_id"] = tenant
    return identity


def identity_from_auth_info(auth_info: Any) -> dict[str, str]:
    """Read username / email / tenant_id from Azure ``/.auth/me``-style auth info; ``{}`` if none.

    >>> identity_from_auth_info({"clientPrincipal": {
    ...     "userDetails": "ann@example.com",
    ...     "claims": [{"typ": "name", "val": "Ann"}, {"typ": "tid", "val": "t-1"}]}})
    {'username': 'Ann', 'email': 'ann@example.com', 'tenant_id': 't-1'}
    """
    principal = _principal(auth_info)
    return {} if principal is None else _identity(principal)


def apply_auth_info(row: dict[str, Any]) -> dict[str, Any]:
    """Record step: replace a row's ``auth_info`` by the identity it holds.

    Fields the app gave plainly win: the identity only fills ``username`` / ``email`` /
    ``tenant_id`` where the row has none (absent, ``None`` or ``""``). The raw claims are dropped.

    >>> apply_auth_info({"username": "app-given", "auth_info": {"userDetails": "ann@example.com"}})
    {'username': 'app-given', 'email': 'ann@example.com'}
    """
    if "auth_info" not in row:
        return row  # unchanged, and no step ever mutates a row, so no copy is needed
    result = {key: value for key, value in row.items() if key != "auth_info"}
    for key, value in identity_from_auth_info(row["auth_info"]).items():
        if result.get(key) in (None, ""):
            result[key] = value
    return result


def _header_pairs(headers: Any) -> list[tuple[Any, Any]] | None:
    try:
        items = getattr(headers, "items", None)  # not field(): for a dict that would read headers["items"]
        source = items() if callable(items) else iter(headers)
        return [(pair[0], pair[1]) for pair in source if isinstance(pair, tuple | list) and len(pair) == 2]
    except Exception:  # not a headers object at all
        return None


def _header_text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):  # ASGI raw headers
        return bytes(value).decode("latin-1")
    return value if isinstance(value, str) else None


def _find_header(pairs: Iterable[tuple[Any, Any]], name: str) -> str | None:
    for key, value in pairs:
        key_text = _header_text(key)
        if key_text is not None and key_text.strip().lower() == name:
            return _header_text(value)
    return None


def _decode_principal(value: str) -> Mapping[str, Any]:
    value = value.strip()
    if not value:
        raise _MalformedHeaderError("the header is empty")
    altchars = b"-_" if ("-" in value or "_" in value) else None
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise _MalformedHeaderError(f"its value ({len(value)} characters) is not valid base64") from None
    try:
        decoded = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _MalformedHeaderError(f"its base64 content ({len(raw)} bytes) is not UTF-8 JSON") from None
    principal = _principal(decoded) if isinstance(decoded, Mapping) else None
    if principal is None:
        raise _MalformedHeaderError(f"its JSON is a {type(decoded).__name__}, not a client principal object")
    if not _PRINCIPAL_KEYS & principal.keys():
        raise _MalformedHeaderError(
            "its JSON object has none of the client principal keys (claims, userId, ...)"
        )
    claims = principal.get("claims")
    if claims is not None and not isinstance(claims, list):
        raise _MalformedHeaderError(f"its 'claims' is a {type(claims).__name__}, not a list")
    return principal


def identity_from_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | Any) -> dict[str, str]:
    """Read username / email / tenant_id from Azure Easy Auth's ``X-MS-CLIENT-PRINCIPAL`` header.

    ``headers`` may be a dict, Starlette/FastAPI ``request.headers``, any mapping with ``items()``,
    or a list of ``(name, value)`` pairs (``bytes`` as in ASGI scopes too); names in any case.

    When the principal carries no name (or no email), ``X-MS-CLIENT-PRINCIPAL-NAME`` fills the
    gap: a value with an ``@`` becomes ``email``, any other becomes ``username``.

    No principal header (or ``headers`` is None) gives ``{}``. A malformed one (bad base64, bad
    JSON, not a principal) gives ``{}`` and one :class:`IdentityHeaderWarning` saying what was
    wrong, without its value. It never raises.

    >>> import base64, json
    >>> principal = {"auth_typ": "aad", "claims": [{"typ": "name", "val": "Ann"}]}
    >>> identity_from_headers({"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(principal).encode())})
    {'username': 'Ann'}
    """
    if headers is None:
        return {}
    pairs = _header_pairs(headers)
    if pairs is None:
        warnings.warn(
            f"identity_from_headers() cannot read headers from a {type(headers).__name__}; "
            "pass a mapping or a list of (name, value) pairs",
            IdentityHeaderWarning,
            stacklevel=2,
        )
        return {}
    encoded = _find_header(pairs, PRINCIPAL_HEADER)
    if encoded is None:
        return {}
    try:
        principal = _decode_principal(encoded)
    except _MalformedHeaderError as problem:
        warnings.warn(
            f"X-MS-CLIENT-PRINCIPAL header ignored, no identity recorded: {problem}",
            IdentityHeaderWarning,
            stacklevel=2,
        )
        return {}
    identity = _identity(principal)
    name = _text(_find_header(pairs, PRINCIPAL_NAME_HEADER))
    if name is not None:
        target = "email" if "@" in name else "username"
        identity.setdefault(target, name)
    return identity
