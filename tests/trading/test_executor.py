"""Executor: concurrent legs, exact accounting, hedges, unwinds and refusals, through the Trader plugin."""

from __future__ import annotations

import asyncio

import pytest
from loguru import logger

from arbitrage.events import (
    Alert,
    ArbResult,
    BalanceUpdate,
    Fill,
    OpportunityRejected,
    OrderSubmitted,
    OrderUpdate,
    PositionUpdate,
)
from tests.trading.helpers import T0, Harness, cid, leg, make_settings, market, opportunity, run

A, B = "alpha", "beta"


def two_venues(h: Harness, *, a_bids=((99.0, 5.0),), a_asks=((100.0, 1.0), (101.0, 1.0)),
               b_bids=((110.0, 0.5), (109.0, 2.0)), b_asks=((111.0, 5.0),)) -> None:
    h.markets(A, market(fee=0.001))
    h.markets(B, market(fee=0.002))
    h.book(A, "BTC/USDT", a_bids, a_asks)
    h.book(B, "BTC/USDT", b_bids, b_asks)


def results(seen: list) -> list[ArbResult]:
    return [e for e in seen if isinstance(e, ArbResult)]


def test_complete_two_leg_arb_realizes_the_hand_computed_profit():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        two_venues(h)
        with h.bus.collect(ArbResult, OrderUpdate) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.5, 101.0), leg(B, "sell", 1.5, 109.0),
                                      profit=13.5, notional=150.5))
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    # alpha buys 1.0 @ 100 + 0.5 @ 101 = 150.5, fee 0.1 % = 0.1505 -> pays 150.6505 USDT
    # beta sells 0.5 @ 110 + 1.0 @ 109 = 164, fee 0.2 % = 0.328 -> receives 163.672 USDT
    # profit 163.672 - 150.6505 = 13.0215; fees 0.1505 + 0.328 = 0.4785
    [result] = results(seen)
    assert result.status == "complete"
    assert result.realized_profit == pytest.approx(13.0215, abs=1e-9)
    assert result.fees == pytest.approx(0.4785, abs=1e-9)
    assert result.expected_profit == 13.5
    assert result.slippage == pytest.approx(13.5 - 13.0215, abs=1e-9)
    assert result.residual == {"BTC": 0.0}
    assert [(lr.client_order_id, lr.status, lr.purpose) for lr in result.legs] == [
        (cid("x1-L0"), "filled", "leg"), (cid("x1-L1"), "filled", "leg")]
    # The accounting is the balances: both venues moved by exactly these amounts.
    balances = h.ctx.views.trading.balances
    assert balances[A] == {"USDT": pytest.approx(1000 - 150.6505), "BTC": pytest.approx(3.5)}
    assert balances[B] == {"USDT": pytest.approx(1000 + 163.672), "BTC": pytest.approx(0.5)}
    assert sum(balances[v]["USDT"] for v in (A, B)) - 2000 == pytest.approx(result.realized_profit)
    assert [u.status for u in seen if isinstance(u, OrderUpdate)] == ["filled", "filled"]


def test_legs_are_submitted_together_before_either_fills():
    async def scenario():
        h = Harness(make_settings(latency_ms=25.0))
        await h.start()
        two_venues(h)
        with h.bus.collect(OrderSubmitted, Fill, OrderUpdate, BalanceUpdate) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.5, 101.0), leg(B, "sell", 1.5, 109.0)))
            await h.settle()
        return seen

    seen = run(scenario())
    kinds = [type(e).__name__ for e in seen]
    assert kinds[:2] == ["OrderSubmitted", "OrderSubmitted"]
    assert kinds.count("OrderSubmitted") == 2
    assert kinds.count("Fill") == 4  # one per level touched: 100, 101 on alpha; 110, 109 on beta
    assert kinds.count("OrderUpdate") == 2 and kinds.count("BalanceUpdate") == 2
    fills = [e for e in seen if isinstance(e, Fill)]
    # Both legs were in flight at once: each arrived one latency (25 ms) after sending, not 50 ms.
    assert {f.ts_event for f in fills} == {T0 + 25_000_000}


def test_unequal_fills_are_hedged_on_the_best_book_and_recorded():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        two_venues(h, a_asks=((100.0, 1.0),), b_bids=((110.0, 0.4), (105.0, 1.0)))
        with h.bus.collect(ArbResult, OrderSubmitted) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0),
                                      profit=9.7))
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    # alpha buys 1.0 @ 100: pays 100 + 0.1 = 100.1. beta sells only 0.4 @ 110 (105 < limit 109):
    # receives 44 - 0.088 = 43.912. 0.6 BTC left over. Best bid for it: beta's 105 (its 110 is
    # used up by our own fill) net 105 * 0.998 = 104.79 beats alpha's 99 * 0.999 = 98.901.
    # Hedge: sell 0.6 on beta, limit 105 * (1 - 0.005) = 104.475 -> 63 - 0.126 = 62.874.
    # Realized -100.1 + 43.912 + 62.874 = 6.686; fees 0.1 + 0.088 + 0.126 = 0.314.
    [result] = results(seen)
    assert result.status == "partial"
    assert result.realized_profit == pytest.approx(6.686, abs=1e-9)
    assert result.fees == pytest.approx(0.314, abs=1e-9)
    assert result.slippage == pytest.approx(9.7 - 6.686, abs=1e-9)
    assert result.residual == {"BTC": 0.0}
    hedge = result.legs[2]
    assert (hedge.client_order_id, hedge.purpose, hedge.venue, hedge.side) == (
        cid("x1-H0"), "hedge", B, "sell")
    assert (hedge.amount, hedge.filled) == (pytest.approx(0.6), pytest.approx(0.6))
    assert hedge.average_price == 105.0
    submitted = [e for e in seen if isinstance(e, OrderSubmitted)]
    assert [(s.client_order_id, s.purpose) for s in submitted] == [
        (cid("x1-L0"), "leg"), (cid("x1-L1"), "leg"), (cid("x1-H0"), "hedge")]
    assert submitted[2].price == pytest.approx(104.475)
    assert h.trader.summary()["hedges"] == 1


def test_a_partly_filled_hedge_is_retried_as_a_new_order_elsewhere():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        two_venues(h, a_asks=((100.0, 1.0),), b_bids=((110.0, 0.4), (105.0, 0.2)))
        with h.bus.collect(ArbResult) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0)))
            await h.settle()
        return seen

    [result] = run(scenario())
    # Legs as above: -100.1 on alpha, +43.912 on beta, 0.6 BTC over.
    # H0 sells 0.6 on beta (best, 105) but only 0.2 is there: 21 - 0.042 = 20.958.
    # H1 sells the remaining 0.4 on alpha at 99: 39.6 - 0.0396 = 39.5604.
    # Realized -100.1 + 43.912 + 20.958 + 39.5604 = 4.3304; fees 0.1 + 0.088 + 0.042 + 0.0396 = 0.2696.
    assert [(lr.client_order_id, lr.venue, lr.status) for lr in result.legs[2:]] == [
        (cid("x1-H0"), B, "partially_filled"), (cid("x1-H1"), A, "filled")]
    assert result.realized_profit == pytest.approx(4.3304, abs=1e-9)
    assert result.fees == pytest.approx(0.2696, abs=1e-9)
    assert (result.status, result.residual) == ("partial", {"BTC": 0.0})


def test_exposure_that_cannot_be_hedged_fails_the_arb_and_blocks_that_asset():
    async def scenario():
        # max_exposure in USDT: x1 risks 1 BTC at B's mid (110 + 111) / 2 = 110.5 USDT <= 150
        h = Harness(make_settings(hedge_retries=1, max_exposure={"BTC": 150.0}))
        await h.start()
        two_venues(h, a_bids=(), a_asks=((100.0, 1.0),), b_bids=((110.0, 0.4),))
        with h.bus.collect(ArbResult, OpportunityRejected, Alert) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0)))
            await h.settle()
            h.book(A, "BTC/USDT", [(99.0, 5.0)], [(100.0, 5.0)])
            h.bus.publish(opportunity("x2", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0)))
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    alert, result, rejected = seen
    # Quote change -100.1 + 43.912 = -56.188, but 0.6 BTC bought and not sold (no bid anywhere to
    # hedge into: A has none, B's 0.4 were taken, until hedge_timeout_s, then a critical alert) is
    # held on alpha, where it was bought at 100.1 USDT a BTC with the fee:
    # cost 0.6 * 100.1 = 60.06. Realized = -56.188 + 60.06 = 3.872 (the 0.4 sold: 43.912 - 40.04).
    # alpha has no bid, so the mark is the last known price there: our own fill at 100 (stale).
    # Unrealized 0.6 * 100 - 60.06 = -0.06; net 3.872 - 0.06 = 3.812 = -56.188 + 0.6 * 100.
    # x2 would add 1 BTC to the 0.6 open: 1.6 BTC at A's new mid 99.5 = 159.2 USDT > 150.
    assert (alert.level, alert.key) == ("critical", "position.open:alpha:BTC")
    # the alert's mark is the position's: the last known price (our fill at 100), flagged
    assert ("+0.6 BTC left open on alpha, marked at 100 USDT (last known price, no usable book)"
            in alert.message)
    assert result.status == "failed"
    assert result.realized_profit == pytest.approx(3.872, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-0.06, abs=1e-9)
    assert result.net_profit == pytest.approx(3.812, abs=1e-9)
    assert result.residual == {"BTC": pytest.approx(0.6)}
    [position] = result.positions
    assert (position.venue, position.asset, position.quote, position.stale) == (A, "BTC", "USDT", True)
    assert (position.amount, position.cost, position.mark) == (
        pytest.approx(0.6), pytest.approx(60.06), 100.0)
    assert len(result.legs) == 2
    assert (rejected.opportunity_id, rejected.reason) == ("x2", "exposure")
    assert h.ctx.views.trading.residual == {"BTC": pytest.approx(0.6)}
    # alpha's new book (bid 99) re-marked the ledger's position: 0.6 * 99 - 60.06 = -0.66
    [held] = h.ctx.views.trading.positions
    assert (held.mark, held.stale, held.unrealized) == (99.0, False, pytest.approx(-0.66, abs=1e-9))


def test_a_short_that_cannot_be_bought_back_is_marked_at_the_best_ask_not_counted_as_profit():
    async def scenario():
        # alpha has no ask; beta trades whole BTC only and holds just the 109.78 USDT the sale
        # brought, less than one BTC at 111 costs: the short cannot be bought back
        h = Harness(make_settings(venue_balances={B: {"USDT": 0.0, "BTC": 2.0}}))
        await h.start()
        h.markets(A, market(fee=0.001))
        h.markets(B, market(fee=0.002, step=1.0, min_amount=1.0))
        h.book(A, "BTC/USDT", [(99.0, 5.0)], [])
        h.book(B, "BTC/USDT", [(110.0, 1.0)], [(111.0, 5.0)])
        with h.bus.collect(ArbResult, PositionUpdate) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0)))
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    update, result = seen  # the ledger's update comes first: readers of the result see it
    # beta sells 1 @ 110, fee 0.2 %: +109.78 USDT; alpha buys nothing. Short 1 BTC on beta, cost
    # -109.78 (received). Realized 109.78 - 109.78 = 0; marked at beta's best ask 111:
    # unrealized -111 + 109.78 = -1.22 = net (not +109.78 of "profit"). The hedge waited
    # hedge_timeout_s (2 s) for a book it could afford; by then beta's book is older than its
    # staleness limit, so 111 is its last known ask, flagged stale.
    assert result.status == "failed"
    assert result.realized_profit == pytest.approx(0.0, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-1.22, abs=1e-9)
    assert result.net_profit == pytest.approx(-1.22, abs=1e-9)
    assert result.slippage == pytest.approx(1.0 + 1.22, abs=1e-9)
    [position] = result.positions
    assert (position.venue, position.amount, position.cost, position.mark, position.stale) == (
        B, pytest.approx(-1.0), pytest.approx(-109.78), 111.0, True)
    assert update.position == position and update.realized == 0.0
    assert h.ctx.views.trading.positions == (position,)


TRI = "tri"


def triangle(h: Harness, eth_btc_asks=((0.05, 100.0),)) -> None:
    h.markets(TRI, market("BTC/USDT"), market("ETH/BTC", step=0.01, min_amount=0.01, min_cost=0.0001),
              market("ETH/USDT", step=0.01, min_amount=0.01))
    h.book(TRI, "BTC/USDT", [(99.0, 10.0)], [(100.0, 10.0)])
    h.book(TRI, "ETH/BTC", [(0.049, 100.0)], eth_btc_asks)
    h.book(TRI, "ETH/USDT", [(5.2, 100.0)], [(5.3, 100.0)])


def cycle(id: str):
    return opportunity(id, leg(TRI, "buy", 1.0, 100.0, "BTC/USDT"), leg(TRI, "buy", 19.96, 0.05, "ETH/BTC"),
                       leg(TRI, "sell", 19.96, 5.2, "ETH/USDT"), profit=3.6, strategy="triangular")


TRI_BALANCES = {"USDT": 1000.0, "BTC": 2.0, "ETH": 50.0}


def test_three_leg_cycle_on_one_venue_completes_with_exact_profit():
    async def scenario():
        h = Harness(make_settings(TRI_BALANCES))
        await h.start()
        triangle(h)
        with h.bus.collect(ArbResult) as seen:
            h.bus.publish(cycle("t1"))
            await h.settle()
        return h, seen

    h, [result] = run(scenario())
    # USDT -> BTC: buy 1.0 @ 100, pay 100 + 0.1 = 100.1 USDT
    # BTC -> ETH: buy 19.96 @ 0.05 = 0.998 BTC + 0.000998 fee = 0.998998 BTC
    # ETH -> USDT: sell 19.96 @ 5.2 = 103.792 - 0.103792 = 103.688208 USDT
    # USDT change 103.688208 - 100.1 = 3.588208; BTC dust 1 - 0.998998 = 0.001002 (worth ~0.1 USDT,
    # below BTC/USDT's 1 USDT minimum cost: not traded, held): a position that cost what the
    # cycle paid a BTC, 100.1 USDT: 0.001002 * 100.1 = 0.1003002; realized 3.588208 + 0.1003002
    # = 3.6885082; marked at the bid 99: 0.099198 - 0.1003002 = -0.0011022 unrealized;
    # net 3.588208 + 0.099198 = 3.687406
    # fees 0.1 + 0.000998 BTC at mid 99.5 (0.099301) + 0.103792 = 0.303093 USDT
    assert result.status == "complete"
    assert result.realized_profit == pytest.approx(3.6885082, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-0.0011022, abs=1e-9)
    assert result.net_profit == pytest.approx(3.687406, abs=1e-9)
    assert result.residual == {"BTC": pytest.approx(0.001002), "ETH": 0.0}
    assert result.fees == pytest.approx(0.303093, abs=1e-9)
    assert len(result.legs) == 3
    assert h.ctx.views.trading.balances[TRI] == {
        "USDT": pytest.approx(1003.588208), "BTC": pytest.approx(2.001002), "ETH": pytest.approx(50.0)}


def test_failed_middle_leg_unwinds_back_to_the_start_asset():
    async def scenario():
        h = Harness(make_settings(TRI_BALANCES, latency_ms=10.0))
        await h.start()
        triangle(h)
        with h.bus.collect(ArbResult, OrderSubmitted) as seen:
            h.bus.publish(cycle("t1"))
            h.book(TRI, "ETH/BTC", [(0.059, 100.0)], [(0.06, 100.0)])  # moves away before the orders land
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    [result] = results(seen)
    # Legs: USDT -100.1 (buy 1 BTC), ETH/BTC canceled, USDT +103.688208 (sold 19.96 ETH we never bought).
    # Left: +1 BTC, -19.96 ETH. Unwind both against USDT:
    # U0 sells 1 BTC @ 99: 99 - 0.099 = +98.901; U1 buys 19.96 ETH @ 5.3: 105.788 + 0.105788 = -105.893788
    # realized -100.1 + 103.688208 + 98.901 - 105.893788 = -3.40458
    assert [(lr.client_order_id, lr.status, lr.purpose) for lr in result.legs] == [
        (cid("t1-L0"), "filled", "leg"), (cid("t1-L1"), "canceled", "leg"), (cid("t1-L2"), "filled", "leg"),
        (cid("t1-U0"), "filled", "unwind"), (cid("t1-U1"), "filled", "unwind")]
    assert [(lr.symbol, lr.side) for lr in result.legs[3:]] == [("BTC/USDT", "sell"), ("ETH/USDT", "buy")]
    assert result.status == "partial"
    assert result.realized_profit == pytest.approx(-3.40458, abs=1e-9)
    assert result.residual == {"BTC": 0.0, "ETH": 0.0}
    assert h.ctx.views.trading.balances[TRI] == {
        "USDT": pytest.approx(1000 - 3.40458), "BTC": pytest.approx(2.0), "ETH": pytest.approx(50.0)}
    assert [s.purpose for s in seen if isinstance(s, OrderSubmitted)] == ["leg"] * 3 + ["unwind"] * 2


def test_nothing_filled_is_a_failed_arb_with_zero_profit():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        two_venues(h)
        with h.bus.collect(ArbResult) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 99.0), leg(B, "sell", 1.0, 120.0)))
            await h.settle()
        return seen

    [result] = run(scenario())
    assert (result.status, result.realized_profit, result.residual) == ("failed", 0.0, {})
    assert [lr.status for lr in result.legs] == ["canceled", "canceled"]


@pytest.mark.parametrize(("opp_kw", "reason"), [
    ({"notional": 1500.0}, "notional"),
    ({"legs": ("buy", 20.0)}, "balance"),  # 20 * 101 * 1.001 USDT > 1000
    ({"legs": ("buy", 1.0, "gamma")}, "unknown_venue"),
])
def test_risk_refusals_publish_opportunity_rejected(opp_kw, reason):
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        two_venues(h)
        legs = (leg(A, "buy", 1.0, 101.0), leg(B, "sell", 1.0, 109.0))
        if "legs" in opp_kw:
            side, amount, *venue = opp_kw.pop("legs")
            legs = (leg(venue[0] if venue else A, side, amount, 101.0), legs[1])
        with h.bus.collect(OpportunityRejected, OrderSubmitted) as seen:
            h.bus.publish(opportunity("x1", *legs, **opp_kw))
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    assert [(type(e).__name__, e.reason) for e in seen] == [("OpportunityRejected", reason)]
    assert h.trader.summary()["rejected"] == {reason: 1}


def test_second_opportunity_while_the_only_slot_is_busy_is_rejected():
    async def scenario():
        h = Harness(make_settings(max_open_arbs=1, latency_ms=25.0))
        await h.start()
        two_venues(h)
        with h.bus.collect(OpportunityRejected, ArbResult) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 0.5, 101.0), leg(B, "sell", 0.5, 109.0)))
            h.bus.publish(opportunity("x2", leg(A, "buy", 0.5, 101.0), leg(B, "sell", 0.5, 109.0)))
            await h.settle()
            h.bus.publish(opportunity("x1", leg(A, "buy", 0.5, 101.0), leg(B, "sell", 0.5, 109.0)))
        return seen

    seen = run(scenario())
    assert [(type(e).__name__, getattr(e, "reason", e.opportunity_id)) for e in seen] == [
        ("OpportunityRejected", "busy"), ("ArbResult", "x1"), ("OpportunityRejected", "duplicate")]


def test_halted_trader_rejects_until_resumed():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        two_venues(h)
        h.trader.halt("manual")
        assert h.ctx.views.trading.halted == "manual"
        with h.bus.collect(OpportunityRejected, ArbResult) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 0.5, 101.0), leg(B, "sell", 0.5, 109.0)))
            h.trader.resume()
            h.bus.publish(opportunity("x2", leg(A, "buy", 0.5, 101.0), leg(B, "sell", 0.5, 109.0)))
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    assert [type(e).__name__ for e in seen] == ["OpportunityRejected", "ArbResult"]
    assert seen[0].reason == "halted"
    assert h.ctx.views.trading.halted == ""


def test_stopping_mid_flight_reports_every_submitted_order_as_abandoned():
    async def scenario():
        h = Harness(make_settings(latency_ms=25.0))
        await h.start()
        two_venues(h)
        h.trader.stop_timeout_s = 0.01
        with h.bus.collect(OrderSubmitted, OrderUpdate, ArbResult) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.5, 101.0), leg(B, "sell", 1.5, 109.0)))
            await h.stop()  # nobody advances the simulated clock: the orders never arrive
        return h, seen

    h, seen = run(scenario())
    updates = [e for e in seen if isinstance(e, OrderUpdate)]
    assert [(u.client_order_id, u.status) for u in updates] == [
        (cid("x1-L0"), "canceled"), (cid("x1-L1"), "canceled")]
    assert all(u.reason.startswith("abandoned") for u in updates)
    [result] = results(seen)
    assert (result.status, result.realized_profit, len(result.legs)) == ("failed", 0.0, 2)
    assert h.trader.executor.open_arbs == ()
    assert h.ctx.views.trading.balances[A] == {"USDT": 1000.0, "BTC": 2.0}


def test_hedge_is_capped_by_what_other_running_arbitrages_hold_reserved():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        two_venues(h)
        executor = h.trader.executor
        free = h.ctx.views.trading.balances[B]["BTC"]
        # another arbitrage in flight holds all but 0.3 BTC of beta's balance
        executor.risk.open["other"] = {(B, "BTC"): free - 0.3}
        executor.risk.reserved[(B, "BTC")] += free - 0.3
        plan, _ = executor.closer.plan("BTC", 1.0, "USDT", [B], "mine")
        executor.risk.open.pop("other")
        executor.risk.reserved.pop((B, "BTC"))
        unconstrained, _ = executor.closer.plan("BTC", 1.0, "USDT", [B], "mine")
        return plan, unconstrained

    plan, unconstrained = run(scenario())
    assert plan is not None and plan.side == "sell"
    assert plan.amount == pytest.approx(0.3)
    assert unconstrained is not None and unconstrained.amount == pytest.approx(1.0)


def test_a_second_opportunity_on_levels_an_order_in_flight_holds_is_refused_until_its_result():
    async def scenario():
        h = Harness(make_settings({"USDT": 10_000.0, "BTC": 10.0}, latency_ms=25.0, max_open_arbs=5))
        await h.start()
        two_venues(h)
        with h.bus.collect(ArbResult, OpportunityRejected, OrderSubmitted) as seen:
            # x1 buys alpha's 100 level (1.0) and sells into beta's 110 (0.5) and 109 levels
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0)))
            held = h.books.reserved()
            # x2 needs the same 100 level while x1 is in flight: refused, nothing sent
            h.bus.publish(opportunity("x2", leg(A, "buy", 0.5, 100.0), leg(B, "sell", 0.5, 109.0)))
            # x3 buys at 101 only: alpha's 101 level is free, beta's 109 still has 1.5 -> admitted
            h.bus.publish(opportunity("x3", leg(A, "buy", 1.0, 101.0), leg(B, "sell", 1.0, 109.0)))
            await h.settle()
            taken, reserved = h.books.taken(), h.books.reserved()
            # the same opportunity once its levels are taken: refused too (not sent to fill nothing)
            h.bus.publish(opportunity("x4", leg(A, "buy", 1.0, 101.0), leg(B, "sell", 1.0, 109.0)))
        return h, seen, held, taken, reserved

    h, seen, held, taken, reserved = run(scenario())
    assert held == {(A, "BTC/USDT"): {"asks@100.0": 1.0},
                    (B, "BTC/USDT"): {"bids@110.0": 0.5, "bids@109.0": 0.5}}
    refused = [(e.opportunity_id, e.reason) for e in seen if isinstance(e, OpportunityRejected)]
    assert refused == [("x2", "liquidity"), ("x4", "liquidity")]
    assert sorted(e.label for e in seen if isinstance(e, OrderSubmitted)) == [
        "x1-L0", "x1-L1", "x3-L0", "x3-L1"]
    assert {r.opportunity_id: r.status for r in results(seen)} == {"x1": "complete", "x3": "complete"}
    assert reserved == {}  # every result known: nothing held any more
    # what the fills took stays taken until the venues publish those levels again
    assert taken == {(A, "BTC/USDT"): {"asks@100.0": 1.0, "asks@101.0": 1.0},
                     (B, "BTC/USDT"): {"bids@110.0": 0.5, "bids@109.0": 1.5}}
    assert h.books.reserved() == {} and "x4" not in h.trader.executor.risk.open  # nothing kept for x4


async def _run_until(h: Harness, ts_ns: int) -> None:
    """Step the simulated clock through sleepers until ``ts_ns`` (an arbitrage still running)."""
    for _ in range(10_000):
        for _ in range(20):  # let every woken task run on to its next sleep
            await asyncio.sleep(0)
        wake = h.clock.next_timer_ns()
        if wake is None or wake > ts_ns:
            h.clock.advance_to(ts_ns)
            return
        h.clock.advance_to(wake)


def test_hedge_never_pays_more_than_the_loss_cap_from_the_entry_and_waits_for_a_better_book():
    async def scenario():
        h = Harness(make_settings(hedge_max_loss_bps=50.0, hedge_timeout_s=2.0))
        await h.start()
        # the buy on alpha finds the ask gone to 200; the sell on beta fills 1 BTC at 110
        two_venues(h, a_bids=((99.0, 5.0),), a_asks=((200.0, 5.0),), b_bids=((110.0, 1.0),),
                   b_asks=((200.0, 5.0),))
        with h.bus.collect(ArbResult, Alert) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0)))
            await _run_until(h, T0 + 300_000_000)
            h.book(A, "BTC/USDT", [(109.0, 5.0)], [(110.2, 5.0)])  # 0.3 s later alpha asks 110.2
            await h.settle()
        return seen

    [result] = run(scenario())
    # Before: H0 bought at 200 (limit 200 * 1.005), -90.62 USDT. Now the buy-back, fees of both
    # legs included, may lose at most 50 bps of the 109.78 the sale brought (110 less beta's 0.2 %):
    # pay at most 109.78 * 1.005 = 110.3289 with alpha's 0.1 % fee, a price <= 110.21868: nothing
    # is sent against 200, the 110.2 book 0.3 s later is taken. Realized: +109.78 on beta,
    # -110.2 * 1.001 = -110.3102 on alpha = -0.5302 (48.3 bps of 109.78).
    hedges = [lr for lr in result.legs if lr.purpose == "hedge"]
    assert [(lr.venue, lr.average_price, lr.status) for lr in hedges] == [(A, 110.2, "filled")]
    assert result.realized_profit == pytest.approx(-0.5302, abs=1e-9)
    assert (result.status, result.residual) == ("partial", {"BTC": 0.0})


def test_the_hedge_loss_cap_counts_both_legs_fees():
    async def scenario():
        h = Harness(make_settings(hedge_max_loss_bps=50.0, hedge_timeout_s=0.5))
        await h.start()
        two_venues(h, a_bids=((99.0, 5.0),), a_asks=((200.0, 5.0),), b_bids=((110.0, 1.0),),
                   b_asks=((200.0, 5.0),))
        with h.bus.collect(ArbResult) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0)))
            await _run_until(h, T0 + 300_000_000)
            h.book(A, "BTC/USDT", [(109.0, 5.0)], [(110.3, 5.0)])  # within 110 * 1.005 = 110.55
            await h.settle()
        return seen

    [result] = run(scenario())
    # Buying back at 110.3 was within a cap on the price alone (110.55), but with the fees it pays
    # 110.3 * 1.001 = 110.4103 for what brought 109.78: a loss of 0.6303, 57.4 bps > 50. Not sent.
    assert [lr.purpose for lr in result.legs] == ["leg", "leg"]
    assert (result.status, result.residual) == ("failed", {"BTC": pytest.approx(-1.0)})


def test_what_the_loss_cap_keeps_open_stays_open_with_a_critical_alert_after_the_timeout():
    async def scenario():
        h = Harness(make_settings(hedge_max_loss_bps=50.0, hedge_timeout_s=0.5))
        await h.start()
        two_venues(h, a_bids=((99.0, 5.0),), a_asks=((200.0, 5.0),), b_bids=((110.0, 1.0),),
                   b_asks=((200.0, 5.0),))
        with h.bus.collect(ArbResult, Alert, OrderSubmitted) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0)))
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    submitted = [e for e in seen if isinstance(e, OrderSubmitted)]
    alert, result = [e for e in seen if not isinstance(e, OrderSubmitted)]
    assert [o.purpose for o in submitted] == ["leg", "leg"]  # no hedge into the 200 ask
    assert h.clock.time_ns() - T0 >= 500_000_000  # it kept looking until hedge_timeout_s
    # short 1 BTC on beta, marked at beta's best ask 200
    assert (alert.level, alert.key) == ("critical", "position.open:beta:BTC")
    assert "-1 BTC left open on beta, marked at 200 USDT (best price): loss cap" in alert.message
    assert result.status == "failed" and result.residual == {"BTC": pytest.approx(-1.0)}


def test_reservation_ends_when_the_balance_shows_the_fill_so_money_is_not_counted_twice():
    async def scenario():
        h = Harness(make_settings({"USDT": 1000.0, "BTC": 10.0}, latency_ms=100.0, max_open_arbs=2))
        await h.start()
        # x1's buy fills on alpha (500.5 USDT of 1000), its sell finds no bid: a hedge follows
        two_venues(h, a_bids=((99.0, 5.0),), a_asks=((100.0, 5.0),), b_bids=(), b_asks=((111.0, 5.0),))
        with h.bus.collect(ArbResult, OpportunityRejected) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 5.0, 100.0), leg(B, "sell", 5.0, 109.0)))
            await _run_until(h, T0 + 150_000_000)  # legs done (100 ms), hedge in flight
            h.book(B, "BTC/USDT", [(98.0, 5.0)], [(111.0, 5.0)])
            # alpha's 100 ask refilled (another size: no longer the liquidity x1 took)
            h.book(A, "BTC/USDT", [(99.0, 5.0)], [(100.0, 6.0)])
            # x2 needs 4.9 * 100 * 1.001 = 490.49 USDT on alpha: 499.5 are there. Counting x1's
            # 500.5 reservation on top of its spend left -1 free and refused it as "balance".
            h.bus.publish(opportunity("x2", leg(A, "buy", 4.9, 100.0), leg(B, "sell", 0.1, 98.0)))
            await h.settle()
        return seen

    seen = run(scenario())
    assert [e.opportunity_id for e in seen if isinstance(e, OpportunityRejected)] == []
    assert sorted(e.opportunity_id for e in seen if isinstance(e, ArbResult)) == ["x1", "x2"]


QUAD = "quad"


def test_a_short_with_no_market_against_the_quote_is_marked_through_another_asset_not_at_zero():
    async def scenario():
        h = Harness(make_settings({"USDT": 2000.0, "BTC": 1.0, "ETH": 10.0, "SOL": 10.0},
                                  hedge_timeout_s=0.0))
        await h.start()
        h.markets(QUAD, market("BTC/USDT", fee=0.0, step=0.0001, min_amount=0.0001),
                  market("ETH/BTC", fee=0.0, step=0.0001, min_amount=0.0001, min_cost=0.0001),
                  market("SOL/ETH", fee=0.0, min_cost=0.0001), market("SOL/USDT", fee=0.0))
        h.book(QUAD, "BTC/USDT", [(49_900.0, 1.0)], [(50_000.0, 1.0)])
        h.book(QUAD, "ETH/BTC", [(0.059, 10.0)], [(0.061, 10.0)])  # above the leg's 0.06 limit
        h.book(QUAD, "SOL/ETH", [(0.049, 100.0)], [(0.05, 100.0)])
        h.book(QUAD, "SOL/USDT", [(150.0, 100.0)], [(151.0, 100.0)])
        with h.bus.collect(ArbResult, Alert) as seen:
            h.bus.publish(opportunity(
                "q1", leg(QUAD, "buy", 0.02, 50_000.0, "BTC/USDT", 0.0),
                leg(QUAD, "buy", 0.3333, 0.06, "ETH/BTC", 0.0), leg(QUAD, "buy", 6.666, 0.05, "SOL/ETH", 0.0),
                leg(QUAD, "sell", 6.666, 150.0, "SOL/USDT", 0.0),
                notional=1000.0, strategy="triangular"))
            await h.settle()
        return seen

    alert, result = run(scenario())
    # No fees. L0 buys 0.02 BTC for 1,000 USDT; L1 (ETH/BTC) finds 0.061 > 0.06: nothing; L2 pays
    # 6.666 * 0.05 = 0.3333 ETH for 6.666 SOL; L3 sells them for 999.9 USDT. Left: +0.02 BTC,
    # -0.3333 ETH. U0 sells the BTC at 49,900: +998. ETH has no ETH/USDT (nor USDT/ETH) on quad.
    # Quote change -1000 + 999.9 + 998 = 997.9 (before: realized +997.9, the short "worth" 0).
    # The short's entry: its 0.3333 ETH brought 6.666 SOL worth 150 each (L3): 999.9, 3,000 an
    # ETH; cost -999.9, realized 997.9 - 999.9 = -2.0 (the BTC bought at 50,000, sold at 49,900).
    # Mark: buying ETH back via BTC costs ETH/BTC ask 0.061 * BTC/USDT ask 50,000 = 3,050; via SOL
    # 151 / 0.049 = 3,081.6: 3,050. Unrealized -0.3333 * 3050 + 999.9 = -16.665; net -18.665.
    assert result.status == "failed"
    assert result.residual["ETH"] == pytest.approx(-0.3333)
    [position] = result.positions
    assert (position.venue, position.asset, position.stale) == (QUAD, "ETH", False)
    assert (position.amount, position.cost, position.mark) == (
        pytest.approx(-0.3333), pytest.approx(-999.9), pytest.approx(3050.0))
    assert result.realized_profit == pytest.approx(-2.0, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-16.665, abs=1e-9)
    assert result.net_profit == pytest.approx(-18.665, abs=1e-9)
    # the alert marks it as the ledger does (before: the entry price, 3,000)
    assert (alert.level, alert.key) == ("critical", "position.open:quad:ETH")
    assert ("-0.3333 ETH left open on quad, marked at 3050 USDT (best price): no ETH/USDT market"
            in alert.message)


INV = "inv"


def test_a_residual_is_unwound_against_a_market_quoted_the_other_way_round():
    async def scenario():
        h = Harness(make_settings({"USDT": 1000.0, "BTC": 1.0, "ETH": 10.0}, max_notional=2000.0))
        await h.start()
        h.markets(INV, market("BTC/USDT", fee=0.001, step=0.0001, min_amount=0.0001),
                  market("ETH/USDT", fee=0.0), market("ETH/BTC", fee=0.0, min_cost=0.0001))
        h.book(INV, "BTC/USDT", [(50_000.0, 1.0)], [(50_100.0, 1.0)])
        h.book(INV, "ETH/USDT", [(2990.0, 10.0)], [(3100.0, 10.0)])  # above the leg's 3,000 limit
        h.book(INV, "ETH/BTC", [(0.06, 10.0)], [(0.0601, 10.0)])
        with h.bus.collect(ArbResult) as seen:
            h.bus.publish(opportunity(
                "i1", leg(INV, "sell", 0.02, 50_000.0, "BTC/USDT"),
                leg(INV, "buy", 0.333, 3000.0, "ETH/USDT", 0.0),
                leg(INV, "sell", 0.333, 0.06, "ETH/BTC", 0.0),
                quote="BTC", notional=0.02, strategy="triangular"))
            await h.settle()
        return seen

    [result] = run(scenario())
    # A cycle from BTC: L0 sells 0.02 BTC at 50,000, fee 0.1 %: +999 USDT; L1 (ETH/USDT) finds
    # 3,100 > 3,000: nothing; L2 sells 0.333 ETH at 0.06: +0.01998 BTC. Left: +999 USDT, -0.333 ETH.
    # There is no USDT/BTC market: the USDT is sold by buying BTC on BTC/USDT (before: "no
    # USDT/BTC market", left open). U0 buys 999 / (50,100 * 1.001) = 0.01992 -> 0.0199 BTC (step),
    # paying 0.0199 * 50,100 * 1.001 = 997.98699 USDT; the 1.01301 USDT left is dust (0.00002 BTC
    # < the 0.0001 step). U1 buys the 0.333 ETH back at 0.0601: -0.0200133 BTC.
    # BTC change -0.02 + 0.01998 + 0.0199 - 0.0200133 = -0.0001333. The USDT dust cost what L0 got
    # for it: 0.02 BTC / 999 USDT, 1.01301 * 0.02 / 999 = 0.0000202804805; realized
    # -0.0001333 + 0.0000202804805 = -0.0001130195195; marked at the BTC/USDT ask: 1.01301 / 50,100
    # = 0.0000202197605 BTC, unrealized 0.0000202197605 - 0.0000202804805 = -0.00000006072.
    assert [(lr.client_order_id, lr.symbol, lr.side, lr.status) for lr in result.legs[3:]] == [
        (cid("i1-U0"), "BTC/USDT", "buy", "filled"), (cid("i1-U1"), "ETH/BTC", "buy", "filled")]
    assert (result.legs[3].filled, result.legs[4].filled) == (pytest.approx(0.0199), pytest.approx(0.333))
    assert result.status == "partial"
    assert result.residual == {"USDT": pytest.approx(1.01301), "ETH": 0.0}
    assert result.realized_profit == pytest.approx(-0.0001130195195, abs=1e-13)
    assert result.unrealized_profit == pytest.approx(-0.00000006072, abs=1e-13)


def test_an_asset_reached_through_another_market_costs_its_entry_not_its_mark():
    messages: list[str] = []

    async def scenario():
        h = Harness(make_settings(TRI_BALANCES, hedge_max_loss_bps=20.0, hedge_timeout_s=0.0))
        await h.start()
        triangle(h)
        h.book(TRI, "ETH/USDT", [(4.99, 100.0)], [(5.3, 100.0)])  # below the sell's 5.2 limit
        with h.bus.collect(ArbResult) as seen:
            h.bus.publish(cycle("t1"))
            await h.settle()
        return seen

    sink = logger.add(lambda m: messages.append(m.record["message"]), level="ERROR")
    try:
        [result] = run(scenario())
    finally:
        logger.remove(sink)
    # L0 buys 1 BTC for 100.1 USDT (fee in); L1 buys 19.96 ETH for 0.998998 BTC (fee in); L2 (sell
    # at 5.2) finds the bid at 4.99: nothing. Left +0.001002 BTC (dust), +19.96 ETH. The ETH cost
    # what the BTC given for it cost: 0.998998 * 100.1 = 99.9996998 USDT (5.010004 an ETH); the BTC
    # 0.001002 * 100.1 = 0.1003002: together the 100.1 paid, realized -100.1 + 100.1 = 0 (before:
    # the ETH cost its mark, 19.96 * 4.99 = 99.6004, realized -0.3992998, unrealized hid it).
    # The unwind may lose 20 bps: sell for at least 5.010004 * 0.998 / 0.999 = 5.005 > 4.99: open.
    # Unrealized: ETH 99.6004 - 99.9996998 = -0.3992998, BTC 0.001002 * 99 - 0.1003002 = -0.0011022.
    assert result.status == "failed"
    assert result.realized_profit == pytest.approx(0.0, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-0.400402, abs=1e-9)
    eth = next(p for p in result.positions if p.asset == "ETH")
    assert (eth.amount, eth.cost, eth.mark) == (pytest.approx(19.96), pytest.approx(99.9996998), 4.99)
    # why it stays open: the loss cap, not "hedge retries exhausted"
    [left_open] = [m for m in messages if "exposure left open" in m]
    assert "'ETH': 'loss cap'" in left_open


def test_a_vetoed_hedge_submission_holds_no_levels():
    async def scenario():
        h = Harness(make_settings())
        await h.start()
        two_venues(h, a_asks=((100.0, 1.0),), b_bids=((110.0, 0.4), (105.0, 1.0)))

        def veto(event: OrderSubmitted) -> None:
            if event.purpose == "hedge":
                raise RuntimeError("journal write failed")

        h.bus.subscribe(OrderSubmitted, veto, name="veto", critical=True)
        with h.bus.collect(ArbResult) as seen:
            h.bus.publish(opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0)))
            await h.settle()
        return h, seen

    h, [result] = run(scenario())
    # as in the hedge test above: 0.6 BTC left, H0 would sell it on beta's 105 bid; its
    # OrderSubmitted is vetoed, so it is never sent -- and must not keep holding beta's 105 level
    assert [lr.client_order_id for lr in result.legs] == [cid("x1-L0"), cid("x1-L1")]
    assert result.residual == {"BTC": pytest.approx(0.6)}
    assert h.books.reserved() == {}
