"""Cost as work grows: per-call overhead as streams get longer, ingest rate as the table gets bigger.

Run from the repository root::

    .venv/bin/python bench/scaling.py                 # full run (~6 min), writes its BENCHMARKS.md section
    .venv/bin/python bench/scaling.py --quick         # smoke run (CI), prints only
    .venv/bin/python bench/scaling.py --max-rows 100000   # a shorter ingest curve (prints only)

1. **Chunks per stream** 10, 100, 1,000, 10,000: the real SDK parses a pre-rendered SSE body (no
   socket); raw and wrapped calls interleave, timed by the calling thread's CPU clock (the writer is
   flushed between rounds, outside it). Linear means the
   time added per chunk stays flat as streams grow (the per-call part shrinks into it).
2. **Rows in the table** 1e3 to 1e6: one SQLite file (no server competing for the CPU) fed through
   ``default_recorder.record()`` in blocks of 1,000 with a ``flush()`` after each; the rate of every
   decade (1e3-1e4, 1e4-1e5, ...) is reported. Linear means a flat rate: the millionth row costs what
   the thousandth did (B-tree index inserts grow with log n).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h
import _workload as w
from _calls import MESSAGES, USAGE, Bodies, mock_client
from _harness import Report, us


def cpu_call(client: Any, model: str, extra: dict[str, Any]) -> float:
    """Thread CPU time (ns) of create + iterate + close: the work of this thread alone.

    CPU time rather than wall time: on a shared machine a descheduled thread's wait is not our cost,
    and the wrapper's overhead is CPU on the caller's thread (the writer is flushed between rounds).
    """
    start = time.thread_time_ns()
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **extra)
    for _ in stream:
        pass
    stream.close()
    return float(time.thread_time_ns() - start)


def bench_chunks(sizes: tuple[int, ...], rounds: int, run: h.Run, report: Report, tmp: Path) -> None:
    import wonkalytics

    wonkalytics.configure(database_url=f"sqlite:///{tmp}/chunks.db", spool_dir=str(tmp / "chunks-spool"))
    bodies = Bodies(sizes)
    raw, raw_aa = mock_client(bodies, is_async=False), mock_client(bodies, is_async=False)
    wrapped = wonkalytics.wrap(mock_client(bodies, is_async=False))
    per_chunk: list[float] = []
    noise_per_chunk: list[float] = []
    for size in sizes:
        model = f"fake-chunks-{size}"
        arms = {
            "raw": lambda m=model: cpu_call(raw, m, USAGE),
            "raw A/A": lambda m=model: cpu_call(raw_aa, m, USAGE),
            "wrapped": lambda m=model: cpu_call(wrapped, m, {}),
        }
        count = max(3, rounds * 1000 // size) if size < 1000 else rounds
        result = h.run_rounds(arms, count, run.rng, warmup=2, after=lambda _i: wonkalytics.flush())
        delta, noise = result.delta("wrapped", "raw")
        aa, _ = result.delta("raw A/A", "raw")
        per_chunk.append(delta / size)
        noise_per_chunk.append(noise / size if noise == noise else float("inf"))
        report.add(
            "Added time as chunks per stream grow (sync, in process)",
            f"{size:,} chunks",
            f"raw {result.med('raw') / 1e6:,.2f} ms",
            f"{us(delta)} per call = {us(delta / size)} per chunk",
            f"±{us(noise)}; A/A {us(aa)}",
            "flat per chunk",
            "info",
        )
    big = per_chunk[-1]
    mid = per_chunk[-2] if len(per_chunk) > 1 else big
    floor = 500.0  # ns: below half a microsecond per chunk the difference is noise on this machine
    noise = max(noise_per_chunk[-2:])
    if noise > 1_000:  # the interval is wider than a microsecond per chunk: no verdict either way
        outcome = f"n/a (noise ±{us(noise)} per chunk; rerun on a quiet machine)"
    else:
        outcome = "PASS" if big <= max(mid, 0.0) * 1.5 + floor + noise else "MISS"
    report.add(
        "Added time as chunks per stream grow (sync, in process)",
        f"per chunk at {sizes[-1]:,} / at {sizes[-2] if len(sizes) > 1 else sizes[-1]:,} chunks",
        "",
        f"{us(big)} / {us(mid)}",
        "linear: the largest stream costs no more per chunk than the one before (within 0.5 µs + noise)",
        "flat",
        outcome,
    )
    for client in (raw, raw_aa, wrapped):
        client.close()
    wonkalytics.shutdown()


def bench_rows(max_rows: int, report: Report, tmp: Path) -> None:
    import wonkalytics
    from wonkalytics.recorder import default_recorder

    url = f"sqlite:///{tmp}/rows.db"
    block = 1_000
    marks = [m for m in (1_000, 10_000, 100_000, 1_000_000) if m <= max_rows]
    with w.fresh_table(url, "rows") as table:
        wonkalytics.configure(database_url=url, table=table, spool_dir=str(tmp / "rows-spool"))
        default_recorder.record(w.interaction(0, prefix="warm"))
        wonkalytics.flush(60)
        times: dict[int, float] = {}
        written = 0
        start = time.perf_counter()
        cpu0 = h.wonkalytics_threads_cpu_ns() or 0
        cpu_at: dict[int, float] = {}
        while written < marks[-1]:
            for index in range(written, written + block):
                default_recorder.record(w.interaction(index))
            if not wonkalytics.flush(300):
                raise RuntimeError("flush timed out")
            written += block
            if written in marks:
                times[written] = time.perf_counter() - start
                cpu_at[written] = ((h.wonkalytics_threads_cpu_ns() or 0) - cpu0) / 1e9
        landed, distinct = w.count(url, table)
        wonkalytics.shutdown()
        size_mb = Path(f"{tmp}/rows.db").stat().st_size / 2**20
    previous_rows, previous_t, previous_cpu = 0, 0.0, 0.0
    rates = []
    for mark in marks:
        seconds = times[mark] - previous_t
        rows = mark - previous_rows
        rates.append(rows / seconds)
        cpu = (cpu_at[mark] - previous_cpu) / rows
        report.add(
            "Ingest rate as the table grows (SQLite file)",
            f"rows {previous_rows + 1:,}..{mark:,}",
            "",
            f"{rows / seconds:,.0f}/s",
            f"writer CPU {cpu * 1e6:.0f} µs/row",
            "flat",
            "info",
        )
        previous_rows, previous_t, previous_cpu = mark, times[mark], cpu_at[mark]
    ok = landed == distinct == marks[-1] + 1
    report.add(
        "Ingest rate as the table grows (SQLite file)",
        f"rate of the last decade / of the first ({marks[-1]:,} rows, {size_mb:,.0f} MB file)",
        "",
        f"{rates[-1] / rates[0]:.2f}",
        f"all rows landed: {landed:,}" if ok else f"LANDED {landed:,} ({distinct:,} distinct)",
        ">= 0.67 (linear within noise)",
        "PASS" if ok and rates[-1] / rates[0] >= 0.67 else "MISS",
    )


INTRO = """\
How the costs grow with longer streams and bigger tables, written by `bench/scaling.py`.
"""


def main(argv: list[str] | None = None) -> int:
    def options(parser: Any) -> None:
        parser.add_argument("--max-rows", type=int, help="largest table of the ingest curve (default 1,000,000)")

    run = h.start(__doc__, __file__, argv, options)
    report = Report()
    sizes = (10, 100, 1_000) if run.quick else (10, 100, 1_000, 10_000)
    max_rows = run.args.max_rows or (10_000 if run.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="wonkalytics-scaling-") as tmp_name:
        tmp = Path(tmp_name)
        bench_chunks(sizes, 2 if run.quick else 8, run, report, tmp)
        bench_rows(max_rows, report, tmp)
    run.finish("scaling", "Scaling", INTRO, report, write=run.write and not run.args.max_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
