"""Money that is not where the run thinks: the balance changed under us (a leg refused for
insufficient funds: the other leg hedged, the balances read again), and a position the loss cap
does not let the run close (left open, with a critical alert naming it)."""

from __future__ import annotations

from pathlib import Path

from arbitrage.events import BalanceUpdate
from tests.emulator.core import Fault
from tests.faults.harness import ORDER_ENDPOINT, SYMBOL, B, Desk, K, assert_end_state, trade


def test_the_balance_changed_under_us_the_other_leg_is_hedged_and_balances_read_again(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        desk.kraken.exchange.set_balance("BTC", "0")  # withdrawn after the run read 1 BTC
        desk.dislocate()
        await desk.arbs()

    outcome = trade(tmp_path, scenario)
    assert_end_state(outcome)
    [result] = outcome.results()
    assert [(r.venue, r.status) for r in result.legs[:2]] == [(B, "filled"), (K, "rejected")]
    assert "InsufficientFunds" in outcome.rows(
        "SELECT reason FROM orders WHERE client_order_id = ?", result.legs[1].client_order_id)[0]["reason"]
    hedges = [(r.venue, r.side, r.purpose, r.status) for r in result.legs[2:]]
    assert hedges == [(B, "sell", "hedge", "filled")]
    # Kraken's balances were read again right after the refusal, and the run now knows it holds no BTC
    kraken = [r.endpoint for r in outcome.kraken.requests if r.method == "POST"]
    refused = kraken.index(ORDER_ENDPOINT[K])
    assert kraken[refused + 1] == "POST /0/private/BalanceEx"
    last = [e.balances for e in outcome.seen if isinstance(e, BalanceUpdate) and e.venue == K][-1]
    assert last.get("BTC", 0.0) == 0.0


def test_a_position_the_loss_cap_forbids_closing_stays_open_with_a_critical_alert(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        desk.kraken.exchange.inject(Fault("reject", symbol=SYMBOL, reason="invalid_order"))
        desk.dislocate()
        # the 0.4995 BTC bought at 100 could be sold only at 99 (Binance) or 98 (Kraken, once its
        # 110 bid is gone): beyond a 50 bp loss cap
        desk.kraken.exchange.set_book(SYMBOL, [("98.0", "5")], [("111.0", "5")])
        await desk.arbs()

    outcome = trade(tmp_path, scenario, trading={"hedge_max_loss_bps": 50.0, "hedge_timeout_s": 0.3})
    assert_end_state(outcome, open_position=True)
    [result] = outcome.results()
    assert result.status == "failed" and result.residual == {"BTC": 0.4995}
    assert [(r.venue, r.status) for r in result.legs] == [(B, "filled"), (K, "rejected")]
