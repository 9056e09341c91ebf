"""Cost of one LLM call in US dollars, from dated prices; ``None`` when the price is not known (never 0).

>>> call_cost("gpt-4o-mini", 1_000_000, 1_000_000, provider="openai", when=datetime(2026, 1, 1, tzinfo=UTC))
0.75
>>> call_cost("my-own-finetune", 1000, 100) is None
True

Where prices come from, first match wins:

1. ``WONKALYTICS_PRICES`` (setting ``prices_file``): a JSON file of model or deployment name -> US dollars
   per million tokens, e.g. ``{"my-gpt4o-deployment": {"input": 2.5, "output": 10, "cached_input": 1.25}}``
   (an Azure deployment has a name of its own; a negotiated price differs from the list price);
2. Pydantic's `genai-prices <https://pypi.org/project/genai-prices/>`_, chosen because it ships its
   data inside the wheel (no network at run time: its optional auto-update is never started here),
   keeps each model's price *history* (a call is priced at the price of its own date, so old rows
   keep their cost when prices change), knows cached-input rates and Azure, and is maintained by the
   Pydantic team with frequent releases. Its ``calc_price`` is used with the call's provider
   (``openai`` / ``azure``) and timestamp.

Token rules (OpenAI usage): ``prompt_tokens`` includes ``cached_tokens``, which are billed at the
cached-input rate; ``reasoning_tokens`` are part of ``completion_tokens`` and billed as output, so they
change nothing here (they are stored for analysis). The model looked up is the one the response
names (``gpt-4o-2024-08-06``), else the one requested: on Azure the requested name is a deployment.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from wonkalytics.errors import ConfigurationError
from wonkalytics.interaction import Interaction

__all__ = ["ModelPrice", "call_cost", "interaction_cost", "load_prices_file", "use_prices_file"]

_PER_MILLION = Decimal(1_000_000)
_PROVIDERS = {"openai": "openai", "azure": "azure"}  # our provider_type -> genai-prices provider id


@dataclass(frozen=True)
class ModelPrice:
    """A team's own price of one model or deployment, in US dollars per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> Decimal:
        """The price of one call (cached prompt tokens at ``cached_input``, else at ``input``)."""
        cached = min(cached_tokens, prompt_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        total = (prompt_tokens - cached) * self.input + cached * cached_rate + completion_tokens * self.output
        return total / _PER_MILLION


def _price(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{where} must be a number of US dollars per million tokens, not {value!r}")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{where} must be a number of US dollars per million tokens, not {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{where} must be a finite, non-negative number, not {value!r}")
    return number


def load_prices_file(path: str | os.PathLike[str]) -> dict[str, ModelPrice]:
    """Read a ``WONKALYTICS_PRICES`` file; keys are matched case-insensitively.

    Raises:
        ConfigurationError: the file is missing, not JSON, or not ``{name: {"input", "output"[, "cached_input"]}}``.
    """
    where = f"WONKALYTICS_PRICES file {os.fspath(path)!r}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{where} cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"{where} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        example = '{"my-deployment": {"input": 2.5, "output": 10}}'
        raise ConfigurationError(f"{where} must hold an object like {example}")
    prices: dict[str, ModelPrice] = {}
    try:
        for name, entry in data.items():
            if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
                raise ValueError(f'{name!r} needs "input" and "output" (US dollars per million tokens)')
            unknown = set(entry) - {"input", "output", "cached_input"}
            if unknown:
                raise ValueError(f"{name!r} has unknown keys {sorted(unknown)}; use input, output, cached_input")
            cached = entry.get("cached_input")
            prices[str(name).casefold()] = ModelPrice(
                _price(entry["input"], f"{name}.input"), _price(entry["output"], f"{name}.output"),
                None if cached is None else _price(cached, f"{name}.cached_input"))
    except ValueError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    return prices


_LINEAR_UP_TO = 100_000
"""Token counts up to which a model's listed price is taken as linear (checked per model and day by
:func:`_coefficients`); bigger calls, where tiered prices start (128k/200k), are priced by the package."""
_COEFFICIENT_CACHE = 4096  # (model, provider, day) entries kept


def _calc(model: str, provider: str | None, usage: tuple[int, int, int], when: datetime) -> Decimal | None:
    from genai_prices import Usage, calc_price  # imported on first use: ~20 ms to load its data

    prompt, completion, cached = usage
    try:
        found = calc_price(Usage(input_tokens=prompt, cache_read_tokens=min(cached, prompt), output_tokens=completion),
                           model, provider_id=_PROVIDERS.get(provider or ""), genai_request_timestamp=when)
    except LookupError:  # a model (or provider) genai-prices does not know
        return None
    return found.total_price


_coefficients_lock = threading.Lock()
_Coefficients = tuple[Decimal, Decimal, Decimal, Decimal]
_coefficient_cache: dict[tuple[str, str | None, str], _Coefficients | str] = {}  # or "unknown" / "nonlinear"


def _coefficients(model: str, provider: str | None, when: datetime) -> _Coefficients | str:
    """(fixed, per input, per output, per cached input token) of the model's price on ``when``'s day,
    when the price is linear up to :data:`_LINEAR_UP_TO` tokens; ``"nonlinear"`` when it is not,
    ``"unknown"`` when genai-prices does not know the model.

    ``calc_price`` costs ~90 µs per call (measured on the writer thread, bench/writer_cpu.py); with these
    the price of a call is four multiplications. Linearity is checked, not assumed: the price at the
    limit must be twice the price at half of it, for each kind of token, and mixed and small calls must
    cost the sum of their parts.
    """
    key = (model, provider, when.date().isoformat())
    with _coefficients_lock:
        if key in _coefficient_cache:
            return _coefficient_cache[key]
    n = _LINEAR_UP_TO
    points = [(0, 0, 0), (n, 0, 0), (n // 2, 0, 0), (0, n, 0), (0, n // 2, 0), (n, 0, n), (n // 2, 0, n // 2),
              (n // 2, n // 2, n // 4), (1000, 1000, 500)]
    prices = [_calc(model, provider, point, when) for point in points]
    result: _Coefficients | str = "unknown" if prices[0] is None else "nonlinear"
    if all(price is not None for price in prices):
        fixed, p_in, half_in, p_out, half_out, p_cached, half_cached, mixed, small = (
            Decimal(price) for price in prices  # type: ignore[arg-type]
        )
        per_in, per_out = (p_in - fixed) / n, (p_out - fixed) / n
        per_cached = (p_cached - p_in) / n  # a cached token instead of a fresh one: the difference
        linear = (
            p_in - fixed == 2 * (half_in - fixed)
            and p_out - fixed == 2 * (half_out - fixed)
            and p_cached - fixed == 2 * (half_cached - fixed)
            and mixed == fixed + per_in * (n // 2) + per_out * (n // 2) + per_cached * (n // 4)
            and small == fixed + per_in * 1000 + per_out * 1000 + per_cached * 500  # no tier below half
        )
        if linear:
            result = (fixed, per_in, per_out, per_cached)
    with _coefficients_lock:
        if len(_coefficient_cache) >= _COEFFICIENT_CACHE:
            _coefficient_cache.clear()
        _coefficient_cache[key] = result
    return result


def _listed_price(model: str, provider: str | None, usage: tuple[int, int, int], when: datetime) -> Decimal | None:
    prompt, completion, cached = usage
    cached = min(cached, prompt)
    if max(prompt, completion) <= _LINEAR_UP_TO:
        coefficients = _coefficients(model, provider, when)
        if coefficients == "unknown":
            return None
        if not isinstance(coefficients, str):
            fixed, per_in, per_out, per_cached = coefficients
            return fixed + per_in * prompt + per_out * completion + per_cached * cached
    return _calc(model, provider, (prompt, completion, cached), when)


def call_cost(
    model: str | None,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    *,
    cached_tokens: int | None = None,
    provider: str | None = None,
    when: datetime | None = None,
    requested: str | None = None,
    overrides: Mapping[str, ModelPrice] | None = None,
) -> float | None:
    """The cost in US dollars of a call, or ``None`` when no price is known or no tokens were counted.

    ``model`` is the model the response names; ``requested`` the name the call asked for (an Azure
    deployment), looked up first in ``overrides``. ``when`` (default now) picks the dated price.

    >>> call_cost("gpt-4o", 1000, 100, requested="prod-4o", overrides={"prod-4o": ModelPrice(Decimal(1), Decimal(2))})
    0.0012
    """
    if prompt_tokens is None and completion_tokens is None:
        return None
    usage = (max(prompt_tokens or 0, 0), max(completion_tokens or 0, 0), max(cached_tokens or 0, 0))
    names = [n for n in (requested, model) if n]
    for name in names:
        own = (overrides or {}).get(name.casefold())
        if own is not None:
            return float(own.cost(*usage))
    moment = when or datetime.now(UTC)
    for name in dict.fromkeys(reversed(names)):  # the response's model first, then the requested name
        price = _listed_price(name, provider, usage, moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        if price is not None:
            number = float(price)
            return number if math.isfinite(number) else None
    return None


class _PricesFile:
    """The override prices in force: the ``prices_file`` setting, re-read when the file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._stamp: float | None = None
        self._prices: dict[str, ModelPrice] = {}

    def use(self, path: str | os.PathLike[str] | None) -> None:
        with self._lock:
            self._path = None if path is None else Path(path)
            self._stamp, self._prices = None, {}
        if path is not None:
            load_prices_file(path)  # a bad file is refused where it is given

    def current(self) -> dict[str, ModelPrice]:
        with self._lock:
            if self._path is None:  # none handed over (yet): list prices only; record/ reads no settings
                return {}
            try:
                stamp = self._path.stat().st_mtime
            except OSError:
                return {}  # a file that went away: list prices only (logged by nobody: cost is best effort)
            if stamp != self._stamp:
                self._prices, self._stamp = load_prices_file(self._path), stamp
            return self._prices


_prices_file = _PricesFile()


def _new_locks_in_child() -> None:
    """After ``os.fork()``: another thread of the parent may have held a lock (pricing a call on a lane
    thread, a ``configure()`` handing over the prices file); in the child that thread does not exist and
    the lock would stay held for good, so the child's first priced call hung. Fresh locks; the cache and
    the overrides are plain data and stay valid."""
    global _coefficients_lock
    _coefficients_lock = threading.Lock()
    _prices_file._lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_new_locks_in_child)


def use_prices_file(path: str | os.PathLike[str] | None) -> None:
    """Price calls with this overrides file from now on (``configure(prices_file=...)``); None: list prices only.

    The recorder hands over the ``prices_file`` setting (``WONKALYTICS_PRICES``) whenever it assembles
    its sinks; until then calls are priced from list prices only (record/ never reads the settings).
    """
    _prices_file.use(path)


def interaction_cost(interaction: Interaction) -> dict[str, Any]:
    """Record part: ``cost_usd`` of one interaction (``None`` when unknown)."""
    i = interaction
    requested = i.params.get("model") if isinstance(i.params.get("model"), str) else None
    try:
        overrides = _prices_file.current()
    except ConfigurationError:
        overrides = {}  # refused when configured; a file broken since is ignored rather than break the row
    cost = call_cost(i.response_model or requested, i.prompt_tokens, i.completion_tokens,
                     cached_tokens=i.cached_tokens, provider=i.provider_type,
                     when=datetime.fromtimestamp(i.start_time, UTC), requested=requested, overrides=overrides)
    return {"cost_usd": cost}
