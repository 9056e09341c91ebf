"""What one interaction row costs the writer thread, and what a call costs with the writer inside the clock.

Run from the repository root::

    .venv/bin/python bench/writer_cpu.py            # full run (~2 min), writes its BENCHMARKS.md section
    .venv/bin/python bench/writer_cpu.py --quick    # smoke run (CI), prints only

Three measurements, each against a baseline of the same run:

1. **Writer CPU per row.** Rounds of ``default_recorder.record(Interaction)`` + ``flush()`` into SQLite
   and PostgreSQL; the CPU time of Wonkalytics' own threads (every ``wonkalytics-*`` lane, read from
   the thread CPU clocks) divided by the rows. Under the GIL this is time taken from the app.
2. **Per call, writer inside the clock.** 10-chunk streamed calls through the real SDK (pre-rendered
   SSE body, no socket) in blocks of 20: raw, a second raw client (A/A), and wrapped. Every block ends
   with ``wonkalytics.flush()`` *inside* the clock, so everything the writer does for those 20 rows
   (record building, fitting, the INSERT, the commit) is charged to the block that caused it. The
   same wrapped client with the flush *outside* the clock shows the caller's thread alone.
3. **The row path, stage by stage** on the main thread (thread CPU clock): record building
   (``record_builder``), fitting (``TableSink.fit``), and the driver (``TableStore.insert_many`` of
   the fitted rows in the writer's batches); and, when pyinstrument is installed
   (``pip install pyinstrument``), a profile of those three stages, the hottest functions listed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h
import _workload as w
from _calls import USAGE, Bodies, awhole_call, mock_client, whole_call
from _harness import Report, ms, us, verdict

TARGET_ROW_US = 60.0
TARGET_CALL_MS = 0.1
TARGET_ROLLUP_US = 15.0  # issue 16: keeping the rollups costs the writer at most this per row
BLOCK = 20


@dataclass(frozen=True)
class Plan:
    cpu_rounds: int
    cpu_rows: int
    call_rounds: int
    stage_rows: int


FULL = Plan(cpu_rounds=7, cpu_rows=2_000, call_rounds=60, stage_rows=3_000)
QUICK = Plan(cpu_rounds=1, cpu_rows=100, call_rounds=3, stage_rows=200)


def configure(url: str, table: str, spool: Path) -> None:
    import wonkalytics

    wonkalytics.configure(database_url=url, table=table, spool_dir=str(spool))


# --- 1. writer CPU per row -------------------------------------------------------------------------


def _rollup_tables(url: str, table: str, create: bool) -> None:
    """Create (or drop) every rollup table (each level, full keys and per model): the writer keeps them
    when they exist."""
    import sqlalchemy as sa

    from wonkalytics.store.rollup_model import DIMENSIONS, LEVELS, dimension_users, model_tables, rollup_tables

    engine = sa.create_engine(url)
    tables = [t for level in LEVELS for t in (*rollup_tables(table, level=level), *model_tables(table, level=level))]
    tables += [dimension_users(table, level=level, dim=dim) for level in LEVELS for dim in DIMENSIONS[1:]]
    try:
        for target in tables if create else reversed(tables):
            if create:
                target.create(engine, checkfirst=True)
            else:
                target.drop(engine, checkfirst=True)
    finally:
        engine.dispose()


def writer_cpu_arm(url: str, rows: int, tmp: Path, rollups: bool = False) -> Callable[[], float]:
    import wonkalytics
    from wonkalytics.recorder import default_recorder

    def arm() -> float:
        with w.fresh_table(url, "cpu") as table:
            if rollups:
                _rollup_tables(url, table, create=True)
            configure(url, table, tmp / table)
            default_recorder.record(w.interaction(0, prefix="warm"))
            wonkalytics.flush(60)
            items = [w.interaction(i) for i in range(rows)]
            before = h.wonkalytics_threads_cpu_ns() or 0
            for item in items:
                default_recorder.record(item)
            if not wonkalytics.flush(300):
                raise RuntimeError("flush timed out")
            used = (h.wonkalytics_threads_cpu_ns() or 0) - before
            wonkalytics.shutdown()
            if rollups:
                _rollup_tables(url, table, create=False)
        return used / rows

    return arm


def bench_writer_cpu(plan: Plan, run: h.Run, report: Report, tmp: Path) -> None:
    urls = {"sqlite": f"sqlite:///{tmp}/cpu.db", "postgresql": h.POSTGRES_URL}
    arms = {name: writer_cpu_arm(url, plan.cpu_rows, tmp) for name, url in urls.items()}
    # the same rows into a table whose rollup tables exist: the writer keeps them in the insert's
    # transaction (store/rollups.py); the difference is what keeping rollups costs per row
    arms.update({f"{name}, with rollups": writer_cpu_arm(url, plan.cpu_rows, tmp, rollups=True)
                 for name, url in urls.items()})
    result = h.run_rounds(arms, plan.cpu_rounds, run.rng, warmup=0 if run.quick else 1, gc_off=False)
    for name in urls:
        value = result.med(name)
        spread = h.notch(result.times[name])
        report.add(
            "Writer CPU per interaction row",
            f"{name}, {plan.cpu_rows:,} rows per round",
            "",
            us(value),
            f"±{us(spread)}" if spread == spread else "",
            f"<= {TARGET_ROW_US:g} µs",
            verdict(value / 1e3, spread / 1e3, TARGET_ROW_US),
        )
    for name in urls:
        delta, noise = result.delta(f"{name}, with rollups", name)
        report.add(
            "Keeping the rollups (writer CPU per row, with minus without rollup tables)",
            f"{name}, {plan.cpu_rows:,} rows per round",
            f"without {us(result.med(name))}, with {us(result.med(name + ', with rollups'))}",
            us(delta),
            f"±{us(noise)}" if noise == noise else "",
            f"<= {TARGET_ROLLUP_US:g} µs",
            verdict(delta / 1e3, noise / 1e3, TARGET_ROLLUP_US),
        )
    report.details.append(
        f"- writer CPU: {plan.cpu_rounds} rounds x {plan.cpu_rows:,} rows per database; per round (µs/row): "
        + "; ".join(f"{n} " + "/".join(f"{v / 1e3:.0f}" for v in result.times[n]) for n in arms)
    )


# --- 2. per call, writer inside the clock ----------------------------------------------------------


def caller(client: Any, name: str, loop: asyncio.AbstractEventLoop | None) -> Callable[[], int]:
    """One timed 10-chunk call on ``client`` (raw clients ask for usage like the wrapper does)."""
    extra = USAGE if name.startswith("raw") else {}
    if loop is None:
        return lambda: whole_call(client, "fake-chunks-10", extra)
    return lambda: loop.run_until_complete(awhole_call(client, "fake-chunks-10", extra))


@dataclass
class CallCpu:
    """CPU per call of one arm's blocks: the whole process, the caller's thread, Wonkalytics' threads."""

    process: list[float]
    caller: list[float]
    writer: list[float]


def timed_block(call: Callable[[], int], flush_inside: bool, cpu: CallCpu) -> float:
    """ns per call over a block of calls; the flush is inside the clock or just after it.

    The CPU time over the same span is appended to ``cpu``, per call: the process's (every thread:
    the writer's work, not its waits), and its two parts, the caller's thread and the ``wonkalytics-*``
    threads (the profile of the added CPU: what the call path costs vs what the writer does per row).
    """
    import wonkalytics

    cpu_start = time.process_time_ns()
    caller_start = time.thread_time_ns()
    writer_start = h.wonkalytics_threads_cpu_ns() or 0
    start = h.perf_ns()
    for _ in range(BLOCK):
        call()
    if flush_inside:
        wonkalytics.flush()  # a no-op for the raw arms: the same code runs in every arm
    elapsed = h.perf_ns() - start
    cpu.process.append((time.process_time_ns() - cpu_start) / BLOCK)
    cpu.caller.append((time.thread_time_ns() - caller_start) / BLOCK)
    cpu.writer.append(((h.wonkalytics_threads_cpu_ns() or 0) - writer_start) / BLOCK)
    wonkalytics.flush()
    return elapsed / BLOCK


def per_call_flavour(flavour: str, plan: Plan, run: h.Run, report: Report) -> None:
    import wonkalytics

    bodies = Bodies((10,))
    loop = asyncio.new_event_loop() if flavour == "async" else None
    clients = {name: mock_client(bodies, is_async=loop is not None) for name in ("raw", "raw A/A", "in", "out")}
    clients["in"] = wonkalytics.wrap(clients["in"])
    clients["out"] = wonkalytics.wrap(clients["out"])
    calls = {name: caller(client, name, loop) for name, client in clients.items()}
    cpu = {name: CallCpu([], [], []) for name in ("raw", "raw A/A", "in", "out")}
    arms: dict[str, Callable[[], float]] = {
        "raw": lambda: timed_block(calls["raw"], True, cpu["raw"]),
        "raw A/A": lambda: timed_block(calls["raw A/A"], True, cpu["raw A/A"]),
        "wrapped, writer inside the clock": lambda: timed_block(calls["in"], True, cpu["in"]),
        "wrapped, writer outside the clock": lambda: timed_block(calls["out"], False, cpu["out"]),
    }
    result = h.run_rounds(arms, plan.call_rounds, run.rng, warmup=2)
    warm = 2  # the warm-up rounds (run_rounds warmup=2) appended CPU figures too: drop them
    used = h.Rounds({name: part.process[warm:] for name, part in cpu.items()})
    delta, noise = used.delta("in", "raw")
    aa, _ = used.delta("raw A/A", "raw")
    section = f"Per 10-chunk call, {flavour} (blocks of {BLOCK} calls)"
    report.add(
        section,
        "added process CPU per call, writer's work included (all threads)",
        f"raw {ms(used.med('raw'))}",
        ms(delta),
        f"±{ms(noise)}; A/A {ms(aa)}",
        f"<= {TARGET_CALL_MS:g} ms",
        verdict(delta / 1e6, noise / 1e6, TARGET_CALL_MS),
    )
    # The profile of that added CPU, by thread: the caller's thread (wrapper, chunk notes, finalizer,
    # submit) minus raw's, and the wonkalytics-* threads (record building, fitting, driver, commit of
    # each block's 20 rows; the statement watchdog).
    callers = h.Rounds({name: part.caller[warm:] for name, part in cpu.items()})
    caller_delta, caller_noise = callers.delta("in", "raw")
    writer = cpu["in"].writer[warm:]
    report.add(
        section, "of which the caller's thread", f"raw {ms(callers.med('raw'))}", ms(caller_delta),
        f"±{ms(caller_noise)}", "profile", "info",
    )
    report.add(
        section, "of which the writer's threads (per row: one row per call)", "", us(h.median(writer)),
        f"±{us(h.notch(writer))}", "profile", "info",
    )
    aa, _ = result.delta("raw A/A", "raw")
    for name in ("wrapped, writer inside the clock", "wrapped, writer outside the clock"):
        delta, noise = result.delta(name, "raw")
        inside = "inside" in name
        report.add(
            section,
            f"added per call, {name.split(', ')[1]}",
            f"raw {ms(result.med('raw'))}",
            ms(delta),
            f"±{ms(noise)}; A/A {ms(aa)}",
            "wall, incl. waiting for the commit" if inside else "the caller's thread alone",
            "info",
        )
    report.details.append(
        f"- per call, {flavour}: {plan.call_rounds} rounds x {BLOCK} calls per arm; medians per call "
        + ", ".join(f"{n} {ms(result.med(n))}" for n in arms)
    )
    for client in clients.values():
        if loop is not None:
            loop.run_until_complete(client.close())
        else:
            client.close()
    if loop is not None:
        loop.close()


def bench_per_call(plan: Plan, run: h.Run, report: Report, tmp: Path) -> None:
    import wonkalytics

    url = f"sqlite:///{tmp}/calls.db"
    with w.fresh_table(url, "calls") as table:
        configure(url, table, tmp / "calls-spool")
        for flavour in ("sync", "async"):
            per_call_flavour(flavour, plan, run, report)
        wonkalytics.shutdown()


# --- 3. the row path, stage by stage ---------------------------------------------------------------


def stages(url: str, rows: int, tmp: Path) -> tuple[dict[str, float], str | None]:
    """Thread-CPU µs per row of each stage of the writer's row path, run on this thread."""
    from wonkalytics.record.build import record_builder
    from wonkalytics.recorder import default_recorder

    with w.fresh_table(url, "stage") as table:
        configure(url, table, tmp / f"stage-{table}")
        sink = default_recorder.sink
        batch = default_recorder.settings.batch_size
        build = record_builder()
        items = [w.interaction(i) for i in range(rows)]
        sink.fit(build(items[0]).row)  # reflect outside the clock

        def clock(work: Callable[[], Any]) -> tuple[float, Any]:
            start = time.thread_time_ns()
            out = work()
            return (time.thread_time_ns() - start) / rows / 1e3, out

        build_us, records = clock(lambda: [build(item) for item in items])
        fit_us, fitted = clock(lambda: [sink.fit(record.row) for record in records])
        insert_us, _ = clock(lambda: [sink.store.insert_many(fitted[i : i + batch]) for i in range(0, rows, batch)])
        profile = None
        try:
            from pyinstrument import Profiler
        except ImportError:
            pass
        else:
            again = [w.interaction(i) for i in range(rows)]
            profiler = Profiler(interval=0.0002)
            profiler.start()
            fitted = [sink.fit(build(item).row) for item in again]
            for i in range(0, rows, batch):
                sink.store.insert_many(fitted[i : i + batch])
            profiler.stop()
            profile = profiler.output_text(unicode=False, color=False, show_all=False)
    return {"record building": build_us, "fitting": fit_us, "the driver (insert_many)": insert_us}, profile


def hottest(profile: str, limit: int = 14) -> list[str]:
    """The lines of pyinstrument's text tree with the most time, shortened."""
    entries = []
    for line in profile.splitlines():
        parts = line.strip(" |-`").split(" ", 1)
        try:
            seconds = float(parts[0])
        except (ValueError, IndexError):
            continue
        entries.append((seconds, parts[1].strip() if len(parts) > 1 else ""))
    total = max((s for s, _ in entries), default=0.0) or 1.0
    seen, out = set(), []
    for seconds, text in sorted(entries, reverse=True):
        if text in seen or seconds == total:
            continue
        seen.add(text)
        out.append(f"{seconds / total:6.1%}  {text}")
        if len(out) >= limit:
            break
    return out


def bench_stages(plan: Plan, report: Report, tmp: Path) -> None:
    import wonkalytics

    for name, url in (("sqlite", f"sqlite:///{tmp}/stage.db"), ("postgresql", h.POSTGRES_URL)):
        costs, profile = stages(url, plan.stage_rows, tmp)
        total = sum(costs.values())
        for stage, value in costs.items():
            report.add(
                f"Row path stage by stage, {name} (thread CPU per row)",
                stage,
                "",
                f"{value:.1f} µs",
                f"{value / total:.0%} of {total:.1f} µs",
                "",
                "info",
            )
        if profile is not None:
            report.details.append(f"- pyinstrument, {name}, {plan.stage_rows:,} rows, inclusive share of the row path:")
            report.details += [f"    - `{line}`" for line in hottest(profile)]
    wonkalytics.shutdown()


INTRO = """\
Writer CPU per interaction row, and the cost of a call with the writer's work inside the clock, written
by `bench/writer_cpu.py`.
"""

HOW_TO_READ = """\
- "Writer CPU per row" is the CPU time of every `wonkalytics-*` thread over a round of rows (record
  building, fitting, driver, commit), divided by the rows; the median over rounds.
- "Process CPU per call, writer's work included": each block of 20 calls ends with `flush()` inside
  the measurement, so everything the writer does for those rows is charged to the wrapped arm; CPU
  time of all threads (under the GIL, what the app's threads lose), not the writer's waits.
- "Of which the caller's thread / the writer's threads" splits that CPU by thread (thread CPU clocks): the
  wrapped arm's calling thread minus raw's, and every `wonkalytics-*` thread (per call, which is per row).
- "Writer inside the clock" is the wall time of the same blocks: it adds waiting for the commit
  (a forced commit per 20 rows, SQLite WAL fsync) that an app never waits for: an upper bound.
  "Outside the clock" flushes after the clock stops: the caller's thread alone.
- A/A is a second raw client measured like the first: the noise floor.
- The stage rows run the writer's own functions on the main thread, one stage over all rows at a time.
"""


def main(argv: list[str] | None = None) -> int:
    run = h.start(__doc__, __file__, argv)
    plan = QUICK if run.quick else FULL
    report = Report()
    with tempfile.TemporaryDirectory(prefix="wonkalytics-cpu-") as tmp_name:
        tmp = Path(tmp_name)
        bench_writer_cpu(plan, run, report, tmp)
        bench_per_call(plan, run, report, tmp)
        bench_stages(plan, report, tmp)
    run.finish(
        "writer_cpu", "Writer CPU per row", INTRO, report, HOW_TO_READ, extra_versions=("psycopg", "pyinstrument")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
