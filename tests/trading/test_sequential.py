"""Sequential legs: a cycle on one venue sent leg by leg, each leg sized from what the one before
delivered; a leg that does not fill fully stops the chain and what it holds is unwound.

Every scenario runs through the Trader plugin on a ``SimClock`` with 10 ms of paper latency. The
venue ``tri`` trades BTC/USDT (step 0.001, min cost 1 USDT), ETH/BTC (step 0.01) and ETH/USDT
(step 0.01, min cost 1 USDT), all at a 0.1 % taker fee charged in the quote currency.
"""

from __future__ import annotations

import pytest

from arbitrage.events import ArbResult, OpportunityRejected, OrderSubmitted, OrderUpdate
from arbitrage.trading.risk import RiskGate, chained, requirements
from tests.trading.helpers import T0, Harness, cid, leg, make_settings, market, opportunity, run

TRI = "tri"
MS = 1_000_000
USDT_ONLY = {"USDT": 1000.0}
MARKETS = (market("BTC/USDT"), market("ETH/BTC", step=0.01, min_amount=0.01, min_cost=0.0001),
           market("ETH/USDT", step=0.01, min_amount=0.01))


def venue(h: Harness, eth_btc_bids=((0.049, 100.0),), eth_btc_asks=((0.05, 100.0),)) -> None:
    h.markets(TRI, *MARKETS)
    h.book(TRI, "BTC/USDT", [(99.0, 10.0)], [(100.0, 10.0)])
    h.book(TRI, "ETH/BTC", eth_btc_bids, eth_btc_asks)
    h.book(TRI, "ETH/USDT", [(5.2, 100.0)], [(5.3, 100.0)])


def cycle(id: str = "s1", eth: float = 20.0, eth_sold: float | None = None):
    """USDT -> BTC -> ETH -> USDT, planned with more ETH than 1 BTC buys at the limit."""
    return opportunity(id, leg(TRI, "buy", 1.0, 100.0, "BTC/USDT"), leg(TRI, "buy", eth, 0.05, "ETH/BTC"),
                       leg(TRI, "sell", eth if eth_sold is None else eth_sold, 5.2, "ETH/USDT"),
                       profit=3.7, notional=100.1, strategy="triangular")


def execute(opp, *, balances=USDT_ONLY, moved_eth_btc=None, types=(ArbResult,), **venue_kw):
    """Publish ``opp`` on a fresh sequential trader, optionally move ETH/BTC right after; return
    the harness and the events of ``types`` seen."""
    async def scenario():
        h = Harness(make_settings(balances, sequential_legs=True, latency_ms=10.0))
        await h.start()
        venue(h, **venue_kw)
        with h.bus.collect(*types) as seen:
            h.bus.publish(opp)
            if moved_eth_btc is not None:
                h.book(TRI, "ETH/BTC", *moved_eth_btc)
            await h.settle()
        return h, seen

    return run(scenario())


def arb_result(seen: list) -> ArbResult:
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    return result


def test_cycle_completes_leg_by_leg_each_sized_from_the_previous_delivery():
    h, seen = execute(cycle(), types=(OrderSubmitted, OrderUpdate, ArbResult))
    # L0 buys 1.0 BTC @ 100: pays 100 + 0.1 fee = 100.1 USDT, delivers 1.0 BTC.
    # L1 buys ETH with that BTC at limit 0.05: 1.0 / (0.05 * 1.001) = 19.98002 -> 19.98 ETH (step 0.01,
    #    not the planned 20); costs 0.999 + 0.000999 fee = 0.999999 BTC, delivers 19.98 ETH.
    # L2 sells the 19.98 ETH @ 5.2: 103.896 - 0.103896 fee = 103.792104 USDT.
    # USDT change 103.792104 - 100.1 = 3.692104; 0.000001 BTC left (dust, below BTC/USDT's 0.001)
    # is held at what the cycle paid a BTC (100.1): cost 0.0001001, so realized 3.6922041; marked at
    # the bid 99: 0.000099 - 0.0001001 = -0.0000011 unrealized; net 3.692104 + 0.000099 = 3.692203.
    # fees 0.1 + 0.000999 BTC at mid 99.5 (0.0994005) + 0.103896 = 0.3032965 USDT
    orders = [(type(e).__name__, e.client_order_id, e.ts_init) for e in seen
              if isinstance(e, OrderSubmitted | OrderUpdate)]
    assert orders == [  # each leg is sent only once the one before it has ended, one latency later
        ("OrderSubmitted", cid("s1-L0"), T0), ("OrderUpdate", cid("s1-L0"), T0 + 10 * MS),
        ("OrderSubmitted", cid("s1-L1"), T0 + 10 * MS), ("OrderUpdate", cid("s1-L1"), T0 + 20 * MS),
        ("OrderSubmitted", cid("s1-L2"), T0 + 20 * MS), ("OrderUpdate", cid("s1-L2"), T0 + 30 * MS)]
    submitted = [e for e in seen if isinstance(e, OrderSubmitted)]
    assert [(s.symbol, s.side, s.amount) for s in submitted] == [
        ("BTC/USDT", "buy", 1.0), ("ETH/BTC", "buy", 19.98), ("ETH/USDT", "sell", 19.98)]
    result = arb_result(seen)
    assert result.status == "complete"
    assert [(lr.client_order_id, lr.status, lr.filled) for lr in result.legs] == [
        (cid("s1-L0"), "filled", 1.0), (cid("s1-L1"), "filled", 19.98), (cid("s1-L2"), "filled", 19.98)]
    assert result.realized_profit == pytest.approx(3.6922041, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-0.0000011, abs=1e-12)
    assert result.net_profit == pytest.approx(3.692203, abs=1e-9)
    assert result.fees == pytest.approx(0.3032965, abs=1e-9)
    assert result.residual == {"BTC": pytest.approx(0.000001, abs=1e-12), "ETH": 0.0}
    assert h.ctx.views.trading.balances[TRI] == {"USDT": pytest.approx(1003.692104),
                                                   "BTC": pytest.approx(0.000001, abs=1e-12),
                                                   "ETH": pytest.approx(0.0)}
    assert h.trader.executor.risk.reserved == {}


def test_sell_leg_spends_the_quote_delivered_net_of_fees_rounded_down_to_the_step():
    opp = opportunity("s2", leg(TRI, "buy", 20.0, 5.3, "ETH/USDT"), leg(TRI, "sell", 20.0, 0.055, "ETH/BTC"),
                      leg(TRI, "sell", 1.1, 99.0, "BTC/USDT"), profit=2.5, notional=106.106,
                      strategy="triangular")
    h, seen = execute(opp, eth_btc_bids=((0.055, 100.0),), eth_btc_asks=((0.056, 100.0),),
                      types=(OrderSubmitted, ArbResult))
    # USDT -> ETH -> BTC -> USDT.
    # L0 buys 20 ETH @ 5.3: 106 + 0.106 = 106.106 USDT.
    # L1 sells the 20 ETH @ 0.055: 1.1 - 0.0011 fee = 1.0989 BTC delivered (net of the fee).
    # L2 sells 1.0989 -> 1.098 BTC (step 0.001; planned 1.1) @ 99: 108.702 - 0.108702 = 108.593298 USDT.
    # USDT change 108.593298 - 106.106 = 2.487298; 0.0009 BTC left (dust, below min amount 0.001),
    # reached through ETH/BTC, not bought for USDT: it costs what the cycle gave for it (before:
    # its mark), 106.106 USDT of ETH for 1.0989 BTC: 0.0009 * 106.106 / 1.0989 = 0.0869009009;
    # realized 2.487298 + 0.0869009009 = 2.5741989009; marked at the bid 99: 0.0891, unrealized
    # 0.0891 - 0.0869009009 = 0.0021990991; net 2.576398.
    assert [s.amount for s in seen if isinstance(s, OrderSubmitted)] == [20.0, 20.0, 1.098]
    result = arb_result(seen)
    assert result.status == "complete"
    assert result.realized_profit == pytest.approx(2.5741989009, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(0.0021990991, abs=1e-9)
    assert result.net_profit == pytest.approx(2.576398, abs=1e-9)
    assert result.residual == {"ETH": 0.0, "BTC": pytest.approx(0.0009)}
    assert h.ctx.views.trading.balances[TRI]["USDT"] == pytest.approx(1002.487298)


def test_a_leg_never_exceeds_its_planned_amount_and_the_surplus_is_unwound():
    _, seen = execute(cycle(eth_sold=19.0), types=(OrderSubmitted, ArbResult))
    # L0, L1 as in the complete cycle: -100.1 USDT, 19.98 ETH delivered.
    # L2 sells only the planned 19.0 ETH @ 5.2: 98.8 - 0.0988 = 98.7012 USDT.
    # 0.98 ETH left (worth 5.1 USDT, tradeable): U0 sells it @ 5.2 (limit 5.2 * 0.995 = 5.174):
    # 5.096 - 0.005096 = 5.090904. USDT change -100.1 + 98.7012 + 5.090904 = 3.692104; the
    # 0.000001 BTC dust is held as in the complete cycle: realized 3.6922041, net 3.692203.
    assert [(s.client_order_id, s.amount) for s in seen if isinstance(s, OrderSubmitted)] == [
        (cid("s1-L0"), 1.0), (cid("s1-L1"), 19.98), (cid("s1-L2"), 19.0), (cid("s1-U0"), pytest.approx(0.98))]
    result = arb_result(seen)
    assert result.status == "partial"  # every leg filled, but something had to be unwound
    assert result.realized_profit == pytest.approx(3.6922041, abs=1e-9)
    assert result.net_profit == pytest.approx(3.692203, abs=1e-9)
    assert result.residual == {"BTC": pytest.approx(0.000001, abs=1e-12), "ETH": 0.0}


def test_middle_leg_that_cannot_fill_stops_the_chain_and_unwinds_the_btc_to_usdt():
    # ETH/BTC moves to 0.059/0.06 before L1 arrives: nothing at or below its 0.05 limit.
    h, seen = execute(cycle(), moved_eth_btc=([(0.059, 100.0)], [(0.06, 100.0)]),
                      types=(OrderSubmitted, ArbResult))
    # L0 buys 1.0 BTC for 100.1 USDT; L1 (19.98 ETH) is canceled; L2 is never sent.
    # U0 sells the 1.0 BTC on BTC/USDT, limit 99 * (1 - 0.005) = 98.505, fills @ 99: 99 - 0.099 = 98.901.
    # realized -100.1 + 98.901 = -1.199 USDT
    submitted = [(s.label, s.purpose, s.symbol, s.side, s.amount) for s in seen
                 if isinstance(s, OrderSubmitted)]
    assert submitted == [("s1-L0", "leg", "BTC/USDT", "buy", 1.0), ("s1-L1", "leg", "ETH/BTC", "buy", 19.98),
                         ("s1-U0", "unwind", "BTC/USDT", "sell", 1.0)]
    result = arb_result(seen)
    assert [(lr.client_order_id, lr.status) for lr in result.legs] == [
        (cid("s1-L0"), "filled"), (cid("s1-L1"), "canceled"), (cid("s1-U0"), "filled")]
    assert result.status == "partial"
    assert result.realized_profit == pytest.approx(-1.199, abs=1e-9)
    assert result.residual == {"BTC": 0.0}
    assert h.ctx.views.trading.balances[TRI] == {"USDT": pytest.approx(998.801), "BTC": pytest.approx(0.0)}
    assert h.trader.summary()["unwinds"] == 1


def test_middle_leg_that_fills_partly_stops_the_chain_and_unwinds_both_assets():
    _, seen = execute(cycle(), eth_btc_asks=((0.05, 10.0),), types=(OrderSubmitted, ArbResult))
    # L0 buys 1.0 BTC for 100.1 USDT. L1 wants 19.98 ETH but only 10 are offered at 0.05:
    # 0.5 + 0.0005 fee = 0.5005 BTC spent -> holding 0.4995 BTC and 10 ETH; L2 is never sent.
    # U0 sells 0.499 BTC (step 0.001) @ 99: 49.401 - 0.049401 = 49.351599 USDT
    # U1 sells 10 ETH @ 5.2: 52 - 0.052 = 51.948 USDT
    # USDT change -100.1 + 49.351599 + 51.948 = 1.199599; 0.0005 BTC is dust (below min amount
    # 0.001), held at the 100.1 a BTC L0 paid: cost 0.05005, realized 1.249649; marked at the bid 99:
    # 0.0495 - 0.05005 = -0.00055 unrealized; net 1.199599 + 0.0495 = 1.249099.
    assert [(s.label, s.amount) for s in seen if isinstance(s, OrderSubmitted)] == [
        ("s1-L0", 1.0), ("s1-L1", 19.98), ("s1-U0", pytest.approx(0.499)), ("s1-U1", pytest.approx(10.0))]
    result = arb_result(seen)
    assert [lr.status for lr in result.legs] == ["filled", "partially_filled", "filled", "filled"]
    assert result.status == "partial"
    assert result.realized_profit == pytest.approx(1.249649, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-0.00055, abs=1e-9)
    assert result.net_profit == pytest.approx(1.249099, abs=1e-9)
    assert result.residual == {"BTC": pytest.approx(0.0005), "ETH": 0.0}


def test_usdt_only_venue_runs_the_cycle_sequentially_but_is_refused_for_balance_concurrently():
    async def scenario(sequential: bool):
        h = Harness(make_settings(USDT_ONLY, sequential_legs=sequential))
        await h.start()
        venue(h)
        with h.bus.collect(OpportunityRejected, OrderSubmitted, ArbResult) as seen:
            h.bus.publish(cycle())
            await h.settle()
        return seen

    sequential = run(scenario(True))
    assert arb_result(sequential).status == "complete"
    assert not [e for e in sequential if isinstance(e, OpportunityRejected)]
    # Concurrently, L1 needs 20 * 0.05 * 1.001 = 1.001 BTC and L2 20 ETH on hand: there are none.
    [rejected] = run(scenario(False))
    assert isinstance(rejected, OpportunityRejected)
    assert rejected.reason == "balance"


def test_sequential_cycle_is_refused_when_the_start_asset_does_not_cover_the_first_leg():
    _, seen = execute(cycle(), balances={"USDT": 100.0, "BTC": 5.0, "ETH": 50.0},
                      types=(OpportunityRejected, OrderSubmitted))
    # L0 needs 1.0 * 100 * 1.001 = 100.1 USDT; BTC and ETH on hand do not count.
    assert [(type(e).__name__, e.reason) for e in seen] == [("OpportunityRejected", "balance")]


def test_two_venue_opportunity_stays_concurrent_when_sequential_legs_is_on():
    async def scenario():
        h = Harness(make_settings(sequential_legs=True, latency_ms=10.0))
        await h.start()
        h.markets("alpha", market())
        h.markets("beta", market())
        h.book("alpha", "BTC/USDT", [(99.0, 5.0)], [(100.0, 5.0)])
        h.book("beta", "BTC/USDT", [(110.0, 5.0)], [(111.0, 5.0)])
        with h.bus.collect(OrderSubmitted, OrderUpdate) as seen:
            h.bus.publish(opportunity("x1", leg("alpha", "buy", 1.0, 100.0), leg("beta", "sell", 1.0, 110.0)))
            await h.settle()
        return seen

    seen = run(scenario())
    kinds = [type(e).__name__ for e in seen]
    assert kinds == ["OrderSubmitted", "OrderSubmitted", "OrderUpdate", "OrderUpdate"]


def test_chain_reserves_the_start_asset_then_moves_the_reservation_to_what_it_received():
    markets = {TRI: {m.symbol: m for m in MARKETS}}
    opp = cycle()
    # Sequentially only L0's spend counts: 1.0 * 100 * 1.001 = 100.1 USDT.
    assert requirements(opp, markets, sequential=True) == {(TRI, "USDT"): pytest.approx(100.1)}
    assert requirements(opp, markets) == {(TRI, "USDT"): pytest.approx(100.1),
                                          (TRI, "BTC"): pytest.approx(1.001), (TRI, "ETH"): 20.0}
    gate = RiskGate(make_settings(sequential_legs=True).trading)
    assert gate.admit(opp, {TRI: USDT_ONLY}, markets) is None
    assert gate.reserved == {(TRI, "USDT"): pytest.approx(100.1)}
    gate.reserve(opp.id, {(TRI, "BTC"): 1.0})  # L0 delivered 1 BTC, L1 will spend it
    assert gate.reserved == {(TRI, "BTC"): 1.0}
    assert gate.open == {opp.id: {(TRI, "BTC"): 1.0}}
    gate.release(opp.id)
    assert (gate.reserved, gate.open) == ({}, {})
    gate.reserve(opp.id, {(TRI, "BTC"): 1.0})  # no longer open: nothing to move
    assert gate.reserved == {}


def test_only_legs_on_one_venue_each_spending_the_previous_output_form_a_chain():
    markets = {TRI: {m.symbol: m for m in MARKETS}, "beta": {"BTC/USDT": market()}}
    assert chained(cycle(), markets)
    # buy BTC then buy ETH/USDT: the second leg spends USDT, not the BTC the first received
    btc = leg(TRI, "buy", 1.0, 100.0)
    assert not chained(opportunity("n1", btc, leg(TRI, "buy", 1.0, 5.3, "ETH/USDT")), markets)
    assert not chained(opportunity("n2", btc, leg("beta", "sell", 1.0, 110.0)), markets)
    assert not chained(opportunity("n3", btc), markets)
