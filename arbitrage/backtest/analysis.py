"""Figures of a backtest from its list of arbitrages: pure functions, no I/O.

Definitions (all per quote currency, ``realized`` net of every fee, hedges included; ``net`` per
arbitrage = its realized + unrealized profit, what it left open at its mark when it finished):

* ``gross_pnl`` = net + fees (what the trades made before fees);
* ``fill_ratio`` = mean over every leg order of filled / requested amount;
* ``execution_ratio`` = arbitrages executed / opportunities seen;
* ``max_drawdown`` = largest fall of the cumulative net profit of the arbitrages from its running
  peak (>= 0), the curve starting at 0 before the first trade;
* ``best`` / ``worst`` = per quote currency, the ``TOP`` arbitrages with the highest / lowest
  net profit (ties: earlier first);
* ``by_venue_pair`` / ``by_symbol`` rows: ``net_pnl`` (and ``realized_pnl``) of their arbitrages.
"""

from __future__ import annotations

import collections.abc as c
import typing as t
from collections import defaultdict

from arbitrage.events import ArbResult

__all__ = ["TOP", "analyse", "arb_entry", "max_drawdown", "route_of"]

TOP = 3


def route_of(entry: t.Mapping[str, t.Any]) -> str:
    """The symbol of a two-leg arbitrage, or ``A>B>C`` for one across several symbols."""
    return str(entry["symbol"]) if "symbol" in entry else ">".join(entry["symbols"])


def arb_entry(result: ArbResult, id_prefix: str = "") -> dict[str, t.Any]:
    """One arbitrage as the JSON report lists it; ``id_prefix`` (the run id + '-') is cut from ids."""
    legs = [leg for leg in result.legs if leg.purpose == "leg"] or list(result.legs)
    buys = [leg.venue for leg in legs if leg.side == "buy"]
    sells = [leg.venue for leg in legs if leg.side == "sell"]
    symbols = list(dict.fromkeys(leg.symbol for leg in legs))
    ratios = [leg.filled / leg.amount for leg in legs if leg.amount > 0]
    oid = result.opportunity_id
    entry: dict[str, t.Any] = {
        "id": oid[len(id_prefix):] if id_prefix and oid.startswith(id_prefix) else oid,
        "ts": result.ts_init // 1_000_000,
        "strategy": result.strategy,
        "status": result.status,
        "quote": result.quote,
        "buy_venue": buys[0] if buys else "",
        "sell_venue": sells[0] if sells else "",
        "amount": legs[0].amount if legs else 0.0,
        "expected_profit": result.expected_profit,
        "realized_profit": result.realized_profit,
        "unrealized_profit": result.unrealized_profit,
        "net_profit": result.net_profit,
        "fees": result.fees,
        "fill_ratio": sum(ratios) / len(ratios) if ratios else 0.0,
        "orders": len(result.legs),
    }
    if len(symbols) == 1:
        entry["symbol"] = symbols[0]
    else:
        entry["symbols"] = symbols
    return entry


def max_drawdown(profits: c.Iterable[float]) -> float:
    """Largest drop of the running sum of ``profits`` below its earlier peak (the sum starts at 0)."""
    total = peak = worst = 0.0
    for p in profits:
        total += p
        peak = max(peak, total)
        worst = max(worst, peak - total)
    return worst


def _group(arbs: c.Sequence[t.Mapping[str, t.Any]], key: c.Callable[[t.Mapping[str, t.Any]], str],
           label: str) -> list[dict[str, t.Any]]:
    groups: dict[tuple[str, str], list[t.Mapping[str, t.Any]]] = defaultdict(list)
    for a in arbs:
        groups[(key(a), a["quote"])].append(a)
    rows = []
    for (name, quote), items in sorted(groups.items()):
        rows.append({
            label: name, "quote": quote, "arbs": len(items),
            "complete": sum(a["status"] == "complete" for a in items),
            "net_pnl": _round(sum(a["net_profit"] for a in items)),
            "realized_pnl": _round(sum(a["realized_profit"] for a in items)),
            "expected_pnl": _round(sum(a["expected_profit"] for a in items)),
            "fees": _round(sum(a["fees"] for a in items)),
        })
    return rows


def _round(value: float) -> float:
    return round(value, 10) + 0.0  # + 0.0 turns -0.0 into 0.0


def _brief(a: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    keys = ("id", "ts", "buy_venue", "sell_venue", "quote", "net_profit", "realized_profit",
            "unrealized_profit", "status")
    return {k: a[k] for k in keys} | {"route": route_of(a)}


def _ranked(arbs: c.Sequence[t.Mapping[str, t.Any]], quote: str,
            worst: bool = False) -> list[t.Mapping[str, t.Any]]:
    sign = 1.0 if worst else -1.0
    mine = [a for a in arbs if a["quote"] == quote]
    return sorted(mine, key=lambda a: (sign * a["net_profit"], a["ts"]))


def analyse(arbs: c.Sequence[t.Mapping[str, t.Any]], opportunities: int) -> dict[str, t.Any]:
    """Every report figure from the arbitrage entries (``arb_entry``) in the order they finished."""
    quotes = sorted({a["quote"] for a in arbs})

    def total(field: str, quote: str) -> float:
        return _round(sum(a[field] for a in arbs if a["quote"] == quote))

    legs = [a["fill_ratio"] for a in arbs]
    by_status: dict[str, int] = defaultdict(int)
    for a in arbs:
        by_status[a["status"]] += 1
    return {
        "arbs_executed": len(arbs),
        "arbs_by_status": dict(sorted(by_status.items())),
        "execution_ratio": _round(len(arbs) / opportunities) if opportunities else 0.0,
        "fill_ratio": _round(sum(legs) / len(legs)) if legs else 0.0,
        "realized_pnl": {q: total("realized_profit", q) for q in quotes},
        "expected_pnl": {q: total("expected_profit", q) for q in quotes},
        "fees": {q: total("fees", q) for q in quotes},
        "gross_pnl": {q: _round(sum(a["net_profit"] + a["fees"] for a in arbs if a["quote"] == q))
                      for q in quotes},
        "max_drawdown": {q: _round(max_drawdown(a["net_profit"] for a in arbs if a["quote"] == q))
                         for q in quotes},
        "best": {q: [_brief(a) for a in _ranked(arbs, q)[:TOP]] for q in quotes},
        "worst": {q: [_brief(a) for a in _ranked(arbs, q, worst=True)[:TOP]] for q in quotes},
        "by_venue_pair": _group(arbs, lambda a: f"{a['buy_venue']}->{a['sell_venue']}", "venue_pair"),
        "by_symbol": _group(arbs, route_of, "symbol"),
    }
