"""Seeded rows for the read-side tests, and the aggregates a test expects, computed in plain Python."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini")
USERS = ("ada", "grace", "alan", "edsger", None)
TENANTS = ("tenant-a", "tenant-b", None)
LANGUAGES = ("en", "nl", "de", None)
STATUSES = ("ok", "ok", "ok", "error", "aborted")
# Europe/Amsterdam moves from +01:00 to +02:00 at 2026-03-29 01:00 UTC: the rows straddle it.
START = datetime(2026, 3, 27, 20, 0)


def seed_rows(count: int = 90, seed: int = 7) -> list[dict[str, Any]]:
    """Interactions over four days around the DST change, plus a few events (rows without model)."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for n in range(count):
        status = rng.choice(STATUSES)
        scored = rng.random() < 0.6
        prompt, completion = rng.randint(5, 900), rng.randint(1, 400)
        rows.append({
            "event_id": f"ev-{n}",
            "response_id": f"chatcmpl-{n}",
            "timestamp": START + timedelta(minutes=rng.randint(0, 4 * 24 * 60), seconds=rng.randint(0, 59)),
            "model": rng.choice(MODELS),
            "username": rng.choice(USERS),
            "tenant_id": rng.choice(TENANTS),
            "language": rng.choice(LANGUAGES),
            "status": status,
            "score": round(rng.uniform(0, 100), 1) if scored else None,
            "duration_ms": round(rng.lognormvariate(6.5, 0.6), 3),
            "ttft_ms": round(rng.lognormvariate(5, 0.5), 3) if status != "error" else None,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cost_usd": None if n % 7 == 0 else round((prompt * 0.15 + completion * 0.6) / 1e6, 9),
            "messages": f"user:\nquestion number {n} about {'Rust' if n % 5 == 0 else 'Python'}\n\n",
            "system_msg": "You are terse.",
            "response": f"Answer {n}" + (" with a NEEDLE_%_ inside" if n % 11 == 0 else ""),
        })
    for n in range(4):  # events: never counted as interactions
        rows.append({"event_id": f"event-{n}", "action": "login", "username": "zed",
                     "timestamp": START + timedelta(hours=10 * n + 1)})
    return rows


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between the nearest ranks, via the standard library (independent of SQL)."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(q * 100) - 1]


def expected_overview(rows: Iterable[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The overview of the interactions among ``rows`` for which ``keep`` is true."""
    chosen = [r for r in rows if r.get("model") is not None and keep(r)]
    scores = [r["score"] for r in chosen if r.get("score") is not None]
    durations = [r["duration_ms"] for r in chosen if r.get("duration_ms") is not None]
    ttfts = [r["ttft_ms"] for r in chosen if r.get("ttft_ms") is not None]
    costs = [r["cost_usd"] for r in chosen if r.get("cost_usd") is not None]
    return {
        "interactions": len(chosen),
        "users": len({r["username"] for r in chosen if r.get("username") is not None}),
        "tenants": len({r["tenant_id"] for r in chosen if r.get("tenant_id") is not None}),
        "status": {s: sum(r.get("status") == s for r in chosen) for s in ("ok", "error", "aborted")},
        "scored": len(scores),
        "avg_score": sum(scores) / len(scores) if scores else None,
        "duration_ms": {"p50": percentile(durations, 0.5), "p95": percentile(durations, 0.95)},
        "ttft_ms": {"p50": percentile(ttfts, 0.5), "p95": percentile(ttfts, 0.95)},
        "prompt_tokens": sum(r.get("prompt_tokens") or 0 for r in chosen),
        "completion_tokens": sum(r.get("completion_tokens") or 0 for r in chosen),
        "cost_usd": sum(costs) if costs else None,
    }
