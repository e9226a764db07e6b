"""What an amount of one asset is worth in the risk currency, from the run's books.

It exists so that a limit means one thing everywhere: the risk gate and the strategies' sizing caps
value amounts with this one rule, so ``max_notional = 1000`` is 1,000 USDT's worth on BTC/USDT, on
ETH/BTC and for a cycle starting in BTC alike.

A price is the mid of the latest uncrossed book with both sides of a market linking the asset to
the currency directly (``ETH/USDT``, or ``USDT/ETH`` inverted), else through one intermediate asset
(ETH/BTC times BTC/USDT). The newest such book of any venue is used (not a dead feed's last
book): a limit needs a fair value, not the best execution price. No such book means no price
(None): the caller refuses rather than guess.
"""

from __future__ import annotations

import collections.abc as c

from arbitrage.events import BookUpdate

__all__ = ["Valuer"]

BySymbol = c.Mapping[str, c.Mapping[str, BookUpdate]]
"""symbol -> venue -> latest book (``Books.by_symbol``)."""


class Valuer:
    """Values amounts of any asset in ``currency`` from the books in ``by_symbol`` (read at each call).

    :param by_symbol: the run's book store's ``by_symbol`` (``ctx.books.by_symbol``).
    :param currency: the risk currency (``risk.currency``).
    """

    def __init__(self, by_symbol: BySymbol, currency: str) -> None:
        self.currency = currency
        self._books = by_symbol
        self._known = 0
        self._links: dict[str, list[tuple[str, str, bool]]] = {}
        """asset -> (symbol, other asset, asset is the base), for every symbol seen so far."""

    def price(self, asset: str) -> float | None:
        """``currency`` per unit of ``asset``, or None when no book links them (directly or via one asset)."""
        if asset == self.currency:
            return 1.0
        if len(self._books) != self._known:
            self._index()
        hops = self._links.get(asset, ())
        for symbol, other, is_base in hops:
            if other == self.currency and (rate := self._rate(symbol, is_base)) is not None:
                return rate
        for symbol, other, is_base in hops:
            if other == self.currency or (first := self._rate(symbol, is_base)) is None:
                continue
            for symbol2, other2, is_base2 in self._links.get(other, ()):
                if other2 == self.currency and (second := self._rate(symbol2, is_base2)) is not None:
                    return first * second
        return None

    def value(self, asset: str, amount: float) -> float | None:
        """``amount`` of ``asset`` in ``currency``, or None when it cannot be priced (see ``price``)."""
        rate = self.price(asset)
        return None if rate is None else amount * rate

    def _rate(self, symbol: str, is_base: bool) -> float | None:
        """Units of the other asset per unit of ours, from the mid of the newest usable book (a
        venue whose feed died must not price our limits with its last book)."""
        best: BookUpdate | None = None
        for book in self._books.get(symbol, {}).values():
            if (book.bids and book.asks and book.bids[0][0] < book.asks[0][0]
                    and (best is None or book.ts_event > best.ts_event)):
                best = book
        if best is None:
            return None
        mid = (best.bids[0][0] + best.asks[0][0]) / 2.0
        return mid if is_base else 1.0 / mid

    def _index(self) -> None:
        self._links.clear()
        for symbol in list(self._books):
            base, _, quote = symbol.partition("/")
            if base and quote:
                self._links.setdefault(base, []).append((symbol, quote, True))
                self._links.setdefault(quote, []).append((symbol, base, False))
        self._known = len(self._books)
