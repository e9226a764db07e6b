"""Order books: the one store of the latest books, and the arithmetic every module shares on them.

Levels are ``(price, amount)`` pairs, best first: bids descending, asks ascending.

``BookStore`` is the engine's single book cache (``Context.books``): the latest book per venue and
symbol, updated once per ``BookUpdate`` before any plugin sees it, with an overlay of the liquidity
our own fills took. Strategies, the executor and the paper venues read it; nobody else keeps books.
The arithmetic -- the depth walk, rounding to a market's grid and the float tolerance -- lives here
once, so that sizing, venues and hedging cannot disagree on it.
"""

from __future__ import annotations

import collections.abc as c
import math
import typing as t
from collections import defaultdict

from arbitrage.events import BookUpdate, Level

EPS = 1e-12
"""Amounts and prices closer than this are equal (float noise, not liquidity)."""
_GRID_SLACK = 1e-9
"""How far (in steps) a value may sit below a grid point and still count as on it."""

BookSide = t.Literal["bids", "asks"]


def round_down(amount: float, step: float) -> float:
    """Round ``amount`` down to a multiple of ``step`` (``step`` 0 leaves it as is).

    Tolerates float noise: 0.3 with step 0.1 stays 0.3, it does not become 0.2; and it never
    rounds up (0.29999999999999993 stays itself rather than becoming 0.3, more than a balance holds).
    """
    if step <= 0.0:
        return amount
    units = math.floor(amount / step + _GRID_SLACK)
    # the tolerance may lift a value a hair under a step onto it: never return more than was given
    return min(round(units * step, 12), amount)


def floor_to_step(amount: float, step: float) -> float:
    """Like ``round_down``, but always on the grid: when float noise lifts a value onto the next step
    it drops to the step below instead of returning ``amount`` (each leg of a cycle must be an exact
    multiple of its market's step)."""
    if step <= 0.0:
        return amount
    value = round(math.floor(amount / step + _GRID_SLACK) * step, 12)
    if value <= amount:
        return value
    return round(math.floor((value - step) / step + _GRID_SLACK) * step, 12)


def round_up(amount: float, step: float) -> float:
    """The smallest multiple of ``step`` not below ``amount`` (``step`` 0 leaves it as is)."""
    if step <= 0.0:
        return amount
    units = math.ceil(amount / step - _GRID_SLACK)
    value = round(units * step, 12)
    return value if value >= amount else round((units + 1) * step, 12)


def round_price(price: float, step: float, *, up: bool) -> float:
    """A limit price on the market's price grid, rounded towards the book (``up`` for sells, down for
    buys) so that it never reaches further than asked."""
    if step <= 0.0:
        return price
    units = price / step
    n = math.ceil(units - _GRID_SLACK) if up else math.floor(units + _GRID_SLACK)
    return round(n * step, 12)


def walk(levels: t.Sequence[Level], amount: float, limit: float | None = None,
         side: t.Literal["buy", "sell"] = "buy") -> tuple[float, float, float]:
    """Take up to ``amount`` base from ``levels`` without passing ``limit``.

    :param levels: asks for a buy, bids for a sell, best first.
    :param limit: worst acceptable price (a buy stops above it, a sell below it); None = no limit.
    :returns: ``(filled, notional, last_price)``; notional is sum(price * amount) before fees and
        last_price is the price of the last level touched (0 if nothing filled).
    """
    filled = 0.0
    notional = 0.0
    last = 0.0
    remaining = amount
    for price, size in levels:
        if remaining <= EPS:
            break
        if limit is not None and (price > limit + EPS if side == "buy" else price < limit - EPS):
            break
        take = size if size < remaining else remaining
        filled += take
        notional += take * price
        remaining -= take
        last = price
    return filled, notional, last


def is_crossed(bids: t.Sequence[Level], asks: t.Sequence[Level]) -> bool:
    """True when the best bid is at or above the best ask: a broken book not to trade on."""
    return bool(bids) and bool(asks) and bids[0][0] >= asks[0][0]


class BookStore:
    """The latest book per venue and symbol, minus the liquidity our own fills took from it.

    ``update`` is the engine's first inline ``BookUpdate`` subscriber, so every plugin sees the store
    already holding the book it is handed. Books are kept per symbol, then per venue
    (``by_symbol``): what the cross-exchange check compares, with no key tuple built per book.

    The overlay: a venue's snapshot keeps showing a level we emptied until the venue sends a new
    one. Taken amounts are kept per level (price) with the level's size when we took from it; when a
    new snapshot arrives, a level's taken amount survives only if that level is still there with
    exactly the same size, because any change means the venue has published a fresh state of it.
    ``update`` costs two lookups and a store unless we traded on that book since its last snapshot.
    """

    def __init__(self) -> None:
        self.by_symbol: dict[str, dict[str, BookUpdate]] = {}
        """symbol -> venue -> latest book, as the venue published it (read it, never write it)."""
        self._taken: dict[tuple[str, str], dict[tuple[BookSide, float], tuple[float, float]]] = {}

    def update(self, book: BookUpdate) -> None:
        """Store a new snapshot and forget what was taken from levels it changed."""
        venues = self.by_symbol.get(book.symbol)
        if venues is None:
            venues = self.by_symbol[book.symbol] = {}
        venues[book.venue] = book
        if not self._taken:
            return
        key = (book.venue, book.symbol)
        taken = self._taken.get(key)
        if taken:
            sizes = {"bids": dict(book.bids), "asks": dict(book.asks)}
            kept = {k: v for k, v in taken.items() if sizes[k[0]].get(k[1]) == v[0]}
            if kept:
                self._taken[key] = kept
            else:
                del self._taken[key]

    def get(self, venue: str, symbol: str) -> BookUpdate | None:
        """The latest snapshot as the venue published it, or None."""
        venues = self.by_symbol.get(symbol)
        return venues.get(venue) if venues is not None else None

    def venues(self, symbol: str) -> c.Mapping[str, BookUpdate]:
        """Every venue's latest book of ``symbol`` (venue -> book), in the order they first arrived."""
        return self.by_symbol.get(symbol, {})

    def levels(self, venue: str, symbol: str, side: BookSide) -> list[Level]:
        """One side of the latest book, best first, with our taken amounts removed (empty levels dropped)."""
        book = self.get(venue, symbol)
        if book is None:
            return []
        raw = book.bids if side == "bids" else book.asks
        taken = self._taken.get((venue, symbol))
        if not taken:
            return list(raw)
        out: list[Level] = []
        for price, size in raw:
            used = taken.get((side, price))
            left = size - used[1] if used is not None and used[0] == size else size
            if left > EPS:
                out.append((price, left))
        return out

    def take(self, venue: str, symbol: str, side: BookSide, price: float, amount: float) -> None:
        """Record that one of our fills took ``amount`` at ``price`` from the current snapshot."""
        book = self.get(venue, symbol)
        if book is None:
            return
        size = dict(book.bids if side == "bids" else book.asks).get(price)
        if size is None:
            return  # filled at a price the snapshot does not show: nothing visible to reduce
        taken = self._taken.setdefault((venue, symbol), {})
        level_size, used = taken.get((side, price), (size, 0.0))
        if level_size != size:
            used = 0.0
        taken[(side, price)] = (size, min(size, used + amount))

    def taken(self) -> dict[tuple[str, str], dict[str, float]]:
        """Amounts currently taken, per (venue, symbol) and ``side@price``: for tests and debugging."""
        out: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for key, levels in self._taken.items():
            for (side, price), (_, used) in levels.items():
                out[key][f"{side}@{price}"] = used
        return dict(out)
