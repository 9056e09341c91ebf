"""How fast the dashboard's text search answers on a big table, without and with the search index.

Run from the repository root::

    .venv/bin/python bench/search.py            # full: 1M rows on SQLite, PostgreSQL and MariaDB
    .venv/bin/python bench/search.py --quick    # 50,000 rows, few rounds, prints only (CI)
    .venv/bin/python bench/search.py --dialects sqlite --rows 200000

The rows are bench/read_side.py's (its server-side generator, its table loader; tables named
``wl_bench_search_<rows>`` here, kept and reused for 12 hours); one row in 2,000 gets the rare words
"zebra quartz" appended to its response. Per table, in one run: **scan** (the search index dropped)
then **index** (made by the migration step ``m009_search_index``, as ``wonkalytics init --upgrade``
does; its build time is reported). What is timed is the interactions page of the default period (the
last 7 days) filtered by the needle, as the dashboard asks it: ``ReadStore.interactions`` (the count
of matches and the first page of 50). Needles: common ("growth clear", in ~40 % of rows), rare
("zebra quartz"), absent, and short ("zq", always a scan).

The writer's extra cost: rows of the same shape inserted through ``TableStore.insert_many`` (batches
of 500) into a fresh table without and with the index, interleaved, microseconds per row.

Only the ``search`` section of BENCHMARKS.md is written (full runs).
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import _harness
import read_side
import sqlalchemy as sa

from wonkalytics.store.engine import dispose_engines, get_engine
from wonkalytics.store.migrations import STEPS
from wonkalytics.store.queries import Filters, Period, ReadStore, make_period
from wonkalytics.store.search import detect, search_table_name
from wonkalytics.store.sql import TableStore

TABLE = "wl_bench_search"
NEEDLES = {"common": "growth clear", "rare": "zebra quartz", "absent": "no such words", "short": "zq"}
TARGET_MS = 300.0
STEP = next(s for s in STEPS if s.name == "m009_search_index")


def load(url: str, count: int, now: dt.datetime) -> tuple[str, float]:
    """The bench table (read_side's loader under this script's name) with the rare words; load seconds."""
    read_side.TABLE = TABLE  # read_side.table_name() reads it: our own tables, theirs stay untouched
    drop_index(url, read_side.table_name(count))
    took = read_side.ensure_table(url, count, now)
    name = read_side.table_name(count)
    if took:
        with read_side.unbounded(url).begin() as conn:
            glue = "CONCAT(response, ' zebra quartz')" if conn.dialect.name != "sqlite" else \
                "response || ' zebra quartz'"
            conn.execute(sa.text(f"UPDATE {name} SET response = {glue} WHERE MOD(row_pk, 2000) = 7"
                                 if conn.dialect.name != "sqlite" else
                                 f"UPDATE {name} SET response = {glue} WHERE row_pk % 2000 = 7"))
    return name, took


def drop_index(url: str, name: str) -> None:
    """Remove the search index of ``name`` (whatever m008 made), so the scan is measured."""
    engine = read_side.unbounded(url)
    inspector = sa.inspect(engine)
    if not inspector.has_table(name):
        return
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            fts = search_table_name(sa.table(name))  # type: ignore[arg-type]
            for suffix in ("_ai", "_ad", "_au"):
                conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{fts}{suffix}"')
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{fts}"')
            return
        for index in inspector.get_indexes(name):
            if index["name"] and (index["name"].endswith("_trgm") or index["name"].startswith("ft_")):
                what = f"`{index['name']}` ON {name}" if conn.dialect.name != "postgresql" else index["name"]
                conn.exec_driver_sql(f"DROP INDEX {what}")


def make_index(url: str, name: str) -> float:
    """Run m008 (probe, plan, statements) on the unbounded engine; returns the seconds it took."""
    engine = read_side.unbounded(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        table = sa.Table(name, sa.MetaData(), autoload_with=conn)
        table.info.update(STEP.probe(conn, table) if STEP.probe else {})
        plan = STEP.plan(table, conn.dialect)
        assert not plan.attention, plan.note
        for statement in plan.statements:
            conn.execute(sa.text(statement))
    took = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"ANALYZE {name}"))
    return took


def searches(url: str, name: str, rounds: int, period: Period) -> dict[str, list[float]]:
    """Milliseconds of each needle's interactions page, rounds in shuffled order after one warm-up."""
    dispose_engines()
    reader = ReadStore(url, name)
    times: dict[str, list[float]] = {k: [] for k in NEEDLES}
    for index in range(-1, rounds):
        for key in sorted(NEEDLES, key=lambda _: random.random()):
            started = time.perf_counter()
            reader.interactions(period, Filters(text=NEEDLES[key]))
            if index >= 0:
                times[key].append((time.perf_counter() - started) * 1000)
    return times


def matches(url: str, name: str, period: Period) -> dict[str, int]:
    reader = ReadStore(url, name)
    return {k: reader.interactions(period, Filters(text=v), page_size=1).total for k, v in NEEDLES.items()}


def insert_cost(url: str, rows: int) -> dict[str, float]:
    """Microseconds per inserted row into a fresh table without / with the search index (interleaved)."""
    engine = read_side.unbounded(url)
    names = {"plain": f"{TABLE}_ins_plain", "indexed": f"{TABLE}_ins_indexed"}
    with engine.begin() as conn:
        for n in names.values():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {n}")
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{n}_search"')
    stores = {}
    for arm, n in names.items():
        store = TableStore(url, n)
        store.create_table()
        if arm == "indexed":
            make_index(url, n)
        stores[arm] = TableStore(url, n, create=False)
    now = dt.datetime(2026, 1, 1)
    phrases = read_side._PHRASES
    per_row: dict[str, list[float]] = {k: [] for k in stores}
    batch = 500
    for r in range(-1, rows // batch):
        for arm in sorted(stores, key=lambda _: random.random()):
            data: list[dict[str, Any]] = [{
                "event_id": f"{arm}-{r}-{i}", "timestamp": now, "model": "gpt-4o", "status": "ok",
                "system_msg": "You are a concise assistant for HR competence reports.",
                "messages": f"user:\n{phrases[i % 8]} {phrases[(i * 3) % 8]}\n\n",
                "response": f"{phrases[(i * 5) % 8]} and {phrases[(i * 7) % 8]} {r}"} for i in range(batch)]
            started = time.perf_counter()
            stores[arm].insert_many(data)
            if r >= 0:
                per_row[arm].append((time.perf_counter() - started) * 1e6 / batch)
    with engine.begin() as conn:
        for n in names.values():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {n}")
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{n}_search"')
    return {arm: statistics.median(v) for arm, v in per_row.items()}


def main() -> None:
    run = _harness.start(__doc__, __file__, extra=lambda p: (
        p.add_argument("--rows", type=int, default=None),
        p.add_argument("--dialects", default="sqlite,postgresql,mariadb")))
    count = run.args.rows or (50_000 if run.quick else 1_000_000)
    rounds = 5 if run.quick else 12
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    results: dict[str, Any] = {}
    for dialect in run.args.dialects.split(","):
        url = read_side.DIALECT_URLS[dialect]
        if dialect == "sqlite":
            url = url.replace("bench-read.db", f"bench-search-{count}.db")
        name, load_s = load(url, count, now)
        print(f"{dialect}: {name} ready (load {load_s:.0f} s)", flush=True)
        # One period for the whole table's run: "the last 7 days" measured from now would drop rows as the
        # minutes pass and change the counts between the two arms.
        period = make_period("7d", now=now.replace(tzinfo=dt.UTC))
        found = matches(url, name, period)
        scan = searches(url, name, rounds, period)
        build_s = make_index(url, name)
        with get_engine(url).connect() as conn:
            kind = detect(conn, sa.Table(name, sa.MetaData(), autoload_with=conn)).kind
        print(f"  index ({kind}) built in {build_s:.1f} s", flush=True)
        indexed = searches(url, name, rounds, period)
        assert matches(url, name, period) == found, "the index changed the results"
        cost = insert_cost(url, 2_000 if run.quick else 10_000)
        results[dialect] = {"version": read_side.server_version(url), "found": found, "scan": scan,
                            "indexed": indexed, "build_s": build_s, "load_s": load_s, "kind": kind, "insert": cost}
        for key in NEEDLES:
            print(f"  {key:7s} {found[key]:7,d} matches  scan p95 {read_side.p95(scan[key]):7.1f} ms  "
                  f"index p95 {read_side.p95(indexed[key]):7.1f} ms", flush=True)
        print(f"  insert: {cost['plain']:.1f} us/row plain, {cost['indexed']:.1f} us/row indexed", flush=True)
        dispose_engines()
    section = report(results, count, rounds, run)
    print(section)
    if run.write:
        _harness.write_section(run.args.output, "search", section)
        print(f"Wrote section 'search' of {run.args.output}")


def report(results: dict[str, Any], count: int, rounds: int, run: _harness.Run) -> str:
    lines = ["## Text search", "",
             "Written by `bench/search.py` (rerun it; do not edit by hand). The dashboard's interactions page "
             f"filtered by a needle (count of matches + first page of 50, default 7-day period) on {count:,} rows "
             f"(bench/read_side.py's rows), {rounds} rounds per needle, milliseconds: **scan** (no search index) "
             "and **index** (`init --upgrade` step `m009_search_index`) measured in the same run, the scan first. "
             "Target (issue 16): p95 <= 300 ms. Results are identical with and without the index (checked by the "
             "bench and by tests/read/test_search.py).", "",
             f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {read_side.machine()}",
             f"- Command: `{_harness.command_line(run.script)}` ({'quick' if run.quick else 'full'} plan, "
             f"{(time.monotonic() - run.started) / 60:.1f} minutes)", "",
             "| Database | Needle | Matches in period | Scan: median | Scan: p95 | Index: median | Index: p95 | "
             "Ratio p95 | Verdict (index) |", "|---|---|---|---|---|---|---|---|---|"]
    for dialect, data in results.items():
        for key, needle in NEEDLES.items():
            scan, idx = data["scan"][key], data["indexed"][key]
            verdict = "**PASS**" if read_side.p95(idx) <= TARGET_MS else "**MISS**"
            lines.append(f"| {dialect} | {key} `{needle}` | {data['found'][key]:,} | {statistics.median(scan):.0f} | "
                         f"{read_side.p95(scan):.0f} | {statistics.median(idx):.0f} | {read_side.p95(idx):.0f} | "
                         f"{read_side.p95(idx) / read_side.p95(scan):.2f} | {verdict} |")
    lines += ["", "| Database | Index | Built in (1M rows) | Insert µs/row, plain | Insert µs/row, indexed | "
              "Extra µs/row |", "|---|---|---|---|---|---|"]
    for dialect, data in results.items():
        cost = data["insert"]
        lines.append(f"| {dialect} ({data['version']}) | {data['kind']} | {data['build_s']:.0f} s | "
                     f"{cost['plain']:.1f} | {cost['indexed']:.1f} | {cost['indexed'] - cost['plain']:.1f} |")
    lines += ["", NOTES]
    return "\n".join(lines)


NOTES = """What the index serves: needles found in few rows (rare, absent). There the count of matches and the \
page read the candidates only, instead of every interaction of the period: PostgreSQL's planner picks the GIN \
indexes itself, SQLite and MariaDB use their prefilter when a bounded count finds at most 5,000 candidates in the \
whole table (`store/search.py`, `CANDIDATES_MAX`).

What it does not serve, and why those rows can miss the 300 ms target: **short needles** (under three characters: \
no trigram, no FULLTEXT word) and **common needles** (here in 14 % of the rows) are answered by scanning the \
period, as before: the page of 50 stops early, but the total of matches ("N interactions") needs the substring \
test on every interaction of the 7 days (~115k rows, three text columns), which is the whole cost. Through the \
index a common needle is slower still (SQLite: 2.5 s through the FTS5 table against 0.56 s scanning the period, \
before the bounded count was added), so the scan is kept for it. MariaDB's FULLTEXT prefilter needs a whole word \
inside the needle ("growth clear" and "zebra quartz" have none: either word may be part of a longer one), \
so only needles of three or more words use it; MariaDB's scans were also the slowest here (load ~7 on 2 cores \
shared with other jobs during its part of the run).

Insert cost: batches of 500 rows through `TableStore.insert_many` into a fresh table, interleaved with and without \
the index (median per row), paid on the writer's thread, never on the caller's path. SQLite's triggers tokenize \
each row's ~300 characters of prompt and response into trigrams; PostgreSQL's GIN maintenance is cheaper per row \
(its pending list is merged into the index by VACUUM or when it fills); MariaDB's FULLTEXT is applied at COMMIT."""


if __name__ == "__main__":
    main()
