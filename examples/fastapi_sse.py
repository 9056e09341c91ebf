"""FastAPI + Server-Sent Events, every chat recorded by Wonkalytics (the seed README's endpoint, redone).

Install: ``pip install 'wonkalytics[fastapi]'`` (FastAPI, sse-starlette and uvicorn).

``POST /generate`` (JSON body) and ``GET /generate?name=...&level=...`` (the same fields as query
parameters, for a browser's ``new EventSource(url)``, which can only send GET) stream the answer as
SSE: one ``data`` event per token, then a ``wl_request_id`` event (the response id the browser
scores with) and an ``elapsed_time`` event (seconds). ``POST /score`` sets that row's score.

A front end served from another origin (e.g. a Vite dev server on http://localhost:5173) needs CORS:
set ``CORS_ORIGINS=http://localhost:5173,https://app.example.com`` (or pass ``cors_origins=`` to
:func:`create_app`), which adds Starlette's ``CORSMiddleware`` for those origins, GET and POST, and
the ``content-type`` header. ``EventSource`` sends cookies only with ``withCredentials: true``, and
then the origin must be listed exactly (never ``*``); behind Azure Easy Auth the identity header is
added by the platform, so no credentials need to cross origins.

Browser side::

    const q = new URLSearchParams({name: "Ada", gender: "f", competence: "analysis", level: "senior",
        fixed_test_results: "A", free_test_results: "B", tone: "warm", response_type: "summary",
        language: "en"});
    const source = new EventSource(`http://localhost:8000/generate?${q}`);
    source.addEventListener("data", (e) => output.textContent += e.data);
    source.addEventListener("wl_request_id", (e) => { responseId = e.data; source.close(); });

The row holds the request fields (name, level, language...),
the caller from Azure Easy Auth's ``X-MS-CLIENT-PRINCIPAL`` header, the prompt, the answer, tokens
and timings; a client that disconnects mid-stream gives a row with status ``aborted`` and the
partial answer.

Try it offline, against the bundled OpenAI-compatible server (no key, no network)::

    wonkalytics fake-openai --port 8001        # or: python -m wonkalytics.testing --port 8001
    OPENAI_BASE_URL=http://127.0.0.1:8001/v1 OPENAI_API_KEY=x uvicorn examples.fastapi_sse:app --port 8000
    # (or: ... python examples/fastapi_sse.py)

    curl -N localhost:8000/generate -H 'content-type: application/json' -d '{"name": "Ada",
        "gender": "f", "competence": "analysis", "level": "senior", "fixed_test_results": "A",
        "free_test_results": "B", "tone": "warm", "response_type": "summary", "language": "en"}'
    curl localhost:8000/score -H 'content-type: application/json' \\
        -d '{"response_id": "chatcmpl-...", "score": 100}'

Rows go to ``WONKALYTICS_DATABASE_URL`` (default: SQLite ``wonkalytics.db`` in the working
directory); call ``wonkalytics.configure(...)`` at startup to pick another database or table.
``OPENAI_MODEL`` picks the model (default ``gpt-4o-mini``; with the offline server, e.g.
``fake-chunks-50-delay_ms-20`` gives a slow 50-token stream to try disconnecting from).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import openai
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse

import wonkalytics

logger = logging.getLogger(__name__)

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

# One client for the whole process, created at import (base URL and key from OPENAI_BASE_URL /
# OPENAI_API_KEY). wrap() returns the SDK's own AsyncOpenAI, recording every call it makes.
client = wonkalytics.wrap(openai.AsyncOpenAI())


class ExampleRequest(BaseModel):
    """The app's own request; its fields land in the row's columns of the same name."""

    name: str
    gender: str
    competence: str
    level: str
    fixed_test_results: str
    free_test_results: str
    motivation_summary: str | None = None
    other_notes: str | None = None
    tone: str
    response_type: str
    language: str
    auth_info: dict[str, Any] | None = None  # the seed's /.auth/me JSON; the header wins when both are sent


class ScoreRequest(BaseModel):
    response_id: str
    score: float


async def caller_identity(request: Request) -> dict[str, str]:
    """username / email / tenant_id from Azure Easy Auth's ``X-MS-CLIENT-PRINCIPAL`` header ({} if absent)."""
    return wonkalytics.identity_from_headers(request.headers)


Identity = Annotated[dict[str, str], Depends(caller_identity)]


def build_messages(req: ExampleRequest) -> list[dict[str, str]]:
    return [
        {
            "role": "system",
            "content": f"Write a short competence summary in a {req.tone} tone, in language '{req.language}'.",
        },
        {
            "role": "user",
            "content": (
                f"Name: {req.name}\nCompetence: {req.competence} ({req.level})\n"
                f"Test results: {req.fixed_test_results}; {req.free_test_results}\n"
                f"Motivation: {req.motivation_summary or '-'}\nNotes: {req.other_notes or '-'}"
            ),
        },
    ]


async def request_from_query(request: Request) -> ExampleRequest:
    """The request fields of ``GET /generate`` (query parameters), validated like the POST body."""
    try:
        return ExampleRequest.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=exc.errors(include_url=False, include_input=False)) from None


def create_app(
    llm: openai.AsyncOpenAI | None = None, *, model: str | None = None, cors_origins: list[str] | None = None
) -> FastAPI:
    """The app, on the module's client unless another one is given (tests point one at a fake server).

    The app owns its client: it is closed when the app shuts down. ``cors_origins`` (default: the
    comma-separated ``CORS_ORIGINS`` environment variable) lets front ends on those origins call it.
    """
    llm = wonkalytics.wrap(llm) if llm is not None else client  # wrap() of a wrapped client is a no-op
    model = model or MODEL
    if cors_origins is None:
        cors_origins = [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await llm.close()  # on the server's event loop, which owns the pooled connections

    app = FastAPI(title="Wonkalytics FastAPI + SSE example", lifespan=lifespan)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["content-type"], allow_credentials=True)

    @app.post("/generate", summary="Stream a competence summary as Server-Sent Events")
    async def generate(req: ExampleRequest, identity: Identity) -> EventSourceResponse:
        return stream_summary(req, identity)

    @app.get("/generate", summary="The same stream for a browser's EventSource (fields as query parameters)")
    async def generate_get(
        req: Annotated[ExampleRequest, Depends(request_from_query)], identity: Identity
    ) -> EventSourceResponse:
        return stream_summary(req, identity)

    def stream_summary(req: ExampleRequest, identity: dict[str, str]) -> EventSourceResponse:
        messages = build_messages(req)

        async def events() -> AsyncIterator[dict[str, Any]]:
            # The identity goes in explicitly (wl_identity=), not through wonkalytics.context():
            # sse-starlette runs this generator after the endpoint has returned, in tasks that copy
            # the context as it is *then*, so a `with wonkalytics.context(...)` block in the endpoint
            # has already ended (its contextvar reset) and the call below would not see it. An async
            # `yield` dependency holding the block open does work (FastAPI runs its exit after the
            # response, with the default Depends scope), but not with scope="function" nor as a
            # sync dependency: too easy to break for the one thing every row needs.
            start = time.perf_counter()
            try:
                stream = await llm.chat.completions.create(
                    model=model,
                    messages=messages,
                    stream=True,
                    temperature=1,
                    max_tokens=1024,
                    top_p=1,
                    frequency_penalty=0.5,
                    presence_penalty=0.5,
                    wl_request=req.model_dump(),
                    wl_identity=identity,
                    wl_tags=["competence", "example"],
                )
                # `async with` closes the stream however this generator ends: at the end, on an error,
                # or cancelled by sse-starlette when the client disconnects (the row is then "aborted",
                # with the part of the answer produced so far).
                # Tokens go out as they are: sse-starlette sends a token with newlines as several
                # `data:` lines, which EventSource joins back with "\n" (no need for the seed's
                # .replace("\n\n", " \n\n")).
                async with stream:
                    async for chunk in stream:
                        if chunk.choices and chunk.choices[0].delta.content:
                            yield {"event": "data", "data": chunk.choices[0].delta.content}
            except openai.APIError as exc:  # already recorded (status "error"); tell the browser
                logger.warning("chat completion failed: %s", exc)
                yield {"event": "error", "data": "The language model failed; please try again."}
                return
            yield {"event": "wl_request_id", "data": stream.response_id}
            yield {"event": "elapsed_time", "data": round(time.perf_counter() - start, 3)}

        return EventSourceResponse(events())

    @app.post("/score", summary="Score a streamed answer by its wl_request_id")
    async def score(body: ScoreRequest) -> dict[str, Any]:
        if not await wonkalytics.ascore(body.response_id, body.score):
            raise HTTPException(status_code=404, detail=f"no interaction with response_id {body.response_id!r}")
        return {"response_id": body.response_id, "score": body.score}

    return app


app = create_app()


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
