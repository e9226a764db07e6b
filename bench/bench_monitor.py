"""What the monitor and the notifier add to the hot path: ns per publish, with and without them.

Three buses, identical except for what is subscribed: a strategy-like no-op handler alone, plus the
monitor, plus the monitor and the notifier (one URL, ``arbs = "each"``: every ``ArbResult`` is
queued for it). ``BookUpdate`` is the per-tick path; ``ArbResult`` happens a few times a minute.
The variants are interleaved and each figure is the best of several repeats, so background noise
hits them alike. Nothing is sent: the notifier's workers are never started.
"""

from __future__ import annotations

import asyncio
import time
import typing as t

import msgspec
from loguru import logger

from arbitrage.bus import Bus
from arbitrage.clock import Clock
from arbitrage.events import ArbResult, BookUpdate
from arbitrage.monitor import Monitor
from arbitrage.notify import Notifier
from arbitrage.plugin import Context, Plugin
from arbitrage.settings import Settings

N = 200_000
REPEATS = 7
VARIANTS = {"bus + strategy": (), "+ monitor": ("monitor",), "+ monitor + notifier": ("monitor", "notifier")}


def build(names: tuple[str, ...]) -> Bus:
    bus = Bus()
    bus.subscribe(BookUpdate, lambda _: None, name="strategy")
    bus.subscribe(ArbResult, lambda _: None, name="tally")
    base = Settings()
    settings = msgspec.structs.replace(
        base, monitor=msgspec.structs.replace(base.monitor, halt_file=""),
        notify=msgspec.structs.replace(base.notify, urls=["json://127.0.0.1:9/bench"], arbs="each"))
    ctx = Context(bus=bus, settings=settings, clock=Clock(), run_id="bench", log=logger)
    plugins: list[Plugin] = [Monitor() if name == "monitor" else Notifier(environ={}) for name in names]
    for plugin in plugins:
        plugin.setup(ctx)
    return bus


def measure() -> dict[str, tuple[float, float]]:
    books = [BookUpdate(venue=v, symbol=s, bids=((1.0, 1.0),), asks=((1.1, 1.0),), ts_event=i, ts_init=i)
             for i, (v, s) in enumerate((v, s) for v in ("a", "b", "c") for s in ("X/Y", "Z/Y", "W/Y"))]
    result = ArbResult(opportunity_id="o", strategy="bench", status="complete", legs=(), quote="USDT",
                       expected_profit=1.0, realized_profit=1.0, fees=0.1, slippage=0.0, ts_init=0)
    buses = {label: build(names) for label, names in VARIANTS.items()}
    best = {label: [float("inf"), float("inf")] for label in VARIANTS}

    def timed(fn: t.Callable[[], None]) -> float:
        start = time.perf_counter_ns()
        fn()
        return (time.perf_counter_ns() - start) / N

    for _ in range(REPEATS):
        for label, bus in buses.items():
            def book_loop(publish: t.Callable[..., None] = bus.publish) -> None:
                for i in range(N):
                    publish(books[i % 9], "a")

            def result_loop(publish: t.Callable[..., None] = bus.publish) -> None:
                for _ in range(N):
                    publish(result)

            best[label][0] = min(best[label][0], timed(book_loop))
            best[label][1] = min(best[label][1], timed(result_loop))
            for sub in bus.queued():  # unstarted queues only grow: empty them between repeats
                sub._queue.clear()
    return {label: (b, r) for label, (b, r) in best.items()}


def main() -> None:
    logger.remove()
    figures = asyncio.run(_main())
    base_book, base_result = figures["bus + strategy"]
    print(f"publish cost, ns per event (best of {REPEATS} x {N})")
    print(f"{'':22} {'BookUpdate':>10} {'added':>7} {'ArbResult':>10} {'added':>7}")
    for label, (book, result) in figures.items():
        print(f"{label:22} {book:>10.0f} {book - base_book:>+7.0f} {result:>10.0f}"
              f" {result - base_result:>+7.0f}")
    print("goal: the monitor adds < 0.5 us per BookUpdate; the notifier nothing to BookUpdate")


async def _main() -> dict[str, tuple[float, float]]:
    return measure()  # Bus and Context want a running loop's thread; nothing is awaited


if __name__ == "__main__":
    main()
