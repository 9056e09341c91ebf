"""The wrapper's rows on PostgreSQL (the other capture tests use SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from tests.conftest import configure_default, read_rows

import wonkalytics
from wonkalytics.recorder import Recorder, default_recorder
from wonkalytics.testing import FakeOpenAI, Scenario

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Héllo 👋"}]


@pytest.fixture
def pg_recorder(postgres_url: str, table_name: str, tmp_path: Path) -> Iterator[Recorder]:
    yield configure_default(postgres_url, table_name, tmp_path / "spool")
    default_recorder.shutdown(5)


async def test_sync_async_and_responses_rows_on_postgres(
    fake: FakeOpenAI, pg_recorder: Recorder, postgres_url: str, table_name: str
) -> None:
    sync = wonkalytics.wrap(openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0))
    text = "".join(c.choices[0].delta.content or "" for c in sync.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, wl_request={"name": "Zoë"},
        extra_body=Scenario(content="Ünïcode ✓ and a NUL\x00 byte", chunks=4).extra_body()))
    sync.close()
    async with wonkalytics.wrap(openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)) as aclient:
        stream = await aclient.chat.completions.create(model="fake-chunks-10-disconnect_after-2",
                                                       messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for _ in stream:
                pass
        response = await aclient.responses.create(model="gpt-4o-mini", input="Hi", instructions="Be brief.")
    assert wonkalytics.flush(10)
    ok, error, responses = read_rows(postgres_url, table_name)
    assert (ok["status"], ok["name"], ok["messages"]) == ("ok", "Zoë", "user:\nHéllo 👋\n\n")
    assert ok["response"] == text.replace("\x00", "")  # PostgreSQL text cannot hold NUL: removed, row kept
    assert error["status"] == "error" and error["error"].startswith("APIConnectionError")
    assert responses["response"] == response.output_text and responses["system_msg"] == "Be brief."
