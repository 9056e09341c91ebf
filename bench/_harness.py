"""What every bench script shares: interleaved arms, medians, the A/A control, the environment, BENCHMARKS.md.

A script builds a :class:`Report` (rows of a results table plus free-form detail lines) and hands it to
:func:`finish`, which prints it and, for a full run, rewrites only the script's own section of
BENCHMARKS.md: the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``. Several scripts (and
other engineers' ``read_side``, ``sinks``, ...) therefore share one file without clobbering each other.

``--quick`` is a smoke run for CI: it prints and never writes BENCHMARKS.md (unless ``--write``).

Scripts run as ``python bench/NAME.py``, so this module is imported as ``_harness`` from ``bench/``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
perf_ns = time.perf_counter_ns

POSTGRES_URL = os.environ.get("WONKALYTICS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("WONKALYTICS_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
SERVER_URLS = {"postgresql": POSTGRES_URL, "mariadb": MARIADB_URL}


# --- statistics ------------------------------------------------------------------------------------


def run_children(script: str, flag: str, specs: Sequence[dict[str, Any]], *, timeout: float) -> list[dict[str, Any]]:
    """Start ``script flag <spec>`` per spec, wait until each prints ``ready``, release them together
    with ``go`` (so start-up is out of the clock), and return each one's last line as JSON."""
    import json

    children = [
        subprocess.Popen([sys.executable, script, flag, json.dumps(spec)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for spec in specs
    ]
    try:
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a child process failed to start")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            out, _ = child.communicate(timeout=timeout)
            if child.returncode:
                raise RuntimeError(f"a child process exited with {child.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else math.nan


def notch(values: Sequence[float]) -> float:
    """Half-width of an approximate 95% interval of the median (McGill's box-plot notch)."""
    if len(values) < 4:
        return math.nan
    q1, _, q3 = statistics.quantiles(values, n=4)
    return 1.57 * (q3 - q1) / math.sqrt(len(values))


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class Rounds:
    """Measurements of each arm; index i of every list belongs to round i."""

    times: dict[str, list[float]]

    def med(self, arm: str) -> float:
        return median(self.times[arm])

    def diffs(self, arm: str, base: str) -> list[float]:
        return [b - a for a, b in zip(self.times[base], self.times[arm], strict=True)]

    def delta(self, arm: str, base: str) -> tuple[float, float]:
        """Median of the paired differences arm - base, and its notch."""
        d = self.diffs(arm, base)
        return median(d), notch(d)

    def ratio(self, arm: str, base: str) -> tuple[float, float]:
        """Ratio of the medians, and the notch of the per-round ratios."""
        per_round = [b / a for a, b in zip(self.times[base], self.times[arm], strict=True) if a]
        return self.med(arm) / self.med(base), notch(per_round)


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """The cyclic GC is off inside timed loops (it is run between rounds instead): less noise."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def run_rounds(
    arms: dict[str, Callable[[], float]],
    rounds: int,
    rng: random.Random,
    warmup: int = 3,
    after: Callable[[int], None] | None = None,
    gc_off: bool = True,
) -> Rounds:
    """Each round runs every arm once, in a freshly shuffled order; arms return their measurement."""
    times: dict[str, list[float]] = {name: [] for name in arms}
    names = list(arms)
    with quiet_gc() if gc_off else contextlib.nullcontext():
        for index in range(-warmup, rounds):
            if rounds > 1 and os.environ.get("BENCH_PROGRESS"):
                print(f"  round {index + 1}/{rounds} of {', '.join(names)}", file=sys.stderr, flush=True)
            rng.shuffle(names)
            for name in names:
                value = arms[name]()
                if index >= 0:
                    times[name].append(value)
            if after is not None:
                after(index)
    return Rounds(times)


async def arun_rounds(
    arms: dict[str, Callable[[], Awaitable[float]]],
    rounds: int,
    rng: random.Random,
    warmup: int = 3,
    after: Callable[[int], None] | None = None,
) -> Rounds:
    """Async twin of :func:`run_rounds`."""
    times: dict[str, list[float]] = {name: [] for name in arms}
    names = list(arms)
    with quiet_gc():
        for index in range(-warmup, rounds):
            rng.shuffle(names)
            for name in names:
                value = await arms[name]()
                if index >= 0:
                    times[name].append(value)
            if after is not None:
                after(index)
    return Rounds(times)


def wonkalytics_threads_cpu_ns() -> int | None:
    """CPU time used so far by Wonkalytics' own threads (writer lanes; Linux), or None.

    Every thread whose name starts with ``wonkalytics`` counts, so one writer thread or one per sink
    lane are measured alike.
    """
    total, found = 0, False
    for thread in threading.enumerate():
        if thread.name.startswith("wonkalytics") and thread.ident is not None:
            try:
                total += time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))
                found = True
            except (AttributeError, OSError):
                return None
    return total if found else None


# --- results ---------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a results table."""

    section: str
    what: str
    baseline: str
    measured: str
    noise: str
    target: str
    verdict: str


@dataclass
class Report:
    """Rows of the results table, plus detail lines (one run per line) and notes."""

    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, section: str, what: str, baseline: str, measured: str, noise: str, target: str = "", verdict: str = ""
    ) -> None:
        self.rows.append(Row(section, what, baseline, measured, noise, target, verdict))


def verdict(value: float, plusminus: float, target: float, *, higher_is_better: bool = False) -> str:
    """PASS / MISS against ``target``, "within noise" when the interval straddles it."""
    if math.isnan(value):
        return "n/a"
    if higher_is_better:
        value, target = -value, -target
    if value > target:
        return "MISS" if math.isnan(plusminus) or value - plusminus > target else "MISS (within noise)"
    return "PASS" if math.isnan(plusminus) or value + plusminus <= target else "PASS (within noise)"


def us(ns: float) -> str:
    return f"{ns / 1e3:,.2f} µs"


def ms(ns: float) -> str:
    return f"{ns / 1e6:,.2f} ms"


def rate(value: float) -> str:
    return f"{value:,.0f}/s"


# --- environment -----------------------------------------------------------------------------------


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev}{' + uncommitted changes to tracked files' if dirty else ''}"


def server_versions(urls: dict[str, str]) -> str:
    """``postgresql 15.2, mariadb 10.11`` for the servers that answer."""
    import sqlalchemy as sa

    found = []
    for name, url in urls.items():
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                text = str(conn.exec_driver_sql("SELECT version()").scalar())
            found.append(f"{name} {text.split(' on ')[0].split(',')[0]}")
        except Exception:
            found.append(f"{name} unreachable")
        finally:
            engine.dispose()
    return ", ".join(found)


def environment(load_before: tuple[float, ...], extra_versions: Sequence[str] = ()) -> list[tuple[str, str]]:
    import wonkalytics

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    dists = ("openai", "httpx2", "sqlalchemy", "pydantic", *extra_versions)
    return [
        ("Machine", f"{platform.platform()}; {cpu_model()}; {os.cpu_count()} CPUs ({affinity} usable)"),
        (
            "Load average (1/5/15 min)",
            f"before {'/'.join(f'{x:.2f}' for x in load_before)}, after "
            f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())}",
        ),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        (
            "Versions",
            f"wonkalytics {wonkalytics.__version__} ({git_revision()}), "
            + ", ".join(f"{name} {version(name)}" for name in dists),
        ),
    ]


def command_line(script: str | Path) -> str:
    exe = Path(sys.executable)
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(Path.cwd())
    path = Path(script)
    with contextlib.suppress(ValueError):
        path = path.resolve().relative_to(Path.cwd())
    return " ".join([str(exe), str(path), *sys.argv[1:]])


# --- output ----------------------------------------------------------------------------------------


def print_table(report: Report, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("What", "Baseline", "Measured", "Noise", "Target", "Verdict"):
        table.add_column(column)
    section = None
    for row in report.rows:
        if row.section != section:
            section = row.section
            table.add_section()
            table.add_row(f"[bold]{section}[/bold]", "", "", "", "", "")
        style = {"PASS": "green", "MISS": "red"}.get(row.verdict.split(" ")[0], "")
        table.add_row(
            row.what,
            row.baseline,
            row.measured,
            row.noise,
            row.target,
            f"[{style}]{row.verdict}[/{style}]" if style else row.verdict,
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    for note in report.notes:
        print(note)


def results_table(report: Report) -> list[str]:
    lines = ["| Measurement | Baseline | Measured | Noise | Target | Verdict |", "|---|---|---|---|---|---|"]
    section = None
    for row in report.rows:
        if row.section != section:
            section = row.section
            lines.append(f"| **{section}** | | | | | |")
        cells = (
            row.what,
            row.baseline,
            row.measured,
            row.noise,
            row.target,
            f"**{row.verdict}**" if row.verdict.startswith(("PASS", "MISS")) else row.verdict,
        )
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


FILE_HEADER = """\
# Benchmarks

Written by the scripts in `bench/` (do not edit by hand; rerun them). Each section below belongs to one
script, between its `<!-- NAME:start -->` / `<!-- NAME:end -->` markers, and is rewritten only by a full
run of that script (`--quick` prints only). Every number is a median of interleaved rounds against a
baseline measured in the same run.
"""


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the ``name`` section of ``path`` (created when missing); other sections are untouched."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else FILE_HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def section_markdown(
    *,
    title: str,
    intro: str,
    report: Report,
    env: list[tuple[str, str]],
    command: str,
    plan_name: str,
    elapsed: float,
    how_to_read: str = "",
) -> str:
    lines = [
        f"## {title}",
        "",
        intro.strip(),
        "",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        *(f"- {name}: {value}" for name, value in env),
        f"- Command: `{command}` ({plan_name} plan, {elapsed / 60:.1f} minutes)",
        "",
        "### Results",
        "",
        *results_table(report),
        "",
    ]
    if report.notes:
        lines += ["### Findings", "", *report.notes, ""]
    if how_to_read:
        lines += ["### How to read this", "", how_to_read.strip(), ""]
    if report.details:
        lines += ["### Runs", "", *report.details, ""]
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every script takes (add your own before :func:`parse`)."""
    p = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="few repetitions (a smoke run, CI); prints only")
    p.add_argument("--write", action="store_true", help="write the report even with --quick")
    p.add_argument("--no-write", action="store_true", help="print only, even for a full run")
    p.add_argument("--output", type=Path, default=BENCHMARKS, help="report path (BENCHMARKS.md)")
    p.add_argument("--seed", type=int, default=20240611, help="seed of the arm shuffling")
    return p


@dataclass
class Run:
    """One script run: its options, clock, load and RNG."""

    args: argparse.Namespace
    script: str
    started: float = field(default_factory=time.monotonic)
    load_before: tuple[float, ...] = field(default_factory=os.getloadavg)

    @property
    def quick(self) -> bool:
        return bool(self.args.quick)

    @property
    def rng(self) -> random.Random:
        if not hasattr(self, "_rng"):
            self._rng = random.Random(self.args.seed)
        return self._rng

    @property
    def write(self) -> bool:
        return bool(self.args.write or not (self.args.quick or self.args.no_write))

    def finish(
        self,
        name: str,
        title: str,
        intro: str,
        report: Report,
        how_to_read: str = "",
        extra_versions: Sequence[str] = (),
        write: bool | None = None,
    ) -> None:
        """Print the report; in a full run rewrite this script's section of BENCHMARKS.md."""
        elapsed = time.monotonic() - self.started
        env = environment(self.load_before, extra_versions)
        print_table(report, title)
        for key, value in env:
            print(f"{key}: {value}")
        command = command_line(self.script)
        print(f"Command: {command}  ({elapsed:.0f} s)")
        if self.write if write is None else write:
            body = section_markdown(
                title=title,
                intro=intro,
                report=report,
                env=env,
                command=command,
                plan_name="quick" if self.quick else "full",
                elapsed=elapsed,
                how_to_read=how_to_read,
            )
            write_section(self.args.output, name, body)
            print(f"Wrote section {name!r} of {self.args.output}")


def start(
    doc: str | None, script: str, argv: list[str] | None = None, extra: Callable[[Any], None] | None = None
) -> Run:
    """Parse the common options (plus ``extra(parser)``'s) and start the clock."""
    p = parser(doc)
    if extra is not None:
        extra(p)
    return Run(p.parse_args(argv), script)
