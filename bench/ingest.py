"""Interactions per second through the whole writer, against the database's own best plain path.

Run from the repository root::

    .venv/bin/python bench/ingest.py              # full run (several minutes), writes its BENCHMARKS.md section
    .venv/bin/python bench/ingest.py --quick      # smoke run (CI), prints only
    .venv/bin/python bench/ingest.py --db postgresql --db mariadb   # some databases only (prints only)

For SQLite (a file in a temporary directory), PostgreSQL and MariaDB (the loopback servers), each round
runs every arm once, in a shuffled order, each into a fresh default table (created outside the clock):

* **wonkalytics**: ``default_recorder.record(Interaction)`` from 1, 4 or 16 producer threads, or from 4
  producer processes, then ``wonkalytics.flush()``; the clock runs from the first ``record()`` to the
  end of the flush, so record building, fitting and the driver are all inside it. The table was
  reflected (one warm-up row) before the clock starts.
* **raw executemany**: the very rows the writer produced (read back from a scratch table, new event
  ids), inserted with SQLAlchemy Core ``conn.execute(insert(table), batch)``, 500 rows per transaction,
  from 1 and 4 threads. No record building, no dedupe: the database's own speed through SQLAlchemy.
* **seed per row**: the design Wonkalytics replaced, per row a new connection, an
  ``INFORMATION_SCHEMA.COLUMNS`` query (``PRAGMA table_info`` on SQLite), the INSERT and a commit.

Rows are about 3.2 KB; the servers commit with fsync on (their defaults). Every arm checks afterwards
that exactly its rows landed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h
import _workload as w
from _harness import Report, rate, verdict

CHILD_FLAG = "--child-ingest"
TARGET_VS_RAW = 0.8
TARGET_COPY_VS_RAW = 1.5
TARGET_PG_RATE = 10_000


@dataclass(frozen=True)
class Plan:
    rounds: int
    rows: dict[str, int]  # per database, per round of a wonkalytics / raw arm
    seed_rows: dict[str, int]
    threads: tuple[int, ...]
    processes: int


FULL = Plan(
    rounds=5,
    rows={"sqlite": 10_000, "postgresql": 10_000, "mariadb": 5_000},
    seed_rows={"sqlite": 300, "postgresql": 200, "mariadb": 100},
    threads=(1, 4, 16),
    processes=4,
)
QUICK = Plan(
    rounds=1,
    rows={"sqlite": 400, "postgresql": 400, "mariadb": 400},
    seed_rows={"sqlite": 10, "postgresql": 10, "mariadb": 10},
    threads=(1, 4, 16),
    processes=2,
)


def configure(url: str, table: str, spool: Path, **options: Any) -> None:
    import wonkalytics

    wonkalytics.configure(database_url=url, table=table, spool_dir=str(spool), **options)


def warm(count: int = 1) -> None:
    """Reflect the table and open the pool outside the clock (steady state is what is measured)."""
    import wonkalytics
    from wonkalytics.recorder import default_recorder

    for index in range(count):
        default_recorder.record(w.interaction(index, prefix="warm"))
    if not wonkalytics.flush(60):
        raise RuntimeError("the warm-up row was not written within 60 s")


def produce(interactions: list[Any], threads: int) -> tuple[float, float, float]:
    """Record from ``threads`` producers and flush: (wall seconds, caller seconds per record(), writer CPU s)."""
    import wonkalytics
    from wonkalytics.recorder import default_recorder

    shares = [interactions[i::threads] for i in range(threads)]
    caller: list[float] = []
    go = threading.Barrier(threads + 1)

    def producer(share: list[Any]) -> None:
        record = default_recorder.record
        go.wait()
        t0 = time.perf_counter()
        for item in share:
            record(item)
        caller.append((time.perf_counter() - t0) / max(1, len(share)))

    workers = [threading.Thread(target=producer, args=(share,)) for share in shares]
    for worker in workers:
        worker.start()
    cpu0 = h.wonkalytics_threads_cpu_ns() or 0
    go.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    if not wonkalytics.flush(600):
        raise RuntimeError("flush timed out after 600 s")
    wall = time.perf_counter() - start
    cpu = ((h.wonkalytics_threads_cpu_ns() or 0) - cpu0) / 1e9
    return wall, h.median(caller), cpu


def child_ingest(spec_json: str) -> None:
    """A producer process: configure, warm up, say ready, wait for go, record its share, flush."""
    spec = json.loads(spec_json)
    configure(spec["url"], spec["table"], Path(spec["spool"]))
    warm()
    interactions = [w.interaction(i, prefix=f"p{spec['index']}") for i in range(spec["rows"])]
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic()  # CLOCK_MONOTONIC is one clock for every process on the machine
    wall, caller, _ = produce(interactions, 1)
    print(json.dumps({"start": start, "end": start + wall, "caller": caller}), flush=True)


def processes(url: str, table: str, rows: int, count: int, tmp: Path) -> float:
    """Wall seconds for ``count`` processes to record and flush ``rows`` in all (start-up excluded)."""
    specs = [{"url": url, "table": table, "rows": rows // count, "index": index, "spool": str(tmp / f"p{index}")}
             for index in range(count)]
    results = h.run_children(__file__, CHILD_FLAG, specs, timeout=900)
    return max(r["end"] for r in results) - min(r["start"] for r in results)


def raw_threads(url: str, table: str, rows: list[dict[str, Any]], threads: int) -> float:
    if threads == 1:
        return w.raw_executemany(url, table, rows)
    raw = w.RawInserter(url, table)
    try:
        shares = [rows[i::threads] for i in range(threads)]
        workers = [threading.Thread(target=raw.insert, args=(share,)) for share in shares]
        conns = [raw.engine.connect() for _ in range(threads)]  # the pool's connections, outside the clock
        for conn in conns:
            conn.close()
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return time.perf_counter() - start
    finally:
        raw.close()


class Database:
    """The arms for one database; each returns rows per second and checks what landed."""

    def __init__(self, name: str, url: str, plan: Plan, tmp: Path) -> None:
        self.name, self.url, self.plan, self.tmp = name, url, plan, tmp
        self.rows = plan.rows[name]
        self.extra: dict[str, list[float]] = {}
        self.round = 0
        # The rows the writer produces for these interactions, read back once: the raw arms' input.
        with w.fresh_table(url, "ref") as table:
            configure(url, table, tmp / "ref-spool")
            warm(min(500, self.rows))
            template = w.rows_of(url, table)
        self.row_size = h.median([w.row_bytes(r) for r in template])
        self.template = [template[i % len(template)] for i in range(self.rows)]

    def _spool(self) -> Path:
        self.round += 1
        return self.tmp / f"{self.name}-{self.round}"

    def _check(self, table: str, expected: int) -> None:
        rows, distinct = w.count(self.url, table)
        if rows != expected or distinct != expected:
            raise RuntimeError(f"{self.name}: {rows} rows ({distinct} distinct event ids) landed, expected {expected}")

    def wonkalytics(self, threads: int, **options: Any) -> Callable[[], float]:
        def arm() -> float:
            interactions = [w.interaction(i) for i in range(self.rows)]
            with w.fresh_table(self.url) as table:
                configure(self.url, table, self._spool(), **options)
                warm()
                wall, caller, cpu = produce(interactions, threads)
                self._check(table, self.rows + 1)
            key = f"{threads}"
            self.extra.setdefault(f"caller {key}", []).append(caller)
            self.extra.setdefault(f"cpu {key}", []).append(cpu / self.rows)
            return self.rows / wall

        return arm

    def wonkalytics_processes(self) -> float:
        count = self.plan.processes
        rows = self.rows // count * count
        with w.fresh_table(self.url) as table:
            wall = processes(self.url, table, rows, count, self._spool())
            self._check(table, rows + count)
        return rows / wall

    def raw(self, threads: int) -> Callable[[], float]:
        def arm() -> float:
            rows = w.with_new_ids(self.template, f"raw{self.round}")
            self.round += 1
            with w.fresh_table(self.url) as table:
                seconds = raw_threads(self.url, table, rows, threads)
                self._check(table, len(rows))
            return len(rows) / seconds

        return arm

    def seed(self) -> float:
        rows = w.with_new_ids(self.template[: self.plan.seed_rows[self.name]], "seed")
        with w.fresh_table(self.url) as table:
            seconds = w.seed_per_row(self.url, table, rows)
            self._check(table, len(rows))
        return len(rows) / seconds


def bench_database(db: Database, plan: Plan, run: h.Run, report: Report) -> None:
    arms: dict[str, Callable[[], float]] = {}
    for threads in plan.threads:
        arms[f"wonkalytics, {threads} thread{'s' if threads > 1 else ''}"] = db.wonkalytics(threads)
    arms[f"wonkalytics, {plan.processes} processes"] = db.wonkalytics_processes
    arms["raw executemany, 1 thread"] = db.raw(1)
    arms["raw executemany, 4 threads"] = db.raw(4)
    arms["seed per row"] = db.seed
    result = h.run_rounds(arms, plan.rounds, run.rng, warmup=0, gc_off=False)
    section = f"Ingest into {db.name} (rows of {db.row_size / 1024:.1f} KB)"
    raw1 = result.med("raw executemany, 1 thread")
    seed = result.med("seed per row")
    report.add(section, "raw executemany, 500 rows per transaction, 1 thread", "", rate(raw1), "", "", "baseline")
    raw4 = result.med("raw executemany, 4 threads")
    report.add(section, "raw executemany, 4 threads", "", rate(raw4), f"{raw4 / raw1:.2f}x 1 thread", "", "baseline")
    seed_what = "seed design (connection + INFORMATION_SCHEMA + commit per row)"
    report.add(section, seed_what, "", rate(seed), "", "", "baseline")
    for name in arms:
        if not name.startswith("wonkalytics"):
            continue
        value = result.med(name)
        ratio, noise = result.ratio(name, "raw executemany, 1 thread")
        threads = name.split(", ")[1].split(" ")[0] if name.endswith(("thread", "threads")) else name
        target, verdict_text = f">= {TARGET_VS_RAW}x raw", verdict(ratio, noise, TARGET_VS_RAW, higher_is_better=True)
        if db.name == "postgresql" and name.endswith(" 1 thread"):
            target = f">= {TARGET_COPY_VS_RAW}x raw (COPY) and >= {TARGET_PG_RATE:,}/s"
            ok = ratio >= TARGET_COPY_VS_RAW and value >= TARGET_PG_RATE
            verdict_text = "PASS" if ok else "MISS"
        noise_text = f"±{noise:.2f}x; {value / seed:,.0f}x the seed design"
        if f"caller {threads}" in db.extra:
            caller = h.median(db.extra[f"caller {threads}"])
            cpu = h.median(db.extra[f"cpu {threads}"])
            noise_text += f"; record() {caller * 1e6:.1f} µs per call; writer CPU {cpu * 1e6:.0f} µs per row"
        report.add(
            section, name, f"raw {rate(raw1)}", f"{rate(value)} ({ratio:.2f}x raw)", noise_text, target, verdict_text
        )
    report.details.append(
        f"- {db.name}: {plan.rounds} rounds, {db.rows:,} rows per wonkalytics/raw arm, "
        f"{plan.seed_rows[db.name]} per seed arm; medians "
        + ", ".join(f"{name} {rate(result.med(name))}" for name in arms)
        + "; per round: "
        + "; ".join(f"{name} " + "/".join(f"{v:,.0f}" for v in result.times[name]) for name in arms)
    )


SWEEP = (50, 200, 500, 1000, 2000)


def bench_batch_sizes(db: Database, plan: Plan, run: h.Run, report: Report) -> None:
    """The writer's batch_size against the database: the commit per batch vs the statement size."""
    arms: dict[str, Callable[[], float]] = {f"batch_size {size}": db.wonkalytics(1, batch_size=size) for size in SWEEP}
    arms["raw executemany, 1 thread"] = db.raw(1)
    result = h.run_rounds(arms, plan.rounds, run.rng, warmup=0, gc_off=False)
    raw = result.med("raw executemany, 1 thread")
    best = max(SWEEP, key=lambda size: result.med(f"batch_size {size}"))
    for size in SWEEP:
        name = f"batch_size {size}"
        ratio, noise = result.ratio(name, "raw executemany, 1 thread")
        report.add(
            f"Writer batch size, {db.name}, 1 producer thread",
            name + (" (the default)" if size == 200 else ""),
            f"raw {rate(raw)}",
            f"{rate(result.med(name))} ({ratio:.2f}x raw)",
            f"±{ratio_noise(noise)}" + ("; the fastest here" if size == best else ""),
            "",
            "info",
        )
    report.details.append(
        f"- batch sizes, {db.name}: {plan.rounds} rounds x {db.rows:,} rows; per round: "
        + "; ".join(f"{name} " + "/".join(f"{v:,.0f}" for v in result.times[name]) for name in arms)
    )


def ratio_noise(noise: float) -> str:
    return "n/a" if noise != noise else f"{noise:.2f}x"


INTRO = """\
Interactions per second through the whole writer (record building, fitting, the driver) into each
database, against SQLAlchemy's plain `executemany` of the same rows and against the seed's per-row design,
written by `bench/ingest.py`.
"""

HOW_TO_READ = """\
- Rates are medians over rounds; each round runs every arm once in a shuffled order, each into a
  fresh default table, and checks that exactly its rows (distinct event ids) landed.
- "x raw" is median(wonkalytics) / median(raw executemany, 1 thread) of this run; "±" is the
  approximate 95% interval of the per-round ratio. The writer skips duplicates (ON CONFLICT / ON
  DUPLICATE KEY) and builds every row from an `Interaction`; the raw arm does neither.
- "record() per call" is what a producer thread spent per `record()`: the caller's share.
  "writer CPU per row" is the CPU time of Wonkalytics' own threads divided by the rows.
- With 2 cores shared with other work, 16 threads and 4 processes compete for the same CPUs as the
  writer(s) and the database server.
"""


def main(argv: list[str] | None = None) -> int:
    def options(parser: Any) -> None:
        parser.add_argument(
            "--db",
            action="append",
            choices=("sqlite", "postgresql", "mariadb"),
            help="only these databases (repeatable; prints only unless --write)",
        )
        parser.add_argument("--rounds", type=int, help="override the number of rounds")
        parser.add_argument(
            "--batch-sweep", action="store_true", help="measure the writer's batch_size instead (its own section)"
        )

    run = h.start(__doc__, __file__, argv, options)
    plan = QUICK if run.quick else FULL
    if run.args.rounds:
        plan = Plan(run.args.rounds, plan.rows, plan.seed_rows, plan.threads, plan.processes)
    report = Report()
    import wonkalytics

    with tempfile.TemporaryDirectory(prefix="wonkalytics-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        urls = {"sqlite": f"sqlite:///{tmp}/ingest.db", **h.SERVER_URLS}
        sweep = run.args.batch_sweep
        for name in run.args.db or (("postgresql", "mariadb") if sweep else ("sqlite", "postgresql", "mariadb")):
            db = Database(name, urls[name], plan, tmp)
            (bench_batch_sizes if sweep else bench_database)(db, plan, run, report)
        wonkalytics.shutdown()
    report.details.append(f"- servers: {h.server_versions(h.SERVER_URLS)}")
    if sweep:
        run.finish(
            "ingest_batch",
            "Ingest: the writer's batch size",
            "Interactions per second through the writer for each `batch_size`, against raw executemany "
            "(500 rows per transaction) of the same rows, written by `bench/ingest.py --batch-sweep`.",
            report,
            HOW_TO_READ,
            extra_versions=("psycopg", "pymysql"),
            write=run.write and not run.args.db,
        )
        return 0
    run.finish(
        "ingest",
        "Ingest: interactions per second through the writer",
        INTRO,
        report,
        HOW_TO_READ,
        extra_versions=("psycopg", "pymysql"),
        write=run.write and not run.args.db,
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        child_ingest(sys.argv[2])
    else:
        sys.exit(main())
