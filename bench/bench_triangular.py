"""Benchmark: triangular detection per book update on a Binance-sized venue.

Run: ``.venv/bin/python bench/bench_triangular.py [--bases N] [--updates N] [--seed N]`` (``make bench``)

The venue is generated with Binance's spot quote structure (the ccxt recording in
``../shared/data/ccxt/markets/binance.json`` holds only a handful of spot markets, too few for this):
~420 base assets all quoted in USDT and, by popularity, in BTC, FDUSD, USDC, TRY, BNB, ETH, EUR,
BRL and JPY, plus the cross markets between those quotes — about 1,300 markets. Prices come from
one fair dollar price per asset, so books are consistent; each has 10 levels, a spread of a few
bps, Binance-like amount steps, a 5-dollar minimum cost and a 0.1 % taker fee. 1 % of the updates
dislocate a book by 60 bps for one update (the next update restores it), enough to open
triangular arbitrage after fees, so the depth-walking path is part of the measurement.

Per update it times, in the same run and on the same update stream:

* ``incremental``: ``TriangularDetector.update`` (only cycles through the updated market), from
  book to decision; the next row adds freeing the book it replaced, which the strategy does after
  publishing. Each book is built just before it is timed, as a feed handler would, so caches are
  as cold as in a live process;
* ``(a) all cycles``: store the book, then re-evaluate every cycle (same top-of-book test and
  sizing) -- timed on a prefix of the stream;
* ``(b) Bellman-Ford``: update the two edge weights (-log rate, fees included) of the market and
  run ``networkx.negative_edge_cycle`` over the whole rate graph -- on a shorter prefix. It only
  answers whether a negative cycle exists: no sizing, so it is a lower bound for that approach.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Iterator

from arbitrage.events import BookUpdate, Market
from arbitrage.strategies.triangular import TriangularDetector

FEE = 0.001
QUOTE_SHARE = {  # quote -> share of bases (by popularity) listed against it
    "USDT": 1.0, "BTC": 0.55, "FDUSD": 0.25, "USDC": 0.35, "TRY": 0.35, "BNB": 0.15, "ETH": 0.14,
    "EUR": 0.08, "BRL": 0.05, "JPY": 0.03,
}
QUOTE_USD = {"USDT": 1.0, "BTC": 60_000.0, "FDUSD": 1.0, "USDC": 1.0, "TRY": 0.031, "BNB": 550.0,
             "ETH": 3_000.0, "EUR": 1.08, "BRL": 0.19, "JPY": 0.0066}
CROSS = [  # markets between quote assets, as on Binance
    "BTC/USDT", "ETH/USDT", "BNB/USDT", "ETH/BTC", "BNB/BTC", "BNB/ETH", "FDUSD/USDT", "USDC/USDT",
    "BTC/FDUSD", "ETH/FDUSD", "BNB/FDUSD", "BTC/USDC", "ETH/USDC", "BNB/USDC", "FDUSD/USDC", "USDT/TRY",
    "BTC/TRY", "ETH/TRY", "BNB/TRY", "FDUSD/TRY", "USDC/TRY", "EUR/USDT", "BTC/EUR", "ETH/EUR", "BNB/EUR",
    "EUR/USDC", "USDT/BRL", "BTC/BRL", "ETH/BRL", "BNB/BRL", "USDT/JPY", "BTC/JPY", "ETH/JPY", "EUR/TRY",
]


def step_for(price_usd: float) -> float:
    """Binance-like amount step: one step is worth roughly 0.01-0.1 dollar."""
    return 10.0 ** math.floor(math.log10(0.05 / price_usd)) if price_usd < 50_000 else 1e-5


def build_venue(n_bases: int, rng: random.Random) -> tuple[list[Market], dict[str, float]]:
    usd = dict(QUOTE_USD)
    markets: list[Market] = []
    for symbol in CROSS:
        base, quote = symbol.split("/")
        markets.append(Market(symbol=symbol, base=base, quote=quote, taker_fee=FEE,
                              amount_step=step_for(usd[base]), min_cost=5.0 / usd[quote]))
    for rank in range(n_bases):
        base = f"C{rank:03d}"
        usd[base] = math.exp(rng.uniform(math.log(1e-5), math.log(2_000.0)))
        popularity = 1.0 - rank / n_bases
        for quote, share in QUOTE_SHARE.items():
            if quote == "USDT" or popularity > 1.0 - share * rng.uniform(0.8, 1.2):
                markets.append(Market(symbol=f"{base}/{quote}", base=base, quote=quote, taker_fee=FEE,
                                      amount_step=step_for(usd[base]), min_cost=5.0 / usd[quote]))
    return markets, usd


def make_book(market: Market, usd: dict[str, float], ts: int, rng: random.Random,
              shift_bps: float = 0.0) -> BookUpdate:
    mid = usd[market.base] / usd[market.quote] * (1.0 + rng.gauss(0.0, 1.0) * 1e-4 + shift_bps / 1e4)
    half = mid * rng.uniform(2.0, 6.0) / 1e4
    size = 2_000.0 / usd[market.base]  # ~2,000 dollars a level
    bids = tuple((mid - half - i * mid * 2e-4, size * rng.uniform(0.2, 2.0)) for i in range(10))
    asks = tuple((mid + half + i * mid * 2e-4, size * rng.uniform(0.2, 2.0)) for i in range(10))
    return BookUpdate(venue="binance", symbol=market.symbol, bids=bids, asks=asks, ts_event=ts, ts_init=ts)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=int, default=420)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--all-updates", type=int, default=2000, help="updates timed for (a)")
    parser.add_argument("--bf-updates", type=int, default=200, help="updates timed for (b)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    markets, usd = build_venue(args.bases, rng)
    now = 1_700_000_000_000_000_000
    initial = [make_book(m, usd, now, rng) for m in markets]
    specs: list[tuple[Market, int, float]] = []
    while len(specs) < args.updates:
        m = markets[rng.randrange(len(markets))]
        ts = now + len(specs)
        if rng.random() < 0.01:  # a short dislocation: this book jumps, its next update restores it
            specs.append((m, ts, rng.choice((-60.0, 60.0))))
            ts += 1
        specs.append((m, ts, 0.0))

    def stream(count: int) -> Iterator[BookUpdate]:
        """The same books for every method, each built just before it is timed (as a feed would)."""
        for k, (m, ts, shift) in enumerate(specs[:count]):
            yield make_book(m, usd, ts, random.Random(k), shift)

    detector = TriangularDetector("binance", markets, min_profit_bps=5.0, max_notional=1_000.0,
                                  staleness_ms=60_000.0)
    index = detector.index
    through = [sum(len(side) for side in index.through3[mid]) // 3 for mid in range(len(markets))]
    print(f"venue: {len(markets)} markets, {len({a for m in markets for a in (m.base, m.quote)})} assets, "
          f"{len(index)} directed 3-cycles; cycles per market: median {statistics.median(through):.0f}, "
          f"max {max(through)} ({markets[through.index(max(through))].symbol})")
    for book in initial:
        detector.store(book)

    clock = time.perf_counter_ns
    t_build = clock()
    TriangularDetector("binance", markets, min_profit_bps=5.0)
    build_ms = (clock() - t_build) / 1e6
    overhead = [0.0] * 2000
    for k in range(len(overhead)):
        t0 = clock()
        _noop(detector, now)
        overhead[k] = (clock() - t0) / 1e3

    inc: list[float] = []
    release: list[float] = []
    found = 0
    for book in stream(args.updates):
        t0 = clock()
        hits = detector.update(book, book.ts_event)
        t1 = clock()
        detector.retired = None  # what the plugin does after publishing: free the replaced book
        release.append((clock() - t1) / 1e3)
        inc.append((t1 - t0) / 1e3)
        found += len(hits)

    full = TriangularDetector("binance", markets, min_profit_bps=5.0, max_notional=1_000.0)
    for book in initial:
        full.store(book)
    every: list[float] = []
    for book in stream(args.all_updates):
        t0 = clock()
        full.store(book)
        full.evaluate_all(book.ts_event)
        every.append((clock() - t0) / 1e3)

    bf = bellman_ford_times(markets, initial, stream(args.bf_updates))

    total = [a + b for a, b in zip(inc, release, strict=True)]
    p99 = percentile(inc, 0.99)
    print(f"index build: {build_ms:.0f} ms; updates timed: incremental {len(inc)}, (a) {len(every)}, "
          f"(b) {len(bf)}; opportunities found by incremental: {found}; "
          f"timer overhead p50 {percentile(overhead, 0.5):.2f} us (included below)")
    print()
    print(f"{'method':34} {'p50 us':>9} {'p99 us':>9} {'mean us':>9}   "
          "incremental faster by (p50, p99, mean)")
    rows = [("incremental: cycles through M", inc, None), ("  + freeing the replaced book", total, None),
            ("(a) re-evaluate every cycle", every, len(every)), ("(b) networkx Bellman-Ford", bf, len(bf))]
    for name, values, prefix in rows:
        if not values:
            continue
        stats = summarise(values)
        line = f"{name:34} {stats[0]:9.1f} {stats[1]:9.1f} {stats[2]:9.1f}"
        if prefix is not None:  # against the incremental detector on the same updates
            line += "   " + ratios(stats, summarise(inc[:prefix]))
            line += f" (with freeing: {ratios(stats, summarise(total[:prefix]))})"
        print(line)
    print()
    print(f"goal p99 <= 100 us: {'met' if p99 <= 100 else 'NOT met'} ({p99:.1f} us); "
          f"max {max(inc):.1f} us")


def summarise(values: list[float]) -> tuple[float, float, float]:
    return percentile(values, 0.5), percentile(values, 0.99), statistics.fmean(values)


def ratios(slow: tuple[float, ...], fast: tuple[float, ...]) -> str:
    return ", ".join(f"{x / y:,.0f}x" for x, y in zip(slow, fast, strict=True))


def _noop(detector: TriangularDetector, now: int) -> None:
    return None


def bellman_ford_times(markets: list[Market], initial: list[BookUpdate],
                       stream: Iterator[BookUpdate]) -> list[float]:
    try:
        import networkx as nx
    except ImportError:
        print("networkx not installed: (b) skipped (pip install -e .[dev])")
        return []
    graph = nx.DiGraph()
    index = {m.symbol: m for m in markets}

    def set_edges(book: BookUpdate) -> None:
        m = index[book.symbol]
        if book.bids:
            graph.add_edge(m.base, m.quote, weight=-math.log(book.bids[0][0] * (1.0 - m.taker_fee)))
        if book.asks:
            graph.add_edge(m.quote, m.base, weight=-math.log(1.0 / (book.asks[0][0] * (1.0 + m.taker_fee))))

    for book in initial:
        set_edges(book)
    times = []
    for book in stream:
        t0 = time.perf_counter_ns()
        set_edges(book)
        nx.negative_edge_cycle(graph, weight="weight")
        times.append((time.perf_counter_ns() - t0) / 1e3)
    return times


if __name__ == "__main__":
    main()
