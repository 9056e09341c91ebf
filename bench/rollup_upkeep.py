"""Where the writer's rollup upkeep goes: thread CPU per row of each phase, and statements per batch.

Run from the repository root::

    .venv/bin/python bench/rollup_upkeep.py            # 2,000 rows in 200-row batches, SQLite and PostgreSQL
    .venv/bin/python bench/rollup_upkeep.py --quick    # a smoke run (CI): 400 rows, one round

The rows of ``bench/writer_cpu.py`` (its workload) go through ``TableStore.insert_many`` on this thread,
into a table without and with rollup tables, one after the other, ``--rounds`` times; the median of
each arm and their difference are printed, then the thread CPU of each phase of the upkeep, measured
by wrapping the functions named (inclusive: a phase includes the phases it calls). Prints only: the
figures are copied by hand into BENCHMARKS.md's "Rollup upkeep" section. ``bench/writer_cpu.py``'s
"with minus without" rows (every writer thread, the recorder in front) are the figures of record.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _harness as h
import _workload as w
import sqlalchemy as sa
from writer_cpu import _rollup_tables, configure

BATCH = 200


def _timed(totals: dict[str, float], owner: Any, name: str, label: str) -> Callable[[], None]:
    """Wrap ``owner.name`` so its thread CPU adds up in ``totals[label]``; returns the undo."""
    totals.setdefault(label, 0.0)   # printed in the order wrapped
    original = owner.__dict__[name]
    function = original.__func__ if isinstance(original, staticmethod) else original

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time_ns()
        try:
            return function(*args, **kwargs)
        finally:
            totals[label] += time.thread_time_ns() - start

    setattr(owner, name, staticmethod(wrapper) if isinstance(original, staticmethod) else wrapper)
    return lambda: setattr(owner, name, original)


def _phases(totals: dict[str, float]) -> list[Callable[[], None]]:
    from wonkalytics.store import rollup_batch, rollup_keeper, rollups

    keeper = rollup_keeper.Keeper
    return [
        _timed(totals, rollup_keeper, "begin_insert", "before the INSERT: ids + rollup rows looked up (incl. below)"),
        _timed(totals, rollups.Rollup, "aggregate", "  aggregate the batch (Python)"),
        _timed(totals, rollups.Rollup, "levelled", "  add quarter hours up per day (Python)"),
        _timed(totals, rollup_batch, "lookup", "  the look-up statement"),
        _timed(totals, keeper, "_apply_batched", "after the INSERT: merge and write (incl. below)"),
        _timed(totals, keeper, "_merged", "  merge stored rows + deltas (Python)"),
        _timed(totals, rollup_batch, "write", "  the one write statement (PostgreSQL)"),
        _timed(totals, keeper, "_apply_users", "  users UPSERTs, one per table (SQLite)"),
    ]


def arm(url: str, rows: int, rollups: bool, tmp: Path, totals: dict[str, float] | None) -> tuple[float, float]:
    """(thread CPU µs per row, statements per batch) of ``rows`` rows in 200-row batches."""
    import wonkalytics
    from wonkalytics.record.build import record_builder
    from wonkalytics.recorder import default_recorder

    with w.fresh_table(url, "upkeep") as table:
        if rollups:
            _rollup_tables(url, table, create=True)
        configure(url, table, tmp / table)
        sink = default_recorder.sink
        build = record_builder()
        fitted = [sink.fit(build(w.interaction(i)).row) for i in range(rows + 1)]
        sink.store.insert_many(fitted[:1])   # reflect, probe the rollup tables: outside the clock
        statements = [0]

        def count(*_: Any) -> None:
            statements[0] += 1

        undo = _phases(totals) if totals is not None else []
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
        start = time.thread_time_ns()
        for i in range(1, rows + 1, BATCH):
            sink.store.insert_many(fitted[i : i + BATCH])
        used = (time.thread_time_ns() - start) / rows / 1e3
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
        for step in undo:
            step()
        wonkalytics.shutdown()
        if rollups:
            _rollup_tables(url, table, create=False)
    return used, statements[0] / (rows / BATCH)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke run (CI): 400 rows, 1 round; prints only")
    args = p.parse_args(argv)
    if args.quick:  # .ci/run runs every bench with --quick; this one never writes BENCHMARKS.md
        args.rows, args.rounds = 400, 1
    with tempfile.TemporaryDirectory(prefix="wonkalytics-upkeep-") as name:
        tmp = Path(name)
        for dialect, url in (("sqlite", f"sqlite:///{tmp}/upkeep.db"), ("postgresql", h.POSTGRES_URL)):
            totals: dict[str, float] = defaultdict(float)
            cost: dict[bool, list[float]] = {False: [], True: []}
            count: dict[bool, float] = {}
            for _ in range(args.rounds):
                for rollups in (False, True):
                    used, count[rollups] = arm(url, args.rows, rollups, tmp, totals if rollups else None)
                    cost[rollups].append(used)
            without, with_ = statistics.median(cost[False]), statistics.median(cost[True])
            print(f"{dialect}: {args.rounds} rounds x {args.rows:,} rows; thread CPU per row without {without:.1f} µs, "
                  f"with {with_:.1f} µs: upkeep {with_ - without:.1f} µs; statements a batch {count[False]:.0f} "
                  f"without, {count[True]:.0f} with")
            for label, ns in totals.items():
                print(f"  {label:66s} {ns / (args.rounds * args.rows) / 1e3:5.1f} µs/row")
    print(f"load average: {' / '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
