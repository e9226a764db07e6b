"""Simulated market source: offline venues quoting order books around one shared fair price.

Tests, benchmarks and demos need market data that contains arbitrage, reproducibly and without a
network. One fair price per asset, in a numeraire (the most common quote, e.g. USDT = 1), follows a
random walk; the fair price of BASE/QUOTE is price(BASE) / price(QUOTE), so cross markets such as
ETH/BTC stay consistent and one dislocated book opens both cross-exchange and triangular
arbitrage. Each venue quotes every symbol around the fair price with its own slow, mean-reverting
noise; at Poisson times one venue's book jumps by ``dislocation_bps`` for ``dislocation_ms``.

The venues are exchanges: our fills (``Fill`` events, learnt from the bus like any plugin, not from
trading's objects) take that liquidity out of the venue's book. A fill of ``a`` at price ``p``
removes ``a`` from the levels at ``p`` or better on that side of every later snapshot of the book
(best first), and the simulated market replenishes it with a half-life of ``REFILL_HALF_LIFE_S``.
Every new snapshot therefore shows what is left after our trades instead of handing the
liquidity back, so one dislocation is not arbitraged again and again into the same thin levels.

Determinism: every random draw comes from one ``random.Random(seed)`` in simulated-time order, so
for a seed the sequence of books (venue, symbol, bids, asks) never depends on wall-clock timing;
only the timestamps do, and our fills (which draw nothing: they only reduce amounts).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import random
import typing as t
from collections.abc import Iterator

import msgspec

from arbitrage.book import check_book
from arbitrage.events import BookUpdate, FeedStatus, Fill, Level, Market, MarketsLoaded
from arbitrage.plugin import Context, Plugin
from arbitrage.settings import SimSettings

NOISE_HALF_LIFE_S = 5.0
"""How slowly a venue's deviation from fair price reverts: seconds for it to halve on average."""
MIN_HALF_SPREAD_BPS = 0.5
"""Floor on the half spread, so a ``spread_bps`` of 0 still never produces a crossed book."""
GAP_BPS = 1.0
GAP_GROWTH = 0.1
"""Level ``i`` sits ``GAP_BPS * (1 + GAP_GROWTH * i)`` beyond level ``i - 1``: gaps widen with depth."""
THIN_LEVELS = 5
THIN_FACTOR = 0.25
"""A dislocated book shows only this share of the usual amount on its top levels, so the arbitrage
it opens has a realistic size instead of the whole book's depth."""
REFILL_HALF_LIFE_S = 1.0
"""How fast the simulated market replenishes the liquidity our fills took: half of it is back after
this many simulated seconds (a taken amount below half an amount step is forgotten)."""
LATENCY_MS = (1.0, 5.0)
"""Simulated exchange-to-us latency: ``ts_event`` lies this far before ``ts_init``."""
MIN_COST = 5.0
"""Smallest order, in numeraire units (converted to each market's quote)."""
FAST_YIELD_EVERY = 64
"""Fast mode: events between two ``wait_ready`` + ``sleep(0)`` breaks."""
REALTIME_BATCH = 256
"""Realtime mode: most events published after one ``wait_ready`` when catching up."""


def asset_prices(symbols: t.Mapping[str, float]) -> dict[str, float]:
    """Price every asset in a numeraire (the most common quote = 1.0) from starting symbol prices.

    A symbol whose assets are both priced already (e.g. ETH/BTC after BTC/USDT and ETH/USDT) is
    derived, its configured price ignored, so the cross market is consistent from the start. An
    asset group not connected to the numeraire gets its own (first seen quote = 1.0).
    """
    quotes = [s.split("/")[1] for s in symbols]
    if not quotes:
        return {}
    prices = {max(dict.fromkeys(quotes), key=quotes.count): 1.0}
    pending = [(s.partition("/")[0], s.partition("/")[2], p) for s, p in symbols.items()]
    while pending:
        rest: list[tuple[str, str, float]] = []
        for base, quote, price in pending:
            if quote in prices and base not in prices:
                prices[base] = price * prices[quote]
            elif base in prices and quote not in prices:
                prices[quote] = prices[base] / price
            elif base not in prices:
                rest.append((base, quote, price))
        if len(rest) == len(pending):
            prices[rest[0][1]] = 1.0
        pending = rest
    return prices


def _decimals(value: float) -> int:
    """Decimals of the power of ten at or below ``value``, at least 0 (steps never exceed 1)."""
    return max(0, -math.floor(math.log10(value)))


class SimMarket:
    """The simulated world: asset prices, every venue's book and the update schedule.

    Pure: no bus, no clock, no wall time. ``events`` iterates books in simulated time; the source
    plugin drives ``next_due`` and ``step`` against a real clock instead.
    """

    def __init__(self, settings: SimSettings, seed: int) -> None:
        self.settings = settings
        self.dislocations = 0
        """Dislocations started so far."""
        self.time = 0.0
        """Simulated seconds of the last book generated."""
        rng = self._rng = random.Random(seed)
        self._random = rng.random
        prices = asset_prices(settings.symbols)
        index = {asset: i for i, asset in enumerate(prices)}
        self._prices = list(prices.values())
        self._walkers = range(1, len(self._prices))  # the first asset is the numeraire
        self.markets: tuple[Market, ...] = ()
        legs: list[tuple[int, int]] = []
        amount_k: list[tuple[float, ...]] = []
        thin_k: list[tuple[float, ...]] = []
        price_dec: list[float] = []
        amount_inv: list[float] = []
        for symbol in settings.symbols:
            base, quote = symbol.split("/")
            base_value, quote_value = prices[base], prices[quote]
            p_dec, a_dec = _decimals(base_value / quote_value * 1e-5), _decimals(1.0 / base_value)
            min_cost = MIN_COST / quote_value
            self.markets += (Market(symbol=symbol, base=base, quote=quote, taker_fee=0.0,
                                    amount_step=10.0**-a_dec, price_step=10.0**-p_dec,
                                    min_amount=10.0**-a_dec,
                                    min_cost=round(min_cost, _decimals(min_cost))),)
            legs.append((index[base], index[quote]))
            price_dec.append(10.0**p_dec)
            amount_inv.append(10.0**a_dec)
            k = settings.level_amount * 10_000 / base_value * 10.0**a_dec  # mean amount in steps
            amount_k.append((k,) * settings.levels * 2)
            thin = [k * (THIN_FACTOR if i % settings.levels < THIN_LEVELS else 1.0)
                    for i in range(settings.levels * 2)]
            thin_k.append(tuple(thin))
        # one book per (venue, symbol); book id = venue index * symbols + symbol index
        self._book_names: list[tuple[str, str]] = []
        self._book_market: list[int] = []
        self._bid_k: list[tuple[float, ...]] = []
        self._ask_k: list[tuple[float, ...]] = []
        for venue in settings.venues:
            offsets: list[float] = []
            off = max(venue.spread_bps / 2, MIN_HALF_SPREAD_BPS) * 1e-4
            for i in range(settings.levels):
                offsets.append(off)
                off += GAP_BPS * 1e-4 * (1 + GAP_GROWTH * i)
            for m, symbol in enumerate(settings.symbols):
                self._book_names.append((venue.name, symbol))
                self._book_market.append(m)
                self._bid_k.append(tuple(price_dec[m] / (1 + o) for o in offsets))
                self._ask_k.append(tuple(price_dec[m] * (1 + o) for o in offsets))
        n_books = len(self._book_names)
        self._legs, self._price_dec, self._amount_inv = legs, price_dec, amount_inv
        self._amount_k, self._thin_k = amount_k, thin_k
        self._interval = 1.0 / settings.update_hz
        self._phi = 0.5 ** (self._interval / NOISE_HALF_LIFE_S)
        noise_std = [v.noise_bps * 1e-4 for v in settings.venues for _ in settings.symbols]
        self._noise_kick = [s * math.sqrt(1 - self._phi**2) for s in noise_std]
        self._noise = [s * rng.gauss() for s in noise_std]
        self._shift = [0.0] * n_books
        self._until = [0.0] * n_books
        self._sigma = settings.volatility_bps * 1e-4
        self._next_tick = self._interval
        rate = settings.dislocations_per_minute / 60.0
        self._rate = rate
        self._next_dislocation = rng.expovariate(rate) if rate > 0 and n_books else math.inf
        self._schedule = [(self._interval * self._random(), b) for b in range(n_books)]
        heapq.heapify(self._schedule)
        self._book_ids = {name: b for b, name in enumerate(self._book_names)}
        self._taken: dict[int, tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]] = {}
        """Book id -> (taken from bids, taken from asks): (price, amount, simulated time) per fill."""

    def take(self, venue: str, symbol: str, side: t.Literal["bids", "asks"], price: float,
             amount: float) -> None:
        """Our fill took ``amount`` at ``price`` from ``side`` of a book: later snapshots of it show
        that much less at ``price`` or better until the market replenishes it (unknown books: no-op)."""
        b = self._book_ids.get((venue, symbol))
        if b is None or amount <= 0.0:
            return
        self._taken.setdefault(b, ([], []))[side == "asks"].append((price, amount, self.time))

    def next_due(self) -> float | None:
        """Simulated seconds at which the next book is due, or None when there are no books."""
        return self._schedule[0][0] if self._schedule else None

    def step(self, ts_init: int) -> BookUpdate:
        """Generate the next due book, stamped as received at ``ts_init`` (ns).

        Moves the world to the book's simulated time first: fair prices, dislocations, noise.
        """
        now, b = heapq.heappop(self._schedule)
        self.time = now
        rng, rand, prices = self._rng, self._random, self._prices
        while self._next_tick <= now:  # the fair prices step once per 1/update_hz
            for i in self._walkers:
                prices[i] *= 1.0 + self._sigma * rng.gauss()
            self._next_tick += self._interval
        while self._next_dislocation <= now:
            hit = int(rand() * len(self._shift))
            self._shift[hit] = (1.0 if rand() < 0.5 else -1.0) * self.settings.dislocation_bps * 1e-4
            self._until[hit] = self._next_dislocation + self.settings.dislocation_ms / 1000.0
            self.dislocations += 1
            self._next_dislocation += rng.expovariate(self._rate)
        noise = self._noise[b] = self._phi * self._noise[b] + self._noise_kick[b] * rng.gauss()
        shift = self._shift[b]
        if shift and self._until[b] <= now:
            shift = self._shift[b] = 0.0
        m = self._book_market[b]
        base, quote = self._legs[m]
        bids, asks = self._quote(b, m, prices[base] / prices[quote] * (1.0 + noise + shift), bool(shift))
        taken = self._taken.get(b)
        if taken is not None:
            bids, asks = self._deplete(b, m, taken, bids, asks, now)
        heapq.heappush(self._schedule, (now + self._interval * (0.5 + rand()), b))
        latency_ns = int((LATENCY_MS[0] + (LATENCY_MS[1] - LATENCY_MS[0]) * rand()) * 1e6)
        venue, symbol = self._book_names[b]
        return BookUpdate(venue=venue, symbol=symbol, bids=bids, asks=asks,
                          ts_event=ts_init - latency_ns, ts_init=ts_init)

    def _quote(self, b: int, m: int, mid: float, dislocated: bool,
               ) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """Levels around ``mid``: prices on the tick grid (bids down, asks up), random amounts."""
        floor, rand, p_dec, a_inv = math.floor, self._random, self._price_dec[m], self._amount_inv[m]
        ks = self._thin_k[m] if dislocated else self._amount_k[m]
        amounts = iter([(floor(k * (0.5 + rand())) + 1) / a_inv for k in ks])
        bids = tuple(zip([floor(mid * f) / p_dec for f in self._bid_k[b]], amounts, strict=False))
        asks = tuple(zip([math.ceil(mid * f) / p_dec for f in self._ask_k[b]], amounts, strict=False))
        return bids, asks

    def _deplete(self, b: int, m: int,
                 taken: tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]],
                 bids: tuple[Level, ...], asks: tuple[Level, ...], now: float,
                 ) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """The quoted sides minus what our fills took and the market has not replenished yet."""
        a_inv = self._amount_inv[m]
        sides = []
        for i, levels in enumerate((bids, asks)):
            fills = taken[i]
            # decayed from when it was last decayed (not from the fill, or every book would compound it)
            left = [(p, a * 0.5 ** ((now - t) / REFILL_HALF_LIFE_S), now) for p, a, t in fills]
            fills[:] = [f for f in left if f[1] * a_inv >= 0.5]
            if not fills:
                sides.append(levels)
                continue
            asks_side = i == 1
            amounts = [a for _, a in levels]
            for price, amount, _ in sorted(fills, key=lambda f: f[0] if asks_side else -f[0]):
                for j, (p, _) in enumerate(levels):  # best first, up to the fill's price
                    if amount <= 0.0 or (p > price if asks_side else p < price):
                        break
                    cut = min(amounts[j], amount)
                    amounts[j] -= cut
                    amount -= cut
            steps = [(p, round(a * a_inv)) for (p, _), a in zip(levels, amounts, strict=True)]
            sides.append(tuple((p, n / a_inv) for p, n in steps if n > 0))
        if not taken[0] and not taken[1]:
            del self._taken[b]
        return sides[0], sides[1]

    def events(self, n: int | None = None, start_ns: int = 0) -> Iterator[BookUpdate]:
        """Yield the next ``n`` books (forever if None), stamped in simulated time from ``start_ns``."""
        for _ in range(n) if n is not None else itertools.count():
            if not self._schedule:
                return
            yield self.step(start_ns + int(self._schedule[0][0] * 1e9))

    def markets_loaded(self, ts_init: int) -> list[MarketsLoaded]:
        """One ``MarketsLoaded`` per venue, with the venue's taker fee and fee side on every market."""
        return [MarketsLoaded(venue=v.name, staleness_ms=v.staleness_ms, ts_init=ts_init,
                              markets=tuple(msgspec.structs.replace(mk, taker_fee=v.taker_fee,
                                                                    fee_side=v.fee_side)
                                            for mk in self.markets))
                for v in self.settings.venues]


class SimSource(Plugin):
    """Market source publishing simulated venues' books from ``settings.sim`` and ``run.seed``."""

    name = "sim"
    kind = "source"
    description = "Offline simulated venues: seeded random-walk books with dislocations to arbitrage."

    def __init__(self, realtime: bool = True, max_events: int | None = None) -> None:
        """
        :param realtime: pace books at ``update_hz`` on the context clock, each checked by
            ``book.check_book`` as every source checks what it publishes (a book it refuses is
            counted in ``rejected``, never published); False publishes as fast as the bus takes them,
            timestamps advancing in simulated time, unchecked (benchmarks, tests; the generator's
            books are tested to pass the check).
        :param max_events: publish this many books, then ``request_stop("sim: max events")``.
        """
        self.realtime = realtime
        self.max_events = max_events
        self.published = 0
        self.rejected: dict[str, int] = {}
        """Books ``check_book`` refused, per reason (none, unless the generator is broken)."""
        self._task: asyncio.Task[None] | None = None

    def setup(self, ctx: Context) -> None:
        self.ctx = ctx
        self.market = SimMarket(ctx.settings.sim, ctx.settings.run.seed)
        ctx.bus.subscribe(Fill, self._on_fill, name=self.name)

    def _on_fill(self, fill: Fill) -> None:
        """One of our orders took liquidity on a simulated venue: the venue's book loses it."""
        self.market.take(fill.venue, fill.symbol, "asks" if fill.side == "buy" else "bids", fill.price,
                         fill.amount)

    async def start(self) -> None:
        """Announce every venue's markets and connection, then start publishing books."""
        now = self.ctx.clock.time_ns()
        for loaded in self.market.markets_loaded(now):
            self.ctx.bus.publish(loaded, loaded.venue)
        self._status("connected")
        run = self._run_realtime() if self.realtime else self._run_fast()
        self._task = asyncio.get_running_loop().create_task(self._guard(run), name="source:sim")

    async def stop(self) -> None:
        """Cancel the publishing task and announce every venue stopped."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._status("stopped")

    def summary(self) -> dict[str, t.Any]:
        return {"books_published": self.published, "dislocations": self.market.dislocations,
                **({"rejected": dict(self.rejected)} if self.rejected else {})}

    def _status(self, status: t.Literal["connected", "stopped", "error"], detail: str = "") -> None:
        now = self.ctx.clock.time_ns()
        for venue in self.ctx.settings.sim.venues:
            self.ctx.bus.publish(FeedStatus(venue=venue.name, status=status, detail=detail,
                                            ts_init=now), venue.name)

    async def _guard(self, run: t.Coroutine[t.Any, t.Any, None]) -> None:
        try:
            await run
        except Exception as exc:
            self.ctx.log.opt(exception=True).error("sim source failed")
            self._status("error", repr(exc))
            return
        if self.max_events is not None and self.published >= self.max_events:
            self.ctx.request_stop("sim: max events")

    async def _run_fast(self) -> None:
        bus, left = self.ctx.bus, self.max_events
        await bus.wait_ready()
        for count, book in enumerate(self.market.events(left, self.ctx.clock.time_ns()), 1):
            bus.publish(book, book.venue)
            self.published += 1
            if count % FAST_YIELD_EVERY == 0:
                await bus.wait_ready()
                await asyncio.sleep(0)

    async def _run_realtime(self) -> None:
        bus, clock, market, limit = self.ctx.bus, self.ctx.clock, self.market, self.max_events
        start_ns = clock.time_ns()
        while (due := market.next_due()) is not None and (limit is None or self.published < limit):
            wait_ns = start_ns + int(due * 1e9) - clock.time_ns()
            if wait_ns > 0:
                await clock.sleep(wait_ns / 1e9)
            await bus.wait_ready()
            now = clock.time_ns()
            for _ in range(REALTIME_BATCH):  # everything due by now, in simulated-time order
                due = market.next_due()
                if due is None or start_ns + int(due * 1e9) > now or self.published == limit:
                    break
                book = market.step(now)
                problem = check_book(book.bids, book.asks)
                if problem is not None:
                    self.rejected[problem] = self.rejected.get(problem, 0) + 1
                    continue
                bus.publish(book, book.venue)
                self.published += 1
