"""How much a wrapped client costs on the caller's path, against the raw ``openai`` SDK.

Run from the repository root::

    .venv/bin/python bench/stream_overhead.py                    # full run (~3.5 min), writes BENCHMARKS.md
    .venv/bin/python bench/stream_overhead.py --quick            # smoke run (~20 s), prints only (CI)
    .venv/bin/python bench/stream_overhead.py --quick --write    # smoke run that writes BENCHMARKS.md
    .venv/bin/python bench/stream_overhead.py --only inprocess   # one section (prints only)

Three kinds of measurement, each against a baseline measured in the same run:

1. **End to end.** The offline server (``wonkalytics.testing.FakeOpenAI``, a thread of this process)
   streams 1000 chunks over real HTTP to a raw ``openai.OpenAI`` / ``AsyncOpenAI`` and to
   ``wonkalytics.wrap()`` of an identical client, which writes its rows to a throwaway SQLite file on
   its background thread. Reported as the ratio wrapped/raw of median wall times.
2. **In process, no socket.** The SSE body the server would send is rendered once and handed to the
   real SDK through ``httpx2.MockTransport``, so the SDK parses real bytes and nothing else runs.
   Reported as time added per chunk (1000-chunk stream), per call (10-chunk stream: create + iterate
   + close) and to the first chunk (create + first ``next()``). Each flavour runs in a few fresh
   interpreters whose rounds are pooled, so one process's heap layout does not decide the result.
3. **A fresh process.** Import, wrap and make the first call in a new interpreter, raw against wrapped.

Every measurement interleaves its arms in a shuffled order each round (so drift and noisy neighbours
hit all arms alike) and includes an A/A arm: a second raw client measured exactly like the first,
whose "overhead" is the noise floor of that measurement.
"""


from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import math
import random
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h
from _calls import BASE_URL, USAGE, Bodies, afirst_chunk, awhole_call, first_chunk, mock_client, sse_events, whole_call
from _harness import Report, Rounds, median, ms, notch, perf_ns, quiet_gc, us, verdict

ROOT = h.ROOT

# Targets from the issue. Added times are in microseconds.
TARGET_RATIO = 1.02
TARGET_PER_CHUNK_US = 1.0
TARGET_PER_CALL_US = 100.0
TARGET_FIRST_CHUNK_US = 100.0
TARGET_FIRST_CALL_US = 1000.0  # "no slow first call": our reading is <= 1 ms (peers: 80-120 ms)

WARMUP_CALLS = 20  # untimed rounds before the short measurements


@dataclass(frozen=True)
class Plan:
    """Repetitions of each measurement."""

    e2e_rounds: int
    e2e_block: int
    chunk_rounds: int
    call_rounds: int
    first_chunk_rounds: int
    processes: int
    interpreters: int


FULL = Plan(
    e2e_rounds=60, e2e_block=2, chunk_rounds=60, call_rounds=1200, first_chunk_rounds=1200, processes=8, interpreters=3
)
QUICK = Plan(
    e2e_rounds=2, e2e_block=1, chunk_rounds=2, call_rounds=50, first_chunk_rounds=50, processes=1, interpreters=1
)


def scaled(plan: Plan, factor: float) -> Plan:
    """The plan with every repetition count multiplied by ``factor`` (interpreters stay as they are)."""
    counts = ("e2e_rounds", "chunk_rounds", "call_rounds", "first_chunk_rounds", "processes")
    return dataclasses.replace(plan, **{name: max(1, round(getattr(plan, name) * factor)) for name in counts})


# --- interleaved rounds ----------------------------------------------------------------------------

SyncArm = Callable[[], int]
InProcess = tuple["Rounds", "Rounds", "Rounds", int | None]  # per chunk, per call, first chunk, writer CPU
AsyncArm = Callable[[], Awaitable[int]]
writer_cpu_ns = h.wonkalytics_threads_cpu_ns


def between_rounds(index: int) -> None:
    import wonkalytics

    wonkalytics.flush()  # the writer thread's work stays out of the next timed call
    if index % 50 == 49:
        gc.collect()


def run_rounds(
    arms: dict[str, SyncArm],
    rounds: int,
    rng: random.Random,
    warmup: int = 3,
    after: Callable[[int], None] = between_rounds,
) -> Rounds:
    return h.run_rounds(arms, rounds, rng, warmup, after)  # type: ignore[arg-type]


async def arun_rounds(arms: dict[str, AsyncArm], rounds: int, rng: random.Random, warmup: int = 3) -> Rounds:
    return await h.arun_rounds(arms, rounds, rng, warmup, between_rounds)  # type: ignore[arg-type]



# --- 1. end to end ---------------------------------------------------------------------------------


def bench_end_to_end(plan: Plan, rng: random.Random, report: Report) -> None:
    import openai

    import wonkalytics
    from wonkalytics.testing import FakeOpenAI

    model = "fake-chunks-1000"
    with FakeOpenAI() as fake:

        def sync_client() -> Any:
            return openai.OpenAI(base_url=fake.base_url, api_key="bench", max_retries=0)

        def async_client() -> Any:
            return openai.AsyncOpenAI(base_url=fake.base_url, api_key="bench", max_retries=0)

        for flavour in ("sync", "async"):
            is_async = flavour == "async"
            make = async_client if is_async else sync_client
            clients = {"raw": make(), "raw A/A": make(), "wrapped": wonkalytics.wrap(make())}
            times: dict[str, list[float]] = {name: [] for name in clients}
            names = list(clients)
            wonkalytics.flush()
            calls = 0
            cpu_start = None

            async def block(client: Any) -> list[int]:
                return [await awhole_call(client, model, {}) for _ in range(plan.e2e_block)]

            loop = asyncio.new_event_loop() if is_async else None
            try:
                with quiet_gc():
                    for index in range(-1, plan.e2e_rounds):
                        rng.shuffle(names)
                        for name in names:
                            client = clients[name]
                            if loop is not None:
                                runs = loop.run_until_complete(block(client))
                            else:
                                runs = [whole_call(client, model, {}) for _ in range(plan.e2e_block)]
                            if name == "wrapped":
                                # Rows of this block that the writer has not written yet are written
                                # now, outside the clock, so they do not slow the next arm instead.
                                wonkalytics.flush()
                                if index == -1:
                                    cpu_start = writer_cpu_ns()
                                else:
                                    calls += len(runs)
                            if index >= 0:
                                times[name].append(median([float(r) for r in runs]))
                        fake.clear()
                        gc.collect()
            finally:
                for client in clients.values():
                    if loop is not None:
                        loop.run_until_complete(client.close())
                    else:
                        client.close()
                if loop is not None:
                    loop.close()
            cpu_end = writer_cpu_ns()
            result = Rounds(times)
            ratio, ratio_noise = result.ratio("wrapped", "raw")
            aa_ratio, _ = result.ratio("raw A/A", "raw")
            raw_med = result.med("raw")
            report.add(
                "End to end (HTTP, 1000 chunks)",
                f"wrapped / raw, {flavour}",
                f"raw {ms(raw_med)}, wrapped {ms(result.med('wrapped'))}",
                f"{ratio:.4f}",
                f"±{ratio_noise:.4f}; A/A {aa_ratio:.4f}",
                f"<= {TARGET_RATIO}",
                verdict(ratio, ratio_noise, TARGET_RATIO),
            )
            if cpu_start is not None and cpu_end is not None and calls:
                writer_ns = (cpu_end - cpu_start) / calls
                report.add(
                    "End to end (HTTP, 1000 chunks)",
                    f"writer thread CPU per call, {flavour}",
                    "",
                    f"{ms(writer_ns)} ({writer_ns / raw_med:.2%} of a raw call)",
                    "",
                    "off the caller's thread",
                    "info",
                )
            report.details.append(
                f"- end to end, {flavour}: {plan.e2e_rounds} rounds x {plan.e2e_block} calls per arm; medians "
                f"raw {ms(raw_med)}, raw A/A {ms(result.med('raw A/A'))}, wrapped {ms(result.med('wrapped'))}"
            )


# --- 2. in process ---------------------------------------------------------------------------------


def _sync_in_process(bodies: Bodies, plan: Plan, rng: random.Random) -> InProcess:
    import wonkalytics

    big, small = "fake-chunks-1000", "fake-chunks-10"
    raw, raw_aa = mock_client(bodies, is_async=False), mock_client(bodies, is_async=False)
    wrapped = wonkalytics.wrap(mock_client(bodies, is_async=False))
    # "raw" asks for the usage chunk like the wrapper does, so both parse the very same bytes and the
    # difference is our code. "raw, plain request" is what an app that never asks for usage sends.
    chunk_arms: dict[str, SyncArm] = {
        "raw": lambda: whole_call(raw, big, USAGE),
        "raw A/A": lambda: whole_call(raw_aa, big, USAGE),
        "wrapped": lambda: whole_call(wrapped, big, {}),
        "raw, plain request": lambda: whole_call(raw, big, {}),
        "raw, app keeps the text": lambda: whole_call(raw, big, USAGE, keep_text=True),
        "wrapped, app keeps the text": lambda: whole_call(wrapped, big, {}, keep_text=True),
    }
    call_arms: dict[str, SyncArm] = {
        "raw": lambda: whole_call(raw, small, USAGE),
        "raw A/A": lambda: whole_call(raw_aa, small, USAGE),
        "wrapped": lambda: whole_call(wrapped, small, {}),
        "raw, plain request": lambda: whole_call(raw, small, {}),
    }
    first_arms: dict[str, SyncArm] = {
        "raw": lambda: first_chunk(raw, small, USAGE),
        "raw A/A": lambda: first_chunk(raw_aa, small, USAGE),
        "wrapped": lambda: first_chunk(wrapped, small, {}),
    }
    per_chunk = run_rounds(chunk_arms, plan.chunk_rounds, rng)
    cpu_start = writer_cpu_ns()
    per_call = run_rounds(call_arms, plan.call_rounds, rng, warmup=WARMUP_CALLS)
    cpu_end = writer_cpu_ns()
    first = run_rounds(first_arms, plan.first_chunk_rounds, rng, warmup=WARMUP_CALLS)
    for client in (raw, raw_aa, wrapped):
        client.close()
    cpu = None if cpu_start is None or cpu_end is None else cpu_end - cpu_start
    return per_chunk, per_call, first, cpu


async def _async_in_process(bodies: Bodies, plan: Plan, rng: random.Random) -> InProcess:
    import wonkalytics

    big, small = "fake-chunks-1000", "fake-chunks-10"
    raw, raw_aa = mock_client(bodies, is_async=True), mock_client(bodies, is_async=True)
    wrapped = wonkalytics.wrap(mock_client(bodies, is_async=True))
    chunk_arms: dict[str, AsyncArm] = {
        "raw": lambda: awhole_call(raw, big, USAGE),
        "raw A/A": lambda: awhole_call(raw_aa, big, USAGE),
        "wrapped": lambda: awhole_call(wrapped, big, {}),
        "raw, plain request": lambda: awhole_call(raw, big, {}),
    }
    call_arms: dict[str, AsyncArm] = {
        "raw": lambda: awhole_call(raw, small, USAGE),
        "raw A/A": lambda: awhole_call(raw_aa, small, USAGE),
        "wrapped": lambda: awhole_call(wrapped, small, {}),
        "raw, plain request": lambda: awhole_call(raw, small, {}),
    }
    first_arms: dict[str, AsyncArm] = {
        "raw": lambda: afirst_chunk(raw, small, USAGE),
        "raw A/A": lambda: afirst_chunk(raw_aa, small, USAGE),
        "wrapped": lambda: afirst_chunk(wrapped, small, {}),
    }
    per_chunk = await arun_rounds(chunk_arms, plan.chunk_rounds, rng)
    cpu_start = writer_cpu_ns()
    per_call = await arun_rounds(call_arms, plan.call_rounds, rng, warmup=WARMUP_CALLS)
    cpu_end = writer_cpu_ns()
    first = await arun_rounds(first_arms, plan.first_chunk_rounds, rng, warmup=WARMUP_CALLS)
    for client in (raw, raw_aa, wrapped):
        await client.close()
    cpu = None if cpu_start is None or cpu_end is None else cpu_end - cpu_start
    return per_chunk, per_call, first, cpu


IN_PROCESS_FLAG = "--child-in-process"


def child_in_process(spec_json: str) -> None:
    """Runs in a fresh interpreter: one flavour of the in-process measurements; prints JSON timings."""
    import wonkalytics

    spec = json.loads(spec_json)
    wonkalytics.configure(database_url=f"sqlite:///{spec['tmp']}/bench.db", spool_dir=spec["tmp"])
    plan, rng, bodies = Plan(**spec["plan"]), random.Random(spec["seed"]), Bodies((10, 1000))
    if spec["flavour"] == "async":
        per_chunk, per_call, first, cpu = asyncio.run(_async_in_process(bodies, plan, rng))
    else:
        per_chunk, per_call, first, cpu = _sync_in_process(bodies, plan, rng)
    wonkalytics.shutdown()
    out = {"per_chunk": per_chunk.times, "per_call": per_call.times, "first": first.times, "writer_cpu": cpu}
    print(json.dumps(out))


def bench_in_process(plan: Plan, rng: random.Random, report: Report, tmp: Path) -> None:
    """Each flavour runs in several fresh interpreters (so one process's heap layout does not decide)."""
    share = max(1, plan.interpreters)
    child_plan = dataclasses.replace(
        plan,
        chunk_rounds=math.ceil(plan.chunk_rounds / share),
        call_rounds=math.ceil(plan.call_rounds / share),
        first_chunk_rounds=math.ceil(plan.first_chunk_rounds / share),
    )
    pooled: dict[str, dict[str, dict[str, list[float]]]] = {}
    per_process: dict[str, list[float]] = {}
    writer: dict[str, list[float]] = {}
    flavours = ["sync", "async"]
    for index in range(share):
        rng.shuffle(flavours)
        for flavour in flavours:
            spool = tmp / f"in-process-{flavour}-{index}"
            spool.mkdir()
            spec = {
                "flavour": flavour,
                "plan": dataclasses.asdict(child_plan),
                "seed": rng.randrange(2**32),
                "tmp": str(spool),
            }
            done = subprocess.run(
                [sys.executable, __file__, IN_PROCESS_FLAG, json.dumps(spec)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            data = json.loads(done.stdout.strip().splitlines()[-1])
            for key in ("per_chunk", "per_call", "first"):
                for arm, times in data[key].items():
                    pooled.setdefault(flavour, {}).setdefault(key, {}).setdefault(arm, []).extend(times)
            per_process.setdefault(flavour, []).append(Rounds(data["per_chunk"]).delta("wrapped", "raw")[0])
            if data["writer_cpu"] is not None:
                calls = len(data["per_call"]["wrapped"]) + WARMUP_CALLS
                writer.setdefault(flavour, []).append(data["writer_cpu"] / calls)

    section = "In process (pre-built SSE body)"
    n = 1000
    for flavour in ("sync", "async"):
        per_chunk, per_call, first = (Rounds(pooled[flavour][key]) for key in ("per_chunk", "per_call", "first"))
        delta, noise = per_chunk.delta("wrapped", "raw")
        aa, _ = per_chunk.delta("raw A/A", "raw")
        spread = "/".join(f"{d / n / 1e3:.2f}" for d in per_process[flavour])
        report.add(
            section,
            f"added per chunk, {flavour} (1000 chunks)",
            f"raw {us(per_chunk.med('raw') / n)}/chunk",
            us(delta / n),
            f"±{us(noise / n)}; A/A {us(aa / n)}; per process {spread} µs",
            f"<= {TARGET_PER_CHUNK_US:g} µs",
            verdict(delta / n / 1e3, noise / n / 1e3, TARGET_PER_CHUNK_US),
        )
        if "wrapped, app keeps the text" in per_chunk.times:
            kept, kept_noise = per_chunk.delta("wrapped, app keeps the text", "raw, app keeps the text")
            report.add(
                section,
                f"added per chunk, {flavour}, when the app keeps the text",
                f"raw {us(per_chunk.med('raw, app keeps the text') / n)}/chunk",
                us(kept / n),
                f"±{us(kept_noise / n)}",
                "",
                "info",
            )
        usage_cost, usage_noise = per_chunk.delta("raw", "raw, plain request")
        report.add(
            section,
            f'SDK parsing `"usage": null` per chunk, {flavour}',
            "",
            us(usage_cost / n),
            f"±{us(usage_noise / n)}",
            "the wrapper's include_usage; SDK time",
            "info",
        )

        delta, noise = per_call.delta("wrapped", "raw")
        aa, _ = per_call.delta("raw A/A", "raw")
        report.add(
            section,
            f"added per call, {flavour} (10 chunks)",
            f"raw {ms(per_call.med('raw'))}",
            ms(delta),
            f"±{ms(noise)}; A/A {ms(aa)}",
            f"<= {TARGET_PER_CALL_US / 1e3:g} ms",
            verdict(delta / 1e3, noise / 1e3, TARGET_PER_CALL_US),
        )
        plain, plain_noise = per_call.delta("wrapped", "raw, plain request")
        report.add(
            section,
            f"added per call, {flavour}, vs an app that never asks for usage",
            f"raw {ms(per_call.med('raw, plain request'))}",
            ms(plain),
            f"±{ms(plain_noise)}",
            "includes the SDK parsing the usage chunk",
            "info",
        )
        if writer.get(flavour):
            report.add(
                section,
                f"writer thread CPU per call, {flavour} (10 chunks, one row per flush)",
                "",
                ms(median(writer[flavour])),
                "",
                "off the caller's thread",
                "info",
            )

        delta, noise = first.delta("wrapped", "raw")
        aa, _ = first.delta("raw A/A", "raw")
        report.add(
            section,
            f"added to the first chunk, {flavour}",
            f"raw {ms(first.med('raw'))}",
            ms(delta),
            f"±{ms(noise)}; A/A {ms(aa)}",
            f"<= {TARGET_FIRST_CHUNK_US / 1e3:g} ms",
            verdict(delta / 1e3, noise / 1e3, TARGET_FIRST_CHUNK_US),
        )
        report.details.append(
            f"- in process, {flavour}: {share} interpreters x ({child_plan.chunk_rounds} rounds of the 1000-chunk "
            f"body, {child_plan.call_rounds} of the 10-chunk call, {child_plan.first_chunk_rounds} of the first "
            "chunk), pooled; medians per arm (1000 chunks): "
            + ", ".join(f"{name} {ms(per_chunk.med(name))}" for name in per_chunk.times)
        )


# --- 3. a fresh process ----------------------------------------------------------------------------

CHILD_FLAG = "--child-first-call"


def child_first_call(arm: str, events_path: str, spool: str) -> None:
    """Runs in a fresh interpreter: import, (wrap), first and second call; prints JSON timings."""
    out: dict[str, float] = {}
    start = perf_ns()
    import httpx2
    import openai

    out["import_openai"] = perf_ns() - start
    events = tuple(event.encode() for event in json.loads(Path(events_path).read_text()))

    def handler(request: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=iter(events))

    def client() -> Any:
        http = httpx2.Client(transport=httpx2.MockTransport(handler))
        return openai.OpenAI(api_key="bench", base_url=BASE_URL, max_retries=0, http_client=http)

    target = client()
    if arm.startswith("wrapped"):
        start = perf_ns()
        import wonkalytics

        out["import_wonkalytics"] = perf_ns() - start
        start = perf_ns()
        wonkalytics.configure(database_url=f"sqlite:///{spool}/bench.db", spool_dir=spool)
        out["configure"] = perf_ns() - start
        start = perf_ns()
        target = wonkalytics.wrap(target)
        out["wrap"] = perf_ns() - start
    if arm.endswith("warm SDK"):
        whole_call(client(), "fake-chunks-10", USAGE)  # a call on another raw client loads the SDK's lazy parts
    out["first_call"] = whole_call(target, "fake-chunks-10", USAGE if arm.startswith("raw") else {})
    out["second_call"] = whole_call(target, "fake-chunks-10", USAGE if arm.startswith("raw") else {})
    print(json.dumps(out))


def bench_fresh_process(plan: Plan, rng: random.Random, report: Report, tmp: Path) -> None:
    events_path = tmp / "events.json"
    events_path.write_text(json.dumps([event.decode() for event in sse_events(10, True)]))
    arms = ["raw", "wrapped", "raw, warm SDK", "wrapped, warm SDK"]
    results: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    for index in range(plan.processes):
        rng.shuffle(arms)
        for arm in arms:
            spool = tmp / f"child-{index}-{arm.replace(' ', '').replace(',', '-')}"
            spool.mkdir()
            done = subprocess.run(
                [sys.executable, __file__, CHILD_FLAG, arm, str(events_path), str(spool)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            results[arm].append(json.loads(done.stdout.strip().splitlines()[-1]))

    def med(arm: str, key: str) -> float:
        return median([r[key] for r in results[arm]])

    section = "Fresh process (10 chunks)"
    for kind, raw_arm, wrapped_arm in (
        ("SDK warmed by one raw call", "raw, warm SDK", "wrapped, warm SDK"),
        ("cold", "raw", "wrapped"),
    ):
        diffs = [w["first_call"] - r["first_call"] for r, w in zip(results[raw_arm], results[wrapped_arm], strict=True)]
        delta = med(wrapped_arm, "first_call") - med(raw_arm, "first_call")
        is_target = kind != "cold"
        report.add(
            section,
            f"first call, {kind}",
            f"raw {ms(med(raw_arm, 'first_call'))}, wrapped {ms(med(wrapped_arm, 'first_call'))}",
            ms(delta),
            f"±{ms(notch(diffs))}",
            f"<= {TARGET_FIRST_CALL_US / 1e3:g} ms" if is_target else "no slow first call",
            verdict(delta / 1e3, notch(diffs) / 1e3, TARGET_FIRST_CALL_US),
        )
    report.add(
        section,
        "second call (for scale)",
        f"raw {ms(med('raw', 'second_call'))}",
        f"wrapped {ms(med('wrapped', 'second_call'))}",
        "",
        "",
        "info",
    )
    startup = [
        r["import_wonkalytics"] + r["configure"] + r["wrap"]
        for arm in arms
        if arm.startswith("wrapped")
        for r in results[arm]
    ]
    report.add(
        section,
        "start-up: `import wonkalytics` + `configure()` + `wrap()`, after `import openai`",
        f"import openai {ms(med('raw', 'import_openai'))}",
        ms(median(startup)),
        f"import {ms(med('wrapped', 'import_wonkalytics'))}, configure {ms(med('wrapped', 'configure'))}, "
        f"wrap {ms(med('wrapped', 'wrap'))}",
        "once, at start-up, not in a call",
        "info",
    )
    report.details.append(
        f"- fresh process: {plan.processes} interpreters per arm, in shuffled order; each imports openai, "
        "(imports wonkalytics, configures, wraps), and times its first and second 10-chunk call; 'warm SDK' "
        "arms first make one call on another raw client, so the SDK's own lazy imports are out of the comparison. "
        "A full garbage collection (~50 ms with openai and SQLAlchemy loaded) falls somewhere in the start-up; "
        "which step it lands in moves with the import order, so compare the start-up total"
    )


HOW_TO_READ = """\
## How to read this

- Every number is a **median** of repeated runs. The arms of a measurement (raw, wrapped, ...) run
  **interleaved**, in a freshly shuffled order each round, so drift and noisy neighbours hit all of
  them alike; each comparison is against a baseline measured in the same run, never against an old one.
- "Measured" for added time is the median of the per-round differences wrapped - raw; for ratios it
  is median(wrapped) / median(raw). "±" is an approximate 95% interval of that median
  (1.57 x IQR / sqrt(rounds)). **A/A** is a second raw client measured exactly like the first: what it
  "adds" is this run's noise floor. "within noise" means the interval straddles the target.
- The machine is shared and noisy (see the load average): differences of a few tenths of a
  microsecond per chunk are at the edge of what it can resolve; rerun before drawing conclusions from
  one digit.
- "Added per chunk" is (wrapped - raw) / 1000 for whole 1000-chunk calls, so it also carries the
  per-call cost spread over the chunks (~0.05 µs), and a consumer that only iterates (the harshest
  case for us); "when the app keeps the text" shows a consumer that keeps the text, as apps do.
- In process, "raw" asks for the usage chunk (`stream_options.include_usage`) like the wrapper does,
  so both parse the same bytes and the difference is the wrapper's own work. What asking for usage
  costs inside the SDK is shown on its own ("info" rows), and so is the comparison with an app that
  never asks for usage.
- End to end, the wrapped client writes each row to a throwaway SQLite file on its writer thread; the
  writer's work overlaps the wrapped calls (it can only slow them, through the GIL), and what is left
  after a block of wrapped calls is flushed outside the clock. The writer's CPU time per call is shown
  next to it. In process, the writer is flushed after every round, outside the clock, so those rows
  measure the caller's thread only.
- The in-process measurements run in a few fresh interpreters per flavour and pool their rounds:
  on this machine the same measurement differs by a few tenths of a microsecond per chunk from one
  process to the next (heap layout, caches), more than within one process; "per process" shows it.
- The cyclic garbage collector is disabled inside the timed loops and run between rounds.
"""



INTRO = """\
Stream overhead of `wonkalytics.wrap()` against the raw `openai` SDK, written by `bench/stream_overhead.py`.
"""


def main(argv: list[str] | None = None) -> int:
    def options(parser: Any) -> None:
        parser.add_argument(
            "--scale", type=float, default=1.0, help="multiply every repetition count (e.g. 3 for a tighter interval)"
        )
        parser.add_argument(
            "--only",
            choices=("e2e", "inprocess", "fresh"),
            action="append",
            help="run only these sections (repeatable); the report is then not written unless --write",
        )

    run = h.start(__doc__, __file__, argv, options)
    args = run.args
    plan = scaled(QUICK if args.quick else FULL, args.scale)
    sections = set(args.only or ("e2e", "inprocess", "fresh"))

    import wonkalytics

    rng = run.rng
    report = Report()
    with tempfile.TemporaryDirectory(prefix="wonkalytics-bench-") as tmp_name:
        tmp = Path(tmp_name)
        wonkalytics.configure(database_url=f"sqlite:///{tmp}/bench.db", spool_dir=str(tmp / "spool"))
        try:
            if "e2e" in sections:
                bench_end_to_end(plan, rng, report)
            if "inprocess" in sections:
                bench_in_process(plan, rng, report, tmp)
            if "fresh" in sections:
                bench_fresh_process(plan, rng, report, tmp)
        finally:
            wonkalytics.shutdown()
    run.finish(
        "stream_overhead",
        "Stream overhead (wrapped vs raw openai SDK)",
        INTRO,
        report,
        HOW_TO_READ.split("\n", 2)[2],
        write=run.write and not args.only,
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == CHILD_FLAG:
        child_first_call(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 3 and sys.argv[1] == IN_PROCESS_FLAG:
        child_in_process(sys.argv[2])
    else:
        sys.exit(main())
