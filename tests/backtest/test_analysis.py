"""The backtest's figures count each arbitrage at its net profit: realized plus what it left open."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from arbitrage.backtest.analysis import analyse, arb_entry
from arbitrage.backtest.report import pnl_curve, render_result
from arbitrage.events import ArbResult, LegResult


def arb(oid: str, ts_ms: int, buy: str, sell: str, symbol: str, realized: float, unrealized: float,
        fees: float) -> ArbResult:
    legs = tuple(LegResult(client_order_id=f"{oid}-{side}", venue=venue, symbol=symbol, side=side,  # type: ignore[arg-type]
                           amount=1.0, filled=1.0, average_price=100.0, fee=fees / 2, status="filled")
                 for venue, side in ((buy, "buy"), (sell, "sell")))
    return ArbResult(opportunity_id=f"bt-{oid}", strategy="cross_exchange", status="partial", legs=legs,
                     quote="USDT", expected_profit=1.0, realized_profit=realized, fees=fees,
                     slippage=1.0 - realized - unrealized, unrealized_profit=unrealized,
                     ts_init=ts_ms * 1_000_000)


# net: x1 2.0 - 3.0 = -1.0 (a long left open 3.0 under its cost), x2 +0.5, x3 -0.4 + 1.0 = +0.6
RESULTS = [arb("x1", 1000, "alpha", "beta", "BTC/USDT", 2.0, -3.0, 0.2),
           arb("x2", 2000, "beta", "alpha", "BTC/USDT", 0.5, 0.0, 0.1),
           arb("x3", 3000, "alpha", "beta", "ETH/USDT", -0.4, 1.0, 0.1)]


def test_drawdown_gross_ranking_and_groups_are_on_net_profit() -> None:
    arbs = [arb_entry(r, "bt-") for r in RESULTS]
    assert [a["net_profit"] for a in arbs] == pytest.approx([-1.0, 0.5, 0.6])
    out = analyse(arbs, opportunities=3)
    # cumulative net -1.0, -0.5, +0.1: the fall from 0 to -1.0 (realized 2.0, 2.5, 2.1 would say 0.4)
    assert out["max_drawdown"] == {"USDT": pytest.approx(1.0)}
    # gross = net + fees = 0.1 + 0.4 (realized would say 2.1 + 0.4 = 2.5)
    assert out["gross_pnl"] == {"USDT": pytest.approx(0.5)}
    assert [b["id"] for b in out["best"]["USDT"]] == ["x3", "x2", "x1"]
    assert [w["id"] for w in out["worst"]["USDT"]] == ["x1", "x2", "x3"]
    pairs = {row["venue_pair"]: row for row in out["by_venue_pair"]}
    assert pairs["alpha->beta"]["net_pnl"] == pytest.approx(-1.0 + 0.6)
    assert pairs["alpha->beta"]["realized_pnl"] == pytest.approx(2.0 - 0.4)
    assert pairs["beta->alpha"]["net_pnl"] == pytest.approx(0.5)
    symbols = {row["symbol"]: row["net_pnl"] for row in out["by_symbol"]}
    assert symbols == {"BTC/USDT": pytest.approx(-0.5), "ETH/USDT": pytest.approx(0.6)}


def test_the_plot_curve_adds_up_net_profit() -> None:
    arbs = [arb_entry(r, "bt-") for r in RESULTS]
    times, totals = pnl_curve(arbs, "USDT")
    assert times == [1000, 2000, 3000]
    assert totals == pytest.approx([-1.0, -0.5, 0.1])  # realized would climb to 2.0, 2.5, 2.1


def test_the_tables_show_net_profit_per_arbitrage_and_group() -> None:
    arbs = [arb_entry(r, "bt-") for r in RESULTS]
    result = {"run_id": "bt-1", "strategy": "cross_exchange", "events": 10, "first_ts": 1000, "last_ts": 3000,
              "opportunities": 3, "rejected": 0, "arbs_executed": 3, "arbs_by_status": {"partial": 3},
              "fill_ratio": 1.0, "realized_pnl": {"USDT": 2.1}, "unrealized_pnl": {"USDT": -2.0},
              "net_pnl": {"USDT": 0.1}, "malformed": {"total": 0, "reasons": {}, "files": []},
              "out_of_order": 0,
              "handler_errors": 0, "fingerprint": "0" * 64, "arbs": arbs, **analyse(arbs, 3)}
    console = Console(file=io.StringIO(), width=200, color_system=None)
    render_result(result, console)
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    # best trade x3: net +0.6, realized -0.4, unrealized +1.0
    assert any("best" in line and "+0.600000 USDT" in line and "-0.400000" in line and "+1.000000" in line
               for line in lines)
    # per symbol BTC/USDT: net -0.5 beside realized +2.5
    assert any("BTC/USDT" in line and "-0.500000" in line and "+2.500000" in line for line in lines)
