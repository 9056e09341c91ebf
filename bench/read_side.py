"""How fast the read side answers on a big table: dashboard pages and ``stats --by model``, cold and warm.

Run from the repository root::

    .venv/bin/python bench/read_side.py             # 1,000,000 rows in SQLite and PostgreSQL (~10 min the
                                                    # first time; the tables are kept and reused)
    .venv/bin/python bench/read_side.py --quick     # 50,000 rows, fewer rounds (< 1 min), prints only
    .venv/bin/python bench/read_side.py --quick --write   # ... and writes its BENCHMARKS.md section

The rows are realistic: 60 days of traffic with a daily rhythm (busy working hours, quiet nights and
weekends), five models, 2,000 users in 40 tenants, app fields, 9% errors and aborts, a score on a
third of the calls, lognormal latencies, token counts and costs, prompts and answers of a few hundred
characters, and a few percent of events (rows without a model).

Measured, over HTTP against the real app (uvicorn in a thread, httpx as the client), with the default
period (the last 7 days, ~1/8 of the rows):

- ``/`` (the overview page: KPIs of this and the previous period) and each JSON call its charts make;
  "overview, all charts" is the page plus every chart request one after the other (a browser runs
  them in parallel, so this is an upper bound);
- ``/interactions`` filtered by model and status (the page of 50 and the count of all matches);
- ``stats --by model`` (``ReadStore.overview`` + ``groups``, as the CLI runs them).

**Warm**: repeated requests in one process (the usual case). **Cold**: a fresh interpreter that
imports everything, connects, reflects the table and answers one request (the operating system's file
cache stays warm: dropping it needs privileges a benchmark should not use). Each figure is the median
and the 95th percentile of its rounds; the target is a p95 of at most 300 ms for a page.

This script writes only its own section of BENCHMARKS.md, between ``<!-- read_side:start -->`` and
``<!-- read_side:end -->``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from wonkalytics.store.engine import dispose_engines, get_engine  # noqa: E402
from wonkalytics.store.queries import ReadStore, make_period  # noqa: E402
from wonkalytics.store.rollups import rebuild  # noqa: E402
from wonkalytics.store.sql import TableStore  # noqa: E402
from wonkalytics.store.views import create_read_index  # noqa: E402

TABLE = "wl_bench_read"
TARGET_MS = 300.0
DIALECT_URLS = {
    "sqlite": f"sqlite:///{ROOT / 'bench-read.db'}",
    "postgresql": os.environ.get("WONKALYTICS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("WONKALYTICS_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
SIZES = {"sqlite": (1_000_000, 10_000_000), "postgresql": (1_000_000, 10_000_000), "mariadb": (1_000_000,)}
"""Rows per table of the full run (issue 16: 1M and 10M on SQLite and PostgreSQL, 1M on MariaDB)."""
MODELS = [("gpt-4o-mini", 0.45), ("gpt-4o", 0.25), ("o3-mini", 0.12), ("gpt-4.1", 0.1), ("my-azure-deployment", 0.08)]
LANGUAGES = [("en", 0.5), ("nl", 0.25), ("de", 0.15), ("fr", 0.1)]
START_MARK, END_MARK = "<!-- read_side:start -->", "<!-- read_side:end -->"


# --- data ----------------------------------------------------------------------------------------


# Server-side generation (INSERT ... SELECT over generate_series / a sequence / a recursive CTE): 10M
# rows built row by row in Python and sent over the driver take an hour; in the database, minutes.
# Per-row pseudo-random numbers are Weyl sequences frac(n * sqrt(p)) (deterministic, the same on every
# dialect, no volatile function a planner could evaluate twice). Time is spread evenly over 60 days.
_WEYL = [2 ** 0.5, 3 ** 0.5, 5 ** 0.5, 7 ** 0.5, 11 ** 0.5, 13 ** 0.5, 17 ** 0.5, 19 ** 0.5, 23 ** 0.5, 29 ** 0.5]
_PHRASES = ["report candidate summary", "python motivation score", "team project review", "feedback test result",
            "language strength improve", "growth clear concise answer", "question review growth", "clear summary"]


PREFIX_RESPONSE, USER_TURN, SPACE, TURN_END, AND = "'chatcmpl-b'", "'user:\n'", "' '", "'\n\n'", "' and '"


def _numbers(dialect: str, low: int, high: int) -> str:
    if dialect == "postgresql":
        return f"(SELECT generate_series({low}, {high - 1}) AS n) AS s"
    if dialect in ("mysql", "mariadb"):
        return f"(SELECT seq AS n FROM seq_{low}_to_{high - 1}) AS s"
    return (f"(WITH RECURSIVE c(n) AS (SELECT {low} UNION ALL SELECT n + 1 FROM c WHERE n < {high - 1}) "
            "SELECT n FROM c) AS s")


def generate_sql(dialect: str, table: str, count: int, low: int, high: int, now: dt.datetime) -> str:
    """One INSERT ... SELECT of rows ``low..high-1`` of ``count`` (oldest first) for ``dialect``."""
    def r(k: int) -> str:
        return f"(n * {_WEYL[k]!r} - FLOOR(n * {_WEYL[k]!r}))"

    def cat(*parts: str) -> str:
        return f"CONCAT({', '.join(parts)})" if dialect in ("mysql", "mariadb") else " || ".join(parts)

    def text(expr: str) -> str:
        return f"CAST({expr} AS CHAR)" if dialect in ("mysql", "mariadb") else f"CAST({expr} AS TEXT)"

    def pick(k: int, values: list[tuple[str, float]]) -> str:
        edge, cases = 0.0, []
        for value, weight in values[:-1]:
            edge += weight
            cases.append(f"WHEN {r(k)} < {edge!r} THEN '{value}'")
        return f"CASE {' '.join(cases)} ELSE '{values[-1][0]}' END"

    start = now - dt.timedelta(days=60)
    step = 60 * 86400 / count
    if dialect == "postgresql":
        moment = f"(TIMESTAMP '{start.isoformat(sep=' ')}' + n * {step!r} * INTERVAL '1 second')"
    elif dialect in ("mysql", "mariadb"):
        moment = f"DATE_ADD(TIMESTAMP '{start.isoformat(sep=' ')}', INTERVAL FLOOR(n * {step * 1e6!r}) MICROSECOND)"
    else:
        epoch = start.replace(tzinfo=dt.UTC).timestamp()
        moment = f"(strftime('%Y-%m-%d %H:%M:%f', {epoch!r} + n * {step!r}, 'unixepoch') || '000')"
    event = f"{r(0)} < 0.03"
    model = pick(1, MODELS)
    status = f"CASE WHEN {r(2)} < 0.04 THEN 'error' WHEN {r(2)} < 0.09 THEN 'aborted' ELSE 'ok' END"
    user = f"FLOOR({r(3)} * 2000)"
    normal = f"(SQRT(-2 * LN({r(4)} * 0.999998 + 0.000001)) * COS(6.283185307179586 * {r(5)}))"
    duration = f"EXP(7.0 + 0.6 * {normal})"
    prompt, completion = f"(50 + FLOOR({r(6)} * 2950))", f"(10 + FLOOR({r(7)} * 890))"
    phrase = "CASE " + " ".join(f"WHEN FLOOR({r(8)} * 8) = {i} THEN '{p}'" for i, p in enumerate(_PHRASES[:-1]))
    phrase += f" ELSE '{_PHRASES[-1]}' END"
    iv = f"CASE WHEN {event} THEN NULL ELSE"
    columns = {
        "event_id": cat("'b'", text("n")),
        "response_id": f"{iv} {cat(PREFIX_RESPONSE, text('n'))} END",
        "timestamp": moment,
        "action": f"CASE WHEN {event} THEN 'login' ELSE NULL END",
        "model": f"{iv} {model} END",
        "provider_type": f"{iv} CASE WHEN {r(1)} >= 0.92 THEN 'azure' ELSE 'openai' END END",
        "username": cat("'user'", text(user)),
        "email": cat("'user'", text(user), "'@example.com'"),
        "tenant_id": cat("'tenant-'", text(f"MOD({user}, 40)")),
        "language": f"{iv} {pick(9, LANGUAGES)} END",
        "level": f"{iv} CASE WHEN {r(8)} < 0.33 THEN 'junior' WHEN {r(8)} < 0.66 THEN 'medior' ELSE 'senior' END END",
        "status": f"{iv} {status} END",
        "score": f"{iv} CASE WHEN {r(9)} < 0.33 THEN ROUND({r(6)} * 100, 1) ELSE NULL END END",
        "duration_ms": f"{iv} {duration} END",
        "ttft_ms": f"{iv} CASE WHEN {r(2)} >= 0.09 THEN {duration} * (0.05 + 0.25 * {r(7)}) ELSE NULL END END",
        "prompt_tokens": f"{iv} {prompt} END",
        "completion_tokens": f"{iv} CASE WHEN {r(2)} < 0.04 THEN 0 ELSE {completion} END END",
        "total_tokens": f"{iv} {prompt} + CASE WHEN {r(2)} < 0.04 THEN 0 ELSE {completion} END END",
        "cost_usd": f"{iv} CASE WHEN {r(1)} >= 0.92 THEN NULL ELSE ({prompt} * 0.15 + {completion} * 0.6) / 1e6 END"
                    " END",
        "system_msg": f"{iv} 'You are a concise assistant for HR competence reports.' END",
        "messages": f"{iv} {cat(USER_TURN, phrase, SPACE, phrase, TURN_END)} END",
        "response": f"{iv} {cat(phrase, AND, phrase)} END",
        "error": f"{iv} CASE WHEN {r(2)} < 0.04 THEN 'RateLimitError: 429' ELSE NULL END END",
    }
    if dialect == "sqlite":  # SQLite has MOD only as the % operator
        columns = {k: v.replace(f"MOD({user}, 40)", f"(CAST({user} AS INTEGER) % 40)") for k, v in columns.items()}
        columns = {k: v.replace(f"CAST({user} AS TEXT)", f"CAST(CAST({user} AS INTEGER) AS TEXT)")
                   for k, v in columns.items()}
    elif dialect == "postgresql":
        columns = {k: v.replace(f"CAST({user} AS TEXT)", f"CAST(CAST({user} AS BIGINT) AS TEXT)")
                   for k, v in columns.items()}
    else:
        columns = {k: v.replace(f"CAST({user} AS CHAR)", f"CAST(CAST({user} AS SIGNED) AS CHAR)")
                   for k, v in columns.items()}
    names = ", ".join(f'"{c}"' if dialect != "mariadb" else f"`{c}`" for c in columns)
    return f"INSERT INTO {table} ({names}) SELECT {', '.join(columns.values())} FROM {_numbers(dialect, low, high)}"


_UNBOUNDED: dict[str, sa.Engine] = {}


def unbounded(url: str) -> sa.Engine:
    """An engine without the library's statement timeout (a read must not hang; a 10M-row load takes minutes)."""
    if url not in _UNBOUNDED:
        _UNBOUNDED[url] = sa.create_engine(url)
    return _UNBOUNDED[url]


def table_name(count: int) -> str:
    return f"{TABLE}_{count}"


def ensure_table(url: str, count: int, now: dt.datetime) -> float:
    """The bench table of ``count`` rows (reused when it has them and is recent) and the read-side
    covering index (``wonkalytics.store.views.create_read_index``); returns the seconds spent loading."""
    engine = get_engine(url)
    name = table_name(count)
    inspector = sa.inspect(engine)
    if inspector.has_table(name):
        with engine.connect() as conn:
            have = conn.execute(sa.text(f"SELECT COUNT(*), MAX(timestamp) FROM {name}")).one()
        newest = have[1] if isinstance(have[1], dt.datetime) or have[1] is None else \
            dt.datetime.fromisoformat(str(have[1]))
        if have[0] == count and newest is not None and now - newest < dt.timedelta(hours=12):
            return 0.0
        with engine.begin() as conn:
            for old in (f"{name}_rollup", f"{name}_rollup_users", f"{name}_rollup_off", f"{name}_rollup_users_off",
                        name):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {old}"))
    started = time.perf_counter()
    store = TableStore(url, name)
    store.create_table()
    dialect = "mariadb" if getattr(engine.dialect, "is_mariadb", False) else engine.dialect.name
    chunk = 1_000_000
    loader = unbounded(url)
    for low in range(0, count, chunk):
        with loader.begin() as conn:
            conn.exec_driver_sql(generate_sql(dialect, name, count, low, min(low + chunk, count), now))
        print(f"  {name}: {min(low + chunk, count):,} rows", flush=True)
    create_read_index(loader, TableStore(url, name, create=False).table)
    if engine.dialect.name == "postgresql":
        # What autovacuum does soon after a bulk load: statistics, and the visibility map that lets
        # the covering index answer without visiting the table (VACUUM cannot run in a transaction).
        with loader.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"VACUUM ANALYZE {name}"))
    else:
        with loader.begin() as conn:
            conn.execute(sa.text(f"ANALYZE {'TABLE ' if dialect == 'mariadb' else ''}{name}"))
    return time.perf_counter() - started


def rollups_on(url: str, count: int, on: bool) -> float:
    """Switch the rollups of the bench table on (build them once, or rename them back) or off (rename them
    aside, so the read side finds none); returns the seconds a first build took."""
    engine = get_engine(url)
    name = table_name(count)
    inspector = sa.inspect(engine)
    pairs = [(f"{name}_rollup", f"{name}_rollup_off"), (f"{name}_rollup_users", f"{name}_rollup_users_off")]
    present = {n for pair in pairs for n in pair if inspector.has_table(n)}

    def rename(old: str, new: str) -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")

    took = 0.0
    if on:
        for live, aside in pairs:
            if aside in present and live not in present:
                rename(aside, live)
        if f"{name}_rollup" not in present and f"{name}_rollup_off" not in present:
            started = time.perf_counter()
            rebuild(unbounded(url), TableStore(url, name, create=False).table)
            took = time.perf_counter() - started
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(sa.text(f"VACUUM ANALYZE {name}_rollup"))
                    conn.execute(sa.text(f"VACUUM ANALYZE {name}_rollup_users"))
    else:
        for live, aside in pairs:
            if live in present:
                rename(live, aside)
    return took


# --- measuring -----------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(url: str, table: str) -> Iterator[str]:
    import uvicorn

    from wonkalytics.dashboard.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(ReadStore(url, table)), host="127.0.0.1", port=0,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def chart_paths() -> list[str]:
    return ["/api/timeseries", "/api/groups?by=model&percentiles=true", "/api/scores", "/api/groups?by=model",
            "/api/groups?by=tenant_id", "/api/groups?by=username", "/api/groups?by=status", "/api/groups?by=language"]


FILTERED = "/interactions?model=gpt-4o&status=ok"


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94] if len(values) > 1 else values[0]


def warm(url: str, table: str, rounds: int) -> dict[str, list[float]]:
    """Per measurement, the milliseconds of each round (after one unmeasured warm-up round)."""
    results: dict[str, list[float]] = {}
    reader = ReadStore(url, table)
    period = make_period()
    with serving(url, table) as base, httpx.Client(base_url=base, timeout=60) as client:
        def get(path: str) -> None:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])

        measurements: dict[str, Callable[[], Any]] = {
            "overview page (/)": lambda: get("/"),
            **{f"chart {p}": (lambda p=p: get(p)) for p in chart_paths()},
            "overview, all charts": lambda: [get(p) for p in ["/", *chart_paths()]],
            "interactions, filtered": lambda: get(FILTERED),
            "interactions, text search": lambda: get("/interactions?q=growth%20clear"),
            "stats --by model": lambda: (reader.overview(period), reader.groups(period, "model")),
        }
        for work in measurements.values():
            work()
        for _ in range(rounds):
            for name, work in random.sample(list(measurements.items()), len(measurements)):
                results.setdefault(name, []).append(timed(work))
    return results


COLD = """
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {src!r})
from fastapi.testclient import TestClient
from wonkalytics.dashboard.app import create_app
from wonkalytics.store.queries import ReadStore, make_period
reader = ReadStore({url!r}, {table!r})
if {what!r} == "stats":
    t1 = time.perf_counter(); period = make_period(); reader.overview(period); reader.groups(period, "model")
else:
    client = TestClient(create_app(reader))
    t1 = time.perf_counter(); assert client.get({what!r}).status_code == 200
t2 = time.perf_counter()
print((t2 - t1) * 1000, (t2 - t0) * 1000)
"""


def cold(url: str, table: str, rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    """Per measurement, (request ms, whole process ms incl. imports) of fresh interpreters."""
    results: dict[str, tuple[list[float], list[float]]] = {}
    for name, what in (("overview page (/)", "/"), ("interactions, filtered", FILTERED),
                       ("stats --by model", "stats")):
        first, whole = [], []
        for _ in range(rounds):
            code = COLD.format(src=str(ROOT / "src"), url=url, table=table, what=what)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            request_ms, process_ms = map(float, out.stdout.split())
            first.append(request_ms)
            whole.append(process_ms)
        results[name] = (first, whole)
    return results


# --- report --------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{platform.platform()}; {cpu}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}"


def server_version(url: str) -> str:
    with get_engine(url).connect() as conn:
        if conn.dialect.name == "sqlite":
            return "SQLite " + str(conn.execute(sa.text("SELECT sqlite_version()")).scalar())
        return str(conn.execute(sa.text("SELECT version()")).scalar()).split(" on ")[0]


def target(dialect: str, name: str) -> float | None:
    """The issue's p95 target for ``name`` (None: shown for information)."""
    if name == "overview, all charts":
        return 500.0
    if name.startswith("interactions, text search"):
        return 300.0
    if name == "overview page (/)" or name.startswith("chart ") or name == "stats --by model":
        return 150.0 if dialect == "postgresql" else 300.0
    return None


def _cell(values: list[float] | None) -> tuple[str, str]:
    if not values:
        return "", ""
    return f"{statistics.median(values):.0f}", f"{p95(values):.0f}"


def report(results: dict[str, Any], args: argparse.Namespace, elapsed: float) -> str:
    lines = [START_MARK, "## Read side (dashboard and stats)", "",
             "Written by `bench/read_side.py` (do not edit by hand; rerun it). Figures are milliseconds: "
             "median and p95 of the warm rounds, and the median first request of fresh processes (cold), each "
             "measured twice in the same run on the same table: reading the table only (the rollup tables renamed "
             "aside) and with the rollups (`store/rollup_reads.py`). The verdict is for the rollups: p95 and cold "
             "request against the issue's target (PostgreSQL 150 ms, SQLite and MariaDB 300 ms per page and chart, "
             "500 ms for all charts of the overview one after the other, 300 ms for the text search). The machine is "
             "shared (2 cores, other jobs running): compare the two columns of one run rather than runs.", "",
             f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
             f"- Machine: {machine()}",
             f"- Python: {platform.python_implementation()} {platform.python_version()}; SQLAlchemy "
             f"{metadata.version('sqlalchemy')}; plan: {'quick' if args.quick else 'full'}; {elapsed / 60:.1f} minutes",
             f"- Command: `.venv/bin/python bench/read_side.py{' --quick' if args.quick else ''}`", ""]
    for data in results.values():
        dialect = data["dialect"]
        lines += [f"### {dialect}, {data['rows']:,} rows: {data['version']}", "",
                  f"{data['rows']:,} rows over 60 days ({data['in_period']:,} interactions in the default 7-day "
                  f"period; {data['rollup_rows']:,} rollup rows); table "
                  f"{'loaded in ' + format(data['load_s'], '.0f') + ' s' if data['load_s'] else 'reused'}, rollups "
                  f"{'built in ' + format(data['build_s'], '.0f') + ' s' if data['build_s'] else 'reused'}; "
                  "warm rounds: "
                  f"{data['rounds']['table']} (table), {data['rounds']['rollups']} (rollups).", "",
                  "| Measurement | Table: median | Table: p95 | Table: cold | Rollups: median | Rollups: p95 | "
                  "Rollups: cold | Target p95 | Verdict |",
                  "|---|---|---|---|---|---|---|---|---|"]
        pages = ["overview page (/)", "stats --by model", "overview, all charts", "interactions, filtered",
                 "interactions, text search"]
        names = pages + sorted(n for n in data["rollups"]["warm"] if n not in pages)
        for name in names:
            cells = []
            worst = 0.0
            for variant in ("table", "rollups"):
                warm_values = data[variant]["warm"].get(name)
                cold_values = data[variant]["cold"].get(name)
                cells += [*_cell(warm_values), f"{statistics.median(cold_values[0]):.0f}" if cold_values else ""]
                if variant == "rollups" and warm_values:
                    worst = max(p95(warm_values), statistics.median(cold_values[0]) if cold_values else 0.0)
            goal = target(dialect, name)
            verdict = "info" if goal is None else "**PASS**" if worst <= goal else "**MISS**"
            goal_text = f"<= {goal:.0f}" if goal else ""
            lines.append(f"| {name} | {' | '.join(cells)} | {goal_text} | {verdict} |")
        lines.append("")
    lines += [READ_NOTES, END_MARK]
    return "\n".join(lines)


READ_NOTES = """What the rollups answer and what they do not: the overview, `stats --by model`, the time series, the \
breakdowns by model / tenant / status / rollup fields and the score distribution read the whole quarter hours of the \
period from `<table>_rollup` and the two partial edges (under a quarter hour each) from the table. Distinct users \
come from `<table>_rollup_users`, except per group and under a filter (that table is keyed by bucket and user \
only): there the table counts them (`COUNT(DISTINCT username)` over the period), which is why `/api/groups?by=...` \
still grows with the rows. The breakdown by user, the text search and the interactions pages read the table \
(bounded pages, the covering index). The time to cold is dominated by importing and connecting.

The rollups hold one row per quarter hour x model x tenant x status (x rollup fields): with 40 tenants, 5 models and \
3 statuses a quarter hour of this workload has up to 600 keys, so at 1M rows (~170 interactions per quarter hour) \
the rollups hold ~0.7 rows per interaction and answer little faster than the covering index; at 10M rows they hold \
~0.15 and the difference shows. Percentile sketches are merged in Python (one text per rollup row): the profile of \
`overview()` (below, when written) shows that merge and the fetch of the sketch texts as the largest part."""


def write_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if START_MARK in text and END_MARK in text:
        before, rest = text.split(START_MARK, 1)
        after = rest.split(END_MARK, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def measure(url: str, table: str, rounds: int, cold_rounds: int) -> dict[str, Any]:
    data = {"warm": warm(url, table, rounds), "cold": cold(url, table, cold_rounds)}
    dispose_engines()
    for name, values in data["warm"].items():
        print(f"    {name:42s} warm median {statistics.median(values):7.1f} ms  p95 {p95(values):7.1f} ms", flush=True)
    for name, (first, whole) in data["cold"].items():
        print(f"    {name:42s} cold request {statistics.median(first):7.1f} ms  "
              f"process {statistics.median(whole):7.0f} ms", flush=True)
    return data


def rollup_rows(url: str, table: str) -> int:
    with get_engine(url).connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}_rollup")).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows and few rounds, prints only")
    parser.add_argument("--write", action="store_true", help="with --quick: write BENCHMARKS.md anyway")
    parser.add_argument("--rows", type=int, default=None, help="one table size for every dialect")
    parser.add_argument("--dialects", default=None, help="default: sqlite,postgresql (--quick), all three (full)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--append", action="store_true",
                        help="add to the tables measured by the previous full run (kept in bench-read-results.json)")
    args = parser.parse_args()
    dialects = (args.dialects or ("sqlite,postgresql" if args.quick else "sqlite,postgresql,mariadb")).split(",")
    rounds, cold_rounds = (5, 1) if args.quick else (10, 3)
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    results: dict[str, Any] = {}
    saved = ROOT / "bench-read-results.json"
    if args.append and saved.exists():
        results = json.loads(saved.read_text(encoding="utf-8"))
    for dialect in dialects:
        url = DIALECT_URLS[dialect]
        if dialect == "sqlite" and args.quick:
            url = url.replace("bench-read.db", "bench-read-quick.db")
        sizes = (args.rows,) if args.rows else (50_000,) if args.quick else SIZES[dialect]
        for count in sizes:
            table = table_name(count)
            load_s = ensure_table(url, count, now)
            print(f"{dialect}, {count:,} rows: table ready ({load_s:.0f} s to load)", flush=True)
            rollups_on(url, count, False)
            in_period = ReadStore(url, table).overview(make_period())["interactions"]
            # the table-only variant at 10M rows: fewer rounds (each takes seconds; the point is the ratio)
            slow = count >= 5_000_000 and not args.quick
            plain_rounds, plain_cold = (5, 1) if slow else (rounds, cold_rounds)
            print(f"  table only ({plain_rounds} rounds)", flush=True)
            plain = measure(url, table, plain_rounds, plain_cold)
            build_s = rollups_on(url, count, True)
            print(f"  with rollups ({build_s:.0f} s to build)", flush=True)
            rolled = measure(url, table, rounds, cold_rounds)
            results[f"{dialect}-{count}"] = {
                "dialect": dialect, "rows": count, "version": server_version(url), "load_s": load_s,
                "build_s": build_s, "in_period": in_period, "rollup_rows": rollup_rows(url, table),
                "rounds": {"table": plain_rounds, "rollups": rounds}, "table": plain, "rollups": rolled}
            if not args.quick or args.write:   # after every table: a long run that stops keeps what it measured
                saved.write_text(json.dumps(results), encoding="utf-8")
                write_section(args.output, report(results, args, time.perf_counter() - started))
                print(f"Wrote the read_side section of {args.output}", flush=True)


if __name__ == "__main__":
    main()
