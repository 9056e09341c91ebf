"""``wonkalytics demo``: offline chats through the wrapper into the default database, then the rows.

No network and no keys: the bundled OpenAI-compatible server answers on 127.0.0.1. The database is
checked before the first chat, so a wrong URL ends the demo at once in one paragraph saying what to
fix; at the end the demo says what to do next in one's own app.
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

from wonkalytics.cli.output import fail, say
from wonkalytics.errors import WonkalyticsError

EXAMPLES = ("wonkalytics demo", "wonkalytics demo --delay-ms 0",
            "WONKALYTICS_DATABASE_URL=postgresql+psycopg://app@localhost/analytics wonkalytics demo")

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
    title = Text.assemble(("Wonkalytics demo", "bold"), " -> table ", (settings.table, "cyan"))
    say(title + Text(f" in {settings.safe_url()}"), console=console)
    try:
        default_recorder.sink.store.create_table()  # connects once: a wrong URL fails here, not mid-demo
    except WonkalyticsError as exc:
        fail(f"the demo cannot use the database {settings.safe_url()}: {' '.join(str(exc).split()).rstrip('.')}.",
             hint="Fix WONKALYTICS_DATABASE_URL (or unset it to use the SQLite file wonkalytics.db here); "
                  "`wonkalytics doctor` checks the URL, driver, connection and table.")
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
            fail(f"the demo's rows are still queued after 10 s: the database {settings.safe_url()} stopped "
                 "answering.", hint="They stay in the spool and are written on the next start; "
                 "`wonkalytics doctor` checks the connection.")
    _show_rows(console, limit=len(DEMO_CHATS) + 1)
    _next_steps(console)


def _next_steps(console: Console) -> None:
    lines = [
        ("Next, in your own app:", "bold"),
        ("  1. Wrap your client once:   client = wonkalytics.wrap(openai.OpenAI())", ""),
        ("  2. Point it at your database:   export WONKALYTICS_DATABASE_URL="
         "postgresql+psycopg://user:password@host/db   (pip install 'wonkalytics[postgres]'; "
         "MySQL/MariaDB: mysql+pymysql://..., 'wonkalytics[mysql]')", ""),
        ("  3. Check the setup:   wonkalytics doctor", ""),
        ("  4. See the numbers:   wonkalytics stats   or   wonkalytics dashboard", ""),
    ]
    for text, style in lines:
        say(text, style or None, console=console)


def _show_rows(console: Console, *, limit: int) -> None:
    from wonkalytics.recorder import default_recorder
    from wonkalytics.store.recent import recent_rows

    store = default_recorder.sink.store
    rows = recent_rows(store, limit)  # ORDER BY ... DESC LIMIT n: never the whole table
    table = Table(title=Text(f"the last {len(rows)} rows of {store.name}"), expand=False)
    # Numbers are never cut; the text columns give way on a narrow terminal.
    widths = {"who": (6, 14), "app fields": (6, 18), "status": (7, 7), "score": (5, 5),
              "tokens": (6, 6), "ttft": (5, 6), "response": (6, 40)}
    for header, (least, most) in widths.items():
        table.add_column(header, overflow="ellipsis", no_wrap=True, min_width=least, max_width=most)
    # the answer gets what the terminal has left (Rich crops the table's edge rather than squeeze it)
    table.columns[-1].width = max(10, console.width - 70)
    for row in rows:
        table.add_row(*map(Text, (  # Text: an answer with [brackets] is not Rich markup
            str(row.get("username") or ""),
            " ".join(str(row[k]) for k in ("name", "level", "language") if row.get(k)) or str(row.get("action") or ""),
            str(row.get("status") or ""),
            "" if row.get("score") is None else str(row["score"]),
            "" if row.get("total_tokens") is None else str(row["total_tokens"]),
            "" if row.get("ttft_ms") is None else f"{row['ttft_ms']:.0f} ms",
            str(row.get("response") or ""),
        )))
    console.print(table)
    chats = [row for row in rows if row.get("status")]
    statuses = ", ".join(f"{sum(r['status'] == s for r in chats)} {s}" for s in ("ok", "aborted", "error"))
    scores = [row["score"] for row in chats if row.get("score") is not None]
    say(
        f"{store.count()} rows in total; this run: {len(chats)} chats ({statuses}), "
        f"{sum(row.get('total_tokens') or 0 for row in chats)} tokens"
        + (f", average score {sum(scores) / len(scores):.0f}" if scores else ""),
        console=console,
    )
    query = f"SELECT username, status, score, response FROM {store.name}"  # noqa: S608 - printed, never run
    url = default_recorder.settings.url()
    if url.get_backend_name() == "sqlite" and url.database:
        say(f"Read them with plain SQL, e.g. sqlite3 {url.database} '{query}'", console=console)
    else:
        say(f"Read them with plain SQL, e.g. {query}", console=console)


__all__ = ["demo"]
