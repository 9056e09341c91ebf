"""What a slow or dead database does to an async app's event loop: lag sampled every millisecond.

Run from the repository root::

    .venv/bin/python bench/event_loop.py            # full run (~2 min), writes its BENCHMARKS.md section
    .venv/bin/python bench/event_loop.py --quick    # smoke run (CI), prints only

An asyncio app (FastAPI-like: one loop, many concurrent requests) runs 200 concurrent streamed chats
(one request arriving every 10 ms, each streaming 40 chunks 50 ms apart, so all 200 overlap)
with ``openai.AsyncOpenAI`` against the offline server (``python -m wonkalytics.testing``, in its own
process so it takes no GIL from the app). Meanwhile a task sleeps 1 ms at a time and records how late it
wakes: the loop's lag. Arms, interleaved in a shuffled order each round:

* **raw** and **raw A/A**: the unwrapped client (no Wonkalytics in the calls);
* **wrapped, database 200 ms late**: ``wonkalytics.wrap()`` of the same client, writing to PostgreSQL
  through a ``FaultProxy`` that holds back every reply of the server by 200 ms;
* **wrapped, database black-holed**: the proxy accepts and never answers (a dead network path).

The proxy runs in a child process too. After each wrapped arm the proxy recovers and the rows are
flushed, outside the measurement, so the next arm starts clean. Reported: p99 and max of the lag, and
the streams' throughput, each against the raw arm of the same run.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h
import _workload as w
from _harness import Report, verdict
from _proxy import Proxy

TARGET_P99_MS = 1.0
TARGET_STALL_MS = 10.0
TARGET_THROUGHPUT = 0.95
MESSAGES = [{"role": "user", "content": "How fast does the chocolate river flow?"}]


@dataclass(frozen=True)
class Plan:
    rounds: int
    streams: int
    model: str
    spacing: float  # seconds between two streams' starts (requests arrive; they do not all start at once)


# 40 chunks 50 ms apart (a model's pace): each stream lasts ~2 s, so with a start every 10 ms all 200
# overlap, at ~4,000 chunks/s in all. Faster chunks saturated this shared machine's core with the
# SDK's own parsing (raw p99 lag 0.4-1.4 s), and an app that is already overloaded measures nothing.
FULL = Plan(rounds=6, streams=200, model="fake-chunks-40-delay_ms-50", spacing=0.01)
QUICK = Plan(rounds=1, streams=40, model="fake-chunks-10-delay_ms-20", spacing=0.005)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The offline OpenAI server in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.child = subprocess.Popen(
            [sys.executable, "-m", "wonkalytics.testing", "--port", str(self.port), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=h.ROOT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the offline server did not start")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.child.terminate()
        self.child.wait(10)


async def one_stream(client: Any, model: str) -> int:
    stream = await client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    chunks = 0
    async for _ in stream:
        chunks += 1
    return chunks


async def measure(client: Any, plan: Plan) -> tuple[list[float], float]:
    """Run the streams concurrently while sampling the loop's lag: (lags in ms, wall seconds)."""
    lags: list[float] = []
    done = asyncio.Event()

    async def sampler() -> None:
        clock = time.perf_counter
        while not done.is_set():
            start = clock()
            await asyncio.sleep(0.001)
            lags.append((clock() - start - 0.001) * 1e3)

    task = asyncio.create_task(sampler())
    start = time.perf_counter()
    async def arriving(index: int) -> int:
        await asyncio.sleep(index * plan.spacing)
        return await one_stream(client, plan.model)

    await asyncio.gather(*(arriving(index) for index in range(plan.streams)))
    wall = time.perf_counter() - start
    done.set()
    await task
    return lags, wall


def bench(plan: Plan, run: h.Run, report: Report, tmp: Path) -> None:
    import httpx2
    import openai

    import wonkalytics

    server = Server()
    import sqlalchemy as sa

    proxy = Proxy(sa.make_url(h.POSTGRES_URL).port or 5432)
    url = proxy.url(h.POSTGRES_URL)
    loop = asyncio.new_event_loop()
    stats: dict[str, dict[str, list[float]]] = {}
    try:
        with w.fresh_table(h.POSTGRES_URL, "loop") as table:
            # A statement timeout of a few seconds, so the black-holed connection is cut soon after the
            # arm (the default, 30 s, would only make the run longer; the app never waits either way).
            wonkalytics.configure(
                database_url=url, table=table, spool_dir=str(tmp / "spool"), statement_timeout=5.0, connect_timeout=2.0
            )

            def client() -> Any:
                limits = httpx2.Limits(max_connections=plan.streams * 2, max_keepalive_connections=plan.streams)
                http = httpx2.AsyncClient(limits=limits, timeout=60)
                return openai.AsyncOpenAI(base_url=server.base_url, api_key="bench", max_retries=0, http_client=http)

            clients = {
                "raw": client(),
                "raw A/A": client(),
                "wrapped, database 200 ms late": wonkalytics.wrap(client()),
                "wrapped, database black-holed": wonkalytics.wrap(client()),
            }
            faults = {"wrapped, database 200 ms late": "latency 0.2", "wrapped, database black-holed": "blackhole"}

            def arm(name: str) -> Callable[[], float]:
                def go() -> float:
                    if name in faults:
                        proxy.send(faults[name])
                    lags, wall = loop.run_until_complete(measure(clients[name], plan))
                    if name in faults:
                        proxy.send("recover")
                        wonkalytics.flush(60)  # the backlog is written outside the measurement
                    entry = stats.setdefault(name, {"p99": [], "max": [], "rate": []})
                    entry["p99"].append(h.percentile(lags, 99))
                    entry["max"].append(max(lags))
                    entry["rate"].append(plan.streams / wall)
                    return plan.streams / wall

                return go

            h.run_rounds({name: arm(name) for name in clients}, plan.rounds, run.rng, warmup=1, gc_off=False)
            for c in clients.values():
                loop.run_until_complete(c.close())
            wonkalytics.flush(60)
            landed, _ = w.count(h.POSTGRES_URL, table)
            expected = plan.streams * (plan.rounds + 1) * 2
            wonkalytics.shutdown()
    finally:
        loop.close()
        proxy.close()
        server.close()

    raw = stats["raw"]
    raw_p99, raw_max, raw_rate = (h.median(raw[k]) for k in ("p99", "max", "rate"))
    section = f"{plan.streams} concurrent streams ({plan.model}), AsyncOpenAI"
    aa = stats["raw A/A"]
    report.add(section, "raw: loop lag p99 / max", "", f"{raw_p99:.2f} / {raw_max:.2f} ms", "", "", "baseline")
    report.add(
        section,
        "raw A/A: loop lag p99 / max",
        "",
        f"{h.median(aa['p99']):.2f} / {h.median(aa['max']):.2f} ms",
        f"throughput {h.median(aa['rate']) / raw_rate:.3f}x raw",
        "",
        "noise floor",
    )
    for name in ("wrapped, database 200 ms late", "wrapped, database black-holed"):
        entry = stats[name]
        p99 = h.median(entry["p99"]) - raw_p99
        stall = h.median(entry["max"])
        ratio = h.median(entry["rate"]) / raw_rate
        report.add(
            section,
            f"{name}: added p99 lag",
            f"raw {raw_p99:.2f} ms",
            f"{p99:+.2f} ms",
            f"per round {'/'.join(f'{v:.2f}' for v in entry['p99'])} ms",
            f"<= {TARGET_P99_MS:g} ms",
            verdict(p99, float("nan"), TARGET_P99_MS),
        )
        report.add(
            section,
            f"{name}: max lag",
            f"raw {raw_max:.2f} ms",
            f"{stall:.2f} ms",
            f"per round {'/'.join(f'{v:.1f}' for v in entry['max'])} ms",
            f"no stall > {TARGET_STALL_MS:g} ms caused by us",
            verdict(stall - raw_max, float("nan"), TARGET_STALL_MS),
        )
        report.add(
            section,
            f"{name}: stream throughput",
            f"raw {raw_rate:,.0f} streams/s",
            f"{ratio:.3f}x raw",
            "",
            f">= {TARGET_THROUGHPUT}x",
            verdict(ratio, float("nan"), TARGET_THROUGHPUT, higher_is_better=True),
        )
    report.add(
        section,
        "rows landed after recovery",
        f"{expected:,} wrapped calls",
        f"{landed:,}",
        "",
        "all",
        "PASS" if landed == expected else "MISS",
    )
    report.details.append(
        f"- {plan.rounds} rounds (+1 warm-up) x {plan.streams} concurrent streams per arm; lag = how late a "
        "`sleep(0.001)` wakes; medians over rounds of each round's p99 and max; database PostgreSQL through "
        "a FaultProxy in a child process; offline server in a child process"
    )


INTRO = """\
Event-loop lag of an asyncio app streaming through `wonkalytics.wrap(AsyncOpenAI)` while the database is
slow or black-holed, against the same app without Wonkalytics, written by `bench/event_loop.py`.
"""


def main(argv: list[str] | None = None) -> int:
    run = h.start(__doc__, __file__, argv)
    plan = QUICK if run.quick else FULL
    report = Report()
    with tempfile.TemporaryDirectory(prefix="wonkalytics-loop-") as tmp:
        bench(plan, run, report, Path(tmp))
    run.finish("event_loop", "Event loop under a slow or dead database", INTRO, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
