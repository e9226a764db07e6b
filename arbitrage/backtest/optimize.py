"""Parameter search: a grid of settings, each backtested in a worker process, ranked by net PnL.

``grid`` maps a strategy parameter (``min_profit_bps``, ``cooldown_ms``; see
``profiles.resolve_key``) to the values to try; every combination is one backtest without storage.
The market's latency and fees are inputs of every backtest of the search, never grid keys
(``profiles.MARKET_KEYS``), so a saved profile never carries them into ``arb run``. Workers are
fresh processes (``spawn``), so each replays with its own clean state. Results are ranked by net
PnL (realized + unrealized) in the quote currency most trades settle in (or the one asked for);
ties are broken by the lower max drawdown, then by grid order (the first combination listed
wins). ``save_profile`` writes the winner as ``profiles/NAME.toml``.
"""

from __future__ import annotations

import collections.abc as c
import concurrent.futures as cf
import itertools
import multiprocessing
import os
import typing as t
from pathlib import Path

import msgspec

from arbitrage.errors import SettingsError
from arbitrage.settings import Settings
from arbitrage.settings.profiles import (
    MARKET_KEYS,
    market_key_error,
    parse_assignment,
    parse_value,
    resolve_key,
    set_value,
    write_profile,
)

__all__ = ["Grid", "parse_grid", "rank", "run_grid", "save_profile"]

Grid = dict[str, list[t.Any]]


def parse_grid(items: c.Sequence[str]) -> Grid:
    """``["min_profit_bps=2,5,10", "latency_ms=10,50"]`` -> ``{"min_profit_bps": [2, 5, 10], ...}``.

    :raises SettingsError: naming ``--grid`` for a malformed item, an unknown key, or a key of the
        simulated market (latency, fees: ``MARKET_KEYS``).
    """
    grid: Grid = {}
    for item in items:
        key, values = parse_assignment(item, "--grid")
        for section, name in resolve_key(key):
            if (section, name) in MARKET_KEYS:
                raise market_key_error("--grid", section, name)
        parsed = [parse_value(v) for v in values.split(",") if v.strip()]
        if not parsed:
            raise SettingsError("--grid", f"no values for {key!r}")
        grid[key] = list(dict.fromkeys(parsed))
    if not grid:
        raise SettingsError("--grid", "give at least one KEY=V1,V2,...")
    return grid


def combinations(grid: Grid) -> list[dict[str, t.Any]]:
    """Every combination of the grid's values, in grid order (the last key varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def apply(settings: Settings, params: t.Mapping[str, t.Any]) -> Settings:
    """``settings`` with ``params`` set, validated like any settings.

    :raises SettingsError: naming the key whose value does not fit.
    """
    from arbitrage.settings import from_dict

    overrides: dict[str, t.Any] = {}
    for key, value in params.items():
        set_value(overrides, key, value)
    data = settings.to_dict()
    for section, values in overrides.items():
        data[section] = {**data.get(section, {}), **values}
    return from_dict(data)


def _evaluate(settings_data: dict[str, t.Any], data: list[str], params: dict[str, t.Any]) -> dict[str, t.Any]:
    """Worker: one backtest, reduced to the figures the ranking needs."""
    from loguru import logger

    from arbitrage.backtest.runner import run_backtest

    logger.remove()
    settings = msgspec.convert(settings_data, Settings)
    result = run_backtest(settings, data, storage=False)
    return {
        "params": params,
        "opportunities": result["opportunities"],
        "arbs": result["arbs_executed"],
        "arbs_by_quote": {q: sum(a["quote"] == q for a in result["arbs"]) for q in result["realized_pnl"]},
        "arbs_by_status": result["arbs_by_status"],
        "fill_ratio": result["fill_ratio"],
        "realized_pnl": result["realized_pnl"],
        "unrealized_pnl": result["unrealized_pnl"],
        "fees": result["fees"],
        "max_drawdown": result["max_drawdown"],
        "fingerprint": result["fingerprint"],
    }


def run_grid(settings: Settings, data: c.Sequence[str | Path], grid: Grid, *, jobs: int | None = None,
             quote: str | None = None,
             on_done: c.Callable[[dict[str, t.Any]], None] | None = None) -> list[dict[str, t.Any]]:
    """Backtest every combination of ``grid`` in ``jobs`` worker processes; rows in grid order.

    :raises SettingsError: before any work starts, if a combination gives invalid settings.
    :raises DataError: if a worker cannot read the data.
    """
    combos = combinations(grid)
    prepared = [(apply(settings, p).to_dict(), p) for p in combos]
    files = [str(f) for f in data]
    workers = max(1, min(jobs or os.cpu_count() or 1, len(prepared)))
    rows: list[dict[str, t.Any] | None] = [None] * len(prepared)
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_evaluate, s, files, p): i for i, (s, p) in enumerate(prepared)}
        for future in cf.as_completed(futures):
            row = future.result()
            rows[futures[future]] = row
            if on_done is not None:
                on_done(row)
    return rank([r for r in rows if r is not None], quote)


def main_quote(rows: c.Sequence[t.Mapping[str, t.Any]]) -> str:
    """The quote currency most arbitrages settled in, over every row (alphabetical among equals)."""
    counts: dict[str, int] = {}
    for row in rows:
        for quote, n in row.get("arbs_by_quote", dict.fromkeys(row["realized_pnl"], 1)).items():
            counts[quote] = counts.get(quote, 0) + n
    return min(counts, key=lambda q: (-counts[q], q)) if counts else ""


def rank(rows: c.Sequence[dict[str, t.Any]], quote: str | None = None) -> list[dict[str, t.Any]]:
    """Rows best first: higher net PnL (realized + unrealized) in ``quote``, then lower max
    drawdown, then grid order.

    :param quote: the currency to rank in; None = ``main_quote(rows)``.
    Each row gets ``rank`` (1 = best), ``quote``, ``net_pnl`` and ``drawdown``.
    """
    quote = quote or main_quote(rows)
    for i, row in enumerate(rows):
        row["quote"] = quote
        row["net_pnl"] = row["realized_pnl"].get(quote, 0.0) + row.get("unrealized_pnl", {}).get(quote, 0.0)
        row["drawdown"] = row["max_drawdown"].get(quote, 0.0)
        row["_order"] = i
    ordered = sorted(rows, key=lambda r: (-r["net_pnl"], r["drawdown"], r["_order"]))
    for n, row in enumerate(ordered, 1):
        row["rank"] = n
        del row["_order"]
    return ordered


def save_profile(name: str, best: t.Mapping[str, t.Any], *, strategy: str, data: c.Sequence[str]) -> Path:
    """Write the winning parameters as ``profiles/NAME.toml`` (sections as the keys resolve)."""
    sections: dict[str, dict[str, t.Any]] = {"run": {"strategy": strategy}}
    for key, value in best["params"].items():
        set_value(sections, key, value)
    comment = (f"Written by `arb optimize --save {name}`: the best of a parameter grid for {strategy}.\n"
               f"Data: {', '.join(data)}\n"
               f"Net PnL {best['net_pnl']:+.6f} {best['quote']}, max drawdown {best['drawdown']:.6f}, "
               f"{best['arbs']} arbs.\n"
               f"Load with: arb run --profile {name}  /  arb backtest --profile {name}")
    return write_profile(name, sections, comment)
