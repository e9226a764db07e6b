"""A loopback emulator whose books move on their own, for the ccxt benchmarks (another process).

``python bench/flood.py binance|kraken [--symbols A/B,C/D] [--rate HZ] [--dislocate]`` prints its
base URL on the first line, then, once a client subscribes, changes every listed book ``--rate``
times a second (0: as fast as the loop turns), each change one websocket frame. Every change
carries its own count and send time in the book itself, so a client reads them back whatever
protocol or library is in between: the best bid's quantity is the change's number ``n`` (1, 2, ...;
the book's update id advances by one a change, so ccxt's ``nonce`` counts frames too), the second
bid's quantity the emulator's ``time.time_ns() // 1000`` (µs, the host clock) when it made the
change, just before the frame is queued. With ``--dislocate`` every odd change asks 99 (under the
100 bid ``--static`` books show on the other venue: an arbitrage), every even one 102.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serving import serve_until_stopped


def emulator(venue: str):
    if venue == "binance":
        from tests.emulator.binance import BinanceEmulator, binance_exchange

        return BinanceEmulator(binance_exchange({}))
    from tests.emulator.kraken import default_emulator

    return default_emulator({})[0]


def book(n: int, dislocate: bool) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    ask = "99" if dislocate and n % 2 else "102"
    return [("98", str(n)), ("97", str(time.time_ns() // 1000))], [(ask, "1"), ("103", "1")]


async def flood(exchange, symbols: list[str], rate: float, dislocate: bool, started: asyncio.Event) -> None:
    await started.wait()
    await asyncio.sleep(0.5)  # every subscription of the client in place
    n = 0
    period = 1.0 / rate if rate else 0.0
    next_at = time.perf_counter()
    while True:
        n += 1
        for symbol in symbols:
            exchange.set_book(symbol, *book(n, dislocate))
        if period:
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        else:
            await asyncio.sleep(0)


async def main(args: argparse.Namespace) -> None:
    emu = emulator(args.venue)
    symbols = args.symbols.split(",")
    started = asyncio.Event()
    if args.static:
        for symbol in symbols:
            emu.exchange.set_book(symbol, [("100", "1000")], [("101", "1000")])
    else:
        original = emu.handle

        async def handle(request, route):  # the first websocket connection starts the flood
            if request.headers.get("Upgrade", "").lower() == "websocket":
                started.set()
            return await original(request, route)

        emu.handle = handle
    await serve_until_stopped(emu, None if args.static else flood(emu.exchange, symbols, args.rate,
                                                                  args.dislocate, started))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("venue", choices=("binance", "kraken"))
    parser.add_argument("--symbols", default="BTC/USDT")
    parser.add_argument("--rate", type=float, default=0.0, help="changes a second per book; 0 = flat out")
    parser.add_argument("--dislocate", action="store_true")
    parser.add_argument("--static", action="store_true", help="books 100 / 101 that never move")
    asyncio.run(main(parser.parse_args()))
