"""``wonkalytics fake-openai``: the offline OpenAI-compatible server, in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

EXAMPLES = ("wonkalytics fake-openai --port 8000",
            "OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=any python your_app.py")


def fake_openai(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
) -> None:
    """Serve /v1/chat/completions and /v1/responses offline (deterministic answers, no key needed)."""
    from wonkalytics.testing import serve

    serve(host=host, port=port)
