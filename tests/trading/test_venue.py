"""The shared accounting rule of venues and the executor."""

from __future__ import annotations

import pytest

from arbitrage.trading.venue import (
    Order,
    OrderRequest,
    OrderResult,
    balance_deltas,
    ledger,
    net_by_asset,
)
from tests.trading.helpers import market

BTC = market("BTC/USDT")


def test_buy_adds_base_and_spends_notional_plus_fee_in_quote():
    assert balance_deltas("buy", BTC, 2.0, 200.0, 0.2, "USDT") == {"BTC": 2.0, "USDT": pytest.approx(-200.2)}


def test_sell_spends_base_and_yields_notional_minus_fee():
    assert balance_deltas("sell", BTC, 2.0, 200.0, 0.2, "USDT") == {"BTC": -2.0, "USDT": pytest.approx(199.8)}


def test_fee_charged_in_base_comes_off_the_base_amount():
    deltas = balance_deltas("buy", BTC, 2.0, 200.0, 0.002, "BTC")
    assert deltas == {"BTC": pytest.approx(1.998), "USDT": -200.0}


def order(venue: str, side: str, filled: float, notional: float, fee: float) -> Order:
    request = OrderRequest(client_order_id=f"{venue}-{side}", opportunity_id="x", venue=venue,
                           symbol="BTC/USDT", side=side, amount=filled, price=1.0)  # type: ignore[arg-type]
    status = "filled" if filled else "canceled"
    return request, OrderResult(client_order_id=request.client_order_id, status=status, filled=filled,
                                notional=notional, fee=fee, fee_currency="USDT")


def test_ledger_sums_each_venues_changes_and_skips_orders_that_did_not_fill():
    markets = {"a": {"BTC/USDT": BTC}, "b": {"BTC/USDT": BTC}}
    orders = [order("a", "buy", 1.0, 100.0, 0.1), order("b", "sell", 0.4, 44.0, 0.088),
              order("b", "sell", 0.6, 63.0, 0.126), order("a", "sell", 0.0, 0.0, 0.0)]
    changes = ledger(orders, markets)
    # a: +1 BTC, -100.1 USDT; b: -1 BTC, +43.912 + 62.874 = +106.786 USDT
    assert changes == {("a", "BTC"): 1.0, ("a", "USDT"): pytest.approx(-100.1),
                       ("b", "BTC"): pytest.approx(-1.0), ("b", "USDT"): pytest.approx(106.786)}
    assert net_by_asset(changes) == {"BTC": pytest.approx(0.0), "USDT": pytest.approx(6.686)}
