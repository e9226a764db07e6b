"""Fees where the venue charges them (``Market.fee_side``): paper fills, reservations, chains,
hedges and the executor's accounting when a fee is taken in base. Every figure is worked by hand."""

from __future__ import annotations

import pytest

from arbitrage.book import BookStore
from arbitrage.clock import SimClock
from arbitrage.events import ArbResult, Fill, OrderUpdate, PositionUpdate
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy
from arbitrage.strategies.triangular import TriangularStrategy
from arbitrage.trading.chain import chained_amount
from arbitrage.trading.ids import client_order_id, order_label
from arbitrage.trading.paper import PaperVenue
from arbitrage.trading.risk import requirements
from arbitrage.trading.venue import OrderRequest, balance_deltas
from tests.trading.helpers import T0, Harness, book, leg, make_settings, market, opportunity, run

ASKS = [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)]
BIDS = [(99.0, 1.0), (98.0, 1.0), (97.0, 5.0)]


def paper(fee_side: str, balances: dict[str, float] | None = None) -> PaperVenue:
    store = BookStore()
    store.update(book("alpha", "BTC/USDT", BIDS, ASKS, T0))
    return PaperVenue("alpha", clock=SimClock(T0), books=store, liquidity=store,
                      markets=[market(fee_side=fee_side)], staleness_ms=1000.0,  # type: ignore[arg-type]
                      balances=balances if balances is not None else {"USDT": 1000.0, "BTC": 2.0})


def order(side: str, amount: float, price: float) -> OrderRequest:
    return OrderRequest(client_order_id="o-1", opportunity_id="o", venue="alpha", symbol="BTC/USDT",
                        side=side, amount=amount, price=price)  # type: ignore[arg-type]


def test_a_paper_buy_on_a_get_market_receives_the_base_less_its_fee_and_pays_the_notional() -> None:
    v = paper("get")
    result = v.execute(order("buy", 2.5, 102.0))
    # 1.0 @ 100 + 1.5 @ 101 = 251.5 notional, paid in full: USDT 1000 - 251.5 = 748.5
    # fee 0.1 % of the amount, in BTC: 2.5 * 0.001 = 0.0025 (per fill 0.001 and 0.0015)
    # BTC 2 + 2.5 - 0.0025 = 4.4975
    assert (result.status, result.filled, result.notional) == ("filled", 2.5, 251.5)
    assert (result.fee, result.fee_currency) == (pytest.approx(0.0025, abs=1e-15), "BTC")
    assert [(f.amount, f.fee, f.fee_currency) for f in result.fills] == [
        (1.0, pytest.approx(0.001, abs=1e-15), "BTC"), (1.5, pytest.approx(0.0015, abs=1e-15), "BTC")]
    assert v.balances() == {"USDT": 748.5, "BTC": pytest.approx(4.4975, abs=1e-12)}
    # a sale on the same market pays in quote: 1.5 sold for 1.0 @ 99 + 0.5 @ 98 = 148, fee 0.148
    sold = v.execute(order("sell", 1.5, 90.0))
    assert (sold.fee, sold.fee_currency) == (pytest.approx(0.148, abs=1e-12), "USDT")
    assert v.balances() == {"USDT": pytest.approx(748.5 + 148 - 0.148, abs=1e-9),
                            "BTC": pytest.approx(2.9975, abs=1e-12)}


def test_a_paper_sell_on_a_give_market_gives_its_fee_in_base_on_top() -> None:
    # 1.5 BTC sold for 148 USDT; fee 1.5 * 0.001 = 0.0015 BTC: it needs 1.5015 BTC
    assert paper("give", {"BTC": 1.5}).execute(order("sell", 1.5, 90.0)).reason == "insufficient BTC balance"
    v = paper("give")
    result = v.execute(order("sell", 1.5, 90.0))
    assert (result.fee, result.fee_currency) == (pytest.approx(0.0015, abs=1e-15), "BTC")
    assert v.balances() == {"USDT": 1148.0, "BTC": pytest.approx(2 - 1.5015, abs=1e-12)}


def test_a_buy_on_a_get_market_needs_only_amount_times_limit_in_quote() -> None:
    # 2.5 @ limit 102 = 255 USDT: enough where the fee is taken in BTC, 0.255 short where it is in USDT
    assert paper("get", {"USDT": 255.0}).execute(order("buy", 2.5, 102.0)).status == "filled"
    assert paper("quote", {"USDT": 255.0}).execute(order("buy", 2.5, 102.0)).reason == \
        "insufficient USDT balance"
    markets = {"a": {"BTC/USDT": market(fee_side="get")}, "b": {"BTC/USDT": market(fee_side="base")}}
    opp = opportunity("x", leg("a", "buy", 2.5, 102.0), leg("b", "sell", 2.5, 99.0))
    # a: 2.5 * 102 = 255 USDT; b ("base": a sale's fee in BTC too): 2.5 * 1.001 = 2.5025 BTC
    assert requirements(opp, markets) == {("a", "USDT"): 255.0, ("b", "BTC"): pytest.approx(2.5025)}


def test_balance_deltas_take_a_base_fee_from_the_base() -> None:
    m = market(fee_side="get")
    assert balance_deltas("buy", m, 2.0, 200.0, 0.002, "BTC") == {"BTC": 1.998, "USDT": -200.0}
    assert balance_deltas("sell", m, 2.0, 200.0, 0.2, "USDT") == {"BTC": -2.0, "USDT": 199.8}


def test_a_chain_leg_after_a_get_buy_spends_only_what_arrived() -> None:
    # a buy of 0.5 ETH on a "get" ETH/BTC market delivered 0.4995 ETH: the next leg, a sale of ETH on
    # a "give" market, may sell 0.4995 / 1.001 = 0.49900..., rounded down to 0.499 (it gives
    # 0.499 * 1.001 = 0.499499 <= 0.4995); on a "quote" market all of 0.4995 -> 0.499 on the grid too,
    # and a buy of BTC on a "get" market spends the whole delivered quote at the limit
    sell = leg("v", "sell", 0.5, 5.0, symbol="ETH/USDT")
    assert chained_amount(sell, market("ETH/USDT", fee_side="give"), 0.4995) == 0.499
    assert chained_amount(sell, market("ETH/USDT", step=0.0001, fee_side="give"), 0.4995) == 0.499
    assert chained_amount(sell, market("ETH/USDT", step=0.0001), 0.4995) == 0.4995
    buy = leg("v", "buy", 1.0, 100.0)
    # 50 USDT at limit 100: 0.5 BTC where the fee is in BTC, 50 / 100.1 = 0.4995... -> 0.499 in USDT
    assert chained_amount(buy, market(fee_side="get"), 50.0) == 0.5
    assert chained_amount(buy, market(), 50.0) == 0.499


def test_a_short_left_on_a_get_venue_is_covered_by_buying_what_delivers_it() -> None:
    async def scenario():
        h = Harness(make_settings(venue_balances={"alpha": {"USDT": 1000.0, "BTC": 0.0}}))
        await h.start()
        h.markets("alpha", market(step=0.0001, fee_side="get"))
        h.markets("beta", market(step=0.0001))
        h.book("alpha", "BTC/USDT", ((99.0, 5.0),), ((100.0, 5.0),))
        h.book("beta", "BTC/USDT", ((110.0, 5.0),), ((111.0, 5.0),))
        # the buy on alpha cannot fill (limit 90 below the ask): beta's sale of 1 BTC leaves a short
        with h.bus.collect(ArbResult, OrderUpdate) as seen:
            h.bus.publish(opportunity("x", leg("alpha", "buy", 1.0, 90.0), leg("beta", "sell", 1.0, 110.0)))
            await h.settle()
        return seen

    seen = run(scenario())
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    hedge_ids = {client_order_id(order_label("x", "H", n)) for n in range(4)}
    hedges = [e for e in seen if isinstance(e, OrderUpdate) and e.client_order_id in hedge_ids]
    # closing 1 BTC short on alpha ("get"): buying 1 delivers 0.999; it buys 1 / 0.999 = 1.001001
    # rounded down to 1.001 (step 0.0001), which delivers 1.001 * 0.999 = 0.999999; fee 0.001001 BTC
    assert [(u.side, u.filled, u.fee_currency) for u in hedges] == [("buy", pytest.approx(1.001), "BTC")]
    assert hedges[0].fee == pytest.approx(0.001001, abs=1e-12)
    # left: -1 + 0.999999 = -0.000001 BTC, below one step: dust
    assert result.residual == {"BTC": pytest.approx(-0.000001, abs=1e-12)}
    assert result.status == "partial"
    # beta got 110 * 0.999 = 109.89 USDT, alpha paid 1.001 * 100 = 100.1 (no fee in USDT): 9.79, and the
    # dust short is valued at what the sale got per BTC (109.89): realized 9.79 - 0.000001 * 109.89
    assert result.realized_profit == pytest.approx(9.79 - 0.000001 * 109.89, abs=1e-9)


def test_cross_exchange_buying_on_a_get_venue_covers_its_fee_and_realizes_the_expected_profit() -> None:
    async def scenario():
        h = Harness(make_settings())
        strategy = CrossExchangeStrategy()
        strategy.setup(h.ctx)
        await h.start()
        h.markets("alpha", market(fee_side="get"))  # Binance-like: a buy pays its fee in BTC
        h.markets("beta", market())  # Kraken-like: in USDT
        with h.bus.collect(ArbResult, Fill, OrderUpdate, PositionUpdate) as seen:
            h.book("alpha", "BTC/USDT", ((99.0, 10.0),), ((100.0, 10.0),))
            h.book("beta", "BTC/USDT", ((101.0, 0.5), (99.0, 10.0)), ((102.0, 10.0),))
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    [result] = [e for e in seen if isinstance(e, ArbResult)]
    # Sizing: a BTC bought on alpha delivers 0.999 BTC, so one sold on beta costs 100 / 0.999 =
    # 100.1001 and gets 101 * 0.999 = 100.899: 0.5 sold (beta's 101 level; at 99 it loses).
    # The buy covers its fee: 0.5 / 0.999 = 0.5005005 rounded UP to the step: 0.501 BTC.
    legs = {lr.side: lr for lr in result.legs}
    assert (legs["buy"].amount, legs["sell"].amount) == (0.501, 0.5)
    # alpha: pays 0.501 * 100 = 50.1 USDT, receives 0.501 - 0.000501 fee = 0.500499 BTC
    # beta: sells 0.5 for 50.5, fee 0.0505 USDT -> 50.4495 USDT
    # quote change 50.4495 - 50.1 = 0.3495; 0.500499 - 0.5 = 0.000499 BTC left on alpha (< one step
    # 0.001: dust, not hedged), at what it cost: 50.1 / 0.500499 = 100.1001 a BTC -> 0.04994995
    # realized 0.3495 + 0.04994995 = 0.39944995 = the expected 50.4495 - 50.1 * 0.5 / 0.500499
    assert result.status == "complete"
    assert result.residual == {"BTC": pytest.approx(0.000499, abs=1e-12)}
    assert result.residual["BTC"] < 0.001
    assert result.realized_profit == pytest.approx(0.39944995, abs=1e-9)
    assert result.expected_profit == pytest.approx(0.39944995, abs=1e-9)
    # fees: 0.000501 BTC at the buy's average price 100 = 0.0501, plus 0.0505 USDT
    assert result.fees == pytest.approx(0.1006, abs=1e-12)
    assert legs["buy"].fee == pytest.approx(0.0501, abs=1e-12)
    [position] = result.positions
    assert (position.venue, position.asset, position.amount) == ("alpha", "BTC", pytest.approx(0.000499))
    cost = 0.000499 * 50.1 / 0.500499  # 0.04994995
    assert position.cost == pytest.approx(cost, abs=1e-12)
    # marked at alpha's bid 99: unrealized 0.000499 * 99 - 0.04994995 = -0.00054895
    assert result.unrealized_profit == pytest.approx(0.000499 * 99 - cost, abs=1e-12)
    buy_fills = [f for f in seen if isinstance(f, Fill) and f.side == "buy"]
    assert [(f.amount, f.fee_currency) for f in buy_fills] == [(0.501, "BTC")]
    updates = {u.side: u for u in seen if isinstance(u, OrderUpdate)}
    assert (updates["buy"].fee, updates["buy"].fee_currency) == (pytest.approx(0.000501, abs=1e-15), "BTC")
    assert (updates["sell"].fee, updates["sell"].fee_currency) == (pytest.approx(0.0505, abs=1e-12), "USDT")
    alpha = h.trader.venues["alpha"].balances()
    assert alpha == {"USDT": pytest.approx(949.9, abs=1e-12), "BTC": pytest.approx(2.500499, abs=1e-12)}


def test_a_triangular_cycle_on_a_get_venue_ends_flat_with_the_hand_computed_profit() -> None:
    async def scenario():
        h = Harness(make_settings(balances={"USDT": 1000.0, "BTC": 2.0, "ETH": 100.0}))
        strategy = TriangularStrategy()
        strategy.setup(h.ctx)
        await h.start()
        h.markets("v", *(market(s, step=0.0, min_amount=0.0, min_cost=0.0, fee_side="get")
                         for s in ("BTC/USDT", "ETH/BTC", "ETH/USDT")))
        with h.bus.collect(ArbResult) as seen:
            h.book("v", "BTC/USDT", ((99.0, 5.0),), ((100.0, 1.0), (101.0, 1.0)))
            h.book("v", "ETH/BTC", ((0.049, 100.0),), ((0.05, 10.0), (0.0505, 100.0)))
            h.book("v", "ETH/USDT", ((5.1, 15.0), (5.0, 100.0)), ((5.2, 100.0),))
            await h.settle()
        return h, seen

    h, seen = run(scenario())
    [result] = seen
    # USDT -> BTC -> ETH -> USDT, every buy keeping 0.999 of what it buys (sizing by hand in
    # tests/strategies/triangular): 0.75401227 BTC bought for 75.401227 USDT deliver 0.75325826 BTC,
    # which buy 15.015015 ETH (0.5 + 5.015015 * 0.0505 BTC) delivering 15 ETH, sold for
    # 76.5 * 0.999 = 76.4235 USDT: 1.02227295 USDT, nothing left over in BTC or ETH
    assert result.status == "complete"
    assert [lr.amount for lr in result.legs] == [pytest.approx(0.754012270528787, rel=1e-12),
                                                 pytest.approx(15.015015015015015, rel=1e-12),
                                                 pytest.approx(15.0, rel=1e-12)]
    assert all(abs(v) < 1e-12 for v in result.residual.values())
    assert result.realized_profit == pytest.approx(1.0222729471212944, abs=1e-9)
    assert result.expected_profit == pytest.approx(1.0222729471212944, abs=1e-9)
    v = h.trader.venues["v"].balances()
    assert v == {"USDT": pytest.approx(1001.0222729471213, abs=1e-9), "BTC": pytest.approx(2.0, abs=1e-12),
                 "ETH": pytest.approx(100.0, abs=1e-12)}
    # the two buys' fees, in BTC and ETH, at their average prices: 0.00075401 * 100 = 0.0754012 USDT
    # and 0.015015 ETH * 0.0501664 BTC/ETH = 0.00075326 BTC, valued at BTC/USDT's mid 99.5; the sale's
    # 0.0765 USDT: 0.0754012 + 0.0749491 + 0.0765
    eth_fee_btc = 0.015015015015015 * (0.7532582582582583 / 15.015015015015015)
    assert result.fees == pytest.approx(0.0754012270528787 + eth_fee_btc * 99.5 + 0.0765, rel=1e-9)
