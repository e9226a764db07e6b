"""Triangular arbitrage: three markets on one venue whose rates multiply to more than 1 after fees.

Per venue a ``CycleIndex`` is built once from ``MarketsLoaded``. Each market's latest book is kept
in a list indexed by market id, and its top-of-book rate in each direction, fee included, in a flat
list indexed by edge id (see ``arbitrage.strategies.cycles``). A ``BookUpdate`` for market M
refreshes M's two rates, then tests only the cycles through M: one product of three floats against
``1 + min_profit_bps``. Only a cycle that passes this necessary condition is sized by walking depth.

Fees (as in ``cross_exchange``; ``OrderUpdate.fee`` is in quote too): the taker fee is charged in
the market's quote currency, so a buy of ``a`` base costs ``notional * (1 + fee)`` quote and a sell
yields ``notional * (1 - fee)`` quote. A leg's amount is always in base units.

Sizing: the cycle's output is a concave piecewise-linear function of its input (each leg is a walk
over price levels and the output of one leg is the input of the next). The walk advances all legs
together, breakpoint by breakpoint; a segment is taken while its marginal rate is above 1 and the
average rate stays at or above ``1 + min_profit_bps`` (a segment may be cut inside), and while every
leg's input fits its balance and the start amount fits ``max_notional``. Amounts are then rounded
down to each market's ``amount_step`` leg by leg, trimmed backwards so each leg produces just what
the next one consumes, priced exactly by walking the books again, and checked against minimum amount
and cost and against ``min_profit_bps``.

Profit is counted in the cycle's starting asset (``Opportunity.quote``): the first configured start
asset it contains, else a dollar stablecoin, BTC, ETH, BNB (``DEFAULT_START_ASSETS``). ``notional``
is the amount of the starting asset spent. ``max_notional`` is in dollars: it caps the start amount
directly for a dollar-like start asset, or through the start asset's market against one; a cycle
whose start asset cannot be valued is not emitted while ``max_notional`` is finite.

Balances: with ``BalanceUpdate`` known for a venue, every leg's input must fit the balance of its
input asset (legs go out concurrently from inventory). With ``trading.sequential_legs`` only the
starting asset's balance limits the size. Without any balance event there is no balance cap.
"""

from __future__ import annotations

import itertools
import math
import typing as t

from arbitrage.book import round_down, walk
from arbitrage.events import BalanceUpdate, BookUpdate, Leg, Market, MarketsLoaded, Opportunity
from arbitrage.plugin import Context, Plugin
from arbitrage.strategies.cycles import USD_ASSETS, Cycle, CycleIndex

_INF = float("inf")


class PlannedLeg(t.NamedTuple):
    """One sized leg of a found cycle."""

    symbol: str
    side: t.Literal["buy", "sell"]
    amount: float
    """Base amount, a multiple of the market's amount step."""
    price: float
    """Limit: the last level the walk used."""
    expected_price: float
    """Volume-weighted price of the walk."""
    fee_rate: float
    spent: float
    """Input asset given up, fee included (quote for a buy, base for a sell)."""
    received: float
    """Output asset received, fee deducted (base for a buy, quote for a sell)."""


class Found(t.NamedTuple):
    """A sized, profitable cycle, in the cycle's starting asset."""

    cycle: Cycle
    legs: tuple[PlannedLeg, ...]
    spent: float
    received: float
    profit: float
    profit_bps: float
    book_ts: tuple[int, ...]


_EMPTY: tuple[Found, ...] = ()


def _affordable(asks: t.Sequence[tuple[float, float]], budget: float, fee: float) -> float:
    """Base amount that ``budget`` quote buys from ``asks``, fee included (no rounding)."""
    notional = budget / (1.0 + fee)
    amount = 0.0
    for price, size in asks:
        cost = price * size
        if cost >= notional:
            return amount + notional / price
        amount += size
        notional -= cost
    return amount


def _sellable_for(bids: t.Sequence[tuple[float, float]], need: float, fee: float) -> float:
    """Base amount whose sale on ``bids`` yields ``need`` quote after the fee (inf if too thin)."""
    notional = need / (1.0 - fee) if fee < 1.0 else _INF
    amount = 0.0
    for price, size in bids:
        value = price * size
        if value >= notional:
            return amount + notional / price
        amount += size
        notional -= value
    return _INF


def _floor(amount: float, step: float) -> float:
    """``round_down`` that never returns more than ``amount``."""
    value = round_down(amount, step)
    return value if value <= amount else round_down(value - step, step)


def _round_up(amount: float, step: float) -> float:
    if step <= 0.0:
        return amount
    units = math.ceil(amount / step - 1e-9)
    value = round(units * step, 12)
    return value if value >= amount else round((units + 1) * step, 12)


class TriangularDetector:
    """Finds profitable cycles on one venue, incrementally on book updates or all at once.

    Not thread-safe; one detector per venue. Construction costs one pass over the venue's cycles;
    ``update`` costs one multiplication pair per cycle through the updated market.

    :param markets: the venue's markets (taker fee, amount step, minimums).
    :param min_profit_bps: emit only cycles whose profit after all fees reaches this.
    :param max_notional: largest start amount, in dollars (see the module docstring); None = no cap.
    :param staleness_ms: books older than this (``now - ts_event``) are not traded on.
    :param max_legs: 3, or 4 to add 4-asset cycles.
    :param start_assets: starting assets in order of preference; None = ``DEFAULT_START_ASSETS``.
    :param sequential: legs run one after another, so only the start asset's balance limits size.
    :param max_candidates: most cycles sized per update (bounds the worst case when one market
        moves against many); ``evaluate_all`` sizes every candidate.
    :param cooldown_ms: ``update`` does not report a cycle again within this time of reporting it,
        nor on the same books (same ``ts_event`` of every leg) after it; 0 = report every time.
    """

    def __init__(self, venue: str, markets: t.Sequence[Market], *, min_profit_bps: float = 0.0,
                 max_notional: float | None = None, staleness_ms: float = _INF, max_legs: int = 3,
                 start_assets: t.Sequence[str] | None = None, sequential: bool = False,
                 max_candidates: int = 16, cooldown_ms: float = 0.0) -> None:
        self.venue = venue
        self.index = index = CycleIndex(markets, max_legs=max_legs, start_assets=start_assets)
        self.markets = index.markets
        self.min_profit_bps = min_profit_bps
        self.threshold = 1.0 + min_profit_bps / 1e4
        self._threshold_eps = self.threshold * (1.0 - 1e-12)
        self.max_candidates = max_candidates
        self.cooldown_ns = cooldown_ms * 1e6
        self._last_found: dict[int, tuple[int, tuple[int, ...]]] = {}
        """Cycle id -> (when it was last reported, its books' ts_event then)."""
        self.max_notional = _INF if max_notional is None else max_notional
        self.staleness_ns = staleness_ms * 1e6
        self.sequential = sequential
        n = len(self.markets)
        self._mid = index.market_ids
        self._sell_mult = [1.0 - m.taker_fee for m in self.markets]
        self._buy_mult = [1.0 / (1.0 + m.taker_fee) for m in self.markets]
        self._through3 = index.through3
        self._hot = [(self._sell_mult[mid], self._buy_mult[mid], *index.through3[mid]) for mid in range(n)]
        """Per market id, what an update reads: (sell rate factor, buy rate factor, 3-cycles crossing
        it as a sell, as a buy)."""
        self._through4 = index.through4 if max_legs == 4 else None
        self._all3 = tuple((*c.edges, cid) for cid, c in enumerate(index.cycles) if len(c.edges) == 3)
        self._all4 = tuple((*c.edges, cid) for cid, c in enumerate(index.cycles) if len(c.edges) == 4)
        self.books: list[BookUpdate | None] = [None] * n
        """Latest book per market id."""
        self.retired: BookUpdate | None = None
        """The book the last ``update`` replaced (see ``update``)."""
        self.rate: list[float] = [0.0] * (2 * n)
        """Top-of-book rate per edge id, fee included; 0 when the side is empty or the book crossed."""
        self.balances: dict[str, float] | None = None
        self._usd_routes: dict[str, list[tuple[int, bool]]] = {}
        for mid, m in enumerate(self.markets):
            if m.quote in USD_ASSETS:
                self._usd_routes.setdefault(m.base, []).append((mid, True))
            if m.base in USD_ASSETS:
                self._usd_routes.setdefault(m.quote, []).append((mid, False))
        self.passed = 0
        """Cycles that passed the top-of-book test and were sized."""
        self.skipped_stale = 0
        self.skipped_crossed = 0
        self.skipped_unvalued = 0
        self.skipped_cooldown = 0

    # -- books -----------------------------------------------------------------------------------

    def store(self, book: BookUpdate) -> int:
        """Keep ``book`` as its market's latest and refresh its rates. Returns the market id, or -1
        for an unknown symbol or a crossed book (whose rates become 0)."""
        mid = self._mid.get(book.symbol, -1)
        if mid < 0:
            return -1
        self.books[mid] = book
        bids = book.bids
        asks = book.asks
        e = mid + mid
        rate = self.rate
        bid = bids[0][0] if bids else 0.0
        ask = asks[0][0] if asks else 0.0
        if bid >= ask > 0.0:
            rate[e] = rate[e + 1] = 0.0
            self.skipped_crossed += 1
            return -1
        rate[e] = bid * self._sell_mult[mid]
        rate[e + 1] = self._buy_mult[mid] / ask if ask > 0.0 else 0.0
        return mid

    def update(self, book: BookUpdate, now_ns: int) -> t.Sequence[Found]:
        """Store ``book`` and size the cycles through its market that pay at top of book.

        At most ``max_candidates`` cycles are sized per update, best top-of-book product first.
        The book it replaces is kept in ``retired`` until the caller sets that to None (or the next
        update), so freeing it does not delay the decision.

        :returns: the profitable cycles found (usually none), best first.
        """
        # the hot path: store() inlined, locals only, no allocation unless a cycle passes
        mid = self._mid.get(book.symbol, -1)
        if mid < 0:
            return _EMPTY
        books = self.books
        self.retired = books[mid]
        books[mid] = book
        sell_mult, buy_mult, sells, buys = self._hot[mid]
        bids = book.bids
        asks = book.asks
        rate = self.rate
        e = mid + mid
        rs = bids[0][0] if bids else 0.0
        ask = asks[0][0] if asks else 0.0
        if rs >= ask > 0.0:
            rate[e] = rate[e + 1] = 0.0
            self.skipped_crossed += 1
            return _EMPTY
        rs *= sell_mult
        rb = buy_mult / ask if ask > 0.0 else 0.0
        rate[e] = rs
        rate[e + 1] = rb
        if now_ns - book.ts_event > self.staleness_ns:
            self.skipped_stale += 1
            return _EMPTY
        hits: list[int] | None = None
        if rs > 0.0:
            limit = self._threshold_eps / rs
            it = iter(sells)
            for a, b, cid in zip(it, it, it, strict=True):
                if rate[a] * rate[b] > limit:
                    if hits is None:
                        hits = []
                    hits.append(cid)
        if rb > 0.0:
            limit = self._threshold_eps / rb
            it = iter(buys)
            for a, b, cid in zip(it, it, it, strict=True):
                if rate[a] * rate[b] > limit:
                    if hits is None:
                        hits = []
                    hits.append(cid)
        if self._through4 is not None:
            hits = self._check4(mid, rs, rb, hits)
        if hits is None:
            return _EMPTY
        return self._size_all(hits, now_ns, self.max_candidates)

    def _check4(self, mid: int, rs: float, rb: float, hits: list[int] | None) -> list[int] | None:
        rate = self.rate
        assert self._through4 is not None
        sells, buys = self._through4[mid]
        for r, items in ((rs, sells), (rb, buys)):
            if r <= 0.0:
                continue
            limit = self._threshold_eps / r
            it = iter(items)
            for a, b, c, cid in zip(it, it, it, it, strict=True):
                if rate[a] * rate[b] * rate[c] > limit:
                    if hits is None:
                        hits = []
                    hits.append(cid)
        return hits

    def _product(self, cid: int) -> float:
        """Top-of-book rate product of cycle ``cid``, fees included."""
        rate = self.rate
        product = 1.0
        for e in self.index.cycles[cid].edges:
            product *= rate[e]
        return product

    def evaluate_all(self, now_ns: int | None = None) -> list[Found]:
        """Size every cycle that pays at top of book, from the stored books (a full scan).

        :param now_ns: apply the staleness limit at this time; None = ignore staleness.
        """
        rate = self.rate
        limit = self._threshold_eps
        hits = [cid for a, b, c, cid in self._all3 if rate[a] * rate[b] * rate[c] > limit]
        if self._through4 is not None:
            hits += [cid for a, b, c, d, cid in self._all4 if rate[a] * rate[b] * rate[c] * rate[d] > limit]
        return self._size_all(hits, now_ns, None)

    def set_balances(self, balances: t.Mapping[str, float] | None) -> None:
        """Free balances of the venue (asset -> amount); None removes the balance cap."""
        self.balances = None if balances is None else dict(balances)

    # -- sizing ----------------------------------------------------------------------------------

    def _size_all(self, hits: list[int], now_ns: int | None, limit: int | None) -> list[Found]:
        cooling = now_ns is not None and self.cooldown_ns > 0
        now = now_ns or 0
        if cooling and self._last_found:
            hits = [cid for cid in hits if not self._cooling(cid, now)]
        if limit is not None and len(hits) > limit:
            hits.sort(key=self._product, reverse=True)
            del hits[limit:]
        found = []
        for cid in hits:
            self.passed += 1
            result = self.size(cid, now_ns)
            if result is not None:
                found.append(result)
                if cooling:
                    self._last_found[cid] = (now, result.book_ts)
        found.sort(key=lambda f: -f.profit_bps)
        return found

    def _cooling(self, cid: int, now_ns: int) -> bool:
        """True if cycle ``cid`` was reported less than ``cooldown_ns`` ago, or on the same books."""
        last = self._last_found.get(cid)
        if last is None:
            return False
        books = self.books
        same = last[1] == tuple(-1 if (b := books[e >> 1]) is None else b.ts_event
                                for e in self.index.cycles[cid].edges)
        if same or now_ns - last[0] < self.cooldown_ns:
            self.skipped_cooldown += 1
            return True
        return False

    def _usd_value(self, asset: str) -> float:
        """Dollars per unit of ``asset`` from a market against a dollar asset (0 if unknown)."""
        if asset in USD_ASSETS:
            return 1.0
        for mid, is_base in self._usd_routes.get(asset, ()):
            book = self.books[mid]
            if book is None or not book.bids or not book.asks:
                continue
            return book.bids[0][0] if is_base else 1.0 / book.asks[0][0]
        return 0.0

    def size(self, cid: int, now_ns: int | None = None) -> Found | None:
        """Size cycle ``cid`` on the stored books; None if it does not pay ``min_profit_bps``."""
        cycle = self.index.cycles[cid]
        books = []
        for e in cycle.edges:
            book = self.books[e >> 1]
            if book is None:
                return None
            if now_ns is not None and now_ns - book.ts_event > self.staleness_ns:
                self.skipped_stale += 1
                return None
            books.append(book)
        x_cap = _INF
        if self.max_notional < _INF:
            value = self._usd_value(cycle.start)
            if value <= 0.0:
                self.skipped_unvalued += 1
                return None
            x_cap = self.max_notional / value
        caps = [_INF] * len(cycle.edges)
        if self.balances is not None:
            for i, asset in enumerate(cycle.assets):
                if i == 0 or not self.sequential:
                    caps[i] = self.balances.get(asset, 0.0)
        x, x_safe = self._max_input(cycle, books, caps, x_cap)
        for start in (x, x_safe):
            start = min(start, x_cap, caps[0])  # the walk's sums may pass a cap by a rounding error
            if start <= 0.0:
                continue
            result = self._plan(cycle, books, start, caps)
            if result is not None:
                return result
        return None

    def _max_input(self, cycle: Cycle, books: list[BookUpdate], caps: list[float],
                   x_cap: float) -> tuple[float, float]:
        """Most profitable start amount before rounding, and a smaller fallback (0 if none).

        The fallback is where the last full segment ended when the average-rate bound cut the final
        one, so rounding has margin to lose.
        """
        n = len(cycle.edges)
        levels: list[t.Sequence[tuple[float, float]]] = []
        buy = [False] * n
        fee = [0.0] * n
        for i, e in enumerate(cycle.edges):
            buy[i] = bool(e & 1)
            fee[i] = self.markets[e >> 1].taker_fee
            levels.append(books[i].asks if buy[i] else books[i].bids)
        pos = [0] * n
        rem = [0.0] * n
        rate = [0.0] * n

        def load(i: int) -> bool:
            lv = levels[i]
            if pos[i] >= len(lv):
                return False
            price, size = lv[pos[i]]
            if price <= 0.0 or size <= 0.0:
                return False
            if buy[i]:
                rate[i] = 1.0 / (price * (1.0 + fee[i]))
                rem[i] = price * size * (1.0 + fee[i])
            else:
                rate[i] = price * (1.0 - fee[i])
                rem[i] = size
            return True

        if not all(load(i) for i in range(n)):
            return 0.0, 0.0
        thr = self.threshold
        caps = list(caps)
        x = y = x_safe = 0.0
        mults = [0.0] * n
        while True:
            mult = 1.0
            step = x_cap - x
            bound = -1  # which leg limits the segment: -1 = the notional cap
            by_cap = True
            for i in range(n):
                mults[i] = mult
                level = rem[i] / mult
                if level < step:
                    step, bound, by_cap = level, i, False
                cap = caps[i] / mult
                if cap < step:
                    step, bound, by_cap = cap, i, True
                mult *= rate[i]
            if mult <= 1.0:
                break
            cut = False
            if mult < thr:
                room = (y - thr * x) / (thr - mult) * (1.0 - 1e-9)
                if room < step:
                    step, cut = max(room, 0.0), True
            if step <= 0.0:
                break
            if cut:
                x_safe = x
            x += step
            y += mult * step
            if cut or by_cap:
                break
            more = True
            for i in range(n):
                used = step * mults[i]
                caps[i] -= used
                left = rem[i] - used
                if i == bound or left <= rem[i] * 1e-12:
                    pos[i] += 1
                    more = load(i) and more
                else:
                    rem[i] = left
            if not more:
                break
        return x, (x_safe if x_safe < x else 0.0)

    def _plan(self, cycle: Cycle, books: list[BookUpdate], start: float, caps: list[float]) -> Found | None:
        """Round, trim and price the legs for ``start`` units of the start asset; None if the
        result misses a minimum or ``min_profit_bps``."""
        n = len(cycle.edges)
        markets = [self.markets[e >> 1] for e in cycle.edges]
        buys = [bool(e & 1) for e in cycle.edges]
        amounts = [0.0] * n
        budget = start
        for i in range(n):
            m = markets[i]
            budget = min(budget, caps[i])
            if buys[i]:
                amount = _floor(_affordable(books[i].asks, budget, m.taker_fee), m.amount_step)
                amount = self._fit_buy(books[i].asks, amount, budget, m)
                received = amount
            else:
                amount = _floor(min(budget, sum(size for _, size in books[i].bids)), m.amount_step)
                _, notional, _ = walk(books[i].bids, amount, side="sell")
                received = notional * (1.0 - m.taker_fee)
            if amount <= 0.0:
                return None
            amounts[i] = amount
            budget = received
        if any(m.amount_step > 0.0 for m in markets):
            self._trim(books, markets, buys, amounts)
        legs = []
        for i in range(n):
            m, amount = markets[i], amounts[i]
            side: t.Literal["buy", "sell"] = "buy" if buys[i] else "sell"
            levels = books[i].asks if buys[i] else books[i].bids
            filled, notional, last = walk(levels, amount, side=side)
            if filled < amount * (1.0 - 1e-12) or amount < m.min_amount or notional < m.min_cost:
                return None
            spent = notional * (1.0 + m.taker_fee) if buys[i] else amount
            received = amount if buys[i] else notional * (1.0 - m.taker_fee)
            if i and spent > legs[-1].received:
                return None
            legs.append(PlannedLeg(m.symbol, side, amount, last, notional / amount, m.taker_fee, spent,
                                   received))
        spent, received = legs[0].spent, legs[-1].received
        profit = received - spent
        profit_bps = profit / spent * 1e4
        if profit <= 0.0 or profit_bps < self.min_profit_bps:
            return None
        return Found(cycle, tuple(legs), spent, received, profit, profit_bps,
                     tuple(b.ts_event for b in books))

    @staticmethod
    def _fit_buy(asks: t.Sequence[tuple[float, float]], amount: float, budget: float, m: Market) -> float:
        """Shrink a buy until its cost with fee fits ``budget`` (guards float rounding)."""
        step = m.amount_step
        for _ in range(8):
            if amount <= 0.0:
                break
            _, notional, _ = walk(asks, amount, side="buy")
            cost = notional * (1.0 + m.taker_fee)
            if cost <= budget:
                return amount
            amount = _floor(amount - step, step) if step > 0.0 else math.nextafter(
                amount * min(budget / cost, 1.0), 0.0)
        return 0.0

    @staticmethod
    def _trim(books: list[BookUpdate], markets: list[Market], buys: list[bool], amounts: list[float]) -> None:
        """Shrink legs backwards so each produces just what the next consumes (rounding dust)."""
        for i in range(len(amounts) - 2, -1, -1):
            m, nxt = markets[i], markets[i + 1]
            if buys[i + 1]:
                _, notional, _ = walk(books[i + 1].asks, amounts[i + 1], side="buy")
                need = notional * (1.0 + nxt.taker_fee)
            else:
                need = amounts[i + 1]
            if buys[i]:
                trimmed = _round_up(need, m.amount_step)
                ok = trimmed >= need
            else:
                trimmed = _round_up(_sellable_for(books[i].bids, need, m.taker_fee), m.amount_step)
                _, notional, _ = walk(books[i].bids, trimmed, side="sell")
                ok = notional * (1.0 - m.taker_fee) >= need
            if ok and trimmed < amounts[i]:
                amounts[i] = trimmed


class TriangularStrategy(Plugin):
    """Three markets, one venue: trade around a cycle of assets when the rates pay all fees."""

    name = "triangular"
    kind = "strategy"
    description = "Cycles of three markets on one venue (e.g. USDT->BTC->ETH->USDT) that pay all taker fees."

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        cfg = ctx.settings.strategy
        self.min_profit_bps = cfg.min_profit_bps
        self.max_notional = min(cfg.max_notional, ctx.settings.trading.max_notional)
        self.cooldown_ms = cfg.cooldown_ms
        self.max_legs = int(getattr(cfg, "max_legs", 3))
        start = getattr(cfg, "start_assets", None)
        self.start_assets: tuple[str, ...] | None = tuple(start) if start else None
        self.sequential = bool(getattr(ctx.settings.trading, "sequential_legs", False))
        self.detectors: dict[str, TriangularDetector] = {}
        self._balances: dict[str, dict[str, float]] = {}
        self._ids = itertools.count(1)
        self.updates = 0
        self.emitted = 0
        ctx.bus.subscribe(MarketsLoaded, self.on_markets, name=self.name)
        ctx.bus.subscribe(BalanceUpdate, self.on_balances, name=self.name)
        ctx.bus.subscribe(BookUpdate, self.on_book, name=self.name)

    def on_markets(self, event: MarketsLoaded) -> None:
        """Build the venue's cycle index (replacing any earlier one; its books are forgotten)."""
        detector = TriangularDetector(
            event.venue, event.markets, min_profit_bps=self.min_profit_bps, max_notional=self.max_notional,
            staleness_ms=event.staleness_ms, max_legs=self.max_legs, start_assets=self.start_assets,
            sequential=self.sequential, cooldown_ms=self.cooldown_ms)
        detector.set_balances(self._balances.get(event.venue))
        self.detectors[event.venue] = detector
        self.ctx.log.info("triangular: {} cycles over {} markets on {}", len(detector.index),
                          len(event.markets), event.venue)

    def on_balances(self, event: BalanceUpdate) -> None:
        self._balances[event.venue] = event.balances
        detector = self.detectors.get(event.venue)
        if detector is not None:
            detector.set_balances(event.balances)

    def on_book(self, book: BookUpdate) -> None:
        """Evaluate the cycles through the updated market; publish an ``Opportunity`` per paying one."""
        detector = self.detectors.get(book.venue)
        if detector is None:
            return
        self.updates += 1
        now = self.ctx.clock.time_ns()
        found = detector.update(book, now)
        if found:
            for item in found:
                self._emit(detector, item, now)
        detector.retired = None  # free the replaced book only after the decision

    def _emit(self, detector: TriangularDetector, found: Found, now: int) -> None:
        self.emitted += 1
        venue = detector.venue
        self.ctx.bus.publish(Opportunity(
            id=f"{self.ctx.run_id}-tri{next(self._ids)}",
            strategy=self.name,
            legs=tuple(Leg(venue=venue, symbol=leg.symbol, side=leg.side, amount=leg.amount, price=leg.price,
                           expected_price=leg.expected_price, fee_rate=leg.fee_rate) for leg in found.legs),
            profit=found.profit,
            profit_bps=found.profit_bps,
            quote=found.cycle.start,
            notional=found.spent,
            book_ts=found.book_ts,
            ts_event=max(found.book_ts),
            ts_init=now,
        ))

    def summary(self) -> dict[str, t.Any]:
        ds = self.detectors.values()
        return {
            "venues": len(self.detectors),
            "cycles": sum(len(d.index) for d in ds),
            "updates": self.updates,
            "cycles_sized": sum(d.passed for d in ds),
            "opportunities": self.emitted,
            "stale_books_skipped": sum(d.skipped_stale for d in ds),
            "crossed_books_skipped": sum(d.skipped_crossed for d in ds),
            "cooldown_skipped": sum(d.skipped_cooldown for d in ds),
        }
