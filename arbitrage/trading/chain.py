"""Sequential legs: a chain of legs on one venue, sent one at a time, each sized from the last.

It exists apart from the executor because a chain (``trading.sequential_legs``, see
``risk.chained``) cannot go out like ordinary legs, all at once: each leg is published and sent
only after the one before it ended, and its amount is what that leg delivered (its balance change
in the asset this leg spends, net of fees), never more than the opportunity planned. A sell
spends the delivered base rounded down to the market's step; a buy spends delivered quote,
buying ``delivered / (limit * (1 + taker fee))`` base rounded down. The chain stops at the first
leg that does not fill fully (or whose delivery buys nothing); later legs are never sent.
"""

from __future__ import annotations

import collections.abc as c
import math
import typing as t

from arbitrage.book import round_down
from arbitrage.events import Leg, Market, Opportunity
from arbitrage.trading.risk import Markets, RiskGate
from arbitrage.trading.venue import Order, OrderRequest, balance_deltas

__all__ = ["chained_amount", "leg_request", "send_chain"]

_EPS = 1e-12


async def send_chain(opportunity: Opportunity, orders: list[Order], log: t.Any, *, markets: Markets,
                     risk: RiskGate,
                     send: c.Callable[[c.Sequence[OrderRequest], list[Order]], c.Awaitable[None]]) -> None:
    """Send the legs one at a time, each sized from what the one before delivered (module doc).

    ``send`` is the executor's ``_send``. Returns at the first leg that does not fill fully; what
    the chain holds then is left for closing exposure. Each delivery becomes the arbitrage's
    reservation until spent.
    """
    legs = opportunity.legs
    delivered = 0.0
    for i, leg in enumerate(legs):
        market = markets[leg.venue][leg.symbol]
        amount = leg.amount if i == 0 else chained_amount(leg, market, delivered)
        if amount <= _EPS:
            log.warning("chain stopped before leg {} ({} {}): {:.10g} delivered buys nothing at {:.10g}",
                        i, leg.side, leg.symbol, delivered, leg.price)
            return
        await send([leg_request(opportunity, i, amount)], orders)
        result = orders[-1][1]
        if result.status != "filled":
            log.warning("chain stopped at leg {} ({} {}): {} {}", i, leg.side, leg.symbol,
                        result.status, result.reason)
            return
        output = market.base if leg.side == "buy" else market.quote
        deltas = balance_deltas(leg.side, market, result.filled, result.notional, result.fee,
                                result.fee_currency)
        delivered = deltas.get(output, 0.0)
        if i + 1 < len(legs):
            risk.reserve(opportunity.id, {(leg.venue, output): delivered})


def leg_request(opportunity: Opportunity, index: int, amount: float) -> OrderRequest:
    """The order for leg ``index`` of ``opportunity``, client order id ``{opportunity id}-L{index}``."""
    leg = opportunity.legs[index]
    return OrderRequest(client_order_id=f"{opportunity.id}-L{index}", opportunity_id=opportunity.id,
                        venue=leg.venue, symbol=leg.symbol, side=leg.side, amount=amount, price=leg.price,
                        purpose="leg")


def chained_amount(leg: Leg, market: Market, delivered: float) -> float:
    """Base amount of ``leg`` that ``delivered`` units of its input asset pay for: rounded down to
    the market's step, at most the planned amount, and never costing more than ``delivered``
    (what a venue holding nothing else would check)."""
    step = market.amount_step
    if leg.side == "sell":
        amount = round_down(min(delivered, leg.amount), step)
    else:
        amount = round_down(min(delivered / (leg.price * (1.0 + market.taker_fee)), leg.amount), step)
    for _ in range(4):  # round_down forgives float noise, so it may land a hair above the budget
        cost = amount if leg.side == "sell" else amount * leg.price * (1.0 + market.taker_fee)
        if amount <= _EPS or cost <= delivered:
            return amount
        amount = round_down(amount - step, step) if step > 0 else math.nextafter(amount * delivered / cost, 0)
    return 0.0
