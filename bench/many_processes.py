"""Twenty app processes writing to one table: every row exactly once, no deadlock reaching a caller.

Run from the repository root::

    .venv/bin/python bench/many_processes.py            # full run (~3 min), writes its BENCHMARKS.md section
    .venv/bin/python bench/many_processes.py --quick    # smoke run (CI), prints only

For PostgreSQL and MariaDB: 20 producer processes (each its own recorder, writer and pool, as 20
Gunicorn workers are) start, reflect the table, then on a common signal each record 5,000 interactions
through ``default_recorder.record()`` and ``flush()``. A 21st process meanwhile scores rows of the
other processes with ``wonkalytics.score(response_id, value, wait=False)`` (the row may not exist yet:
the update waits for it, within ``update_grace``). Checked afterwards, on the database: exactly
100,000 rows (plus one warm-up row per process), as many distinct event ids, every score in place;
and in every process: no error reached the caller and nothing was rejected (a deadlock the database
broke is retried inside the store). Throughput is compared with one process writing its 5,000 rows
alone, in the same run.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _harness as h
import _workload as w
from _harness import Report, rate

CHILD_FLAG = "--child"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:300])


def child(spec_json: str) -> None:
    """A producer (role "produce") or the scorer (role "score")."""
    import wonkalytics
    from wonkalytics.recorder import default_recorder

    spec = json.loads(spec_json)
    seen = _Collect()
    logging.getLogger("wonkalytics").addHandler(seen)
    wonkalytics.configure(database_url=spec["url"], table=spec["table"], spool_dir=spec["spool"])
    default_recorder.record(w.interaction(0, prefix=f"warm{spec['index']}"))
    if not wonkalytics.flush(120):
        raise RuntimeError("the warm-up row was not written")
    out: dict[str, Any] = {"role": spec["role"]}
    if spec["role"] == "produce":
        items = [w.interaction(i, response_id=f"chatcmpl-mp-{spec['index']}-{i}") for i in range(spec["rows"])]
    else:
        rng = random.Random(spec["index"])
        targets = [(rng.randrange(spec["producers"]), rng.randrange(spec["rows"])) for _ in range(spec["scores"])]
        items = [f"chatcmpl-mp-{p}-{i}" for p, i in dict.fromkeys(targets)]
    print("ready", flush=True)
    sys.stdin.readline()
    out["start"] = time.monotonic()
    errors = 0
    if spec["role"] == "produce":
        for item in items:
            default_recorder.record(item)
    else:
        for number, response_id in enumerate(items):
            try:
                wonkalytics.score(response_id, float(number % 100) + 0.5, wait=False)
            except Exception as exc:  # a caller must never see a database error
                errors += 1
                seen.messages.append(f"score raised {type(exc).__name__}: {exc}")
            time.sleep(spec["score_pause"])
        out["scored"] = {rid: float(n % 100) + 0.5 for n, rid in enumerate(items)}
    out["flushed"] = wonkalytics.flush(600)
    out["end"] = time.monotonic()
    # A score whose row is not written yet is parked and retried with backoff (within update_grace); a
    # process that exits first spools it for its successor. This one stays, as a server would, until
    # every score is in the table (read back), or 180 s.
    waited = time.monotonic()
    if spec["role"] == "score":
        while scores_in_place(spec["url"], spec["table"], out["scored"]) < len(out["scored"]):
            if time.monotonic() - waited > 180:
                break
            time.sleep(0.2)
    out["pending_wait_s"] = time.monotonic() - waited
    health = wonkalytics.health()["table"]
    out.update(
        errors=errors,
        rejected=health.rejected,
        retried=health.retried,
        pending_updates=health.pending_updates,
        queued=health.queued,
        warnings=seen.messages[:5],
        deadlock_warnings=sum("deadlock" in m.lower() for m in seen.messages),
    )
    wonkalytics.shutdown()
    print(json.dumps(out), flush=True)


def launch(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return h.run_children(__file__, CHILD_FLAG, specs, timeout=1800)


def scores_in_place(url: str, table: str, expected: dict[str, float]) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = dict(conn.execute(sa.text(f"SELECT response_id, score FROM {table} WHERE score IS NOT NULL")).all())
    finally:
        engine.dispose()
    return sum(1 for rid, value in expected.items() if found.get(rid) == value)


def bench_database(name: str, url: str, plan: dict[str, int], tmp: Path, report: Report) -> None:
    producers, rows = plan["producers"], plan["rows"]
    base = {"url": url, "rows": rows, "producers": producers, "scores": plan["scores"]}
    with w.fresh_table(url, "one") as table:
        alone = launch([{**base, "table": table, "role": "produce", "index": 0, "spool": str(tmp / f"{name}-one")}])
        one_rate = rows / (alone[0]["end"] - alone[0]["start"])
    with w.fresh_table(url, "many") as table:
        specs = [
            {**base, "table": table, "role": "produce", "index": i, "spool": str(tmp / f"{name}-{i}")}
            for i in range(producers)
        ]
        specs.append(
            {
                **base,
                "table": table,
                "role": "score",
                "index": producers,
                "spool": str(tmp / f"{name}-scorer"),
                "score_pause": plan["score_pause_ms"] / 1e3,
            }
        )
        results = launch(specs)
        landed, distinct = w.count(url, table)
        scorer = next(r for r in results if r["role"] == "score")
        in_place = scores_in_place(url, table, scorer["scored"])
    made = [r for r in results if r["role"] == "produce"]
    wall = max(r["end"] for r in made) - min(r["start"] for r in made)
    expected = producers * rows + producers + 1  # + one warm-up row per process
    section = f"{producers} processes x {rows:,} rows into one {name} table"
    ok = landed == distinct == expected
    report.add(
        section,
        "rows in the table",
        f"expected {expected:,}",
        f"{landed:,} ({distinct:,} distinct event ids)",
        "",
        "exactly",
        "PASS" if ok else "MISS",
    )
    errors = sum(r["errors"] + r["rejected"] for r in results)
    deadlocks = sum(r["deadlock_warnings"] for r in results)
    retried = sum(r["retried"] for r in results)
    report.add(
        section,
        "errors reaching a caller / rows rejected",
        "",
        f"{errors}",
        f"{retried} batches retried inside the writers; {deadlocks} deadlock warnings logged",
        "0",
        "PASS" if errors == 0 else "MISS",
    )
    total_rate = producers * rows / wall
    report.add(
        section,
        "throughput, all processes together",
        f"one process alone {rate(one_rate)}",
        f"{rate(total_rate)} ({total_rate / one_rate:.2f}x one process)",
        f"wall {wall:.1f} s",
        "",
        "info",
    )
    report.add(
        section,
        "scores from another process during the load",
        f"{len(scorer['scored'])} scores",
        f"{in_place} in place",
        "wait=False; rows may not exist yet when scored; all were in place "
        f"{scorer['pending_wait_s']:.1f} s after the scorer's flush()",
        "all",
        "PASS" if in_place == len(scorer["scored"]) else "MISS",
    )
    warnings = sorted({m for r in results for m in r["warnings"]})
    report.details.append(
        f"- {name} scorer: flushed {scorer['flushed']}, then {scorer['pending_wait_s']:.1f} s until every score "
        f"was in the table (parked updates retried with backoff), pending updates at exit {scorer['pending_updates']}, "
        f"queued {scorer['queued']}, {in_place}/{len(scorer['scored'])} scores in place"
    )
    report.details.append(
        f"- {name}: {producers} producers + 1 scorer, started and warmed before a common go; "
        f"one-process baseline {rows:,} rows in {rows / one_rate:.1f} s; warnings seen: "
        + ("; ".join(f"`{m}`" for m in warnings[:5]) or "none")
    )


INTRO = """\
Twenty processes writing one PostgreSQL and one MariaDB table at once, with scores from another
process during the load, written by `bench/many_processes.py`.
"""


def main(argv: list[str] | None = None) -> int:
    run = h.start(__doc__, __file__, argv)
    plan = (
        {"producers": 2, "rows": 100, "scores": 20, "score_pause_ms": 5}
        if run.quick
        else {"producers": 20, "rows": 5_000, "scores": 500, "score_pause_ms": 20}
    )
    report = Report()
    with tempfile.TemporaryDirectory(prefix="wonkalytics-procs-") as tmp:
        for name, url in h.SERVER_URLS.items():
            bench_database(name, url, plan, Path(tmp), report)
    run.finish("many_processes", "Many processes, one table", INTRO, report)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        child(sys.argv[2])
    else:
        raise SystemExit(main())
