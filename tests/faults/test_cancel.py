"""A venue without immediate-or-cancel: the leg is a plain limit order, cancelled after
``live.cancel_after_s``, and it fills while the cancel is on its way (the venue refuses the cancel
of a closed order). The order is read again after the refused cancel and recorded filled."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbitrage.trading import live
from tests.emulator.core import Fault
from tests.faults.harness import SYMBOL, B, Desk, K, assert_end_state, trade


def test_a_limit_order_filled_while_cancelling_is_read_again_and_recorded_filled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_ioc = live.supports_ioc
    monkeypatch.setattr(live, "supports_ioc", lambda exchange: exchange.id != B and with_ioc(exchange))

    async def scenario(desk: Desk) -> None:
        desk.binance.exchange.inject(Fault("fill_on_cancel", symbol=SYMBOL))
        desk.dislocate()
        await desk.arbs()

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    [result] = outcome.results()
    assert result.status == "complete" and [(r.venue, r.status) for r in result.legs] == [
        (B, "filled"), (K, "filled")]
    [order] = outcome.orders(B)
    assert (order.time_in_force, order.status, order.filled, order.trades[0].maker) == (
        "GTC", "closed", 0.5, True)
    binance = [(r.endpoint, r.status) for r in outcome.binance.requests if r.path == "/api/v3/order"]
    cancel = binance.index(("DELETE /api/v3/order", 400))  # refused: it filled meanwhile
    assert ("GET /api/v3/order", 200) in binance[cancel:]  # read again, not taken as cancelled
