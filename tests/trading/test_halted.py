"""Halts that come while an arbitrage runs: a sequential chain sends no leg to a venue halted since
it was admitted, and closing (the ``Closer``) never sends to a halted venue -- it closes elsewhere,
or, with every venue it could close on halted, reports the position open with a critical alert.

The halt is raised from an ``OrderUpdate`` subscriber, inline, the moment a leg's result is
published: after admission, before the executor decides what to send next. The markets and books
are those of ``test_sequential`` (the chain on ``tri``) and ``test_executor`` (``alpha``/``beta``).
"""

from __future__ import annotations

import collections.abc as c

import pytest

from arbitrage.events import Alert, ArbResult, ArbStateChanged, Opportunity, OrderSubmitted, OrderUpdate
from arbitrage.trading.risk import RiskGate
from tests.trading.helpers import Harness, cid, leg, make_settings, opportunity, run
from tests.trading.test_executor import A, B, two_venues
from tests.trading.test_sequential import TRI, USDT_ONLY, cycle, venue

OTHER = "arbOTHERORDER0000"
"""Client order id of an order of unknown fate on a halted venue (not one of these arbitrages')."""
TYPES = (OrderSubmitted, ArbResult, Alert, ArbStateChanged)


def execute(h: Harness, opp: Opportunity, after: str, halt: c.Callable[[RiskGate], None]) -> list:
    """Publish ``opp`` on the started harness; ``halt`` its gate once the order labelled ``after``
    has its result; return the events of ``TYPES`` seen."""
    async def scenario() -> list:
        await h.start()
        risk = h.trader.executor.risk

        def on_update(update: OrderUpdate) -> None:
            if update.client_order_id == cid(after):
                halt(risk)

        h.bus.subscribe(OrderUpdate, on_update, name="halt")
        with h.bus.collect(*TYPES) as seen:
            h.bus.publish(opp)
            await h.settle()
        return seen

    return run(scenario())


def of(seen: list, kind: type) -> list:
    return [e for e in seen if isinstance(e, kind)]


def chain_harness() -> Harness:
    h = Harness(make_settings(USDT_ONLY, sequential_legs=True, latency_ms=10.0, hedge_timeout_s=0.5))
    venue(h)
    return h


def test_chain_sends_no_leg_to_a_venue_halted_after_l0_and_reports_what_l0_bought_open():
    h = chain_harness()
    seen = execute(h, cycle(), "s1-L0", lambda risk: risk.halt_venue(TRI, OTHER))
    # L0 buys 1.0 BTC @ 100 for 100.1 USDT (fee 0.1 %); then tri is halted (another order's fate
    # unknown): L1 and L2 are never sent, and the BTC cannot be unwound on tri (its only venue).
    # The 1.0 BTC stays open, cost 100.1 (what L0 paid), marked at tri's bid 99: realized
    # -100.1 + 100.1 = 0, unrealized 99 - 100.1 = -1.1.
    assert [s.label for s in of(seen, OrderSubmitted)] == ["s1-L0"]
    [result] = of(seen, ArbResult)
    assert result.status == "failed"
    assert [(lr.label, lr.status, lr.filled) for lr in result.legs] == [("s1-L0", "filled", 1.0)]
    assert result.residual == {"BTC": 1.0}
    [position] = result.positions
    assert (position.venue, position.asset, position.amount, position.mark) == (TRI, "BTC", 1.0, 99.0)
    assert position.cost == pytest.approx(100.1, abs=1e-9)
    assert result.realized_profit == pytest.approx(0.0, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-1.1, abs=1e-9)
    [alert] = [a for a in of(seen, Alert) if a.key.startswith("position.open")]
    assert (alert.key, alert.level) == (f"position.open:{TRI}:BTC", "critical")
    assert alert.message == (f"s1: +1 BTC left open on {TRI}, marked at 99 USDT (best price): {TRI} halted; "
                             "the arbitrage needs attention")
    states = [e.state for e in of(seen, ArbStateChanged)]
    assert states == ["planned", "submitted", "filled", "hedging", "needs_attention"]
    assert h.ctx.views.trading.balances[TRI] == {"USDT": pytest.approx(899.9), "BTC": pytest.approx(1.0)}
    assert h.trader.executor.risk.reserved == {}


@pytest.mark.parametrize("halt", [
    pytest.param(lambda risk: risk.halt("manual"), id="kill switch"),
    pytest.param(lambda risk: risk.halt("storage cannot write to arb.db: disk I/O error"), id="storage"),
    pytest.param(lambda risk: risk.hold_reconciling(TRI, "looking up 1 order(s) of earlier runs"),
                 id="reconciling"),
])
def test_chain_sends_no_leg_once_trading_is_halted_and_unwinds_what_l0_bought(halt):
    h = chain_harness()
    seen = execute(h, cycle(), "s1-L0", halt)
    # L0 buys 1.0 BTC for 100.1 USDT; trading is halted: L1, L2 are not sent. A halt lets running
    # arbitrages close what they hold: U0 sells the 1.0 BTC on BTC/USDT, limit 99 * 0.995 = 98.505,
    # fills @ 99: 99 - 0.099 = 98.901. Realized -100.1 + 98.901 = -1.199 USDT, nothing left open.
    submitted = [(s.label, s.purpose, s.side, s.amount) for s in of(seen, OrderSubmitted)]
    assert submitted == [("s1-L0", "leg", "buy", 1.0), ("s1-U0", "unwind", "sell", 1.0)]
    [result] = of(seen, ArbResult)
    assert result.status == "partial"
    assert result.realized_profit == pytest.approx(-1.199, abs=1e-9)
    assert result.residual == {"BTC": 0.0} and result.positions == ()
    assert not of(seen, Alert)
    states = [e.state for e in of(seen, ArbStateChanged)]
    assert states == ["planned", "submitted", "filled", "hedging", "done"]
    assert h.ctx.views.trading.balances[TRI] == {"USDT": pytest.approx(998.801), "BTC": pytest.approx(0.0)}


def test_chain_halted_before_its_first_leg_sends_nothing():
    h = chain_harness()

    async def scenario() -> list:
        await h.start()
        with h.bus.collect(*TYPES) as seen:
            h.bus.publish(cycle())  # admitted inline; its task has not run yet
            h.trader.executor.risk.halt_venue(TRI, OTHER)
            await h.settle()
        return seen

    seen = run(scenario())
    assert not of(seen, OrderSubmitted)
    [result] = of(seen, ArbResult)
    assert (result.status, result.legs, result.realized_profit) == ("failed", (), 0.0)
    assert [e.state for e in of(seen, ArbStateChanged)] == ["planned", "failed", "done"]


def hedge_harness() -> Harness:
    h = Harness(make_settings(hedge_timeout_s=0.5))
    two_venues(h, a_asks=((100.0, 1.0),), b_bids=((110.0, 0.4), (105.0, 1.0)))
    return h


def unequal() -> Opportunity:
    """alpha buys 1.0 BTC, beta sells only 0.4 of its 1.0 (105 is below its 109 limit): 0.6 BTC long."""
    return opportunity("x1", leg(A, "buy", 1.0, 100.0), leg(B, "sell", 1.0, 109.0), profit=9.7)


def test_closer_skips_a_halted_venue_and_hedges_on_the_other():
    seen = execute(hedge_harness(), unequal(), "x1-L1", lambda risk: risk.halt_venue(B, OTHER))
    # alpha pays 100.1; beta receives 44 - 0.088 = 43.912. Beta's bid 105 (net 104.79) would be the
    # best for the 0.6 BTC left, but beta is halted: H0 sells 0.6 on alpha at its bid 99 (limit
    # 99 * 0.995 = 98.505): 59.4 - 0.0594 = 59.3406. Realized -100.1 + 43.912 + 59.3406 = 3.1526.
    submitted = [(s.label, s.venue, s.side) for s in of(seen, OrderSubmitted)]
    assert submitted == [("x1-L0", A, "buy"), ("x1-L1", B, "sell"), ("x1-H0", A, "sell")]
    [result] = of(seen, ArbResult)
    hedge = result.legs[2]
    assert (hedge.venue, hedge.filled, hedge.average_price) == (A, pytest.approx(0.6), 99.0)
    assert result.status == "partial"
    assert result.realized_profit == pytest.approx(3.1526, abs=1e-9)
    assert result.residual == {"BTC": 0.0}


def test_closer_with_every_venue_halted_reports_the_position_open_with_a_critical_alert():
    def halt(risk: RiskGate) -> None:
        risk.halt_venue(A, OTHER)
        risk.halt_venue(B, OTHER)

    seen = execute(hedge_harness(), unequal(), "x1-L1", halt)
    # As above, but no venue may take a hedge: the 0.6 BTC stays open on alpha (which bought it),
    # cost 0.6 * 100.1 = 60.06, marked at alpha's bid 99 (59.4). Realized -100.1 + 43.912 + 60.06
    # = 3.872, unrealized 59.4 - 60.06 = -0.66.
    assert [s.label for s in of(seen, OrderSubmitted)] == ["x1-L0", "x1-L1"]
    [result] = of(seen, ArbResult)
    assert result.status == "failed"
    assert result.residual == {"BTC": pytest.approx(0.6)}
    [position] = result.positions
    assert (position.venue, position.asset, position.mark) == (A, "BTC", 99.0)
    assert position.amount == pytest.approx(0.6)
    assert position.cost == pytest.approx(60.06, abs=1e-9)
    assert result.realized_profit == pytest.approx(3.872, abs=1e-9)
    assert result.unrealized_profit == pytest.approx(-0.66, abs=1e-9)
    [alert] = of(seen, Alert)
    assert (alert.key, alert.level) == (f"position.open:{A}:BTC", "critical")
    assert alert.message == (f"x1: +0.6 BTC left open on {A}, marked at 99 USDT (best price): "
                             f"{A} halted, {B} halted; the arbitrage needs attention")
    assert [e.state for e in of(seen, ArbStateChanged)][-2:] == ["hedging", "needs_attention"]
