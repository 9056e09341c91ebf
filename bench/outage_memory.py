"""Memory through a long outage: 100,000 interactions recorded while the database is down, then the drain.

Run from the repository root::

    .venv/bin/python bench/outage_memory.py            # full run (~2 min), writes its BENCHMARKS.md section
    .venv/bin/python bench/outage_memory.py --quick    # smoke run (CI), prints only

PostgreSQL sits behind a ``FaultProxy`` (in a child process). The table is created and reflected while
the database is up; then the proxy refuses every connection (the server is down) and the app records
100,000 interactions with texts of their own (~3.2 KB each as a row), through
``default_recorder.record()`` with the default settings (queue of 10,000, memory durability). Measured:

* peak RSS growth over the outage (the process's high-water mark, reset before it starts) against the
  RSS before it, and the time ``record()`` took per call;
* where the rows went: ``wonkalytics.health()`` (queued, spooled) and the spool files on disk;
* after recovery: how long ``flush()`` takes to drain everything, and the rate;
* what landed: exactly one row per interaction (count and distinct ``event_id``), none lost, none twice.

Each run is one process of its own (``--child``), so the high-water mark is this measurement's alone;
the full run repeats it and reports medians.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h
import _workload as w
from _harness import Report, verdict
from _proxy import Proxy

CHILD_FLAG = "--child"
TARGET_RSS_MB = 50.0


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def spool_lines(directory: Path) -> tuple[int, int]:
    """(files, lines) under the spool directory (rejected-ops files excluded)."""
    files = [p for p in directory.rglob("*") if p.is_file() and "rejected" not in p.name]
    lines = 0
    for path in files:
        with open(path, "rb") as handle:
            lines += sum(1 for _ in handle)
    return len(files), lines


def child(spec_json: str) -> None:
    import sqlalchemy as sa

    import wonkalytics
    from wonkalytics.recorder import default_recorder

    spec = json.loads(spec_json)
    rows, spool = spec["rows"], Path(spec["spool"])
    proxy = Proxy(sa.make_url(h.POSTGRES_URL).port or 5432)
    out: dict[str, Any] = {}
    try:
        with w.fresh_table(h.POSTGRES_URL, "outage") as table:
            options: dict[str, Any] = {"statement_timeout": 5.0, "connect_timeout": 2.0}
            if spec.get("queue_size"):
                options["queue_size"] = spec["queue_size"]
            wonkalytics.configure(database_url=proxy.url(h.POSTGRES_URL), table=table, spool_dir=str(spool), **options)
            default_recorder.record(w.interaction(0, prefix="warm"))
            if not wonkalytics.flush(60):
                raise RuntimeError("the warm-up row was not written")
            proxy.send("refuse")
            gc.collect()
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            before = rss_kb("VmRSS")
            record = default_recorder.record
            caller = 0
            for index in range(rows):
                item = w.interaction(index, unique=True)  # built by the app, as the wrapper would
                start = time.perf_counter_ns()
                record(item)
                caller += time.perf_counter_ns() - start
                del item
            peak = rss_kb("VmHWM")
            health = wonkalytics.health()["table"]
            files, lines = spool_lines(spool)
            out.update(
                before_mb=before / 1024,
                growth_mb=(peak - before) / 1024,
                caller_us=caller / rows / 1e3,
                queued=health.queued,
                spooled=health.spooled,
                spool_files=files,
                spool_lines=lines,
                written_during=health.written,
            )
            proxy.send("recover")
            start = time.perf_counter()
            drained = wonkalytics.flush(900)
            out["drain_s"] = time.perf_counter() - start
            out["drained"] = drained
            landed, distinct = w.count(h.POSTGRES_URL, table)
            out.update(landed=landed - 1, distinct=distinct - 1, rows=rows)
            out["spool_left"] = spool_lines(spool)[1]
            wonkalytics.shutdown()
    finally:
        proxy.close()
    print(json.dumps(out), flush=True)


def bench(run: h.Run, report: Report, tmp: Path) -> None:
    runs = []
    repeats, rows = (1, 3_000) if run.quick else (3, 100_000)
    for index in range(repeats):
        spec: dict[str, Any] = {"rows": rows, "spool": str(tmp / f"spool-{index}")}
        if run.quick:
            spec["queue_size"] = 1_000  # so the smoke run spills to the spool too
        done = subprocess.run(
            [sys.executable, __file__, CHILD_FLAG, json.dumps(spec)],
            capture_output=True,
            text=True,
            check=True,
            cwd=h.ROOT,
            timeout=1800,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))

    def med(key: str) -> float:
        return h.median([float(r[key]) for r in runs])

    section = f"{rows:,} interactions recorded with PostgreSQL down (connections refused)"
    growth = med("growth_mb")
    report.add(
        section,
        "peak RSS growth over the outage",
        f"RSS before {med('before_mb'):.0f} MB",
        f"{growth:.1f} MB",
        "per run " + "/".join(f"{r['growth_mb']:.1f}" for r in runs) + " MB",
        f"<= {TARGET_RSS_MB:g} MB",
        verdict(growth, float("nan"), TARGET_RSS_MB),
    )
    report.add(section, "record() per call, during the outage", "", f"{med('caller_us'):.1f} µs", "", "", "info")
    report.add(
        section,
        "where the rows were at the end of the outage",
        "",
        f"{med('queued'):,.0f} queued (memory + this process's spool), {med('spooled'):,.0f} spooled",
        f"spool on disk: {med('spool_files'):.0f} files, {med('spool_lines'):,.0f} lines",
        "",
        "info",
    )
    drain = med("drain_s")
    report.add(
        section,
        "drain after recovery",
        "",
        f"{drain:.1f} s ({rows / drain:,.0f} rows/s)",
        "per run " + "/".join(f"{r['drain_s']:.1f}" for r in runs) + " s",
        "",
        "info",
    )
    lost = max(r["rows"] - r["distinct"] for r in runs)
    doubled = max(r["landed"] - r["distinct"] for r in runs)
    report.add(section, "lost rows", "", f"{lost}", "", "0", "PASS" if lost == 0 else "MISS")
    report.add(section, "duplicated rows", "", f"{doubled}", "", "0", "PASS" if doubled == 0 else "MISS")
    report.details.append(
        f"- {repeats} runs, each its own process: queue_size {'1,000' if run.quick else '10,000 (default)'}, "
        "memory durability, statement_timeout 5 s, connect_timeout 2 s; RSS from /proc/self/status (VmHWM "
        "reset through /proc/self/clear_refs before the outage); per run: " + json.dumps(runs)
    )


INTRO = """\
Peak memory, spill to the spool and drain after recovery when the database is down for 100,000
interactions, written by `bench/outage_memory.py`.
"""


def main(argv: list[str] | None = None) -> int:
    run = h.start(__doc__, __file__, argv)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="wonkalytics-outage-") as tmp:
        bench(run, report, Path(tmp))
    run.finish("outage_memory", "Outage memory", INTRO, report)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        child(sys.argv[2])
    else:
        raise SystemExit(main())
