"""Tick-to-opportunity latency: BookUpdate published -> Opportunity published, 5 venues x 10 symbols.

Books come from the simulated market (frequent dislocations so opportunities are common; default
strategy settings, 1,000 USDT max notional, except no cooldown so every chance is emitted). Each
book is published on a real bus with the engine's book store and then the cross-exchange strategy
subscribed inline, as the engine wires them; the time from ``publish`` to the strategy's
``Opportunity`` reaching a subscriber is recorded. Baseline in the same run: the same books handed
straight to the store and the strategy's handler with no bus in between (and its publish going to
a no-op), which isolates what the bus adds.
"""

from __future__ import annotations

import statistics
import time

import msgspec

from arbitrage import compiled
from arbitrage.book import BookStore
from arbitrage.bus import Bus
from arbitrage.clock import SimClock
from arbitrage.events import BookUpdate, Opportunity
from arbitrage.plugin import Context
from arbitrage.settings import Settings, SimSettings, SimVenue
from arbitrage.sources.sim import SimMarket
from arbitrage.strategies.cross_exchange import CrossExchangeStrategy

N_BOOKS = 200_000
SYMBOLS = {f"C{i}/USDT": 10.0 * (i + 1) for i in range(9)} | {"BTC/USDT": 60000.0}


def settings() -> Settings:
    base = Settings()
    sim = SimSettings(venues=[SimVenue(name=f"v{i}", taker_fee=0.001) for i in range(5)], symbols=SYMBOLS,
                      dislocations_per_minute=600.0, dislocation_ms=300.0, update_hz=20.0)
    strategy = msgspec.structs.replace(base.strategy, cooldown_ms=0.0)
    return msgspec.structs.replace(base, sim=sim, strategy=strategy)


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def run(books: list[BookUpdate], through_bus: bool) -> tuple[list[int], list[int]]:
    """Return (tick->opportunity latencies, per-update handling times), in ns."""
    cfg = settings()
    bus = Bus()
    clock = SimClock(books[0].ts_init)
    store = BookStore()
    bus.subscribe(BookUpdate, store.update, name="books")  # first, as the engine does
    strategy = CrossExchangeStrategy()
    strategy.setup(Context(bus=bus, settings=cfg, clock=clock, run_id="bench", books=store, liquidity=store))
    for event in SimMarket(cfg.sim, cfg.run.seed).markets_loaded(0):
        bus.publish(event)
    latencies: list[int] = []
    handling: list[int] = []
    start = [0]
    perf = time.perf_counter_ns
    bus.subscribe(Opportunity, lambda _: latencies.append(perf() - start[0]))
    def handler_only(book: BookUpdate) -> None:
        store.update(book)
        strategy.on_book(book)

    deliver = bus.publish if through_bus else handler_only
    for book in books:
        clock.advance_to(book.ts_init)
        start[0] = t0 = perf()
        deliver(book)
        handling.append(perf() - t0)
    return latencies, handling


def main() -> None:
    cfg = settings()
    books = list(SimMarket(cfg.sim, cfg.run.seed).events(N_BOOKS, start_ns=1_700_000_000_000_000_000))
    print(f"tick-to-opportunity, 5 venues x 10 symbols, {len(books):,} book updates (µs); "
          f"{compiled.describe()[0]}")
    print(f"{'path':>22} {'opps':>6} {'p50':>7} {'p99':>7} {'update p50':>11} {'update p99':>11}")
    rows = {}
    for label, through_bus in (("strategy handler only", False), ("bus -> strategy -> bus", True)):
        run(books[:20_000], through_bus)  # warm up
        latencies, handling = run(books, through_bus)
        rows[label] = (percentile(latencies, 0.5), percentile(latencies, 0.99))
        print(f"{label:>22} {len(latencies):>6} {rows[label][0]:>7.1f} {rows[label][1]:>7.1f}"
              f" {percentile(handling, 0.5):>11.2f} {percentile(handling, 0.99):>11.2f}")
    base, full = rows["strategy handler only"], rows["bus -> strategy -> bus"]
    print(f"ratio bus/handler-only: p50 {full[0] / base[0]:.2f}, p99 {full[1] / base[1]:.2f};"
          f" mean update {statistics.fmean(run(books[:20_000], True)[1]) / 1000:.2f} µs")
    print("goal: p99 tick-to-opportunity <= 50 µs")


if __name__ == "__main__":
    main()
