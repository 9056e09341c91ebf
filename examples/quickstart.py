"""The README's quick start as a complete script: one streamed chat recorded, scored, an event logged.

Run it as written::

    pip install wonkalytics            # plus 'wonkalytics[postgres]' for PostgreSQL, '[mysql]' for MySQL
    python examples/quickstart.py      # offline without OPENAI_API_KEY: the bundled fake OpenAI server
    sqlite3 wonkalytics.db 'SELECT username, model, score, response FROM wonkalytics_interactions'

With ``OPENAI_API_KEY`` set it asks OpenAI itself; ``WONKALYTICS_DATABASE_URL`` picks the database
(default: SQLite ``wonkalytics.db`` in the working directory).
"""

from __future__ import annotations

# --- quick start (README.md shows this part) ---
import asyncio

import openai

import wonkalytics


async def answer(question: str, headers: dict[str, str]) -> str:
    client = wonkalytics.wrap(openai.AsyncOpenAI())  # also OpenAI, AzureOpenAI, AsyncAzureOpenAI
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}],
        stream=True,
        wl_request={"name": "Ada", "level": "senior"},  # your app's fields: one column each
        wl_identity=wonkalytics.identity_from_headers(headers),  # Azure Easy Auth's header, if any
        wl_tags=["competence"],
    )
    text = ""
    async for chunk in stream:  # the SDK's own ChatCompletionChunk objects, unchanged
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    await wonkalytics.ascore(stream.response_id, 100)  # feedback, later
    wonkalytics.log(action="export_pdf", username="ada")  # a plain analytics event
    return text


def main() -> None:
    # WONKALYTICS_DATABASE_URL, else the SQLite file wonkalytics.db; or in code, e.g.
    # wonkalytics.configure(database_url="postgresql+psycopg://app@db/analytics")
    wonkalytics.configure()
    print(asyncio.run(answer("What is a good first analytics question?", headers={})))
    wonkalytics.flush()  # at exit this happens anyway (bounded wait)
# --- end of quick start ---


if __name__ == "__main__":
    import contextlib
    import os

    with contextlib.ExitStack() as stack:
        if not os.environ.get("OPENAI_API_KEY"):  # offline: the bundled OpenAI-compatible server
            from wonkalytics.testing import FakeOpenAI

            fake = stack.enter_context(FakeOpenAI())
            os.environ.update(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="offline")
        main()
