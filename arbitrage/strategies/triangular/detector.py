"""The triangular detector: which cycles of one venue pay after fees, updated book by book.

Per venue a ``CycleIndex`` is built once from its market list. A ``BookUpdate`` for market M goes
to a ``CycleCheck`` (``check``, compiled when built), which keeps every market's top-of-book rates
and returns the cycles through M that pass at top of book, usually ruling them all out in two
multiplications. Only a cycle that passes this necessary condition is sized by walking depth
(``sizing``), on the books of the engine's ``BookStore``: the detector keeps no books of its own,
so the store must already hold a book when it is handed to ``update`` (the engine updates it
before any plugin).

Profit is counted in the cycle's starting asset (``Found.cycle.start``): the first configured start
asset it contains, else a dollar stablecoin, BTC, ETH, BNB (``DEFAULT_START_ASSETS``). The size is
the amount of the starting asset spent. ``max_notional`` is an amount of ``currency`` (the risk
currency): the start asset is valued from the store's books with ``arbitrage.valuation.Valuer``,
the rule the risk gate applies, so a cycle starting in BTC is capped at ``max_notional`` USDT's
worth of BTC; a cycle whose start asset cannot be valued is not reported while ``max_notional`` is
finite.

Limits: with ``limit_slippage_bps`` each leg's limit sits that far past the last level walked
(``sizing.loosen``), so a book that moves a little during the orders' latency still fills every
leg; a cycle is reported only if, with every leg filling wholly at those limits, it still clears
``min_profit_bps`` after fees (the tolerance comes out of the profit margin, never out of the floor).

Balances: once ``set_balances`` gives the venue's balances, every leg must fit the balance of its
input asset as the venue reserves it -- a buy the whole amount at its limit, a sell its amount,
each plus the fee where it is taken from that asset (``sizing.reserved``; legs go out concurrently
from inventory). With
``sequential=True`` only the first leg, in the starting asset, is checked. Without balances there
is no balance cap.
"""

from __future__ import annotations

import math
import typing as t
from functools import partial

from arbitrage.book import SoundBooks
from arbitrage.events import BookUpdate, Market
from arbitrage.plugin import Books
from arbitrage.strategies.triangular.check import CycleCheck
from arbitrage.strategies.triangular.cycles import CycleIndex
from arbitrage.strategies.triangular.sizing import (
    Found,
    LegRules,
    edge_rules,
    loosen,
    max_input,
    plan,
    reserved,
)
from arbitrage.valuation import Valuer

__all__ = ["TriangularDetector"]

_INF = float("inf")
_EMPTY: tuple[Found, ...] = ()
SLACK = 1.001
"""How far (10 bps) a rate may move from its value at the last reset of the bounds through it before
they are reset again (see ``check``): wide enough that ordinary ticks do not, narrow enough
that the bounds stay below the threshold on a venue where cycles lose ~30-40 bps to fees and
spreads."""


class TriangularDetector:
    """Finds profitable cycles on one venue, incrementally on book updates or all at once.

    Not thread-safe; one detector per venue. Construction costs one pass over the venue's cycles;
    ``update`` costs a few multiplications, plus one multiplication pair per cycle through the updated
    market when its bound does not rule them all out (see ``check``).

    :param markets: the venue's markets (taker fee, amount step, minimums).
    :param books: the run's book store, read for sizing (the engine's ``Context.books``).
    :param min_profit_bps: emit only cycles whose profit after all fees reaches this.
    :param max_notional: largest start amount, valued in ``currency`` (module docstring); None = no cap.
    :param currency: the risk currency ``max_notional`` is an amount of.
    :param limit_slippage_bps: how far past the last level walked each leg's limit reaches.
    :param staleness_ms: books older than this (``now - ts_event``) are not traded on.
    :param max_legs: 3, or 4 to add 4-asset cycles.
    :param start_assets: starting assets in order of preference; None = ``DEFAULT_START_ASSETS``.
    :param sequential: legs run one after another, so only the start asset's balance limits size.
    :param max_candidates: most cycles sized per update (bounds the worst case when one market
        moves against many); ``evaluate_all`` sizes every candidate.
    :param cooldown_ms: ``update`` does not report a cycle again within this time of reporting it,
        nor on the same books (same ``ts_event`` of every leg) after it; 0 = report every time.
    """

    def __init__(self, venue: str, markets: t.Sequence[Market], books: Books, *, min_profit_bps: float = 0.0,
                 max_notional: float | None = None, staleness_ms: float = _INF, max_legs: int = 3,
                 start_assets: t.Sequence[str] | None = None, sequential: bool = False,
                 max_candidates: int = 16, cooldown_ms: float = 0.0, currency: str = "USDT",
                 limit_slippage_bps: float = 0.0) -> None:
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
        self.valuer = Valuer(books.by_symbol, currency)
        self.limit_slippage_bps = limit_slippage_bps
        self.staleness_ns = staleness_ms * 1e6
        self.sequential = sequential
        self._mid = index.market_ids
        # equal rate factors share one float object (one fee for the whole venue is common), so
        # every update reads the same few, already in the CPU cache; each fee is where its market
        # takes it: quote per base sold, base received per quote spent (``Market.fee_factors``)
        shared: dict[float, float] = {}
        self._sell_mult = [shared.setdefault(f, f) for f in (q / b for q, b in
                                                            (m.fee_factors("sell") for m in self.markets))]
        self._buy_mult = [shared.setdefault(f, f) for f in (b / q for q, b in
                                                           (m.fee_factors("buy") for m in self.markets))]
        self._four = max_legs == 4
        self._all3 = tuple((*c.edges, cid) for cid, c in enumerate(index.cycles) if len(c.edges) == 3)
        self._all4 = tuple((*c.edges, cid) for cid, c in enumerate(index.cycles) if len(c.edges) == 4)
        self._edges_of = [c.edges for c in index.cycles]
        self._rules = edge_rules(self.markets)
        """``LegRules`` per edge id."""
        self._legs: dict[int, tuple[LegRules, ...]] = {}
        """Cycle id -> its legs' rules, filled the first time the cycle is sized."""
        self._books = books
        self._symbols = [m.symbol for m in self.markets]
        self.check = CycleCheck(self._mid, self._sell_mult, self._buy_mult, index.through3,
                                index.through4, self._four, self._threshold_eps, self.staleness_ns, SLACK)
        """Rates, bounds and the per-update test of the cycles through a market."""
        self.balances: dict[str, float] | None = None
        self.passed = 0
        """Cycles that passed the top-of-book test and were sized."""
        self._stale_sizing = 0
        self.skipped_unvalued = 0
        self.skipped_malformed = 0
        """Cycles not sized because a book to size on fails ``check_book`` (a source that did not check)."""
        self._sound = SoundBooks()
        self.skipped_cooldown = 0

    # -- books -----------------------------------------------------------------------------------

    def book(self, mid: int) -> BookUpdate | None:
        """The store's latest book of market ``mid`` on this venue, or None."""
        return self._books.get(self.venue, self._symbols[mid])

    @property
    def scans(self) -> int:
        """Updates whose bound did not rule out every cycle, so their cycles were looped over."""
        return self.check.scans  # type: ignore[no-any-return]

    @property
    def skipped_crossed(self) -> int:
        """Crossed books (their rates count as 0)."""
        return self.check.skipped_crossed  # type: ignore[no-any-return]

    @property
    def skipped_stale(self) -> int:
        """Stale updates, and cycles not sized because one of their books was stale."""
        return self.check.skipped_stale + self._stale_sizing  # type: ignore[no-any-return]

    def refresh(self, book: BookUpdate) -> int:
        """Refresh the rates of ``book``'s market (``book`` is the store's latest). Returns the market
        id, or -1 for an unknown symbol or a crossed book (whose rates become 0)."""
        return self.check.refresh(book)

    def update(self, book: BookUpdate, now_ns: int) -> t.Sequence[Found]:
        """Refresh ``book``'s rates and size the cycles through its market that pay at top of book.

        ``book`` must be the store's latest of its market (the engine stores it before any plugin
        sees it). At most ``max_candidates`` cycles are sized per update, best top-of-book product
        first.

        :returns: the profitable cycles found (usually none), best first.
        """
        hits = self.check.update(book, now_ns)
        if hits is None:
            return _EMPTY
        return self._size_all(hits, now_ns, self.max_candidates)

    def evaluate_all(self, now_ns: int | None = None) -> list[Found]:
        """Size every cycle that pays at top of book, from the current rates (a full scan).

        :param now_ns: apply the staleness limit at this time; None = ignore staleness.
        """
        rate = self.check.rates()
        limit = self._threshold_eps
        hits = [cid for a, b, c, cid in self._all3 if rate[a] * rate[b] * rate[c] > limit]
        if self._four:
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
            # best top-of-book product first (a stable sort: ties keep index order); the products
            # are math.prod over the cycle's rates in leg order, computed without a Python call each
            products = list(map(math.prod, map(partial(map, self.check.rate),
                                               map(self._edges_of.__getitem__, hits))))
            best = sorted(range(len(hits)), key=products.__getitem__, reverse=True)
            hits = [hits[i] for i in best[:limit]]
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
        same = last[1] == tuple(-1 if (b := self.book(e >> 1)) is None else b.ts_event
                                for e in self._edges_of[cid])
        if same or now_ns - last[0] < self.cooldown_ns:
            self.skipped_cooldown += 1
            return True
        return False

    def size(self, cid: int, now_ns: int | None = None) -> Found | None:
        """Size cycle ``cid`` on the store's books; None if it does not pay ``min_profit_bps``.

        :param now_ns: skip the cycle (and count it in ``skipped_stale``) if one of its books is
            older than the staleness limit at this time; None = ignore staleness.
        """
        cycle = self.index.cycles[cid]
        levels = []
        stamps = []
        for e in cycle.edges:
            book = self.book(e >> 1)
            if book is None:
                return None
            ts = book.ts_event
            if now_ns is not None and now_ns - ts > self.staleness_ns:
                self._stale_sizing += 1
                return None
            if not self._sound.sound(book):
                self.skipped_malformed += 1
                return None
            # net of what our orders took or have in flight (the book's own side if untouched)
            levels.append(self._books.levels(self.venue, book.symbol, "asks" if e & 1 else "bids"))
            stamps.append(ts)
        x_cap = _INF
        if self.max_notional < _INF:
            value = self.valuer.price(cycle.start)
            if value is None or value <= 0.0:
                self.skipped_unvalued += 1
                return None
            x_cap = self.max_notional / value
        legs = self._legs.get(cid)
        if legs is None:
            legs = self._legs[cid] = tuple([self._rules[e] for e in cycle.edges])
        caps = [_INF] * len(legs)
        if self.balances is not None:
            for i, asset in enumerate(cycle.assets):
                if i == 0 or not self.sequential:
                    caps[i] = self.balances.get(asset, 0.0)
        book_ts = tuple(stamps)
        x, x_safe = max_input(legs, levels, caps, x_cap, self.threshold)
        for start in (x, x_safe):
            start = min(start, x_cap, caps[0])  # the walk's sums may pass a cap by a rounding error
            for _ in range(4):  # shrink until every leg's reservation at its limit fits its balance
                if start <= 0.0:
                    break
                result = plan(cycle, legs, levels, book_ts, start, caps, self.min_profit_bps)
                if result is not None and self.limit_slippage_bps > 0.0:
                    result = loosen(result, self.limit_slippage_bps,
                                    [self.markets[e >> 1].price_step for e in cycle.edges], self.threshold)
                if result is None:
                    break
                over = max(reserved(leg) / caps[i] if caps[i] > 0.0 else _INF
                           for i, leg in enumerate(result.legs))
                if over <= 1.0:
                    return result
                start *= (1.0 - 1e-9) / over
        return None

