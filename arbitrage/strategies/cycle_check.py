"""The per-update test of the triangular detector: which cycles through an updated market might pay.

This is the reference implementation; ``_cycle_check.c`` is the same class compiled (used when it
was built, see ``docs/dependencies.md``), and the tests run both on the same streams.

A ``BookUpdate`` for market M stores the book, refreshes M's two rates (top of book, fee included)
and tests the cycles through M: one product of the other legs' rates per cycle against
``threshold / rate of M``. Most updates skip even that loop. Every edge keeps a *ceiling*
(``slack`` above its rate when the ceiling was set) and a *bound*: the largest product of the other
edges' ceilings over the cycles through it. While every rate stays under its ceiling,
``rate of M * bound`` below the threshold proves that no cycle through M passes, in two
multiplications. A rate that leaves the band ``[ceiling / slack², ceiling]`` gets a new ceiling and
resets the bounds of every edge that shares a cycle with it (recomputed by the next loop over their
cycles): going up, because those bounds no longer hold; going down, so that they do not stay
loose. The test never misses a cycle: it only decides when looping is needed.

Edges and the flat cycle tuples are those of ``arbitrage.strategies.cycles``.
"""

from __future__ import annotations

import typing as t

from arbitrage.events import BookUpdate

__all__ = ["CycleCheck"]

_INF = float("inf")
Through = t.Sequence[tuple[tuple[int, ...], tuple[int, ...]]]
"""Per market id: (cycles crossing it as a sell, as a buy), each a flat tuple of the other edges
and the cycle id."""


class CycleCheck:
    """Rates, ceilings and bounds of one venue's edges, and the per-update cycle test.

    :param market_ids: symbol -> market id.
    :param books: latest book per market id; this object keeps it up to date (shared with the caller).
    :param sell_mult: per market, the factor from best bid to the sell rate (``1 - fee``).
    :param buy_mult: per market, the factor from best ask to the buy rate (``1 / (1 + fee)`` / ask).
    :param through3: 3-cycles through each market (``CycleIndex.through3``).
    :param through4: 4-cycles through each market, tested only when ``four``.
    :param threshold_eps: a cycle passes when its rate product exceeds this.
    :param staleness_ns: ``update`` tests nothing for a book older than this at ``now_ns``.
    :param slack: how far a rate may move from its value at the last reset of its bounds.
    """

    def __init__(self, market_ids: dict[str, int], books: list[BookUpdate | None],
                 sell_mult: t.Sequence[float], buy_mult: t.Sequence[float], through3: Through,
                 through4: Through, four: bool, threshold_eps: float, staleness_ns: float,
                 slack: float) -> None:
        n = len(books)
        self._hot = {symbol: (mid, sell_mult[mid], buy_mult[mid], *through3[mid], *through4[mid])
                     for symbol, mid in market_ids.items()}
        """Per symbol, all an update reads, in one lookup: (market id, sell factor, buy factor,
        3-cycles as a sell, as a buy, 4-cycles as a sell, as a buy)."""
        self._books = books
        self._four = four
        self._eps = threshold_eps
        self._staleness_ns = staleness_ns
        self._slack = slack
        self._slack2 = slack * slack
        self._rate = [0.0] * (2 * n)
        self._ceiling = [0.0] * (2 * n)
        self._bound = [_INF] * (2 * n)
        self.retired: BookUpdate | None = None
        """The book the last ``update`` replaced; the caller sets it to None once it has decided,
        so freeing the old book does not delay the decision."""
        self.scans = 0
        """Updates whose bound did not rule out every cycle, so the cycles were looped over."""
        self.skipped_crossed = 0
        self.skipped_stale = 0

    def rate(self, edge: int) -> float:
        """Top-of-book rate of ``edge``, fee included; 0 when the side is empty or the book crossed."""
        return self._rate[edge]

    def rates(self) -> list[float]:
        """Every edge's rate (a copy)."""
        return list(self._rate)

    def store(self, book: BookUpdate) -> int:
        """Keep ``book`` and refresh its rates. Returns the market id, or -1 for an unknown symbol or
        a crossed book (whose rates become 0)."""
        hot = self._hot.get(book.symbol)
        if hot is None:
            return -1
        self._books[hot[0]] = book
        return self._set_rates(hot, book)

    def _set_rates(self, hot: tuple[t.Any, ...], book: BookUpdate) -> int:
        mid, sell_mult, buy_mult, sells, buys, sells4, buys4 = hot
        bids = book.bids
        asks = book.asks
        rate = self._rate
        e = mid + mid
        rs = bids[0][0] if bids else 0.0
        ask = asks[0][0] if asks else 0.0
        if rs >= ask > 0.0:
            rate[e] = rate[e + 1] = 0.0
            self.skipped_crossed += 1
            return -1
        rs *= sell_mult
        rb = buy_mult / ask if ask > 0.0 else 0.0
        rate[e] = rs
        rate[e + 1] = rb
        ceiling = self._ceiling
        high = ceiling[e]
        if rs > high or rs * self._slack2 < high:
            self._reset_bounds(sells, sells4)
            ceiling[e] = rs * self._slack
        high = ceiling[e + 1]
        if rb > high or rb * self._slack2 < high:
            self._reset_bounds(buys, buys4)
            ceiling[e + 1] = rb * self._slack
        return mid

    def update(self, book: BookUpdate, now_ns: int) -> list[int] | None:
        """Store ``book`` (the one it replaces goes to ``retired``) and return the ids of the cycles
        through its market that pass at top of book, or None when there are none."""
        hot = self._hot.get(book.symbol)
        if hot is None:
            return None
        books = self._books
        mid = hot[0]
        self.retired = books[mid]
        books[mid] = book
        if self._set_rates(hot, book) < 0:
            return None
        if now_ns - book.ts_event > self._staleness_ns:
            self.skipped_stale += 1
            return None
        e = mid + mid
        rs = self._rate[e]
        rb = self._rate[e + 1]
        bound = self._bound
        eps = self._eps
        # rs * inf is nan for an empty side (rs == 0): nan > eps is False, so that side is skipped
        sell = rs * bound[e] > eps
        buy = rb * bound[e + 1] > eps
        if not (sell or buy):
            return None
        self.scans += 1
        hits: list[int] = []
        if sell:
            bound[e] = self._scan(rs, hot[3], hot[5], hits)
        if buy:
            bound[e + 1] = self._scan(rb, hot[4], hot[6], hits)
        return hits or None

    def _scan(self, r: float, cycles3: tuple[int, ...], cycles4: tuple[int, ...], hits: list[int]) -> float:
        """Append to ``hits`` the cycles through an edge of rate ``r`` that pass at top of book;
        return that edge's new bound."""
        rate = self._rate
        ceiling = self._ceiling
        limit = self._eps / r
        top = 0.0
        # the flat tuples' lengths are multiples of 3 (4) by construction: zip without strict= (faster)
        it = iter(cycles3)
        for a, b, cid in zip(it, it, it):  # noqa: B905
            if rate[a] * rate[b] > limit:
                hits.append(cid)
            high = ceiling[a] * ceiling[b]
            if high > top:
                top = high
        if self._four:
            it = iter(cycles4)
            for a, b, c, cid in zip(it, it, it, it):  # noqa: B905
                if rate[a] * rate[b] * rate[c] > limit:
                    hits.append(cid)
                high = ceiling[a] * ceiling[b] * ceiling[c]
                if high > top:
                    top = high
        return top

    def _reset_bounds(self, cycles3: tuple[int, ...], cycles4: tuple[int, ...]) -> None:
        """A rate left its band: mark the bounds of the other edges of its cycles for recomputation."""
        bound = self._bound
        it = iter(cycles3)
        for a, b, _ in zip(it, it, it):  # noqa: B905
            bound[a] = bound[b] = _INF
        if self._four:
            it = iter(cycles4)
            for a, b, c, _ in zip(it, it, it, it):  # noqa: B905
                bound[a] = bound[b] = bound[c] = _INF
