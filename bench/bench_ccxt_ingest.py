"""Ingest overhead: book messages a second through ccxt.pro alone vs ccxt.pro + arb (goal >= 80 %).

The Binance flood emulator (``flood.py``, another process) changes BTC/USDT, ETH/USDT and
LTC/USDT as fast as its loop turns, one ``depthUpdate`` frame a change. Baseline: one ccxt.pro
client looping ``watch_order_book`` on each symbol. Then arb's engine (the ccxt source, bus, book
store, cross-exchange strategy, storage) on a fresh emulator. Messages are counted by update id (a
watch returns only the latest state under a burst): the change number the best bid carries, which
is the number of frames the client has applied, over a window after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from ccxt_bench import ccxt_client, engine_settings, flood, run_engine

SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT"]
GOAL = 0.8
DEPTH = 10  # [ccxt] depth, what arb asks for


class Window:
    """Frames applied per second between ``start`` and ``end`` (perf_counter seconds)."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.first: dict[str, tuple[float, int]] = {}
        self.last: dict[str, tuple[float, int]] = {}

    def see(self, symbol: str, n: int) -> None:
        now = time.perf_counter()
        if self.start <= now <= self.end:
            self.first.setdefault(symbol, (now, n))
            self.last[symbol] = (now, n)

    def rate(self) -> float:
        total = sum(self.last[s][1] - self.first[s][1] for s in self.last)
        span = max(self.last[s][0] for s in self.last) - min(self.first[s][0] for s in self.first)
        return total / span if span > 0 else 0.0


async def ccxt_alone(base: str, warm: float, seconds: float, *, for_symbols: bool) -> float:
    """One ``watch_order_book`` loop per symbol, or (``for_symbols``) one loop of
    ``watch_order_book_for_symbols`` at arb's depth, the call arb's source makes on Binance."""
    client = await ccxt_client("binance", base)
    try:
        await client.load_markets()
        start = time.perf_counter() + warm
        window = Window(start, start + seconds)

        def see(book) -> None:
            if len(book["bids"]) == 2:  # a flooded book, not the empty one before the flood
                window.see(book["symbol"], int(book["bids"][0][1]))

        async def watch(symbol: str) -> None:
            while time.perf_counter() < window.end:
                see(await client.watch_order_book(symbol))

        async def watch_all() -> None:
            while time.perf_counter() < window.end:
                see(await client.watch_order_book_for_symbols(SYMBOLS, DEPTH))

        await (watch_all() if for_symbols else asyncio.gather(*(watch(s) for s in SYMBOLS)))
        return window.rate()
    finally:
        await client.close()


def through_arb(base: str, warm: float, seconds: float) -> tuple[float, dict]:
    settings = engine_settings({"binance": base}, SYMBOLS)
    window = Window(time.perf_counter() + 3.0 + warm, time.perf_counter() + 3.0 + warm + seconds)

    def on_book(book) -> None:
        if len(book.bids) == 2:
            window.see(book.symbol, int(book.bids[0][1]))

    # the engine's start (markets, subscriptions) takes a moment: the window opens 3 s in
    summary = run_engine(settings, 3.0 + warm + seconds, on_book=on_book)
    return window.rate(), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured window")
    parser.add_argument("--quick", action="store_true", help="5-second windows")
    args, _ = parser.parse_known_args(argv)
    seconds = 5.0 if args.quick else args.seconds
    warm = 2.0
    symbols = ",".join(SYMBOLS)
    with flood("binance", "--symbols", symbols) as base:
        each = asyncio.run(ccxt_alone(base, warm, seconds, for_symbols=False))
    with flood("binance", "--symbols", symbols) as base:
        together = asyncio.run(ccxt_alone(base, warm, seconds, for_symbols=True))
    alone = max(each, together)
    with flood("binance", "--symbols", symbols) as base:
        arb, summary = through_arb(base, warm, seconds)
    ratio = arb / alone if alone else float("nan")
    print(f"ingest, Binance flood emulator, {len(SYMBOLS)} symbols, {seconds:.0f} s windows: "
          f"ccxt.pro alone {each:,.0f} msg/s (watch_order_book per symbol), {together:,.0f} msg/s "
          f"(watch_order_book_for_symbols); ccxt.pro + arb {arb:,.0f} msg/s; "
          f"ratio to the faster {ratio:.2f} (goal >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'}); "
          f"arb events processed {summary.get('events_processed', 0):,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
