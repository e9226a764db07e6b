"""Risk gate: each rule alone, reservations and their release."""

from __future__ import annotations

import pytest

from arbitrage.book import BookStore
from arbitrage.trading.risk import RiskGate, requirements
from arbitrage.valuation import Valuer
from tests.trading.helpers import T0, book, leg, make_settings, market, opportunity

MARKETS = {"alpha": {"BTC/USDT": market(fee=0.001)}, "beta": {"BTC/USDT": market(fee=0.002)}}
BALANCES = {"alpha": {"USDT": 1000.0, "BTC": 0.0}, "beta": {"USDT": 0.0, "BTC": 2.0}}


def gate(**trading) -> RiskGate:
    return RiskGate(make_settings(**trading).trading)


def arb(id: str = "x1", amount: float = 1.0, notional: float = 100.0):
    return opportunity(id, leg("alpha", "buy", amount, 100.0), leg("beta", "sell", amount, 110.0),
                       notional=notional)


def test_requirements_reserve_quote_at_limit_with_fee_for_buys_and_base_for_sells():
    # buy 1.0 at limit 100 with 0.1 % fee: 100.1 USDT on alpha; sell 1.0: 1.0 BTC on beta
    assert requirements(arb(), MARKETS) == {("alpha", "USDT"): pytest.approx(100.1), ("beta", "BTC"): 1.0}


def test_admit_within_every_limit_reserves_and_opens():
    g = gate()
    assert g.admit(arb(), BALANCES, MARKETS) is None
    assert g.open.keys() == {"x1"}
    assert g.reserved == {("alpha", "USDT"): pytest.approx(100.1), ("beta", "BTC"): 1.0}


def test_notional_above_max_is_refused():
    refusal = gate(max_notional=500.0).admit(arb(notional=500.01), BALANCES, MARKETS)
    assert refusal is not None and refusal.reason == "notional"


def test_open_arbs_at_max_is_refused_as_busy_until_released():
    g = gate(max_open_arbs=1)
    assert g.admit(arb("x1", 0.1), BALANCES, MARKETS) is None
    refusal = g.admit(arb("x2", 0.1), BALANCES, MARKETS)
    assert refusal is not None and refusal.reason == "busy"
    g.release("x1")
    assert g.admit(arb("x2", 0.1), BALANCES, MARKETS) is None


def test_balance_reserved_by_a_running_arb_is_not_counted_twice():
    g = gate(max_open_arbs=3)
    assert g.admit(arb("x1", 1.5), BALANCES, MARKETS) is None  # beta: 1.5 of 2.0 BTC reserved
    refusal = g.admit(arb("x2", 1.0), BALANCES, MARKETS)
    assert refusal is not None and refusal.reason == "balance"
    assert "beta has 0.5 BTC free" in refusal.detail
    g.release("x1")
    assert g.reserved == {}
    assert g.admit(arb("x2", 1.0), BALANCES, MARKETS) is None


def test_buy_needing_more_quote_than_free_is_refused():
    # 10 * 100 * 1.001 = 1001 USDT > 1000
    refusal = gate().admit(arb(amount=10.0, notional=100.0), BALANCES, MARKETS)
    assert refusal is not None and refusal.reason == "balance"


def priced(bid: float = 99.0, ask: float = 101.0, **trading) -> RiskGate:
    """A gate whose valuer sees one BTC/USDT book (mid (bid + ask) / 2) and an ETH/BTC book (mid 0.05)."""
    store = BookStore()
    store.update(book("alpha", "BTC/USDT", [(bid, 1.0)], [(ask, 1.0)], T0))
    store.update(book("alpha", "ETH/BTC", [(0.0499, 1.0)], [(0.0501, 1.0)], T0))
    return RiskGate(make_settings(**trading).trading, Valuer(store.by_symbol, "USDT"))


def test_max_exposure_refuses_the_trade_that_would_breach_it_not_the_one_after():
    # limit 150 USDT of BTC at mid 100: 0.3 BTC open + 1 BTC at risk = 130 USDT passes;
    # 0.6 open + 1 = 160 USDT would breach it, although the 0.6 alone (60 USDT) is within it
    g = priced(max_exposure={"BTC": 150.0})
    g.add_residual({"BTC": 0.3})
    assert g.check(arb(), BALANCES, MARKETS) is None
    g.add_residual({"BTC": 0.3})
    refusal = g.check(arb(), BALANCES, MARKETS)
    assert refusal is not None and refusal.reason == "exposure"
    assert "= 160 USDT > max_exposure 150" in refusal.detail


def test_notional_in_another_quote_is_valued_in_the_risk_currency():
    # ETH/BTC notional 0.3 BTC at BTC/USDT's mid 100 = 30 USDT: within max_notional 40 (a limit
    # read as BTC would let 40 BTC through), 0.5 BTC = 50 USDT is refused
    markets = {"alpha": {"ETH/BTC": market("ETH/BTC", step=0.01)}, "beta": {"ETH/BTC": market("ETH/BTC")}}
    balances = {"alpha": {"BTC": 10.0}, "beta": {"ETH": 100.0}}
    g = priced(max_notional=40.0)

    def eth_btc(notional: float):
        return opportunity("e", leg("alpha", "buy", 6.0, 0.05, "ETH/BTC"),
                           leg("beta", "sell", 6.0, 0.0502, "ETH/BTC"), quote="BTC", notional=notional)

    assert g.check(eth_btc(0.3), balances, markets) is None
    refusal = g.check(eth_btc(0.5), balances, markets)
    assert refusal is not None and refusal.reason == "notional"
    assert "0.5 BTC = 50 USDT > max_notional 40" in refusal.detail


def test_opportunity_that_cannot_be_valued_is_refused_as_no_price():
    markets = {"alpha": {"SOL/EUR": market("SOL/EUR")}, "beta": {"SOL/EUR": market("SOL/EUR")}}
    opp = opportunity("s", leg("alpha", "buy", 1.0, 100.0, "SOL/EUR"),
                      leg("beta", "sell", 1.0, 101.0, "SOL/EUR"), quote="EUR")
    refusal = priced().check(opp, {"alpha": {"EUR": 1000.0}, "beta": {"SOL": 5.0}}, markets)
    assert refusal is not None and refusal.reason == "no price"


def test_halt_refuses_everything_until_resume():
    g = gate()
    g.halt("kill switch")
    refusal = g.admit(arb(), BALANCES, MARKETS)
    assert refusal is not None and (refusal.reason, refusal.detail) == ("halted", "kill switch")
    g.resume()
    assert g.admit(arb(), BALANCES, MARKETS) is None


def test_an_executed_opportunity_id_is_refused_as_duplicate():
    g = gate()
    assert g.admit(arb("x1"), BALANCES, MARKETS) is None
    g.release("x1")
    refusal = g.admit(arb("x1"), BALANCES, MARKETS)
    assert refusal is not None and refusal.reason == "duplicate"


@pytest.mark.parametrize(("legs", "reason"), [
    ((), "invalid"),
    ((leg("alpha", "buy", 0.0, 100.0),), "invalid"),
    ((leg("gamma", "buy", 1.0, 100.0),), "unknown_venue"),
    ((leg("alpha", "buy", 1.0, 100.0, symbol="ETH/USDT"),), "unknown_market"),
])
def test_malformed_or_unknown_legs_are_refused(legs, reason):
    refusal = gate().admit(opportunity("x1", *legs), BALANCES, MARKETS)
    assert refusal is not None and refusal.reason == reason


def test_the_valuer_prices_from_the_newest_book_not_a_dead_feeds_last_one() -> None:
    store = BookStore()
    store.update(book("alpha", "BTC/USDT", [(39_990.0, 1.0)], [(40_010.0, 1.0)], ts=T0))  # feed died here
    store.update(book("beta", "BTC/USDT", [(59_990.0, 1.0)], [(60_010.0, 1.0)], ts=T0 + 5_000_000_000))
    store.update(book("beta", "ETH/BTC", [(0.0499, 1.0)], [(0.0501, 1.0)], ts=T0 + 5_000_000_000))
    valuer = Valuer(store.by_symbol, "USDT")
    assert valuer.price("BTC") == 60_000.0
    assert valuer.value("ETH", 1.0) == pytest.approx(0.05 * 60_000.0)  # ETH/BTC mid through BTC/USDT
