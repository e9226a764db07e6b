"""The per-book test of the cross-exchange strategy: which other venues' books pay against this one
at top of book, after both taker fees.

This is the reference implementation; ``_cross_check.c`` is the same class compiled (used when it
was built), and the tests run both on the same streams. A book is stored as its venue's latest for
its symbol; if it has both sides, is fresh and not crossed, every other venue's book of the symbol
is compared with it in both directions: buying here pays when the other's bid after its fee beats
this ask after this fee, selling here when this bid beats the other's ask. An other book that pays
is checked for freshness and crossing only then (the common case costs two multiplications).
"""

from __future__ import annotations

from arbitrage.events import BookUpdate

__all__ = ["CrossCheck"]

Pair = tuple[BookUpdate, BookUpdate]
"""(the book to buy on, the book to sell on)."""


class CrossCheck:
    """Latest book per symbol and venue, with each market's taker fee and each venue's staleness.

    :param books: symbol -> venue -> latest book; kept up to date here (shared with the caller).
    """

    def __init__(self, books: dict[str, dict[str, BookUpdate]]) -> None:
        self.books = books
        self._fees: dict[str, dict[str, float]] = {}
        self._staleness: dict[str, int] = {}
        self.evaluated = 0
        """Other books that paid at top of book and were fresh and not crossed."""
        self.skipped_stale = 0
        self.skipped_crossed = 0

    def set_market(self, venue: str, symbol: str, fee: float) -> None:
        """Trade ``symbol`` on ``venue`` with this taker fee (books of unknown markets are only stored)."""
        self._fees.setdefault(symbol, {})[venue] = fee

    def set_staleness(self, venue: str, staleness_ns: int) -> None:
        """Books of ``venue`` older than this are not traded on (unknown venue: 0, every book stale)."""
        self._staleness[venue] = staleness_ns

    def _usable(self, book: BookUpdate, now_ns: int) -> bool:
        if now_ns - book.ts_event > self._staleness.get(book.venue, 0):
            self.skipped_stale += 1
            return False
        if book.bids[0][0] >= book.asks[0][0]:
            self.skipped_crossed += 1
            return False
        return True

    def update(self, book: BookUpdate, now_ns: int) -> list[Pair] | None:
        """Store ``book``; return the (buy, sell) pairs that pay at top of book, in venue order
        (buying here before selling here for the same other book), or None."""
        venues = self.books.get(book.symbol)
        if venues is None:
            venues = self.books[book.symbol] = {}
        venues[book.venue] = book
        fees = self._fees.get(book.symbol)
        fee = fees.get(book.venue) if fees is not None else None
        if fee is None or not book.bids or not book.asks or not self._usable(book, now_ns):
            return None
        cost = book.asks[0][0] * (1.0 + fee)  # buying here, per unit
        gain = book.bids[0][0] * (1.0 - fee)  # selling here, per unit
        pairs: list[Pair] | None = None
        for venue, other in venues.items():
            if other is book:
                continue
            other_fee = fees.get(venue)  # type: ignore[union-attr]
            if other_fee is None or not other.bids or not other.asks:
                continue
            buy_here = other.bids[0][0] * (1.0 - other_fee) > cost
            sell_here = gain > other.asks[0][0] * (1.0 + other_fee)
            if not (buy_here or sell_here) or not self._usable(other, now_ns):
                continue
            self.evaluated += 1
            if pairs is None:
                pairs = []
            if buy_here:
                pairs.append((book, other))
            if sell_here:
                pairs.append((other, book))
        return pairs
