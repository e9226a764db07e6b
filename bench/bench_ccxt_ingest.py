"""Ingest overhead: book frames a second through ccxt.pro alone vs ccxt.pro + arb (goal >= 80 %).

Both variants are fed the same pre-generated Binance ``depthUpdate`` frames by ``frames.py``
(another process), which sends them as fast as the client reads them, so the client, not the
emulator, sets the rate. ccxt alone: one ccxt.pro client looping
``watch_order_book_for_symbols`` (the call arb's source makes on Binance, at arb's depth) with a
consumer that only notes the frame count. ccxt + arb: arb's engine (the ccxt source, bus, book
store, cross-exchange strategy, storage) on the same frames. Each run counts the frames its books
applied (the best bid's quantity is the frame number; a watch returns only the latest state under
a burst) between round ``WARM`` and round ``WARM + COUNT`` (a round: one frame of every book),
over the time between.
The variants alternate (alone, arb, alone, arb, ...) so that load on the host hits both alike;
each pair gives a ratio, and the median ratio is the figure. A raw websocket reader that decodes
nothing measures the server's own ceiling, to show it is far above both. A second measurement
(``--paced``) spaces the same frames evenly so that every frame is a book for the consumer, and
compares the CPU time a frame costs each variant.

At this pace ccxt applies the frames a socket read brings in one go and a watch returns one book
a burst, so the consumer (arb's source, or the no-op one) sees a fraction of the frames; the
number of books each got is printed. The ratio therefore says how much arb's work on the books it
gets slows ccxt's handling of every frame, not what arb costs a book (``bench_ccxt_latency.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
import typing as t

from ccxt_bench import HERE, REPO, ccxt_client, engine_settings

SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT"]
GOAL = 0.8
DEPTH = 10  # [ccxt] depth, what arb asks for
TIMEOUT = 300.0  # only so that a broken run ends


@contextlib.contextmanager
def frames_server(count: int, rate: float = 0.0) -> t.Iterator[str]:
    """``frames.py`` with ``count`` frames a book (``rate`` a second, 0: the client's pace), in its
    own process; yields its base URL."""
    with subprocess.Popen([sys.executable, str(HERE / "frames.py"), "--symbols", ",".join(SYMBOLS),
                           "--frames", str(count), "--rate", str(rate)], stdout=subprocess.PIPE, text=True,
                          cwd=REPO) as proc:
        try:
            assert proc.stdout is not None
            yield proc.stdout.readline().strip()
        finally:
            proc.terminate()


class Counter:
    """Frames applied a second between round ``warm`` and round ``warm + count``.

    The server sends the books' frames round robin and the client applies them in order, so
    frame ``n`` of any book means ``n`` rounds applied: ``len(SYMBOLS) * n`` frames. Under a burst
    a watch of several books returns one of them (the one that resolved it first), so progress is
    read from whichever book comes back."""

    def __init__(self, warm: int, count: int) -> None:
        self.warm, self.end = warm, warm + count
        self.first: tuple[float, int, float] | None = None
        self.last: tuple[float, int, float] | None = None
        self.done = asyncio.Event()
        self.books = 0
        """Books the consumer got within the counted rounds (a burst gives one)."""

    def see(self, n: int) -> None:
        if n < self.warm or self.last is not None:
            return
        self.books += 1
        now, cpu = time.perf_counter(), time.process_time()
        if self.first is None:
            self.first = (now, n, cpu)
        if n >= self.end:
            self.last = (now, n, cpu)
            self.done.set()

    def rate(self) -> float:
        if self.first is None or self.last is None:
            raise RuntimeError("the run did not see the last counted frame")
        return len(SYMBOLS) * (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])

    def cpu_us(self) -> float:
        """CPU time of this process (every thread: arb's storage writer too) a frame, in µs."""
        assert self.first is not None and self.last is not None
        return 1e6 * (self.last[2] - self.first[2]) / (len(SYMBOLS) * (self.last[1] - self.first[1]))


async def ccxt_alone(base: str, counter: Counter) -> float:
    from arbitrage.exchanges.client import ws_depth

    client = await ccxt_client("binance", base)
    try:
        await client.load_markets()
        limit = ws_depth("binance", DEPTH)

        async def watch() -> None:
            while not counter.done.is_set():
                book = await client.watch_order_book_for_symbols(SYMBOLS, limit)
                if len(book["bids"]) == 2:
                    counter.see(int(book["bids"][0][1]))

        await asyncio.wait_for(watch(), TIMEOUT)
        return counter.rate()
    finally:
        await client.close()


async def through_arb(base: str, counter: Counter) -> tuple[float, dict[str, t.Any]]:
    from arbitrage.engine import Engine
    from arbitrage.events import BookUpdate
    from arbitrage.logs import setup_logging

    settings = engine_settings({"binance": base}, SYMBOLS)
    setup_logging(settings.log, console=True, console_level="WARNING")
    engine = Engine(settings)

    def on_book(book: t.Any) -> None:
        if len(book.bids) == 2:
            counter.see(int(book.bids[0][1]))
            if counter.done.is_set():
                engine.ctx.request_stop("benchmark frames seen")

    engine.bus.subscribe(BookUpdate, on_book, name="bench")
    summary = await engine.run(TIMEOUT)
    return counter.rate(), summary


async def raw_reader(base: str, total: int) -> float:
    """The server's ceiling: frames a second a websocket reader that decodes nothing gets."""
    import aiohttp

    streams = [s.replace("/", "").lower() + "@depth@100ms" for s in SYMBOLS]
    url = base.replace("http://", "ws://") + "/stream.binance.com/ws"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}))
        await ws.receive()  # the reply
        seen, start = 0, 0.0
        while seen < total:
            await ws.receive()
            seen += 1
            if seen == 1:
                start = time.perf_counter()
        return (seen - 1) / (time.perf_counter() - start)


def per_book(rate: float, *, warm: int, count: int, repeats: int) -> str:
    """The same frames spaced ``rate`` a second, so that each is a book for the consumer: CPU µs a
    frame of ccxt alone vs ccxt + arb, interleaved; a client that only had the CPU would keep up
    with ``alone / arb`` of ccxt's rate."""
    sent = warm + count + 100
    alone: list[float] = []
    arb: list[float] = []
    got = {"alone": 0, "arb": 0}
    for _ in range(repeats):
        with frames_server(sent, rate) as base:
            counter = Counter(warm, count)
            asyncio.run(ccxt_alone(base, counter))
            alone.append(counter.cpu_us())
            got["alone"] += counter.books
        with frames_server(sent, rate) as base:
            counter = Counter(warm, count)
            asyncio.run(through_arb(base, counter))
            arb.append(counter.cpu_us())
            got["arb"] += counter.books
    ratios = [a / b for a, b in zip(alone, arb, strict=True)]
    return (f"per book, the same frames at {rate:,.0f}/s, {count:,} rounds a run, {repeats} interleaved "
            f"pairs: CPU a frame ccxt.pro alone {', '.join(f'{v:.0f}' for v in alone)} µs, ccxt.pro + arb "
            f"{', '.join(f'{v:.0f}' for v in arb)} µs; ratios alone/arb "
            f"{', '.join(f'{r:.2f}' for r in ratios)}, "
            f"median {statistics.median(ratios):.2f}; books the consumer got: alone {got['alone']:,}, arb "
            f"{got['arb']:,} (of {repeats * count * len(SYMBOLS):,} frames)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=20_000, help="measured frames a book and run")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs (alone, arb)")
    parser.add_argument("--paced", type=float, default=1000.0,
                        help="frames a second of the per-book measurement (0: skip it)")
    parser.add_argument("--quick", action="store_true", help="5,000 frames a book, 2 pairs")
    args, _ = parser.parse_known_args(argv)
    count, repeats = (5_000, 2) if args.quick else (args.frames, args.repeats)
    warm = 1_000
    sent = warm + count + 1_000  # the last counted frame is never the server's last
    with frames_server(sent) as base:
        ceiling = asyncio.run(raw_reader(base, sent * len(SYMBOLS)))
    alone: list[float] = []
    arb: list[float] = []
    books = {"alone": 0, "arb": 0}
    for _ in range(repeats):
        with frames_server(sent) as base:
            counter = Counter(warm, count)
            alone.append(asyncio.run(ccxt_alone(base, counter)))
            books["alone"] += counter.books
        with frames_server(sent) as base:
            counter = Counter(warm, count)
            rate, _ = asyncio.run(through_arb(base, counter))
            arb.append(rate)
            books["arb"] += counter.books
    paced = per_book(args.paced, warm=200, count=(1_000 if args.quick else 3_000), repeats=repeats) \
        if args.paced else ""
    ratios = [b / a for a, b in zip(alone, arb, strict=True)]
    ratio = statistics.median(ratios)
    print(f"ingest, pre-generated Binance frames at the client's pace, {len(SYMBOLS)} books, "
          f"{count:,} frames each a run after {warm:,}, {repeats} interleaved pairs: "
          f"ccxt.pro alone {', '.join(f'{r:,.0f}' for r in alone)} msg/s; ccxt.pro + arb "
          f"{', '.join(f'{r:,.0f}' for r in arb)} msg/s; ratios {', '.join(f'{r:.2f}' for r in ratios)}, "
          f"median {ratio:.2f} (goal >= {GOAL}: {'met' if ratio >= GOAL else 'NOT met'}); "
          f"server ceiling (raw reader, no decoding) {ceiling:,.0f} msg/s; books the consumer got in the "
          f"counted rounds, all runs: alone {books['alone']:,}, arb {books['arb']:,} "
          f"(of {repeats * count * len(SYMBOLS):,} frames)")
    if paced:
        print(paced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
