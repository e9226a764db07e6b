"""Risk gate: each rule alone, reservations and their release."""

from __future__ import annotations

import pytest

from arbitrage.trading.risk import RiskGate, requirements
from tests.trading.helpers import leg, make_settings, market, opportunity

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


def test_residual_above_max_exposure_blocks_opportunities_trading_that_asset():
    g = gate(max_exposure={"BTC": 0.5})
    g.add_residual({"BTC": 0.3})
    assert g.check(arb(), BALANCES, MARKETS) is None
    g.add_residual({"BTC": 0.3})
    refusal = g.check(arb(), BALANCES, MARKETS)
    assert refusal is not None and refusal.reason == "exposure"


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
