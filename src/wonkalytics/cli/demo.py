"""``wonkalytics demo``: offline chats through the wrapper into the default database, then the rows.

No network and no keys: the bundled OpenAI-compatible server answers on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

DEMO_CHATS: list[dict[str, Any]] = [
    {
        "identity": {"username": "Ada Lovelace", "email": "ada@example.com", "tenant_id": "tenant-a"},
        "request": {"name": "Ada", "level": "senior", "language": "en", "competence": "analysis"},
        "question": "Summarise the test results in one sentence.",
        "tags": ["competence", "tests"],
        "score": 100,
    },
    {
        "principal": {  # what Azure Easy Auth puts in X-MS-CLIENT-PRINCIPAL
            "auth_typ": "aad",
            "claims": [
                {"typ": "name", "val": "Grace Hopper"},
                {"typ": "preferred_username", "val": "grace@example.com"},
                {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": "tenant-b"},
            ],
        },
        "request": {"name": "Grace", "level": "medior", "language": "nl", "tone": "friendly"},
        "question": "Write a motivating note for the candidate.",
        "tags": ["motivation"],
        "score": 80,
    },
    {
        "identity": {"username": "Alan Turing", "email": "alan@example.com", "tenant_id": "tenant-a"},
        "request": {"name": "Alan", "level": "junior", "language": "en", "response_type": "bullets"},
        "question": "Give three tips to improve.",
        "tags": ["tips"],
        "stop_after": 4,  # the user closes the page mid-answer: logged as 'aborted'
    },
]

SYSTEM = "You are a concise assistant for HR competence reports."


def demo(
    chunks: Annotated[int, typer.Option(help="Tokens per streamed answer")] = 24,
    delay_ms: Annotated[float, typer.Option(help="Delay per token, to watch the stream")] = 15.0,
) -> None:
    """Stream a few chats through the wrapper into the configured database and show what landed."""
    import openai

    import wonkalytics
    from wonkalytics.recorder import default_recorder
    from wonkalytics.testing import FakeOpenAI, Scenario

    console = Console()
    settings = default_recorder.settings
    console.print(f"[bold]Wonkalytics demo[/bold] -> table [cyan]{settings.table}[/cyan] in {settings.safe_url()}")
    response_ids: list[tuple[str, int]] = []
    with FakeOpenAI() as fake:
        client = wonkalytics.wrap(openai.OpenAI(base_url=fake.base_url, api_key="demo-key", max_retries=0))
        for chat in DEMO_CHATS:
            identity = chat.get("identity") or wonkalytics.identity_from_headers(
                {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(chat["principal"]).encode()).decode()}
            )
            # context() is the typed way to pass our fields (the SDK's signatures don't know wl_* kwargs)
            with wonkalytics.context(identity=identity, tags=chat["tags"], request=chat["request"]):
                stream = client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": chat["question"]}],
                    temperature=0.7,
                    max_tokens=256,
                    stream=True,
                    extra_body=Scenario(chunks=chunks, delay_ms=delay_ms).extra_body(),
                )
                text = Text()
                header = f"{identity.get('username', '?')}: {chat['question']}\n"
                with Live(Text(header), console=console, refresh_per_second=20, transient=False) as live:
                    for n, chunk in enumerate(stream, 1):
                        if chunk.choices and chunk.choices[0].delta.content:
                            text.append(chunk.choices[0].delta.content, style="green")
                            live.update(Text(header) + text)
                        if n >= chat.get("stop_after", 1 << 30):
                            stream.close()
                            live.update(Text(header) + text + Text(" [closed by the user]", style="red"))
                            break
                if not console.is_terminal:
                    console.print()  # Live leaves the cursor after the text when not on a terminal
            response_id = wonkalytics.response_id_of(stream)
            if "score" in chat and response_id:
                response_ids.append((response_id, chat["score"]))
        wonkalytics.log(action="demo_finished", username="demo", tenant_id="tenant-a")
        for response_id, value in response_ids:
            wonkalytics.score(response_id, value)  # waits for the row to be written first
        if not wonkalytics.flush(10):
            console.print("[red]rows are still queued: is the database reachable?[/red]")
            raise typer.Exit(1)
    _show_rows(console, limit=len(DEMO_CHATS) + 1)


def _show_rows(console: Console, *, limit: int) -> None:
    from wonkalytics.recorder import default_recorder

    store = default_recorder.sink.store
    rows = store.fetch_all()[-limit:]
    table = Table(title=f"the last {len(rows)} rows of {store.name}", expand=False)
    # Numbers are never cut; the text columns give way on a narrow terminal.
    widths = {"who": (6, 14), "app fields": (6, 18), "status": (7, 7), "score": (5, 5),
              "tokens": (6, 6), "ttft": (5, 6), "response": (6, 40)}
    for header, (least, most) in widths.items():
        table.add_column(header, overflow="ellipsis", no_wrap=True, min_width=least, max_width=most)
    # the answer gets what the terminal has left (Rich crops the table's edge rather than squeeze it)
    table.columns[-1].width = max(10, console.width - 70)
    for row in rows:
        table.add_row(
            str(row.get("username") or ""),
            " ".join(str(row[k]) for k in ("name", "level", "language") if row.get(k)) or str(row.get("action") or ""),
            str(row.get("status") or ""),
            "" if row.get("score") is None else str(row["score"]),
            "" if row.get("total_tokens") is None else str(row["total_tokens"]),
            "" if row.get("ttft_ms") is None else f"{row['ttft_ms']:.0f} ms",
            str(row.get("response") or ""),
        )
    console.print(table)
    chats = [row for row in rows if row.get("status")]
    statuses = ", ".join(f"{sum(r['status'] == s for r in chats)} {s}" for s in ("ok", "aborted", "error"))
    scores = [row["score"] for row in chats if row.get("score") is not None]
    console.print(
        f"{store.count()} rows in total; this run: {len(chats)} chats ({statuses}), "
        f"{sum(row.get('total_tokens') or 0 for row in chats)} tokens"
        + (f", average score {sum(scores) / len(scores):.0f}" if scores else "")
    )
    console.print("Next: [bold]wonkalytics stats[/bold] (the numbers, also [bold]--by model[/bold] or "
                  "[bold]--json[/bold]) and [bold]wonkalytics dashboard --open[/bold] (charts in your browser)")


__all__ = ["demo"]
