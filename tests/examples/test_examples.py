"""The examples run as written: the README quick start script, and the FastAPI example's GET + CORS."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlencode

import httpx
import openai
import pytest
from tests.conftest import read_rows
from tests.e2e.test_fastapi_example import HEADERS, REQUEST, example, running, sse_events  # noqa: F401

from wonkalytics.recorder import Recorder
from wonkalytics.testing import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.py"


def _quick_start_region() -> str:
    text = QUICKSTART.read_text()
    match = re.search(r"# --- quick start \(README.md shows this part\) ---\n(.*?)# --- end of quick start ---",
                      text, re.S)
    assert match, "examples/quickstart.py lost its quick-start markers"
    return match.group(1).strip()


def test_the_readme_quick_start_is_the_script() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block, "README.md lost its quick start code block"
    assert block.group(1).strip() == _quick_start_region(), (
        "README quick start differs from examples/quickstart.py: paste the marked region into README.md")


def test_the_quick_start_script_runs_as_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WONKALYTICS_", "OPENAI_", "AZURE_"))}
    done = subprocess.run([sys.executable, str(QUICKSTART)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() and done.stderr == ""
    with sqlite3.connect(tmp_path / "wonkalytics.db") as conn:
        rows = conn.execute("SELECT action, username, model, name, level, score, status, tags, response "
                            "FROM wonkalytics_interactions ORDER BY row_pk").fetchall()
    chat, event = rows
    assert chat[2:7] == ("gpt-4o-mini", "Ada", "senior", 100.0, "ok") and "competence" in chat[7]
    assert chat[8] == done.stdout.strip()  # the answer printed is the answer stored
    assert event[:2] == ("export_pdf", "ada")


@pytest.fixture
def get_app(example: ModuleType, fake: FakeOpenAI, recorder: Recorder) -> Iterator[str]:  # noqa: F811
    llm = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
    app = example.create_app(llm, cors_origins=["http://localhost:5173"])
    with running(app) as base_url:
        yield base_url


def test_get_generate_streams_for_an_event_source(get_app: str, recorder: Recorder) -> None:
    """A browser's EventSource can only GET: the same fields as query parameters, the same events."""
    with httpx.Client(timeout=10) as http, http.stream(
        "GET", f"{get_app}/generate?{urlencode(REQUEST)}",
        headers={**HEADERS, "Accept": "text/event-stream", "Origin": "http://localhost:5173"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
        events = list(sse_events(response))
    names = [name for name, _ in events]
    assert names.count("data") > 1 and names[-2:] == ["wl_request_id", "elapsed_time"]
    response_id = dict(events)["wl_request_id"]
    assert recorder.flush(10)
    settings = recorder.settings
    [row] = read_rows(settings.url().render_as_string(hide_password=False), settings.table)
    assert (row["response_id"], row["name"], row["username"]) == (response_id, "Ada", "Ada Lovelace")
    assert row["response"] == "".join(data for name, data in events if name == "data")


def test_get_generate_with_a_missing_field_is_a_422(get_app: str) -> None:
    fields = {k: v for k, v in REQUEST.items() if k != "level"}
    with httpx.Client(timeout=10) as http:
        response = http.get(f"{get_app}/generate?{urlencode(fields)}")
    assert response.status_code == 422 and "level" in response.text


def test_cors_preflight_for_another_origin(get_app: str) -> None:
    with httpx.Client(timeout=10) as http:
        allowed = http.options(f"{get_app}/generate", headers={
            "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        other = http.options(f"{get_app}/generate", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "access-control-allow-origin" not in other.headers
