"""The per-book test of the cross-exchange strategy: which other venues' books pay against this one
at top of book, after both taker fees.

Compiled by Cython where a compiler exists (pure-Python mode, listed in ``arbitrage.compiled``),
run as it is where not; the same file either way. It runs for every book of every venue and is
most of the strategy's cost per book.

The books are the engine's ``BookStore``'s (read, never written here): when the strategy hands a
book to ``update``, the store already holds it as its venue's latest. If the book has both sides,
is fresh and not crossed, every other venue's book of the symbol is compared with it in both
directions, per unit of base that moves between the venues: buying here pays when what the other's
bid gets for a unit after its fee beats what this ask costs a unit that arrives after this fee,
selling here when this bid beats the other's ask. Each fee is where its market takes it
(``Market.fee_factors``): a buy whose fee is taken from the base costs ``ask / (1 - fee)`` a unit
received, else ``ask * (1 + fee)``; a sell whose fee is taken in base gets ``bid / (1 + fee)`` a
unit given, else ``bid * (1 - fee)``. An other book that pays is checked for freshness
and crossing only then (the common case costs two multiplications). Sides may be any sequence of
``(price, amount)`` levels, best first.
"""

from __future__ import annotations

import collections.abc as c

import cython

from arbitrage.events import BookUpdate, Market

__all__ = ["CrossCheck"]

Pair = tuple[BookUpdate, BookUpdate]
"""(the book to buy on, the book to sell on)."""

_INT64 = (-(2**63), 2**63 - 1)


@cython.final
@cython.cclass
class CrossCheck:
    """Each market's fee multipliers and each venue's staleness, and the per-book test against the others.

    :param books: symbol -> venue -> latest book: the store's ``BookStore.by_symbol``.
    """

    _books: dict[str, dict[str, BookUpdate]]
    _mults: dict[str, dict[str, tuple[float, float]]]
    """symbol -> venue -> (cost of a unit bought, proceeds of a unit sold) per unit of price."""
    _staleness: dict[str, int]
    evaluated = cython.declare(cython.Py_ssize_t, visibility="readonly")
    """Other books that paid at top of book and were fresh and not crossed."""
    skipped_stale = cython.declare(cython.Py_ssize_t, visibility="readonly")
    skipped_crossed = cython.declare(cython.Py_ssize_t, visibility="readonly")

    def __init__(self, books: c.Mapping[str, c.Mapping[str, BookUpdate]]) -> None:
        self._books = books  # type: ignore[assignment]  # the store's dict, typed for the compiled reads
        self._mults = {}
        self._staleness = {}
        self.evaluated = 0
        self.skipped_stale = 0
        self.skipped_crossed = 0

    def set_market(self, venue: str, market: Market) -> None:
        """Trade ``market`` on ``venue`` with its taker fee where it takes it (books of other markets
        are never paired)."""
        quote, base = market.fee_factors("buy")
        buy = quote / base
        quote, base = market.fee_factors("sell")
        self._mults.setdefault(market.symbol, {})[venue] = (buy, quote / base)

    def set_staleness(self, venue: str, staleness_ns: int) -> None:
        """Books of ``venue`` older than this are not traded on (unknown venue: 0, every book stale).
        A limit beyond the 64-bit range is clamped to it (no book is that old, or that young)."""
        self._staleness[venue] = min(max(int(staleness_ns), _INT64[0]), _INT64[1])

    @cython.cfunc
    @cython.locals(limit=cython.longlong, ts=cython.longlong)
    def _usable(self, book: BookUpdate, venue: str, now: cython.longlong, bid: cython.double,
                ask: cython.double) -> cython.bint:
        """Fresh (by its venue's staleness) and not crossed; counts what it skips."""
        limit = self._staleness.get(venue, 0)
        ts = book.ts_event
        if now - ts > limit:
            self.skipped_stale += 1
            return False
        if bid >= ask:
            self.skipped_crossed += 1
            return False
        return True

    @cython.locals(mults=dict, mult=tuple, venues=dict, now=cython.longlong, bid=cython.double,
                   ask=cython.double, cost=cython.double, gain=cython.double, to_buy=cython.double,
                   to_sell=cython.double, buy_here=cython.bint, sell_here=cython.bint)
    def update(self, book: BookUpdate, now_ns: int) -> list[Pair] | None:
        """Return the (buy, sell) pairs of ``book`` (the store's latest of its venue) with the other
        venues' books that pay at top of book, in venue order (buying here before selling here for
        the same other book), or None."""
        symbol = book.symbol
        mults = self._mults.get(symbol)
        if mults is None:
            return None
        venue = book.venue
        mult = mults.get(venue)
        if mult is None:
            return None
        bids = book.bids
        asks = book.asks
        if not bids or not asks:
            return None
        now = now_ns
        bid = bids[0][0]
        ask = asks[0][0]
        if not self._usable(book, venue, now, bid, ask):
            return None
        venues = self._books.get(symbol)
        if venues is None:
            return None
        to_buy = mult[0]  # unboxed once: the products below stay in C doubles
        to_sell = mult[1]
        cost = ask * to_buy  # buying here, per unit received
        gain = bid * to_sell  # selling here, per unit given
        pairs: list[Pair] | None = None
        for other_venue, other in venues.items():
            if other is book:
                continue
            mult = mults.get(other_venue)
            if mult is None:
                continue
            bids = other.bids
            asks = other.asks
            if not bids or not asks:
                continue
            to_buy = mult[0]
            to_sell = mult[1]
            bid = bids[0][0]
            ask = asks[0][0]
            buy_here = bid * to_sell > cost
            sell_here = gain > ask * to_buy
            if not (buy_here or sell_here) or not self._usable(other, other_venue, now, bid, ask):
                continue
            self.evaluated += 1
            if pairs is None:
                pairs = []
            if buy_here:
                pairs.append((book, other))
            if sell_here:
                pairs.append((other, book))
        return pairs
