"""Risk limits are amounts of risk.currency, through the whole engine on a planted recording."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backtest._data import T, backtest, line

BTC_USDT = ([[59_990.0, 5.0]], [[60_010.0, 5.0]])
"""BTC at a mid of 60,000 USDT on both venues: what ETH/BTC notionals are valued through."""


def test_eth_btc_dislocation_trades_at_most_max_notional_usdt_worth_per_arbitrage(tmp_path: Path) -> None:
    # B bids ETH/BTC 2 % above A's ask, 100 ETH deep on both: before, max_notional = 1000 read as
    # 1,000 BTC let the arbitrage spend what the balance allowed (10 BTC = 600,000 USDT). Now 1,000
    # USDT at BTC/USDT's mid 60,000 is 0.016667 BTC: 0.333 ETH at 0.05.
    lines = [line(T, v, *BTC_USDT) for v in ("A", "B")]
    lines += [line(T + 1, "A", [[0.0499, 100.0]], [[0.05, 100.0]], symbol="ETH/BTC"),
              line(T + 2, "B", [[0.051, 100.0]], [[0.0511, 100.0]], symbol="ETH/BTC"),
              line(T + 500, "A", *BTC_USDT)]
    result = backtest(tmp_path, lines, strategy={"max_notional": 1000.0, "cooldown_ms": 0.0},
                      trading={"max_notional": 1000.0, "max_open_arbs": 1})
    arbs = [a for a in result["arbs"] if a["symbol"] == "ETH/BTC"]
    assert arbs
    for arb in arbs:
        usdt = arb["amount"] * 0.05 * 60_000.0  # ETH bought at A's 0.05 ask, BTC at its 60,000 mid
        assert (arb["status"], arb["quote"]) == ("complete", "BTC")
        assert usdt <= 1000.0 * (1 + 1e-9)
        assert usdt == pytest.approx(1000.0, rel=1e-3)  # the cap, not something smaller
