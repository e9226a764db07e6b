"""A Binance emulator that sends pre-generated ``depthUpdate`` frames as fast as a client takes them.

``python bench/frames.py --symbols A/B,C/D --frames N`` prints its base URL on the first line.
REST (``exchangeInfo``, the depth snapshot) is the Binance emulator's; the books start at bids
98 / 97 and asks 102 / 103. Once one websocket connection has subscribed to every listed book's
depth stream, it sends that connection ``N`` frames a book, round robin over the books, built
before the server starts: frame ``n`` of a book sets the 98 bid to quantity ``n`` (update ids
follow the snapshot's, ``U == u``), so a client reads how many frames it has applied from its own
book. Only the event time ``E`` is filled in at send time (fresh books: arb trades no stale
ones). With ``--rate`` the frames are spaced evenly instead, so that each reaches the client on
its own. Sending a frame costs a string join and a socket write; aiohttp waits for the socket to
drain, so a slower client sets the pace: the benchmark measures the client, not this server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serving import serve_until_stopped

from tests.emulator.binance import BinanceEmulator, binance_exchange


def frames(market_id: str, first_id: int, count: int) -> list[tuple[str, str]]:
    """(head, tail) of each frame: the frame is ``head + E + tail``."""
    head = '{"e":"depthUpdate","E":'
    return [(head, f',"s":"{market_id}","U":{first_id + n},"u":{first_id + n},'
                   f'"b":[["98.00000000","{n}.00000000"],["97.00000000","1.00000000"]],"a":[]}}')
            for n in range(1, count + 1)]


async def blast(emu: BinanceEmulator, ids: list[str], prepared: list[list[tuple[str, str]]],
                rate: float) -> None:
    """Wait for a connection subscribed to every book, then send it every prepared frame: as
    fast as it reads them, or ``rate`` frames a second evenly spaced."""
    while True:
        conn = next((c for c in emu.streams.connections if all(i in c.streams for i in ids)), None)
        if conn is not None:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the SUBSCRIBE reply goes first
    wraps = [(f'{{"stream":"{conn.streams[i]}","data":', "}") if conn.wrapped else ("", "") for i in ids]
    period, next_at = (1.0 / rate if rate else 0.0), time.perf_counter()
    for round_ in zip(*prepared, strict=True):
        e = str(time.time_ns() // 1_000_000)
        for (head, tail), (w0, w1) in zip(round_, wraps, strict=True):
            await conn.ws.send_str(f"{w0}{head}{e}{tail}{w1}")
            if period:
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def main(args: argparse.Namespace) -> None:
    emu = BinanceEmulator(binance_exchange({}))
    symbols = args.symbols.split(",")
    prepared, ids = [], []
    for symbol in symbols:
        emu.exchange.set_book(symbol, [("98", "0.5"), ("97", "1")], [("102", "1"), ("103", "1")])
        market_id = emu.exchange.market(symbol).id
        ids.append(market_id)
        prepared.append(frames(market_id, emu.exchange.book(symbol).update_id, args.frames))
    await serve_until_stopped(emu, blast(emu, ids, prepared, args.rate))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", default="BTC/USDT")
    parser.add_argument("--frames", type=int, default=50_000, help="frames a book")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="frames a second, all books; 0: the client's pace")
    asyncio.run(main(parser.parse_args()))
