"""Order books: the one store of the latest books, and the arithmetic every module shares on them.

Levels are ``(price, amount)`` pairs, best first: bids descending, asks ascending.

``BookStore`` is the engine's single book cache (``Context.books``): the latest book per venue and
symbol, updated once per ``BookUpdate`` before any plugin sees it, with an overlay of the liquidity
our own orders took (fills) or may be taking (orders in flight). Strategies, the executor and the
paper venues read it; nobody else keeps books.
The arithmetic -- the depth walk, rounding to a market's grid and the float tolerance -- lives here
once, so that sizing, venues and hedging cannot disagree on it.
"""

from __future__ import annotations

import collections.abc as c
import math
import typing as t
from collections import defaultdict

from arbitrage.book_check import check_book
from arbitrage.events import BookUpdate, Level

EPS = 1e-12
"""Amounts and prices closer than this are equal (float noise, not liquidity)."""
_GRID_SLACK = 1e-9
"""How far (in steps) a value may sit below a grid point and still count as on it."""

BookSide = t.Literal["bids", "asks"]


def round_down(amount: float, step: float) -> float:
    """The largest multiple of ``step`` not above ``amount`` (``step`` 0 leaves it as is).

    Always on the grid. Amounts within ``EPS`` of each other are equal, so float noise of our own
    arithmetic does not cost a step: 0.09999999999999998 (0.3 - 0.2) with step 0.01 is 0.1, and
    0.3 with step 0.1 stays 0.3. A real shortfall does: 1.99999999999 with step 1 is 1.0.
    """
    if step <= 0.0:
        return amount
    units = math.floor((amount + EPS) / step)
    value = round(units * step, 12)
    if value > amount + EPS:  # the division's own rounding lifted it a step: take the one below
        value = round((units - 1) * step, 12)
    return value


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


class SoundBooks:
    """Which books passed ``check_book``, remembered by identity: a strategy checks a book it is
    about to size on once per snapshot, however many routes it sizes on it. Both sides, not only the
    one used: a record with a NaN ask is corrupt, its bids are not to be trusted either (sources
    check every book; this guards against one that did not, at the cost of a lookup)."""

    def __init__(self) -> None:
        self._passed: dict[tuple[str, str], object] = {}

    def sound(self, book: t.Any) -> bool:
        """Whether ``book`` (a ``BookUpdate``) passes ``check_book``."""
        key = (book.venue, book.symbol)
        if self._passed.get(key) is book:
            return True
        if check_book(book.bids, book.asks) is not None:
            return False
        self._passed[key] = book
        return True


def is_crossed(bids: t.Sequence[Level], asks: t.Sequence[Level]) -> bool:
    """True when the best bid is at or above the best ask: a broken book not to trade on."""
    return bool(bids) and bool(asks) and bids[0][0] >= asks[0][0]


class BookStore:
    """The latest book per venue and symbol, minus the liquidity our own orders took or may take.

    ``update`` is the engine's first inline ``BookUpdate`` subscriber, so every plugin sees the store
    already holding the book it is handed. Books are kept per symbol, then per venue
    (``by_symbol``): what the cross-exchange check compares, with no key tuple built per book.

    The overlay has two parts, both kept per (venue, symbol) and level (side, price):

    * *taken* (``take``): a venue's snapshot keeps showing a level we emptied until the venue sends
      a new one. Taken amounts are kept with the level's size when we took from it; when a new
      snapshot arrives, a level's taken amount survives only if that level is still there with
      exactly the same size, because any change means the venue has published a fresh state of it.
    * *in flight* (``reserve``/``release``): the levels an IOC order we sent may take, from the
      moment it is sent until its result is known; then the venue's fills (``take``) say what it
      really took. Reservations apply to whatever level sits at their price in the latest snapshot
      (the venue has not seen our order yet), so they outlive snapshots until released.

    ``levels`` (what a plan may count on) is net of both; ``fillable`` (what the venue would still
    fill) only of what was taken. Net levels only ever lose liquidity, so a check on the raw best
    prices never misses a route the net levels would pay on: hot paths test raw books and ask for
    net levels only to size. ``update`` costs two lookups and a store unless we traded on that book
    since its last snapshot; ``levels`` of a book we never touched is the snapshot's own side.
    """

    def __init__(self) -> None:
        self.by_symbol: dict[str, dict[str, BookUpdate]] = {}
        """symbol -> venue -> latest book, as the venue published it (read it, never write it)."""
        self.updates = 0
        """Books stored so far (the run's book count)."""
        self._taken: dict[tuple[str, str], dict[tuple[BookSide, float], tuple[float, float]]] = {}
        self._reserved: dict[tuple[str, str], dict[tuple[BookSide, float], float]] = {}
        """(venue, symbol) -> (side, price) -> amount our orders in flight may take there."""
        self._orders: dict[str, tuple[tuple[str, str], tuple[tuple[BookSide, float, float], ...]]] = {}
        """client order id -> its (venue, symbol) and the (side, price, amount) it reserved."""

    def update(self, book: BookUpdate) -> None:
        """Store a new snapshot and forget what was taken from levels it changed."""
        self.updates += 1
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

    def drop(self, venue: str, symbol: str = "") -> None:
        """Forget ``venue``'s book of ``symbol`` (every book of the venue when ``symbol`` is ''):
        its feed is resyncing or failed, so nothing may plan on it until the next fresh one.
        What our orders in flight reserved stays (their results are still to come)."""
        for name, venues in self.by_symbol.items():
            if (not symbol or name == symbol) and venues.pop(venue, None) is not None:
                self._taken.pop((venue, name), None)

    def get(self, venue: str, symbol: str) -> BookUpdate | None:
        """The latest snapshot as the venue published it, or None."""
        venues = self.by_symbol.get(symbol)
        return venues.get(venue) if venues is not None else None

    def venues(self, symbol: str) -> c.Mapping[str, BookUpdate]:
        """Every venue's latest book of ``symbol`` (venue -> book), in the order they first arrived."""
        return self.by_symbol.get(symbol, {})

    def touched(self, venue: str, symbol: str) -> bool:
        """True while our overlay (taken or in flight) changes this book's levels."""
        key = (venue, symbol)
        return key in self._taken or key in self._reserved

    def levels(self, venue: str, symbol: str, side: BookSide) -> c.Sequence[Level]:
        """One side of the latest book, best first, net of what our orders took or have in flight
        (empty levels dropped): the snapshot's own sequence while nothing of ours touches it."""
        book = self.get(venue, symbol)
        if book is None:
            return ()
        raw = book.bids if side == "bids" else book.asks
        if not self._taken and not self._reserved:
            return raw
        key = (venue, symbol)
        taken = self._taken.get(key)
        reserved = self._reserved.get(key)
        if not taken and not reserved:
            return raw
        return _net(raw, side, taken, reserved)

    def fillable(self, venue: str, symbol: str, side: BookSide) -> c.Sequence[Level]:
        """One side of the latest book net of what our fills took only: what the venue would still
        fill (our reservations are our own plans, which the venue does not know)."""
        book = self.get(venue, symbol)
        if book is None:
            return ()
        raw = book.bids if side == "bids" else book.asks
        taken = self._taken.get((venue, symbol))
        return _net(raw, side, taken, None) if taken else raw

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

    def reserve(self, order_id: str, venue: str, symbol: str, side: BookSide, limit: float,
                amount: float) -> float:
        """Mark the levels an order in flight may take: ``amount`` from the net levels of ``side``
        (asks for a buy, bids for a sell), best first, not past ``limit``. Replaces what
        ``order_id`` had reserved before.

        :returns: how much of ``amount`` the snapshot shows within the limit but our own orders
            already took or hold: 0.0 when nothing of ours stands in the way (a thin book alone is
            not counted; that is for the venue to answer).
        """
        self.release(order_id)
        book = self.get(venue, symbol)
        if book is None:
            return 0.0
        shown = walk(book.asks if side == "asks" else book.bids, amount, limit,
                     "buy" if side == "asks" else "sell")[0]
        buy = side == "asks"
        marks: list[tuple[BookSide, float, float]] = []
        remaining = amount
        for price, size in self.levels(venue, symbol, side):
            if remaining <= EPS or (price > limit + EPS if buy else price < limit - EPS):
                break
            take = size if size < remaining else remaining
            marks.append((side, price, take))
            remaining -= take
        if marks:
            key = (venue, symbol)
            reserved = self._reserved.setdefault(key, {})
            for mark_side, price, take in marks:
                reserved[(mark_side, price)] = reserved.get((mark_side, price), 0.0) + take
            self._orders[order_id] = (key, tuple(marks))
        return max(shown - (amount - remaining), 0.0)

    def release(self, order_id: str) -> None:
        """Forget what ``order_id`` reserved (its result is known; idempotent)."""
        entry = self._orders.pop(order_id, None)
        if entry is None:
            return
        key, marks = entry
        reserved = self._reserved[key]
        for side, price, take in marks:
            left = reserved[(side, price)] - take
            if left > EPS:
                reserved[(side, price)] = left
            else:
                del reserved[(side, price)]
        if not reserved:
            del self._reserved[key]

    def taken(self) -> dict[tuple[str, str], dict[str, float]]:
        """Amounts currently taken, per (venue, symbol) and ``side@price``: for tests and debugging."""
        out: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        for key, levels in self._taken.items():
            for (side, price), (_, used) in levels.items():
                out[key][f"{side}@{price}"] = used
        return dict(out)

    def reserved(self) -> dict[tuple[str, str], dict[str, float]]:
        """Amounts our orders in flight hold, per (venue, symbol) and ``side@price``: for tests."""
        return {key: {f"{side}@{price}": v for (side, price), v in levels.items()}
                for key, levels in self._reserved.items()}


def _net(raw: t.Sequence[Level], side: BookSide,
         taken: c.Mapping[tuple[BookSide, float], tuple[float, float]] | None,
         reserved: c.Mapping[tuple[BookSide, float], float] | None) -> list[Level]:
    """``raw`` minus what was taken from unchanged levels and what orders in flight hold."""
    out: list[Level] = []
    for price, size in raw:
        left = size
        if taken:
            used = taken.get((side, price))
            if used is not None and used[0] == size:
                left -= used[1]
        if reserved:
            left -= reserved.get((side, price), 0.0)
        if left > EPS:
            out.append((price, left))
    return out
