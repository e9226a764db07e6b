"""What an amount of one asset is worth in the risk currency, from the run's books.

It exists so that a limit means one thing everywhere: the risk gate and the strategies' sizing caps
value amounts with this one rule, so ``max_notional = 1000`` is 1,000 USDT's worth on BTC/USDT, on
ETH/BTC and for a cycle starting in BTC alike.

A price is the mid of the latest uncrossed book with both sides of a market linking the asset to
the currency directly (``ETH/USDT``, or ``USDT/ETH`` inverted), else through one intermediate asset
(ETH/BTC times BTC/USDT). The newest such book of any venue is used (not a dead feed's last
book): a limit needs a fair value, not the best execution price. No such book means no price
(None): the caller refuses rather than guess.

A position is marked at what closing it would get, not at a mid: ``price(..., sell=...)`` walks the
same links at the top of the side a close would trade (selling the asset takes bids of
``asset/X``, asks of ``X/asset``; buying it the other sides), at the best such path, from the tops
the caller's ``top`` gives (the positions ledger's: fresh books net of our own fills).
"""

from __future__ import annotations

import collections.abc as c
import math

from arbitrage.events import BookUpdate

__all__ = ["Valuer"]

BySymbol = c.Mapping[str, c.Mapping[str, BookUpdate]]
"""symbol -> venue -> latest book (``Books.by_symbol``)."""

Top = c.Callable[[str, str, bool], "float | None"]
"""(venue, symbol, bid side) -> best price of a usable book on that side, or None."""


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

    def price(self, asset: str, currency: str | None = None, *, sell: bool | None = None,
              top: Top | None = None, prefer: str = "") -> float | None:
        """``currency`` (default: the risk currency) per unit of ``asset``, or None when no book
        links them (directly or via one asset).

        :param sell: None: mids; True: what selling a unit gets, False: what buying one costs, at
            the tops of the sides that trade, over the best direct or one-hop path.
        :param top: the usable tops for ``sell`` (default: any uncrossed book's published top).
        :param prefer: a venue whose usable book of a market is taken before the newest one.
        """
        currency = self.currency if currency is None else currency
        if asset == currency:
            return 1.0
        if len(self._books) != self._known:
            self._index()
        if sell is not None:
            return self._side_price(asset, currency, sell, top or _raw_top(self._books), prefer)
        hops = self._links.get(asset, ())
        for symbol, other, is_base in hops:
            if other == currency and (rate := self._rate(symbol, is_base)) is not None:
                return rate
        for symbol, other, is_base in hops:
            if other == currency or (first := self._rate(symbol, is_base)) is None:
                continue
            for symbol2, other2, is_base2 in self._links.get(other, ()):
                if other2 == currency and (second := self._rate(symbol2, is_base2)) is not None:
                    return first * second
        return None

    def _side_price(self, asset: str, currency: str, sell: bool, top: Top, prefer: str) -> float | None:
        """The best (highest for ``sell``, else lowest) direct or one-hop price at the tops."""
        best: float | None = None
        for symbol, other, is_base in self._links.get(asset, ()):
            first = self._side_rate(symbol, is_base, sell, top, prefer)
            if first is None:
                continue
            if other == currency:
                candidates = [first]
            else:
                rate = self._side_rate
                candidates = [first * second for symbol2, other2, is_base2 in self._links.get(other, ())
                              if other2 == currency
                              and (second := rate(symbol2, is_base2, sell, top, prefer)) is not None]
            for price in candidates:
                if best is None or (price > best if sell else price < best):
                    best = price
        return best

    def _side_rate(self, symbol: str, is_base: bool, sell: bool, top: Top, prefer: str) -> float | None:
        """Units of the other asset one unit of ours trades for at the top of the side that trades:
        selling the base hits bids, selling the quote (buying the base) lifts asks; ``prefer``'s
        book first, else the newest usable one."""
        bid_side = sell if is_base else not sell
        found: tuple[int, float] | None = None
        for venue, book in self._books.get(symbol, {}).items():
            price = top(venue, symbol, bid_side)
            if not price:
                continue
            if venue == prefer:
                found = (1 << 62, price)
                break
            if found is None or book.ts_event > found[0]:
                found = (book.ts_event, price)
        if found is None:
            return None
        return found[1] if is_base else 1.0 / found[1]

    def value(self, asset: str, amount: float) -> float | None:
        """``amount`` of ``asset`` in ``currency``, or None when it cannot be priced (see ``price``)."""
        rate = self.price(asset)
        return None if rate is None else amount * rate

    def _rate(self, symbol: str, is_base: bool) -> float | None:
        """Units of the other asset per unit of ours, from the mid of the newest usable book (a
        venue whose feed died must not price our limits with its last book)."""
        best: BookUpdate | None = None
        for book in self._books.get(symbol, {}).values():
            if (book.bids and book.asks and 0.0 < book.bids[0][0] < book.asks[0][0] < math.inf
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


def _raw_top(by_symbol: BySymbol) -> Top:
    """Tops of the published books, uncrossed ones only."""
    def top(venue: str, symbol: str, bid_side: bool) -> float | None:
        book = by_symbol.get(symbol, {}).get(venue)
        if book is None or (book.bids and book.asks and book.bids[0][0] >= book.asks[0][0]):
            return None
        side = book.bids if bid_side else book.asks
        return side[0][0] if side else None
    return top
