"""The built-in redactors and the secret-field filter (pure functions; the recorder applies them)."""

from __future__ import annotations

from typing import Any

import pytest

from wonkalytics.record.redact import check_redact, redact_email, redact_phone, redactor
from wonkalytics.record.secrets import drop_secrets, is_secret_key


@pytest.mark.parametrize(("text", "expected"), [
    ("mail ada@example.com now", "mail [email] now"),
    ("a.b+tag@sub.example.co.uk, c_d@x.io", "[email], [email]"),
    ("no address @ here, user@localhost", "no address @ here, user@localhost"),
])
def test_email(text: str, expected: str) -> None:
    assert redact_email({"messages": text})["messages"] == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("call +31 6 1234 5678", "call [phone]"),
    ("(555) 123-4567 or 555.123.4567", "[phone] or [phone]"),
    ("+44 20 7946 0958", "[phone]"),
    ("0612345678", "[phone]"),
    ("on 2024-01-31 at 12:30, order 12345, year 1999", "on 2024-01-31 at 12:30, order 12345, year 1999"),
    ("score 87.6 of 100", "score 87.6 of 100"),
])
def test_phone(text: str, expected: str) -> None:
    assert redact_phone({"response": text})["response"] == expected


def test_nested_values_are_scrubbed_keys_numbers_and_identity_kept() -> None:
    row: dict[str, Any] = {"email": "ada@example.com", "username": "ada@example.com", "score": 5,
                           "metadata": {"contact": ["ada@example.com", {"deep": "x@y.org"}]},
                           "tags": ("t@u.io",)}
    scrubbed = redact_email(row)
    assert scrubbed == {"email": "ada@example.com", "username": "ada@example.com", "score": 5,
                        "metadata": {"contact": ["[email]", {"deep": "[email]"}]}, "tags": ["[email]"]}
    assert row["metadata"]["contact"][0] == "ada@example.com"  # pure: the input is untouched


def test_self_referencing_values_do_not_loop() -> None:
    loop: list[Any] = ["a@b.org"]
    loop.append(loop)
    scrubbed = redact_email({"notes": loop})
    assert scrubbed["notes"][0] == "[email]"


def test_a_callable_and_builtins_compose_in_order() -> None:
    seen: list[dict[str, Any]] = []

    def drop_notes(row: dict[str, Any]) -> dict[str, Any]:
        seen.append(row)
        return {k: v for k, v in row.items() if k != "notes"}

    apply = redactor(["email", drop_notes])
    assert apply is not None
    assert apply({"notes": "n", "summary": "x@y.org"}) == {"summary": "[email]"}
    assert seen == [{"notes": "n", "summary": "[email]"}]


def test_a_callable_that_returns_no_dict_fails_loudly() -> None:
    apply = redactor(lambda row: None)
    assert apply is not None
    with pytest.raises(TypeError, match="must return the row as a dict"):
        apply({"a": 1})


def test_settings_values() -> None:
    assert redactor(None) is None and redactor("") is None and redactor([]) is None
    assert check_redact("phone,email") == ("phone", "email")
    with pytest.raises(ValueError, match="did you mean 'phone'"):
        check_redact(["phnoe"])


@pytest.mark.parametrize("key", [
    "api_key", "API_KEY", "api-key", "openai_api_key", "kwargs_api_key", "promptlayer_api_key",
    "Authorization", "extra_headers_Authorization", "proxy-authorization", "password", "db_password",
    "client_secret", "access_token", "X-MS-TOKEN-AAD-ACCESS-TOKEN", "cookie", "pl_api_key",
])
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["total_tokens", "prompt_tokens", "max_tokens", "response", "tokens", "keyword",
                                 "username", "reasoning_tokens", 3])
def test_not_secret_keys(key: object) -> None:
    assert not is_secret_key(key)


def test_drop_secrets_recursively_and_masks_known_values() -> None:
    row = {
        "model": "gpt-4o", "api_key": "sk-live-123456", "metadata": {"headers": {"Authorization": "Bearer abc"},
                                                                   "list": [{"password": "pw"}, "ok"]},
        "error": "AuthenticationError: Incorrect API key provided: sk-live-123456",
        "short": "pw",
    }
    clean = drop_secrets(row, known=["sk-live-123456", "pw", None])
    assert clean == {"model": "gpt-4o", "metadata": {"headers": {}, "list": [{}, "ok"]},
                     "error": "AuthenticationError: Incorrect API key provided: ***", "short": "pw"}
    assert row["api_key"] == "sk-live-123456"  # pure


def test_the_names_settings_accepts_are_the_built_in_redactors() -> None:
    from wonkalytics.record.redact import BUILTIN_REDACTORS
    from wonkalytics.settings import REDACTOR_NAMES

    assert tuple(BUILTIN_REDACTORS) == REDACTOR_NAMES
