"""End-to-end simulated-market throughput: sim -> strategy -> paper trading -> storage.

The simulated source runs in fast mode (no sleeping; simulated time) for a fixed number of book
updates through the real engine. Baselines in the same run: the simulator's generator alone, and
the engine with the strategy but no trading or storage, so the ratios show what each stage costs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import msgspec
import uvloop
from loguru import logger

from arbitrage.engine import Engine
from arbitrage.plugin import Plugin, load_plugin
from arbitrage.settings import Settings
from arbitrage.sources.sim import SimMarket, SimSource

N = 100_000


def engine_rate(settings: Settings, with_trading: bool) -> tuple[float, dict[str, object]]:
    plugins: list[Plugin] = [SimSource(realtime=False, max_events=N), load_plugin("cross_exchange")()]
    if with_trading:
        plugins += [load_plugin("trader")(), load_plugin("storage")()]
    engine = Engine(settings, plugins=plugins)
    start = time.perf_counter()
    summary = uvloop.run(engine.run(duration=0))
    return summary["events_processed"] / (time.perf_counter() - start), summary


def main() -> None:
    logger.remove()  # measure the pipeline, not terminal output
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings()
        settings = msgspec.structs.replace(
            base, storage=msgspec.structs.replace(base.storage, path=str(Path(tmp) / "bench.db")),
            log=msgspec.structs.replace(base.log, file=""),
            sim=msgspec.structs.replace(base.sim, dislocations_per_minute=60.0))
        start = time.perf_counter()
        for _ in SimMarket(settings.sim, settings.run.seed).events(N):
            pass
        generate = N / (time.perf_counter() - start)
        strategy_only, _ = engine_rate(settings, with_trading=False)
        full, summary = engine_rate(settings, with_trading=True)
    print(f"simulated-market throughput, {N:,} book updates, {len(settings.sim.venues)} venues x "
          f"{len(settings.sim.symbols)} symbols (updates/s)")
    print(f"{'stage':>42} {'updates/s':>11} {'vs generator':>13}")
    for label, rate in (("sim generator alone (baseline)", generate),
                        ("sim -> bus -> strategy", strategy_only),
                        ("sim -> strategy -> paper -> storage", full)):
        print(f"{label:>42} {rate:>11,.0f} {rate / generate:>13.2f}")
    print(f"end-to-end run: {summary['opportunities']} opportunities, {summary['arbs_executed']} arbs,"
          f" {summary['orders']} orders stored")


if __name__ == "__main__":
    main()
