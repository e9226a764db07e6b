"""Sequential legs: a chain of legs on one venue, sent one at a time, each sized from the last.

It exists apart from the executor because a chain (``trading.sequential_legs``, see
``risk.chained``) cannot go out like ordinary legs, all at once: each leg is sent only after the
one before it ended, and its amount is what that leg delivered (its balance change in the asset
this leg spends, net of fees), never more than the opportunity planned. A sell spends the
delivered base rounded down to the market's step (``delivered / (1 + taker fee)`` where the fee
is taken in base); a buy spends delivered quote, buying ``delivered / (limit * (1 + taker fee))``
base rounded down (``delivered / limit`` where the fee is taken from the base it receives). The
chain stops at the first leg that does not fill fully (or whose delivery buys nothing); later legs
are never sent.

``Chain`` is the plan the executor steps through: ``next_order`` gives the next leg's order (or
None when the chain is over), the executor sends it, and ``filled`` takes its result and says what
the arbitrage holds reserved from then on. The chain sends nothing itself.
"""

from __future__ import annotations

import math
import typing as t

from arbitrage.book import EPS, round_down
from arbitrage.events import Leg, Market, Opportunity
from arbitrage.trading.ids import client_order_id, order_label
from arbitrage.trading.risk import Markets
from arbitrage.trading.venue import OrderRequest, OrderResult, balance_deltas

__all__ = ["Chain", "chained_amount", "leg_request"]


class Chain:
    """The legs of one sequential opportunity, one order at a time (module doc)."""

    def __init__(self, opportunity: Opportunity, markets: Markets, log: t.Any) -> None:
        self.opportunity = opportunity
        self._markets = markets
        self._log = log
        self._next = 0
        """Index of the leg ``next_order`` sizes; ``len(legs)`` once the chain is over."""
        self._delivered = 0.0

    def next_order(self) -> OrderRequest | None:
        """The next leg's order, sized from what the last leg delivered; None when the chain is over
        (every leg sent, a leg did not fill fully, or the delivery buys nothing)."""
        legs = self.opportunity.legs
        i = self._next
        if i >= len(legs):
            return None
        leg = legs[i]
        amount = leg.amount if i == 0 else chained_amount(leg, self._market(leg), self._delivered)
        if amount <= EPS:
            self._log.warning("chain stopped before leg {} ({} {}): {:.10g} delivered buys nothing at "
                              "{:.10g}", i, leg.side, leg.symbol, self._delivered, leg.price)
            self._next = len(legs)
            return None
        return leg_request(self.opportunity, i, amount)

    def filled(self, result: OrderResult) -> dict[tuple[str, str], float] | None:
        """Take the result of the order ``next_order`` gave; return what the arbitrage holds reserved
        from now on (what this leg delivered, for the next leg to spend), or None when nothing moves
        on (this was the last leg, or it did not fill fully and the chain stops)."""
        legs = self.opportunity.legs
        i = self._next
        leg = legs[i]
        if result.status != "filled":
            self._log.warning("chain stopped at leg {} ({} {}): {} {}", i, leg.side, leg.symbol,
                              result.status, result.reason)
            self._next = len(legs)
            return None
        market = self._market(leg)
        output = market.base if leg.side == "buy" else market.quote
        deltas = balance_deltas(leg.side, market, result.filled, result.notional, result.fee,
                                result.fee_currency)
        self._delivered = deltas.get(output, 0.0)
        self._next = i + 1
        return {(leg.venue, output): self._delivered} if self._next < len(legs) else None

    def _market(self, leg: Leg) -> Market:
        return self._markets[leg.venue][leg.symbol]


def leg_request(opportunity: Opportunity, index: int, amount: float) -> OrderRequest:
    """The order for leg ``index`` of ``opportunity``, labelled ``{opportunity id}-L{index}`` (its client
    order id derives from the label: ``trading.ids``)."""
    leg = opportunity.legs[index]
    label = order_label(opportunity.id, "L", index)
    return OrderRequest(client_order_id=client_order_id(label), label=label, opportunity_id=opportunity.id,
                        venue=leg.venue, symbol=leg.symbol, side=leg.side, amount=amount, price=leg.price,
                        purpose="leg")


def chained_amount(leg: Leg, market: Market, delivered: float) -> float:
    """Base amount of ``leg`` that ``delivered`` units of its input asset pay for: rounded down to
    the market's step, at most the planned amount, and never costing more than ``delivered``
    (what a venue holding nothing else would check)."""
    step = market.amount_step
    per_unit = market.reserve(leg.side, 1.0, leg.price)  # input asset spent per base unit
    amount = round_down(min(delivered / per_unit, leg.amount), step)
    for _ in range(4):  # round_down forgives float noise, so it may land a hair above the budget
        cost = market.reserve(leg.side, amount, leg.price)
        if amount <= EPS or cost <= delivered:
            return amount
        amount = round_down(amount - step, step) if step > 0 else math.nextafter(amount * delivered / cost, 0)
    return 0.0
