"""Triangular arbitrage end to end on the simulated market: sim -> strategy -> trader, on a real engine."""

from __future__ import annotations

import asyncio
import math

import msgspec

from arbitrage.engine import Engine
from arbitrage.events import Alert, ArbResult, Opportunity
from arbitrage.plugin import Plugin
from arbitrage.settings import Settings
from arbitrage.sources.sim import SimSource
from arbitrage.strategies.triangular import TriangularStrategy
from arbitrage.trading.plugin import Trader


class Collect(Plugin):
    name = "collect"
    kind = "monitor"

    def __init__(self) -> None:
        self.opportunities: list[Opportunity] = []
        self.results: list[ArbResult] = []
        self.alerts: list[Alert] = []

    def setup(self, ctx: object) -> None:
        super().setup(ctx)  # type: ignore[arg-type]
        self.ctx.bus.subscribe(Opportunity, self.opportunities.append)
        self.ctx.bus.subscribe(ArbResult, self.results.append)
        self.ctx.bus.subscribe(Alert, self.alerts.append)


def test_triangular_on_the_simulator_trades_three_leg_cycles_on_one_venue_and_ends_flat() -> None:
    base = Settings()
    settings = msgspec.structs.replace(
        base,
        run=msgspec.structs.replace(base.run, strategy="triangular"),
        sim=msgspec.structs.replace(base.sim, dislocations_per_minute=600.0),
        trading=msgspec.structs.replace(base.trading, latency_ms=0.0),
    )
    collect = Collect()
    plugins = [SimSource(realtime=False, max_events=6000), TriangularStrategy(), Trader(), collect]
    summary = asyncio.run(Engine(settings, plugins=plugins).run(duration=120))
    assert summary["stop_reason"] == "sim: max events"
    assert collect.opportunities, "dislocated cross markets must open triangles"
    for opp in collect.opportunities:
        assert len(opp.legs) == 3
        assert len({leg.venue for leg in opp.legs}) == 1
        assert opp.profit_bps >= settings.strategy.min_profit_bps
    assert collect.results
    # the sim moves every book ~20 times a second, so legs limited at the exact touch often miss
    # (how often depends on how the loop interleaves fills with books): what must hold is that
    # every cycle ends flat (unwound to dust) or, when unwinding would lose more than
    # hedge_max_loss_bps, leaves exactly what it holds as positions with a critical alert naming each
    assert any(r.status != "failed" for r in collect.results)
    critical = {a.key for a in collect.alerts if a.level == "critical"}
    for result in collect.results:
        open_assets = {asset for asset, amount in result.residual.items() if abs(amount) >= 1e-3}
        if not open_assets:
            assert result.status != "failed" or all(leg.filled == 0 for leg in result.legs), result
        for asset in open_assets:
            held = sum(p.amount for p in result.positions if p.asset == asset)
            assert math.isclose(held, result.residual[asset], rel_tol=1e-9), result
            keys = {f"position.open:{p.venue}:{asset}" for p in result.positions if p.asset == asset}
            assert keys <= critical, (keys, critical)
        assert math.isfinite(result.realized_profit)
