"""Strict mode is our test suite's explicit switch; an app's tests see the quiet production path."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from wonkalytics.internal_errors import set_strict, strict, swallow


@pytest.fixture
def restore_strict() -> Iterator[None]:
    yield
    set_strict(True)  # what tests/conftest.py set


def _fail_and_swallow() -> None:
    try:
        raise RuntimeError("boom inside wonkalytics")
    except RuntimeError:
        swallow(f"test step {os.urandom(4).hex()}", "nothing was lost")


def test_our_suite_runs_strict() -> None:
    assert strict()
    with pytest.raises(RuntimeError, match="boom"):
        _fail_and_swallow()


def test_the_quiet_path_logs_and_carries_on(restore_strict: None, caplog: pytest.LogCaptureFixture) -> None:
    set_strict(False)
    with caplog.at_level(logging.ERROR, logger="wonkalytics"):
        _fail_and_swallow()  # no exception
    assert "failed; nothing was lost" in caplog.text and "boom inside wonkalytics" in caplog.text


def test_the_environment_variable_switches_it_when_not_set_in_code(
    restore_strict: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_strict(None)
    monkeypatch.delenv("WONKALYTICS_STRICT", raising=False)
    assert not strict()
    for on in ("1", "true", "YES"):
        monkeypatch.setenv("WONKALYTICS_STRICT", on)
        assert strict()
    monkeypatch.setenv("WONKALYTICS_STRICT", "0")
    assert not strict()


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "PYTEST_"))}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**clean, **env}, timeout=120, check=False)


def test_a_users_pytest_session_is_not_strict() -> None:
    """pytest imported and PYTEST_VERSION set (what the old rule keyed on): still production behaviour."""
    result = _run("""
        import pytest  # an app's test suite
        from wonkalytics.internal_errors import strict, swallow
        assert not strict()
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            swallow("a step", "nothing was lost")
        print("carried on")
    """, PYTEST_VERSION="8.3.0")
    assert result.returncode == 0, result.stderr
    assert "carried on" in result.stdout and "a step failed; nothing was lost" in result.stderr


def test_a_broken_configuration_never_breaks_the_users_stream() -> None:
    """Production path end to end: the URL from the environment is wrong; the chat still streams."""
    result = _run("""
        import openai, wonkalytics
        from wonkalytics.testing import FakeOpenAI
        with FakeOpenAI() as fake:
            client = wonkalytics.wrap(openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0))
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            print("streamed", len(text) > 0)
    """, WONKALYTICS_DATABASE_URL="postgres://app:pw@127.0.0.1:9/analytics")
    assert result.returncode == 0, result.stderr
    assert "streamed True" in result.stdout
    assert "postgresql+psycopg://" in result.stderr  # the log line says what to fix
    assert "Traceback" not in result.stdout
