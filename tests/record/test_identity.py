from __future__ import annotations

import base64
import json
import warnings
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from wonkalytics.record.identity import (
    IdentityHeaderWarning,
    apply_auth_info,
    identity_from_auth_info,
    identity_from_headers,
)

from .strategies import json_like

TENANT = "0b6c1e4a-5f3d-4c2b-9a8e-7d6f5e4c3b2a"
TENANT_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"

# The seed README's example, verbatim in shape.
SEED_AUTH_INFO: dict[str, Any] = {
    "clientPrincipal": {
        "claims": [
            {"typ": "iss", "val": "https://login.microsoftonline.com/{SOME_TENANT_ID}/v2.0"},
            {"typ": "name", "val": "Test username"},
            {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "{SOME_USER_ID}"},
            {"typ": "preferred_username", "val": "test@testmail.eu"},
            {"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier", "val": "yp7A9c"},
            {"typ": TENANT_CLAIM, "val": "{SOME_TENANT_ID}"},
            {"typ": "ver", "val": "2.0"},
        ],
        "identityProvider": "aad",
        "userDetails": "test@testmail.eu",
        "userId": "{SOME_USER_ID}",
        "userRoles": ["authenticated", "anonymous"],
    }
}
SEED_IDENTITY = {"username": "Test username", "email": "test@testmail.eu", "tenant_id": "{SOME_TENANT_ID}"}


def encode(principal: Any) -> str:
    return base64.b64encode(json.dumps(principal).encode()).decode()


# --- identity_from_auth_info ---------------------------------------------------------------------


def test_seed_auth_info() -> None:
    assert identity_from_auth_info(SEED_AUTH_INFO) == SEED_IDENTITY


def test_principal_without_wrapper_and_as_json_string() -> None:
    principal = SEED_AUTH_INFO["clientPrincipal"]
    assert identity_from_auth_info(principal) == SEED_IDENTITY
    assert identity_from_auth_info(json.dumps(SEED_AUTH_INFO)) == SEED_IDENTITY
    assert identity_from_auth_info(json.dumps(SEED_AUTH_INFO).encode()) == SEED_IDENTITY


def test_claims_with_type_value_keys() -> None:
    auth = {"claims": [{"type": "name", "value": "Ann"}, {"type": "tid", "value": TENANT}]}
    assert identity_from_auth_info(auth) == {"username": "Ann", "tenant_id": TENANT}


def test_app_service_auth_me_list() -> None:
    auth = [
        {
            "provider_name": "aad",
            "user_claims": [{"typ": "name", "val": "Ann"}, {"typ": "preferred_username", "val": "ann@x.io"}],
        }
    ]
    assert identity_from_auth_info(auth) == {"username": "Ann", "email": "ann@x.io"}


@pytest.mark.parametrize(
    ("claims", "tenant"),
    [
        ([{"typ": TENANT_CLAIM, "val": "from-claim"}, {"typ": "tid", "val": "from-tid"}], "from-claim"),
        (
            [{"typ": "tid", "val": "from-tid"}, {"typ": "iss", "val": f"https://sts.windows.net/{TENANT}/"}],
            "from-tid",
        ),
        ([{"typ": "iss", "val": f"https://login.microsoftonline.com/{TENANT}/v2.0"}], TENANT),
        ([{"typ": "iss", "val": f"https://sts.windows.net/{TENANT.upper()}/"}], TENANT.upper()),
        ([{"typ": "iss", "val": "https://accounts.google.com"}], None),
    ],
)
def test_tenant_fallbacks(claims: list[dict[str, str]], tenant: str | None) -> None:
    assert identity_from_auth_info({"claims": claims}).get("tenant_id") == tenant


@pytest.mark.parametrize(
    ("principal", "email"),
    [
        (
            {"userDetails": "details@x.io", "claims": [{"typ": "preferred_username", "val": "pref@x.io"}]},
            "details@x.io",
        ),
        (
            {
                "claims": [
                    {"typ": "email", "val": "mail@x.io"},
                    {"typ": "preferred_username", "val": "pref@x.io"},
                ]
            },
            "pref@x.io",
        ),
        ({"claims": [{"typ": "upn", "val": "upn@x.io"}, {"typ": "email", "val": "mail@x.io"}]}, "mail@x.io"),
        ({"claims": [{"typ": "emails", "val": "b2c@x.io"}]}, "b2c@x.io"),
        (
            {
                "claims": [
                    {
                        "typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                        "val": "xml@x.io",
                    }
                ]
            },
            "xml@x.io",
        ),
        ({"claims": [{"typ": "upn", "val": "upn@x.io"}]}, "upn@x.io"),
        ({"userDetails": "   ", "claims": [{"typ": "upn", "val": "upn@x.io"}]}, "upn@x.io"),
        ({"userDetails": "octocat", "identityProvider": "github"}, "octocat"),  # the seed's rule
    ],
)
def test_email_fallbacks(principal: dict[str, Any], email: str) -> None:
    assert identity_from_auth_info(principal).get("email") == email


def test_first_claim_of_a_type_wins_and_empty_values_are_skipped() -> None:
    auth = {
        "claims": [{"typ": "name", "val": ""}, {"typ": "name", "val": "First"}, {"typ": "name", "val": "2nd"}]
    }
    assert identity_from_auth_info(auth) == {"username": "First"}


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        5,
        "not json",
        "[]",
        b"\xff",
        [],
        [1, 2],
        {},
        {"clientPrincipal": None},
        {"clientPrincipal": "x"},
        {"claims": "name=Ann"},
        {"claims": [None, 3, "x", {"typ": 5, "val": None}]},
        {"userDetails": 42},
        object(),
        "[" * 100_000,
    ],
)
def test_garbage_gives_empty(garbage: Any) -> None:
    assert identity_from_auth_info(garbage) == {}


def test_a_model_is_read_through_model_dump_and_a_broken_one_ignored() -> None:
    class Model:
        def model_dump(self) -> dict[str, Any]:
            return {"userDetails": "ann@x.io"}

    class Broken:
        def model_dump(self) -> dict[str, Any]:
            raise RuntimeError

    assert identity_from_auth_info(Model()) == {"email": "ann@x.io"}
    assert identity_from_auth_info(Broken()) == {}


@given(json_like)
def test_auth_info_never_raises(value: Any) -> None:
    for candidate in (value, {"clientPrincipal": value}, {"claims": value}, json.dumps(value, default=str)):
        identity = identity_from_auth_info(candidate)
        assert set(identity) <= {"username", "email", "tenant_id"}
        assert all(isinstance(v, str) and v for v in identity.values())


# --- apply_auth_info (the record step) -----------------------------------------------------------


def test_apply_auth_info_replaces_claims_by_identity() -> None:
    assert apply_auth_info({"action": "x", "auth_info": SEED_AUTH_INFO}) == {"action": "x", **SEED_IDENTITY}


def test_apply_auth_info_plainly_given_fields_win() -> None:
    row = {"username": "plain", "email": None, "tenant_id": "", "auth_info": SEED_AUTH_INFO}
    assert apply_auth_info(row) == {
        "username": "plain",
        "email": "test@testmail.eu",
        "tenant_id": "{SOME_TENANT_ID}",
    }


def test_apply_auth_info_drops_unreadable_auth_info() -> None:
    assert apply_auth_info({"a": 1, "auth_info": None}) == {"a": 1}
    assert apply_auth_info({"a": 1, "auth_info": "garbage"}) == {"a": 1}


def test_apply_auth_info_without_auth_info_is_unchanged_and_input_never_mutated() -> None:
    row = {"a": 1}
    assert apply_auth_info(row) == {"a": 1}
    with_auth = {"auth_info": SEED_AUTH_INFO}
    apply_auth_info(with_auth)
    assert with_auth == {"auth_info": SEED_AUTH_INFO}


# --- identity_from_headers -----------------------------------------------------------------------

APP_SERVICE: dict[str, Any] = {
    "auth_typ": "aad",
    "claims": [
        {"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "val": "ann@contoso.com"},
        {"typ": "name", "val": "Ann Example"},
        {"typ": TENANT_CLAIM, "val": TENANT},
        {"typ": "preferred_username", "val": "ann@contoso.com"},
    ],
    "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
}
STATIC_WEB_APPS: dict[str, Any] = {
    "identityProvider": "aad",
    "userId": "d75b260a64504067bfc5b2905e3b8182",
    "userDetails": "ann@contoso.com",
    "userRoles": ["anonymous", "authenticated"],
}


def test_app_service_principal() -> None:
    headers = {"X-MS-CLIENT-PRINCIPAL": encode(APP_SERVICE)}
    assert identity_from_headers(headers) == {
        "username": "Ann Example",
        "email": "ann@contoso.com",
        "tenant_id": TENANT,
    }


def test_app_service_name_typ_names_the_username_claim_when_name_is_absent() -> None:
    principal = {**APP_SERVICE, "claims": [c for c in APP_SERVICE["claims"] if c["typ"] != "name"]}
    assert (
        identity_from_headers({"x-ms-client-principal": encode(principal)})["username"] == "ann@contoso.com"
    )


def test_static_web_apps_principal() -> None:
    assert identity_from_headers({"x-ms-client-principal": encode(STATIC_WEB_APPS)}) == {
        "email": "ann@contoso.com"
    }


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Ms-Client-Principal": encode(SEED_AUTH_INFO["clientPrincipal"])},
        [("x-ms-client-principal", encode(SEED_AUTH_INFO["clientPrincipal"]))],
        [(b"x-ms-client-principal", encode(SEED_AUTH_INFO["clientPrincipal"]).encode())],  # ASGI scope
        Headers({"X-MS-CLIENT-PRINCIPAL": encode(SEED_AUTH_INFO["clientPrincipal"])}),
        Headers(raw=[(b"x-ms-client-principal", encode(SEED_AUTH_INFO["clientPrincipal"]).encode())]),
    ],
    ids=["dict", "pairs", "bytes-pairs", "starlette", "starlette-raw"],
)
def test_header_containers_and_name_case(headers: Any) -> None:
    assert identity_from_headers(headers) == SEED_IDENTITY


def test_unpadded_and_urlsafe_base64() -> None:
    raw = json.dumps({**STATIC_WEB_APPS, "userDetails": "a?>b@x.io"}).encode()
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert identity_from_headers({"x-ms-client-principal": urlsafe}) == {"email": "a?>b@x.io"}


def test_absent_header_gives_empty_silently() -> None:
    assert identity_from_headers({}) == {}
    assert identity_from_headers({"authorization": "Bearer x"}) == {}
    assert identity_from_headers(None) == {}
    assert identity_from_headers([]) == {}


def test_principal_name_header_fills_the_gaps() -> None:
    no_name = {"auth_typ": "aad", "claims": [{"typ": "tid", "val": TENANT}]}
    as_email = {"x-ms-client-principal": encode(no_name), "x-ms-client-principal-name": "ann@contoso.com"}
    as_name = {"x-ms-client-principal": encode(no_name), "x-ms-client-principal-name": "ann"}
    assert identity_from_headers(as_email) == {"tenant_id": TENANT, "email": "ann@contoso.com"}
    assert identity_from_headers(as_name) == {"tenant_id": TENANT, "username": "ann"}


def test_principal_name_header_never_overrides_the_principal() -> None:
    headers = {"x-ms-client-principal": encode(APP_SERVICE), "x-ms-client-principal-name": "other@x.io"}
    assert identity_from_headers(headers)["email"] == "ann@contoso.com"


def test_principal_name_header_alone_is_not_an_identity() -> None:
    assert identity_from_headers({"x-ms-client-principal-name": "ann@contoso.com"}) == {}


SECRET = "c2VjcmV0LXZhbHVl"  # must never appear in a warning


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("%%%" + SECRET, "not valid base64"),
        (base64.b64encode(b"\xff\xfe" + SECRET.encode()).decode(), "not UTF-8 JSON"),
        (base64.b64encode(b"{not json " + SECRET.encode()).decode(), "not UTF-8 JSON"),
        (encode([SECRET]), "not a client principal"),
        (encode(SECRET), "not a client principal"),
        (encode({"clientPrincipal": SECRET}), "not a client principal"),
        (encode({"secret": SECRET}), "none of the client principal keys"),
        (encode({"auth_typ": "aad", "claims": {"typ": SECRET}}), "'claims' is a dict"),
        ("   ", "empty"),
    ],
)
def test_malformed_header_warns_once_without_echoing_it(value: str, reason: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert identity_from_headers({"X-MS-CLIENT-PRINCIPAL": value}) == {}
    assert len(caught) == 1
    assert issubclass(caught[0].category, IdentityHeaderWarning)
    message = str(caught[0].message)
    assert reason in message
    assert SECRET not in message
    assert value.strip() not in message or not value.strip()
    assert caught[0].filename == __file__  # points at the caller


def test_unreadable_headers_object_warns() -> None:
    with pytest.warns(IdentityHeaderWarning, match="cannot read headers from a int"):
        assert identity_from_headers(5) == {}


@given(st.text(max_size=80) | st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()))
def test_headers_never_raise_and_warn_at_most_once(value: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        identity = identity_from_headers([("X-MS-CLIENT-PRINCIPAL", value)])
    assert len(caught) <= 1
    assert all(isinstance(v, str) for v in identity.values())


@given(json_like)
def test_any_json_principal_never_raises(principal: Any) -> None:
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        identity = identity_from_headers({"x-ms-client-principal": encode(principal)})
    assert set(identity) <= {"username", "email", "tenant_id"}
