"""Order-book arithmetic shared by strategies and venues: depth walks and precision.

Levels are ``(price, amount)`` tuples, best first: bids descending, asks ascending.
"""

from __future__ import annotations

import math
import typing as t

from arbitrage.events import Level

_EPS = 1e-12


def round_down(amount: float, step: float) -> float:
    """Round ``amount`` down to a multiple of ``step`` (``step`` 0 leaves it as is).

    Tolerates float noise: 0.3 with step 0.1 stays 0.3, it does not become 0.2; and it never
    rounds up (0.29999999999999993 stays itself rather than becoming 0.3, more than a balance holds).
    """
    if step <= 0:
        return amount
    units = math.floor(amount / step + 1e-9)
    # the tolerance may lift a value a hair under a step onto it: never return more than was given
    return min(round(units * step, 12), amount)


def walk(levels: t.Sequence[Level], amount: float, limit: float | None = None,
         side: t.Literal["buy", "sell"] = "buy") -> tuple[float, float, float]:
    """Take up to ``amount`` base from ``levels`` without passing ``limit``.

    :param levels: asks for a buy, bids for a sell, best first.
    :param limit: worst acceptable price (a buy stops above it, a sell below it); None = no limit.
    :returns: ``(filled, notional, last_price)``; notional is sum(price * amount) before fees and
        last_price is the price of the last level touched (0 if nothing filled).
    """
    filled = 0.0
    notional = 0.0
    last = 0.0
    remaining = amount
    for price, size in levels:
        if remaining <= _EPS:
            break
        if limit is not None and (price > limit + _EPS if side == "buy" else price < limit - _EPS):
            break
        take = size if size < remaining else remaining
        filled += take
        notional += take * price
        remaining -= take
        last = price
    return filled, notional, last


def is_crossed(bids: t.Sequence[Level], asks: t.Sequence[Level]) -> bool:
    """True when the best bid is at or above the best ask: a broken book not to trade on."""
    return bool(bids) and bool(asks) and bids[0][0] >= asks[0][0]
