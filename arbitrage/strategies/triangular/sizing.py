"""Depth-walk sizing of one cycle: how much to trade on each leg, and what it yields.

Fees are charged where each market takes them (``Market.fee_side``, as in ``cross_exchange`` and
the paper venue): in quote, a buy of ``a`` base costs ``notional * (1 + fee)`` quote and a sell
yields ``notional * (1 - fee)``; in base, a buy of ``a`` costs ``notional`` and delivers
``a * (1 - fee)`` base, a sell of ``a`` yields ``notional`` and gives ``a * (1 + fee)`` base. What
a leg receives, net of its fee, is what the next leg spends. A leg's amount is always in base
units (what the order asks for).

Sizing: the cycle's output is a concave piecewise-linear function of its input (each leg is a walk
over price levels and the output of one leg is the input of the next). ``max_input`` advances all
legs together, breakpoint by breakpoint; a segment is taken while its marginal rate is above 1 and
the average rate stays at or above ``1 + min_profit_bps`` (a segment may be cut inside), and while
every leg's input fits its cap and the start amount fits ``x_cap``. ``plan`` then rounds amounts
down to each market's ``amount_step`` leg by leg, trims them backwards so each leg produces just
what the next one consumes, prices them exactly by walking the books again, and checks them against
minimum amount and cost and against ``min_profit_bps``.

These are pure functions of the book levels and rules they are given: no state, no counters.
Levels are ``(price, amount)``, best first; for ``max_input`` a level with a price or amount <= 0
ends that side of the book.
"""

from __future__ import annotations

import math
import typing as t
from operator import itemgetter

from arbitrage.book import floor_to_step, round_price, round_up, walk
from arbitrage.events import Level, Market, fee_factors
from arbitrage.strategies.triangular.cycles import Cycle

__all__ = ["Found", "LegRules", "PlannedLeg", "edge_rules", "loosen", "max_input", "plan", "reserved"]

_INF = float("inf")
_size_of = itemgetter(1)
_new_tuple = tuple.__new__  # builds the NamedTuples below without their Python-level __new__


class PlannedLeg(t.NamedTuple):
    """One sized leg of a found cycle."""

    symbol: str
    side: t.Literal["buy", "sell"]
    amount: float
    """Base amount, a multiple of the market's amount step."""
    price: float
    """Limit: the last level the walk used (``loosen`` moves it past that level)."""
    expected_price: float
    """Volume-weighted price of the walk."""
    fee_rate: float
    spent: float
    """Input asset given up, fee included (quote for a buy, base for a sell)."""
    received: float
    """Output asset received, fee deducted (base for a buy, quote for a sell)."""
    fee_in_base: bool
    """The venue takes the fee in base (from what a buy receives, on top of what a sell gives)."""


class Found(t.NamedTuple):
    """A sized, profitable cycle, in the cycle's starting asset."""

    cycle: Cycle
    legs: tuple[PlannedLeg, ...]
    spent: float
    received: float
    profit: float
    profit_bps: float
    book_ts: tuple[int, ...]


class LegRules(t.NamedTuple):
    """What sizing needs to know about one edge (a market crossed in one direction)."""

    symbol: str
    side: t.Literal["buy", "sell"]
    buy: bool
    """True when the leg buys base at the ask (walks asks), False when it sells at the bid."""
    fee: float
    """Taker fee, a fraction of notional (of the amount where it is taken in base)."""
    up: float
    """Quote paid per unit of notional bought: ``1 + fee``, 1 where the buy's fee is in base."""
    down: float
    """Quote received per unit of notional sold: ``1 - fee``, 1 where the sale's fee is in base."""
    base: float
    """Base moved per unit of amount, fee included: received by a buy (``1 - fee`` where its fee is
    taken in base), given by a sell (``1 + fee`` likewise); else 1."""
    fee_in_base: bool
    step: float
    """Amount step (0 = no rounding)."""
    min_amount: float
    min_cost: float


def edge_rules(markets: t.Sequence[Market]) -> list[LegRules]:
    """``LegRules`` per edge id (``2 * market id`` sells, ``2 * market id + 1`` buys)."""
    out: list[LegRules] = []
    for m in markets:
        up = m.fee_factors("buy")[0]
        down = m.fee_factors("sell")[0]
        for side in ("sell", "buy"):
            in_base = m.fee_in_base(side)
            out.append(LegRules(m.symbol, side, side == "buy", m.taker_fee, up, down, m.fee_factors(side)[1],
                                in_base, m.amount_step, m.min_amount, m.min_cost))
    return out


def max_input(legs: t.Sequence[LegRules], levels: t.Sequence[t.Sequence[Level]], caps: t.Sequence[float],
              x_cap: float, threshold: float) -> tuple[float, float]:
    """Most profitable start amount before rounding, and a smaller fallback (0 if none).

    :param levels: per leg, the side of its book it walks (asks for a buy, bids for a sell).
    :param caps: largest input of each leg, in its input asset (``inf`` = no cap).
    :param x_cap: largest start amount.
    :param threshold: ``1 + min_profit_bps / 1e4``: the least average rate to keep.

    The fallback is where the last full segment ended when the average-rate bound cut the final
    one, so rounding has margin to lose.
    """
    n = len(legs)
    pos = [0] * n
    rem = [0.0] * n
    rate = [0.0] * n
    mults = [0.0] * n
    caps = list(caps)
    x = y = x_safe = 0.0
    reload: t.Iterable[int] = range(n)
    while True:
        for i in reload:  # the current level of each leg that moved (every leg at first)
            lv = levels[i]
            p = pos[i]
            if p >= len(lv):
                return x, (x_safe if x_safe < x else 0.0)
            price, size = lv[p]
            if price <= 0.0 or size <= 0.0:
                return x, (x_safe if x_safe < x else 0.0)
            _, _, buy, _, up, down, base, _, _, _, _ = legs[i]
            if buy:
                rate[i] = base / (price * up)
                rem[i] = price * size * up
            else:
                rate[i] = price * down / base
                rem[i] = size * base
        mult = 1.0
        step = x_cap - x
        bound = -1  # which leg limits the segment: -1 = the start cap
        by_cap = True
        for i in range(n):
            mults[i] = mult
            level = rem[i] / mult
            if level < step:
                step, bound, by_cap = level, i, False
            cap = caps[i] / mult
            if cap < step:
                step, bound, by_cap = cap, i, True
            mult *= rate[i]
        if mult <= 1.0:
            break
        cut = False
        if mult < threshold:
            room = (y - threshold * x) / (threshold - mult) * (1.0 - 1e-9)
            if room < step:
                step, cut = max(room, 0.0), True
        if step <= 0.0:
            break
        if cut:
            x_safe = x
        x += step
        y += mult * step
        if cut or by_cap:
            break
        reload = []
        for i in range(n):
            used = step * mults[i]
            caps[i] -= used
            left = rem[i] - used
            if i == bound or left <= rem[i] * 1e-12:
                pos[i] += 1
                reload.append(i)
            else:
                rem[i] = left
    return x, (x_safe if x_safe < x else 0.0)


def plan(cycle: Cycle, legs: t.Sequence[LegRules], levels: t.Sequence[t.Sequence[Level]],
         book_ts: tuple[int, ...], start: float, caps: t.Sequence[float],
         min_profit_bps: float) -> Found | None:
    """Round, trim and price the legs for ``start`` units of the start asset.

    :param levels: per leg, the side of its book it walks (asks for a buy, bids for a sell).
    :param book_ts: ``ts_event`` of each leg's book, for ``Found.book_ts``.

    :returns: the sized cycle, or None if it misses a leg's minimum amount or cost, a book is too
        thin, or its profit falls below ``min_profit_bps``.
    """
    n = len(legs)
    amounts = [0.0] * n
    walked: list[tuple[float, tuple[float, float, float]] | None] = [None] * n
    """Per leg, the last walk done: (amount, walk result); ``walk`` is a pure function of both."""
    budget = start
    for i in range(n):
        _, _, buy, _, up, down, base, _, step, _, _ = legs[i]  # unpacked: cheaper than attribute reads
        cap = caps[i]
        if cap < budget:
            budget = cap
        lv = levels[i]
        if buy:
            amount = floor_to_step(_affordable(lv, budget, up), step)
            amount, result = _fit_buy(lv, amount, budget, up, step)
            received = amount * base
        else:
            total = sum(map(_size_of, lv))
            most = budget / base
            amount = floor_to_step(total if total < most else most, step)
            if amount * base > budget:  # the division's rounding: what the sale gives must fit
                amount = floor_to_step(amount - step, step) if step > 0.0 else math.nextafter(amount, 0.0)
            result = walk(lv, amount)
            received = result[1] * down
        if amount <= 0.0:
            return None
        amounts[i] = amount
        walked[i] = (amount, result)
        budget = received
    for leg in legs:
        if leg.step > 0.0:
            _trim(legs, levels, amounts, walked)
            break
    planned: list[PlannedLeg] = []
    previous = 0.0
    for i in range(n):
        symbol, side, buy, fee, up, down, base, in_base, _, min_amount, min_cost = legs[i]
        amount = amounts[i]
        last_walk = walked[i]
        if last_walk is not None and last_walk[0] == amount:
            filled, notional, last = last_walk[1]
        else:
            filled, notional, last = walk(levels[i], amount)
        if filled < amount * (1.0 - 1e-12) or amount < min_amount or notional < min_cost:
            return None
        if buy:
            spent = notional * up
            received = amount * base
        else:
            spent = amount * base
            received = notional * down
        if i and spent > previous:
            return None
        previous = received
        planned.append(_new_tuple(PlannedLeg, (symbol, side, amount, last, notional / amount, fee, spent,
                                               received, in_base)))
    spent, received = planned[0].spent, previous
    profit = received - spent
    profit_bps = profit / spent * 1e4
    if profit <= 0.0 or profit_bps < min_profit_bps:
        return None
    return _new_tuple(Found, (cycle, tuple(planned), spent, received, profit, profit_bps, book_ts))


def loosen(found: Found, slippage_bps: float, price_steps: t.Sequence[float],
           threshold: float) -> Found | None:
    """``found`` with each leg's limit ``slippage_bps`` past the last level walked (buys up, sells
    down, rounded on the price grid towards the book), so that a book moving by less than that
    while the orders travel still fills them; None when the worst case -- every leg filling wholly
    at its new limit -- would not reach ``threshold`` (``1 + min_profit_bps / 1e4``) after fees.

    :param price_steps: per leg, its market's price step (0 = no grid).
    """
    s = slippage_bps / 1e4
    legs = []
    worst = 1.0
    for leg, step in zip(found.legs, price_steps, strict=True):
        quote, base = fee_factors(leg.side, leg.fee_rate, leg.fee_in_base)
        if leg.side == "buy":
            limit = round_price(leg.price * (1.0 + s), step, up=False)
            worst = worst * base / (limit * quote)
        else:
            limit = round_price(leg.price * (1.0 - s), step, up=True)
            worst = worst * (limit * quote) / base
        legs.append(leg._replace(price=max(limit, leg.price) if leg.side == "buy" else min(limit, leg.price)))
    if worst < threshold * (1.0 - 1e-12):
        return None
    return found._replace(legs=tuple(legs))


def reserved(leg: PlannedLeg) -> float:
    """What a venue holds back for the leg's order in its input asset (``Market.reserve``): the whole
    amount at the limit for a buy (quote), the amount for a sell (base), each with the fee where it
    is taken from that asset. Balances must cover this, not ``spent``."""
    quote, base = fee_factors(leg.side, leg.fee_rate, leg.fee_in_base)
    return leg.amount * leg.price * quote if leg.side == "buy" else leg.amount * base


# -- helpers -------------------------------------------------------------------------------------

def _base_for(levels: t.Sequence[Level], notional: float) -> float | None:
    """Base amount traded on ``levels`` (best first) for ``notional`` quote; None if they hold less."""
    amount = 0.0
    for price, size in levels:
        value = price * size
        if value >= notional:
            return amount + notional / price
        amount += size
        notional -= value
    return None


def _affordable(asks: t.Sequence[Level], budget: float, up: float) -> float:
    """Base amount that ``budget`` quote buys from ``asks``, fee included (no rounding): all of
    them if the budget exceeds the book."""
    amount = _base_for(asks, budget / up)
    return sum(size for _, size in asks) if amount is None else amount


def _sellable_for(bids: t.Sequence[Level], need: float, down: float) -> float:
    """Base amount whose sale on ``bids`` yields ``need`` quote after a fee in quote (``down`` =
    quote received per unit of notional; inf if too thin)."""
    amount = _base_for(bids, need / down) if down > 0.0 else None
    return _INF if amount is None else amount


def _fit_buy(asks: t.Sequence[Level], amount: float, budget: float, up: float,
             step: float) -> tuple[float, tuple[float, float, float]]:
    """Shrink a buy until its cost with fee fits ``budget`` (guards float rounding); the amount
    (0 if none fits) and its walk."""
    for _ in range(8):
        if amount <= 0.0:
            break
        result = walk(asks, amount)
        cost = result[1] * up
        if cost <= budget:
            return amount, result
        amount = floor_to_step(amount - step, step) if step > 0.0 else math.nextafter(
            amount * min(budget / cost, 1.0), 0.0)
    return 0.0, (0.0, 0.0, 0.0)


def _trim(legs: t.Sequence[LegRules], levels: t.Sequence[t.Sequence[Level]], amounts: list[float],
          walked: list[tuple[float, tuple[float, float, float]] | None]) -> None:
    """Shrink legs backwards so each produces just what the next consumes (rounding dust)."""
    for i in range(len(amounts) - 2, -1, -1):
        _, _, buy, _, _, down, base, _, step, _, _ = legs[i]
        nxt = legs[i + 1]
        if nxt.buy:
            amount = amounts[i + 1]
            last_walk = walked[i + 1]
            if last_walk is None or last_walk[0] != amount:
                last_walk = walked[i + 1] = (amount, walk(levels[i + 1], amount))
            need = last_walk[1][1] * nxt.up
        else:
            need = amounts[i + 1] * nxt.base
        if buy:
            trimmed = round_up(need / base, step)
            ok = trimmed * base >= need
            result = None
        else:
            sellable = _sellable_for(levels[i], need, down)
            if sellable == _INF:  # the book is too thin to yield ``need``: nothing to trim to
                continue
            trimmed = round_up(sellable, step)
            result = walk(levels[i], trimmed)
            ok = result[1] * down >= need
        if ok and trimmed < amounts[i]:
            amounts[i] = trimmed
            if result is not None:
                walked[i] = (trimmed, result)
