"""Frame to Opportunity: from the emulator's send of a websocket frame to the Opportunity it causes.

The Binance flood emulator (another process) moves BTC/USDT 200 times a second, every other change
asking 99 under the 100 bid of a Kraken emulator whose book stands still: each such frame is an
arbitrage (cooldown 0). The frame's send time is in its book (``flood.py``; same host clock, µs).
arb's engine (the ccxt source, bus, strategy, storage) runs in this process; an Opportunity's
latency is its arrival at a bus subscriber less the send time of the Binance book it was built on.
Baseline in the same run: the send-to-``watch_order_book``-return time of ccxt.pro alone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from ccxt_bench import ccxt_client, engine_settings, flood, now_us, percentile, run_engine

SYMBOL = "BTC/USDT"
RATE = "200"


async def ccxt_alone(base: str, warm: float, seconds: float) -> list[float]:
    client = await ccxt_client("binance", base)
    latencies: list[float] = []
    try:
        await client.load_markets()
        start = time.perf_counter() + warm
        while time.perf_counter() < start + seconds:
            book = await client.watch_order_book(SYMBOL)
            if time.perf_counter() >= start and len(book["bids"]) == 2:
                latencies.append((now_us() - int(book["bids"][1][1])) / 1000.0)
        return latencies
    finally:
        await client.close()


def through_arb(binance: str, kraken: str, warm: float, seconds: float) -> list[float]:
    settings = engine_settings({"binance": binance, "kraken": kraken}, [SYMBOL], cooldown_ms=0.0)
    start = time.perf_counter() + 3.0 + warm  # the engine's start takes a moment
    sent = [0]
    latencies: list[float] = []

    def on_book(book) -> None:
        if book.venue == "binance" and len(book.bids) == 2:
            sent[0] = int(book.bids[1][1])

    def on_opportunity(_) -> None:
        if time.perf_counter() >= start and sent[0]:
            latencies.append((now_us() - sent[0]) / 1000.0)

    run_engine(settings, 3.0 + warm + seconds, on_book=on_book, on_opportunity=on_opportunity)
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="5-second windows")
    args, _ = parser.parse_known_args(argv)
    seconds, warm = (5.0 if args.quick else args.seconds), 2.0
    with flood("binance", "--symbols", SYMBOL, "--rate", RATE) as base:
        alone = asyncio.run(ccxt_alone(base, warm, seconds))
    with flood("binance", "--symbols", SYMBOL, "--rate", RATE, "--dislocate") as binance, \
            flood("kraken", "--symbols", SYMBOL, "--static") as kraken:
        arb = through_arb(binance, kraken, warm, seconds)
    print(f"frame -> book, ccxt.pro alone ({len(alone):,} books): p50 {percentile(alone, 0.5):.2f} ms, "
          f"p99 {percentile(alone, 0.99):.2f} ms")
    p50, p99 = percentile(arb, 0.5), percentile(arb, 0.99)
    print(f"frame -> Opportunity, ccxt.pro + arb ({len(arb):,} opportunities): p50 {p50:.2f} ms, "
          f"p99 {p99:.2f} ms; ratio p50 {p50 / percentile(alone, 0.5):.2f}, "
          f"p99 {p99 / percentile(alone, 0.99):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
