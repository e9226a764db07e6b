"""Leg failures at the venue: a leg refused or partly filled. The other leg's fill is hedged from
what the venues report, and nothing is left open."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from arbitrage.events import ArbResult
from tests.emulator.core import Fault
from tests.faults.harness import SYMBOL, B, Desk, K, assert_end_state, trade


def test_the_dislocation_is_traded_once_without_faults(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        desk.dislocate()
        await desk.arbs()
        await desk.quiet(0.3)

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    [result] = outcome.results()
    assert result.status == "complete"
    assert [(o.side, o.status, o.filled) for o in outcome.orders(B)] == [("buy", "closed", Decimal("0.5"))]
    assert [(o.side, o.status) for o in outcome.orders(K)] == [("sell", "closed")]


def fail_leg(tmp_path: Path, venue: str, fault: Fault) -> ArbResult:
    """Trade the dislocation with ``fault`` injected on ``venue``'s next order; check the end state
    (nothing left open, books and balances agree) and return the one arbitrage's result."""
    async def scenario(desk: Desk) -> None:
        desk.live(venue).exchange.inject(fault)
        desk.dislocate()
        await desk.arbs()

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    [result] = outcome.results()
    return result


def test_leg_1_rejected_the_filled_sell_is_bought_back(tmp_path: Path) -> None:
    result = fail_leg(tmp_path, B, Fault("reject", symbol=SYMBOL, reason="insufficient_funds"))
    assert result.status == "partial"
    assert [(leg.venue, leg.side, leg.status, leg.purpose) for leg in result.legs][:2] == [
        (B, "buy", "rejected", "leg"), (K, "sell", "filled", "leg")]
    assert {leg.purpose for leg in result.legs[2:]} == {"hedge"}
    assert all(leg.side == "buy" for leg in result.legs[2:])


def test_leg_2_rejected_the_filled_buy_is_sold_back(tmp_path: Path) -> None:
    result = fail_leg(tmp_path, K, Fault("reject", symbol=SYMBOL, reason="invalid_order"))
    assert [(leg.venue, leg.side, leg.status) for leg in result.legs][:2] == [
        (B, "buy", "filled"), (K, "sell", "rejected")]
    assert [(leg.side, leg.purpose, leg.status) for leg in result.legs[2:]] == [("sell", "hedge", "filled")]


def test_leg_1_partially_filled_the_short_rest_is_bought_back(tmp_path: Path) -> None:
    result = fail_leg(tmp_path, B, Fault("partial", symbol=SYMBOL, fill=Decimal("0.2")))
    assert [(leg.venue, leg.side, leg.status, leg.filled) for leg in result.legs][:2] == [
        (B, "buy", "partially_filled", 0.2), (K, "sell", "filled", 0.4995)]
    # 0.2 bought (0.1998 net of Binance's fee in BTC), 0.4995 sold: 0.2997 BTC short, bought back
    hedges = result.legs[2:]
    assert hedges and all((leg.side, leg.purpose) == ("buy", "hedge") for leg in hedges)
    assert sum(leg.filled for leg in hedges) >= 0.2997 - 1e-9
    assert result.status == "partial"


def test_leg_2_partially_filled_the_long_rest_is_sold(tmp_path: Path) -> None:
    result = fail_leg(tmp_path, K, Fault("partial", symbol=SYMBOL, fill=Decimal("0.2")))
    assert [(leg.venue, leg.side, leg.status, leg.filled) for leg in result.legs][:2] == [
        (B, "buy", "filled", 0.5), (K, "sell", "partially_filled", 0.2)]
    # 0.4995 BTC delivered on Binance, 0.2 sold on Kraken: 0.2995 BTC long, sold
    hedges = result.legs[2:]
    assert hedges and all((leg.side, leg.purpose) == ("sell", "hedge") for leg in hedges)
    assert sum(leg.filled for leg in hedges) == pytest.approx(0.2995)
