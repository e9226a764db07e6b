"""Orders of unknown fate in the executor, on the simulated clock: a venue that loses its answers.

The venue fills through a paper account but its ``submit`` raises (the answer was lost), and its
``resolve`` says "unknown" a given number of times before telling the truth. The executor must
alert, halt that venue, hedge nothing and resend nothing until it knows.
"""

from __future__ import annotations

import asyncio

from arbitrage.events import Alert, ArbResult, OpportunityRejected, OrderSubmitted, OrderUpdate
from arbitrage.trading.venue import OrderRequest, OrderResult, Venue
from tests.trading.helpers import T0, Harness, cid, leg, make_settings, market, opportunity, run

A, B = "alpha", "beta"


class LostAnswers(Venue):
    """A paper venue whose first answer is lost: ``resolve`` is 'unknown' ``silent`` times, then
    true. With ``placed=False`` that order never reached the book (resolved as not placed); later
    orders are answered as the paper venue answers them."""

    def __init__(self, paper: Venue, silent: int, placed: bool = True) -> None:
        self.name = paper.name
        self.paper = paper
        self.silent = silent
        self.placed = placed
        self.known: dict[str, OrderResult] = {}
        self.sent: list[str] = []
        self.asked_at: list[int] = []

    async def submit(self, order: OrderRequest) -> OrderResult:
        self.sent.append(order.client_order_id)
        if len(self.sent) > 1:
            return await self.paper.submit(order)
        if self.placed:
            self.known[order.client_order_id] = await self.paper.submit(order)
        else:
            self.known[order.client_order_id] = OrderResult(client_order_id=order.client_order_id,
                                                            status="rejected", reason="not placed")
        raise ConnectionResetError("answer lost")

    async def resolve(self, order: OrderRequest) -> OrderResult:
        self.asked_at.append(self.clock.time_ns())
        if len(self.asked_at) <= self.silent:
            return OrderResult(client_order_id=order.client_order_id, status="unknown",
                               reason="still unknown")
        return self.known[order.client_order_id]

    def balances(self) -> dict[str, float]:
        return self.paper.balances()

    async def cancel_all(self) -> None:
        pass


def setup(h: Harness, *, silent: int, placed: bool = True) -> LostAnswers:
    h.markets(A, market(fee=0.001), staleness_ms=60_000.0)  # books stay usable while the venue is asked
    h.markets(B, market(fee=0.001), staleness_ms=60_000.0)
    h.book(A, "BTC/USDT", [(99.0, 5.0)], [(100.0, 5.0)])
    h.book(B, "BTC/USDT", [(110.0, 5.0)], [(111.0, 5.0)])
    lost = LostAnswers(h.trader.venues[A], silent, placed)
    lost.clock = h.clock
    h.trader.venues[A] = lost
    return lost


async def until(h: Harness, condition) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never met")


def test_an_unknown_fate_halts_the_venue_until_the_venue_says_the_order_filled():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        lost = setup(h, silent=2)
        with h.bus.collect(OrderUpdate, Alert, OpportunityRejected, ArbResult, OrderSubmitted) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 110.0)))
            await until(h, lambda: h.trader.executor.risk.halted_venues)
            halted = {v: set(ids) for v, ids in h.trader.executor.risk.halted_venues.items()}
            h.bus.publish(opportunity("x2", leg(A, "buy", 0.1, 100.0), leg(B, "sell", 0.1, 110.0)))
            await h.settle()
        return h, lost, seen, halted

    h, lost, seen, halted = run(scenario())
    x1 = cid("x1-L0")
    assert halted == {A: {x1}} and h.trader.executor.risk.halted_venues == {}
    assert [(e.opportunity_id, e.reason) for e in seen if isinstance(e, OpportunityRejected)] == [
        ("x2", "venue_halted")]
    # asked after 1 s, then 2 s more, then 4 s more (doubling): unknown, unknown, filled
    assert [(t - T0) / 1e9 for t in lost.asked_at] == [1.0, 3.0, 7.0]
    assert lost.sent == [x1]  # never resent
    updates = [(u.client_order_id, u.status) for u in seen if isinstance(u, OrderUpdate)]
    assert sorted(updates[:2]) == sorted([(x1, "unknown"), (cid("x1-L1"), "filled")])
    assert updates[2:] == [(x1, "filled")]
    alerts = [(a.level, a.key, a.recovered) for a in seen if isinstance(a, Alert)]
    key = f"order.unknown:{A}:{x1}"
    assert alerts == [("critical", key, False), ("critical", key, True)]
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert result.status == "complete"  # both legs filled: nothing was hedged
    assert [s.purpose for s in seen if isinstance(s, OrderSubmitted)] == ["leg", "leg"]
    assert h.trader.executor.order_status == {"filled": 2}


def test_the_other_leg_is_hedged_only_once_the_unknown_one_is_known_not_placed():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        lost = setup(h, silent=1, placed=False)
        with h.bus.collect(OrderUpdate, ArbResult, OrderSubmitted) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 110.0)))
            await h.settle()
        return lost, seen

    lost, seen = run(scenario())
    events = [(type(e).__name__, e.label if isinstance(e, OrderSubmitted) else e.status)
              for e in seen if isinstance(e, OrderSubmitted | OrderUpdate)]
    # the hedge of beta's filled sell is submitted only after alpha's buy is known not placed
    assert events.index(("OrderUpdate", "rejected")) < events.index(("OrderSubmitted", "x1-H0"))
    assert lost.sent == [cid("x1-L0"), cid("x1-H0")]  # the hedge is a new order, the leg never resent
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    assert [(lr.venue, lr.status, lr.purpose) for lr in result.legs] == [
        (A, "rejected", "leg"), (B, "filled", "leg"), (A, "filled", "hedge")]


def test_an_arbitrage_stopped_while_a_fate_is_unknown_reports_it_unknown_and_failed():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        setup(h, silent=10_000)
        with h.bus.collect(ArbResult) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 110.0)))
            await until(h, lambda: h.trader.executor.risk.halted_venues)
            await h.trader.executor.cancel()
        return h, seen

    h, seen = run(scenario())
    [result] = seen
    assert result.status == "failed"
    assert [lr.status for lr in result.legs] == ["unknown", "filled"]
    assert h.trader.executor.risk.halted_venues == {A: {cid("x1-L0")}}  # stays halted
